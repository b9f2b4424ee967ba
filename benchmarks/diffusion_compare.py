"""Per-step time of the same diffusion pipeline on torch-CPU and ORT-CPU, in one run.

Default: sd-tiny at 64 px. `--sd15`: the SD-1.5-shaped pipeline at 256 px (slow: minutes, about
8 GB of RAM for the export; run once and record the figure, never in CI). Arms alternate;
figures are medians over rounds of the per-step p50.

Run: python benchmarks/diffusion_compare.py [--sd15] [--rounds 3] [--quick]
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sd15", action="store_true", help="SD-1.5 shape at 256 px instead of sd-tiny at 64 px")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--quick", action="store_true", help="seconds: sd-tiny, 1 round, 2 steps (checks the script runs)")
    a = ap.parse_args()
    if a.quick:
        a.sd15, a.rounds, a.steps = False, 1, 2
    cache = tempfile.TemporaryDirectory(prefix="ib-bench-")  # this run's exports, removed when it ends
    os.environ.setdefault("INFRA_BENCH_CACHE", cache.name)

    from infra_bench.backends.onnxruntime import build as ort_build
    from infra_bench.backends.torch import build as torch_build
    from infra_bench.measure.stopping import StoppingRule
    from infra_bench.measure.window import MeasurementWindow
    from infra_bench.scenarios.offline import run_offline
    from infra_bench.spec import spec_from_dict
    from infra_bench.engine import build_executor
    from infra_bench.workloads import diffusion as dw

    arch, res = ("sd-1.5", 256) if a.sd15 else ("sd-tiny", 64)
    cell = {"batch_size": 1, "resolution": res, "steps": a.steps}
    arms = {}
    for name, module, fields in [("torch", torch_build, {}), ("ort", ort_build, {"backend": "onnxruntime"})]:
        spec = spec_from_dict({"kind": "diffusion", "arch": arch, "resolution": res, **fields})
        resolved = dw.resolve(spec)
        probe = module.check(spec)
        t0 = time.perf_counter()
        built = build_executor(spec, resolved, probe, False)
        assert built.error is None, built.error
        setup = time.perf_counter() - t0
        arms[name] = (built.runner, probe, dw.make_request(spec, resolved, cell, built.runner), setup, built.info)
    rule = StoppingRule(warmup=1, min_iters=2, min_time_s=0)
    steps: dict[str, list[float]] = {n: [] for n in arms}
    images: dict[str, list[float]] = {n: [] for n in arms}
    for _ in range(a.rounds):
        for name, (ex, probe, req, _, _) in arms.items():
            with torch.inference_mode():
                r = run_offline(lambda: dw.run_request(ex, req, probe.now_ns), rule,
                                MeasurementWindow(probe, probe.energy_meter()))
            steps[name].append(statistics.median(s for t in r.timings for s in t.step_s))
            images[name].append(statistics.median(t.image_s for t in r.timings))
    print(f"{arch} at {res} px, batch 1, CFG on, {a.steps} steps, {torch.get_num_threads()} threads, {a.rounds} rounds")
    for name, (_, _, _, setup, info) in arms.items():
        extra = ""
        if name == "ort":
            extra = f"; UNet parity max_rel_diff {info['parity']['max_rel_diff']:.2g}"
        print(f"{name:6s} step {statistics.median(steps[name]) * 1e3:.1f} ms, image {statistics.median(images[name]):.3f} s"
              f" (build/export {setup:.1f} s{extra})")
    print(f"ORT / torch per-step time = {statistics.median(steps['ort']) / statistics.median(steps['torch']):.2f}")


if __name__ == "__main__":
    main()
