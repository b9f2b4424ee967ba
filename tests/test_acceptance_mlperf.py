"""The MLPerf part of the acceptance check (benchmarks/acceptance_check.py): its rows are usable and
sourced, and each is predicted with the planner's best layout on the same number of parts."""
from __future__ import annotations

import pytest

from infra_bench.planner import llm_model
from infra_bench.planner.engines import ENGINES
from infra_bench.planner.fit import shipped
from infra_bench.planner.profiles import load_hardware
from infra_bench.planner.shapes import shapes

from .conftest import benchmark_script


def _known_rows(path) -> list[dict]:
    """The rows of an MLPerf acceptance file, each naming a catalog model, a profile and an engine."""
    rows, hw = benchmark_script("acceptance_check").read_rows(path), load_hardware()
    assert len(rows) >= 40
    for r in rows:
        assert r["model"] in shapes() and r["hardware"] in hw and r["engine"] in ENGINES, r
    return rows


def test_every_mlperf_row_names_a_known_model_part_engine_and_its_summary_file():
    rows = _known_rows(benchmark_script("acceptance_check").MLPERF)
    for r in rows:
        assert r["source"].startswith("mlcommons/inference_results_v") and r["source"].endswith(
            "/Offline/performance/run_1/mlperf_log_summary.txt"), r["source"]
        assert float(r["output_tokens_per_s"]) > 0 and int(r["input_len"]) > 0 and int(r["output_len"]) > 0
    assert len({(r["round"], r["submitter"], r["system"], r["model"]) for r in rows}) == len(rows)  # one row per run


def test_the_best_layout_is_the_best_of_the_replica_layouts_on_those_parts():
    """8 x H100 for Llama-2-70B fp8: every TP that divides 8 and fits, times its replicas; the best
    total is the one reported, with its interval around it."""
    ac = benchmark_script("acceptance_check")
    h100 = load_hardware()["nv_h100_sxm"]
    total, interval, layout = ac.best_layout("llama-2-70b", h100, "fp8", "trt-llm", 8, 222, 290)
    totals = {}
    for tp in (1, 2, 4, 8):
        p = llm_model.predict(llm_model.replica("llama-2-70b", h100, "fp8", tp, engine="trt-llm"), shipped(), None,
                              222, 290, max_throughput=True)
        if p.fits:
            totals[tp] = p.output_tokens_per_s * 8 / tp
    assert len(totals) >= 3
    best = max(totals, key=totals.get)
    assert total == totals[best] and layout == f"{8 // best} x TP{best}"
    assert interval[0] < total < interval[1]


def test_a_moe_model_may_take_attention_data_parallelism():
    """DeepSeek-R1 on 8 x B200: the candidates include 8 attention-DP ranks with experts over 8."""
    ac = benchmark_script("acceptance_check")
    b200 = load_hardware()["nv_b200"]
    total, _, layout = ac.best_layout("deepseek-r1", b200, "fp4", "trt-llm", 8, 804, 3700)
    dp = llm_model.predict(llm_model.replica("deepseek-r1", b200, "fp4", 1, 1, 8, 8, "trt-llm"), shipped(), None,
                           804, 3700, max_throughput=True)
    assert dp.fits and total >= dp.output_tokens_per_s
    assert layout in ("1 x TP8", "1 x TP1 DP8 EP8")


def test_every_server_row_is_a_valid_run_within_its_latency_limits_and_names_its_summary_file():
    for r in _known_rows(benchmark_script("acceptance_check").MLPERF_SERVER):
        assert r["source"].endswith("/Server/performance/run_1/mlperf_log_summary.txt"), r["source"]
        assert float(r["ttft_p99_ms"]) <= float(r["ttft_limit_ms"]) and float(r["tpot_p99_ms"]) <= float(r["tpot_limit_ms"])
        assert float(r["output_tokens_per_s"]) / float(r["samples_per_s"]) == pytest.approx(int(r["output_len"]), abs=0.5)


def test_the_server_capacity_stays_below_the_offline_maximum_on_the_same_parts():
    """8 x H200, Llama-2-70B fp8 under MLPerf's limits (TTFT p99 2 s, TPOT p99 200 ms): at most what the same
    parts do offline, as a Server run is at most its Offline run."""
    ac = benchmark_script("acceptance_check")
    h200 = load_hardware()["nv_h200_sxm"]
    server, layout, (lo, hi) = ac.slo_capacity("llama-2-70b", h200, "fp8", "trt-llm", 8, 222, 290, 2.0, 0.2)
    offline, _, _ = ac.best_layout("llama-2-70b", h200, "fp8", "trt-llm", 8, 222, 290)
    assert 0.5 * offline < server <= offline and layout.endswith(("TP1", "TP2", "TP4", "TP8"))
    assert 0 < lo < server < hi  # plan's 80% range around it


def test_a_72_gpu_rack_is_nine_times_its_best_8_gpu_board():
    """An NVL72 row (one NVLink domain) is priced as replicas of TP 1-8, each of which divides 8 and 72, so the
    rack's best is exactly nine times an 8-GPU board's, with the same layout per replica."""
    ac = benchmark_script("acceptance_check")
    gb200 = load_hardware()["nv_gb200_gpu"]
    rack, _, rack_layout = ac.best_layout("llama-3.1-405b", gb200, "fp4", "trt-llm", 72, 9429, 652)
    board, _, board_layout = ac.best_layout("llama-3.1-405b", gb200, "fp4", "trt-llm", 8, 9429, 652)
    assert rack == pytest.approx(9 * board)
    assert rack_layout.split(" x ")[1] == board_layout.split(" x ")[1]
    assert int(rack_layout.split(" x ")[0]) == 9 * int(board_layout.split(" x ")[0])


def test_summaries_give_the_mean_beside_the_median():
    """A median of errors that cluster in two groups jumps when a row crosses the gap; the mean beside it moves with
    every row. Rows without an error are left out of both."""
    stats = benchmark_script("acceptance_check").error_stats
    assert stats([0.1, -0.3, None, 0.5, 0.12]) == ["21%", "+11%", "44%", "25.5%"]
    assert stats([None]) == ["-", "-", "-", "-"]
