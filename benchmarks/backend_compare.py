"""Decode speed of the same small model on eager torch, compiled torch (a static KV cache and
torch.compile of the decode step), ORT fp32 and ORT int8, on the CPU, in one run.

Decode tokens/s = batch / TPOT (prefill excluded). Arms are rotated round-robin so drift hits
all; each figure is the median over rounds. Compiling happens before the first round (its time
is printed, not counted). Targets: ORT / eager torch at least 3x (the ONNX Runtime issue);
compiled / eager torch at least 2x (the compiled torch issue); int8 / fp32 is reported.

Run: python benchmarks/backend_compare.py [--arch llama-tiny gpt2-small] [--rounds 5] [--batch 1 4] [--quick]
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", nargs="+", default=["llama-tiny", "gpt2-small"])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--prompt", type=int, default=64)
    ap.add_argument("--output", type=int, default=64)
    ap.add_argument("--quick", action="store_true", help="seconds, not minutes: 1 round of 2 requests, batch 1, "
                                                         "8 output tokens (checks the script runs; figures are noisy)")
    a = ap.parse_args()
    if a.quick:
        a.arch, a.rounds, a.iters, a.batch, a.prompt, a.output = ["llama-tiny"], 1, 2, [1], 16, 8
    cache = tempfile.TemporaryDirectory(prefix="ib-bench-")  # this run's exports, removed when it ends
    os.environ.setdefault("INFRA_BENCH_CACHE", cache.name)
    for arch in a.arch:
        compare(arch, a)


def compare(arch: str, a) -> None:
    from infra_bench.backends.onnxruntime import build as ort_build
    from infra_bench.backends.torch import build as torch_build
    from infra_bench.measure.stopping import StoppingRule
    from infra_bench.measure.window import MeasurementWindow
    from infra_bench.scenarios.offline import run_offline
    from infra_bench.spec import spec_from_dict
    from infra_bench.engine import build_executor
    from infra_bench.workloads import llm

    arms = {}
    for name, fields in [("torch fp32", {}), ("torch compiled", {"compile": "default"}),
                         ("ort fp32", {"backend": "onnxruntime"}),
                         ("ort int8", {"backend": "onnxruntime", "dtype": "int8"})]:
        spec = spec_from_dict({"arch": arch, **fields})
        module = ort_build if spec.backend == "onnxruntime" else torch_build
        probe = module.check(spec)
        built = build_executor(spec, llm.resolve(spec), probe, False)
        assert built.error is None, built.error
        arms[name] = (built.runner, probe, built.vocab_size)
    rule = StoppingRule(warmup=1, min_iters=a.iters, min_time_s=0)
    print(f"{arch}, prompt {a.prompt}, output {a.output}, {torch.get_num_threads()} threads, "
          f"{a.rounds} rounds x {a.iters} requests per arm")
    for batch in a.batch:
        ids_of = {n: r.prepare(llm.prompt_tokens(batch, a.prompt, v, 0, torch.device("cpu")))
                  for n, (r, _, v) in arms.items()}
        warm = arms["torch compiled"][0].warm(ids_of["torch compiled"], a.output)
        print(f"batch {batch}: compiling took {warm['compile_s']:.1f} s over {warm['warmup_iters']} request(s); "
              f"parity max_rel_diff {warm['parity']['max_rel_diff']:.2g}")
        rates: dict[str, list[float]] = {n: [] for n in arms}
        for _ in range(a.rounds):
            for name, (runner, probe, _) in arms.items():
                ids = ids_of[name]
                result = run_offline(lambda: runner.run(ids, a.output), rule,
                                     MeasurementWindow(probe, probe.energy_meter()))
                rates[name].append(batch / llm.metrics(result)["tpot_s"]["p50"])
        med = {n: statistics.median(v) for n, v in rates.items()}
        print(f"batch {batch}: " + ", ".join(f"{n} {v:.0f} tok/s" for n, v in med.items()))
        print(f"  ORT fp32 / torch fp32 = {med['ort fp32'] / med['torch fp32']:.2f}x (target >= 3x); "
              f"ORT int8 / ORT fp32 = {med['ort int8'] / med['ort fp32']:.2f}x")
        print(f"  compiled / eager torch = {med['torch compiled'] / med['torch fp32']:.2f}x (target >= 2x); "
              f"compiled / ORT fp32 = {med['torch compiled'] / med['ort fp32']:.2f}x")

if __name__ == "__main__":
    main()
