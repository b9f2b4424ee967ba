"""Real-time factor of MMS-shaped VITS on torch-CPU and ORT-CPU, and of the real piper voice.

RTF = synthesis time / audio seconds (lower is faster; below 1 is faster than real time).
Arms alternate; figures are medians over rounds.

Run: python benchmarks/tts_compare.py [--rounds 3] [--text-len 60] [--quick]
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import tempfile

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--text-len", type=int, default=60, help="tokens for VITS; characters x2 for the voice")
    ap.add_argument("--quick", action="store_true", help="seconds: the test-sized VITS, 1 round, 10 tokens (checks the "
                                                         "script runs)")
    a = ap.parse_args()
    arch = "vits-tiny" if a.quick else "vits-mms"
    if a.quick:
        a.rounds, a.text_len = 1, 10
    cache = tempfile.TemporaryDirectory(prefix="ib-bench-")  # this run's exports, removed when it ends
    os.environ.setdefault("INFRA_BENCH_CACHE", cache.name)

    from infra_bench.backends.onnxruntime import build as ort_build
    from infra_bench.backends.torch import build as torch_build
    from infra_bench.measure.stopping import StoppingRule
    from infra_bench.measure.window import MeasurementWindow
    from infra_bench.scenarios.offline import run_offline
    from infra_bench.spec import spec_from_dict
    from infra_bench.engine import build_executor
    from infra_bench.workloads import tts as tw

    arms = [(f"{arch} torch", torch_build, {"arch": arch}, a.text_len),
            (f"{arch} ort", ort_build, {"arch": arch, "backend": "onnxruntime"}, a.text_len)]
    if importlib.util.find_spec("piper"):
        arms.append(("joe-us voice (piper)", ort_build, {"voice": "joe-us", "backend": "onnxruntime"}, 2 * a.text_len))
    built = {}
    for name, module, fields, n in arms:
        spec = spec_from_dict({"kind": "tts", **fields, "text_len": n})
        resolved = tw.resolve(spec)
        probe = module.check(spec)
        b = build_executor(spec, resolved, probe, False)
        assert b.error is None, b.error
        built[name] = (b.runner, probe, b.runner.prepare(spec, resolved, spec.cells()[0]))
    rule = StoppingRule(warmup=1, min_iters=3, min_time_s=0)
    rtf: dict[str, list[float]] = {n: [] for n in built}
    audio: dict[str, float] = {}
    for _ in range(a.rounds):
        for name, (ex, probe, inputs) in built.items():
            with torch.inference_mode():
                r = run_offline(lambda: ex.synthesize(inputs, probe.now_ns), rule,
                                MeasurementWindow(probe, probe.energy_meter()))
            rtf[name].append(statistics.median(t.rtf for t in r.timings))
            audio[name] = r.timings[0].audio_s
    print(f"batch 1, {torch.get_num_threads()} threads, {a.rounds} rounds")
    for name in built:
        print(f"{name:22s} RTF {statistics.median(rtf[name]):.3f} ({audio[name]:.2f} s of audio)")
    print(f"ORT / torch RTF for {arch} = {statistics.median(rtf[f'{arch} ort']) / statistics.median(rtf[f'{arch} torch']):.2f}")


if __name__ == "__main__":
    main()
