"""The GPUStack part of the acceptance check (benchmarks/gpustack_check.py): its rows are sourced and
self-consistent, and each is predicted as `infra-bench predict` predicts the same run."""
from __future__ import annotations

import json
import re

import pytest

from infra_bench.planner.engines import ENGINES
from infra_bench.planner.profiles import load_hardware
from infra_bench.planner.shapes import shapes

from .conftest import benchmark_script, run_cli


def test_every_row_is_sourced_and_its_rates_are_its_tokens_over_its_duration():
    """Each row names its document at the pinned commit; a `vllm bench serve` row's tokens/s are its token totals
    over its duration (the benchmark runner's rows measure over a shorter window and are copied as printed); a
    modelled row names a catalog model, a profile and an engine, and every other row says why not."""
    gc = benchmark_script("gpustack_check")
    rows, hw = gc.read_rows(gc.DATA), load_hardware()
    assert len(rows) >= 300
    for r in rows:
        assert re.fullmatch(r"gpustack/gpustack@47277d79:docs/performance-lab/[\w.-]+/[\w-]+\.md", r["source"]), r
        assert int(r["devices"]) == int(r["tp"]) * int(r["pp"]) * int(r["dp"]) and r["hardware"] in hw, r
        assert (r["modelled"] == "yes") == (not r["why_not"]), r
        if r["modelled"] == "yes":
            assert r["model"] in shapes() and r["engine"] in ENGINES, r
        if not r["request_rate"]:
            seconds = float(r["duration_s"])
            total = (int(r["total_input_tokens"]) + int(r["total_generated_tokens"])) / seconds
            assert float(r["total_tokens_per_s"]) == pytest.approx(total, rel=0.01), r
            assert float(r["output_tokens_per_s"]) == pytest.approx(int(r["total_generated_tokens"]) / seconds,
                                                                    rel=0.01), r
    assert sorted(r["fitted"] for r in rows if r["fitted"]) == ["S1", "S14", "S2"]


def test_a_burst_is_predicted_as_predict_does_a_closed_loop_of_all_its_prompts(tmp):
    """Qwen3-14B on an H100 under vLLM, 1,000 ShareGPT prompts at once: the check's figures are `predict
    --concurrency 1000` at the run's mean lengths (throughput over prompt and output tokens), and its TTFT is the
    one predict notes for a benchmark of 1,000 requests that start together."""
    gc = benchmark_script("gpustack_check")
    row = next(r for r in gc.read_rows(gc.DATA) if r["model"] == "qwen3-14b" and r["hardware"] == "nv_h100_sxm"
               and r["engine"] == "vllm" and r["dataset"] == "sharegpt")
    assert row["prompts"] == "1000" and not row["max_concurrency"]
    from infra_bench.planner.fit import shipped

    done = gc.predict_row(row, load_hardware(), shipped())
    isl, osl = done["isl"], done["osl"]
    assert (isl, osl) == (217, 202) and done["clients"] == 1000
    p = run_cli("predict", "--model", "qwen3-14b", "--hardware", "nv_h100_sxm", "--engine", "vllm",
                "--concurrency", "1000", "--input-len", str(isl), "--output-len", str(osl), "--json", cwd=tmp)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert done["predicted"]["tok"] == pytest.approx(out["output_tokens_per_s"] * (isl + osl) / osl)
    assert done["predicted"]["tpot"] == pytest.approx(out["tpot_s"])
    burst = next(float(m.group(1)) for n in out["notes"] if (m := re.search(r"start together .* averages ([\d.]+) s", n)))
    assert done["predicted"]["ttft"] == pytest.approx(burst, rel=0.005)
    assert done["errors"]["tok"] == pytest.approx(done["predicted"]["tok"] / float(row["total_tokens_per_s"]) - 1)
    assert done["errors"]["tpot"] == pytest.approx(float(row["mean_tpot_ms"]) / 1e3 / out["tpot_s"] - 1)


def test_a_run_with_max_concurrency_is_a_closed_loop_of_that_many_clients():
    """`--max-concurrency 8` over 100 prompts: 8 clients, not 100."""
    gc = benchmark_script("gpustack_check")
    from infra_bench.planner.fit import shipped

    row = next(r for r in gc.read_rows(gc.DATA) if r["max_concurrency"] == "8" and r["modelled"] == "yes")
    done = gc.predict_row(row, load_hardware(), shipped())
    assert done["clients"] == 8 and done["running"] == pytest.approx(8)


def test_finite_run_predicts_each_row_as_predict_num_prompts_does():
    """--finite-run: a fixed-length burst is `predict --num-prompts N` (all at once) at the run's lengths, a run
    with --max-concurrency 8 is at most 8 in flight; its errors are signed as the steady state's."""
    gc = benchmark_script("gpustack_check")
    from infra_bench.planner import llm_model
    from infra_bench.planner.fit import shipped

    hw, fit = load_hardware(), shipped()
    rows = gc.read_rows(gc.DATA)
    burst = next(r for r in rows if r["modelled"] == "yes" and r["dataset"] == "random" and not r["max_concurrency"]
                 and r["engine"] == "vllm" and r["model"] == "qwen3-14b")
    capped = next(r for r in rows if r["max_concurrency"] == "8" and r["modelled"] == "yes")
    for row, clients in ((burst, None), (capped, 8)):
        done = gc.predict_row(row, hw, fit, finite=True)
        rep = llm_model.replica(row["model"], hw[row["hardware"]], row["precision"], int(row["tp"]), int(row["pp"]),
                                int(row["dp"]), int(row["ep"]), row["engine"], int(row["max_seqs"] or 0) or None,
                                int(row["token_budget"] or 0) or None, row["kv_cache"] or None)
        p = llm_model.predict_run(rep, fit, int(row["prompts"]), clients, done["isl"], done["osl"])
        assert done["run"]["predicted"]["tok"] == pytest.approx(p.run["total_tokens_per_s"])
        assert done["run"]["predicted"]["ttft"] == pytest.approx(p.ttft_s)
        assert done["run"]["errors"]["tok"] == pytest.approx(p.run["total_tokens_per_s"] / float(row["total_tokens_per_s"]) - 1)
    assert "run" not in gc.predict_row(burst, hw, fit)
