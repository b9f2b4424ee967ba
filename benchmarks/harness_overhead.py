"""How much the harness adds to what it measures.

1. Per-output-token time through the full harness (runner with a clock read and sync per
   token, inside a MeasurementWindow with its memory sampler thread and energy meter),
   divided by a bare greedy loop on the same model and inputs. Arms alternate in ABBA
   blocks so drift and ordering hit both; the figure is the median of paired block ratios. Target: at most 1.02.
2. The default suite (`infra-bench run`, no spec) end to end: wall time and peak RSS.

Run: python benchmarks/harness_overhead.py [--blocks 12] [--iters 10] [--quick]
"""
from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import torch


def bare_loop(decoder, ids, output_len: int) -> None:
    """The same greedy steps with no clock, no synchronisation and no measurement window."""
    with torch.inference_mode():
        for k, _ in enumerate(decoder.steps(ids)):
            if k == output_len - 1:
                return


def overhead(blocks: int, iters: int, batch: int, prompt: int, output_len: int) -> None:
    from infra_bench.backends.torch import TorchLlmRunner
    from infra_bench.devices import select_device
    from infra_bench.measure.stopping import StoppingRule
    from infra_bench.measure.window import MeasurementWindow
    from infra_bench.scenarios.offline import run_offline
    from infra_bench.spec import spec_from_dict
    from infra_bench.workloads import llm

    spec = spec_from_dict({"arch": "llama-tiny"})
    probe = select_device("cpu")
    model = llm.build(spec, llm.resolve(spec), probe.torch_device)
    ids = llm.prompt_tokens(batch, prompt, model.config.vocab_size, 0, probe.torch_device)
    runner = TorchLlmRunner(model, probe)
    rule = StoppingRule(warmup=0, min_iters=iters, min_time_s=0)
    tokens = iters * batch * output_len
    for _ in range(3):
        bare_loop(runner.decoder, ids, output_len)

    def bare_arm() -> float:
        t0 = time.perf_counter()
        for _ in range(iters):
            bare_loop(runner.decoder, ids, output_len)
        return (time.perf_counter() - t0) / tokens

    def harness_arm() -> float:
        result = run_offline(lambda: runner.run(ids, output_len), rule, MeasurementWindow(probe, probe.energy_meter()))
        return result.window.wall_s / tokens

    ratios, bare, harness = [], [], []
    for k in range(blocks):  # ABBA order, so neither arm always runs first
        first, second = (bare_arm, harness_arm) if k % 2 == 0 else (harness_arm, bare_arm)
        a, b = first(), second()
        x, y = (a, b) if k % 2 == 0 else (b, a)
        bare.append(x)
        harness.append(y)
        ratios.append(y / x)
    q = statistics.quantiles(ratios, n=4)
    print(f"llama-tiny b={batch} p={prompt} o={output_len}, {blocks} paired blocks x {iters} requests per arm, "
          f"{torch.get_num_threads()} threads")
    print(f"bare loop     {statistics.median(bare) * 1e3:.3f} ms/token (median of blocks)")
    print(f"harness       {statistics.median(harness) * 1e3:.3f} ms/token (median of blocks)")
    print(f"ratio harness/bare = {statistics.median(ratios):.4f} (median of paired blocks; "
          f"quartiles {q[0]:.4f}-{q[2]:.4f}; target <= 1.02)")


QUICK_SPEC = "kind: llm\narch: llama-tiny\nbatch_size: [1]\nprompt_len: [16]\noutput_len: [4]\nwarmup: 0\nmin_iters: 1\nmin_time_s: 0\n"


def default_suite(quick: bool) -> None:
    """`infra-bench run` end to end in a subprocess: the default suite, or with --quick one tiny cell."""
    with tempfile.TemporaryDirectory() as out:
        args = [sys.executable, "-m", "infra_bench", "run", "--out", out]
        if quick:
            spec = f"{out}/quick-spec.yaml"
            with open(spec, "w") as f:
                f.write(QUICK_SPEC)
            args.append(spec)
        t0 = time.perf_counter()
        p = subprocess.run(args, capture_output=True, text=True)
        wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    if p.returncode:
        sys.exit(f"infra-bench run failed (exit {p.returncode}): {p.stderr.strip()[-500:]}")
    print(f"{'one llama-tiny cell' if quick else 'default suite'}: exit {p.returncode}, wall {wall:.1f} s"
          f"{'' if quick else ' (target <= 120 s)'}, peak RSS {peak / 2**20:.0f} MiB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blocks", type=int, default=12)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--prompt", type=int, default=64)
    ap.add_argument("--output", type=int, default=64)
    ap.add_argument("--skip-suite", action="store_true", help="only the overhead ratio")
    ap.add_argument("--quick", action="store_true", help="seconds, not minutes: 2 blocks of 2 requests, 8 tokens, and "
                                                         "one tiny cell instead of the default suite")
    a = ap.parse_args()
    if a.quick:
        a.blocks, a.iters, a.prompt, a.output = 2, 2, 16, 8
    overhead(a.blocks, a.iters, a.batch, a.prompt, a.output)
    if not a.skip_suite:
        default_suite(a.quick)


if __name__ == "__main__":
    main()
