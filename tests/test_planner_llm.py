"""The LLM serving model: memory arithmetic, one iteration by hand, the closed loop against the
event-driven simulator, the fit recovering known parameters, and predict as a user meets it."""
import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from infra_bench.errors import UserError
from infra_bench.planner import fit as F
from infra_bench.planner import llm_model as m
from infra_bench.planner import profiles as pr
from infra_bench.planner.engines import ENGINES
from infra_bench.planner.iteration import PRECISIONS, Efficiency, Layout, iteration, iteration_s, terms
from infra_bench.planner.measurements import Measurement
from infra_bench.planner.queueing import simulate_closed
from infra_bench.planner.shapes import get_shape
from infra_bench.planner.steady import EngineTerms, closed_loop
from .conftest import assert_one_line_error, run_cli

HW = pr.load_hardware()
H100 = HW["nv_h100_sxm"]


def test_kv_cache_and_weights_on_known_configs():
    llama8 = terms(get_shape("llama-3.1-8b"), H100, PRECISIONS["bf16"], Layout())
    assert llama8.kv_seq(1000) == pytest.approx(1000 * 131072)  # 2 x 32 layers x 8 KV heads x 128 x 2 bytes
    assert llama8.weights_device == pytest.approx(8030261248 * 2)
    tp4 = terms(get_shape("llama-3.1-70b"), H100, PRECISIONS["fp8"], Layout(tp=4))
    assert tp4.kv_seq(1000) == pytest.approx(1000 * 327680 / 2 / 4)  # fp8 KV split over 4 of 8 KV heads
    mla = get_shape("deepseek-v3")
    assert mla.kv_bytes(1, 2.0) == 61 * (512 + 64) * 2
    dsv3 = terms(mla, HW["nv_h200_sxm"], PRECISIONS["fp8"], Layout(tp=8))
    assert dsv3.kv_seq(1000) == pytest.approx(1000 * 61 * 576)  # MLA's latent is replicated on every TP rank
    oss = get_shape("gpt-oss-120b")  # half its layers slide over 128 tokens
    assert oss.kv_bytes(10_000, 2.0) - oss.kv_bytes(9_000, 2.0) == pytest.approx(1000 * 36864)
    qwen35 = get_shape("qwen3.5-397b-a17b")  # linear-attention layers keep a fixed state
    assert qwen35.kv_bytes(0, 2.0) == qwen35.linear_state_bytes_bf16 > 0


def test_one_iteration_by_hand():
    """llama-3.1-8b, bf16, one H100, 4 sequences decoding at context 1000 plus a 512-token prompt."""
    t = terms(get_shape("llama-3.1-8b"), H100, PRECISIONS["bf16"], Layout())
    e = Efficiency(mbu=0.8, mfu=0.6, n_half=100.0, attn=0.5, t_iter=1e-3)
    parts = iteration(t, e, 4, 1000.0, 512, 256.0, 1)
    s = get_shape("llama-3.1-8b")
    head = s.vocab * s.hidden
    dense_flops = 2 * (s.dense_params - head) * 516 + 2 * head * 5
    peak, bw = H100.peak_tflops["bf16"] * 1e12, H100.memory_bandwidth_tbs * 1e12
    dense = max(dense_flops / (peak * 0.6 * 516 / 616), (s.dense_params * 2) / (bw * 0.8))
    attention = max(4 * 1000 * 524288 / (peak * 0.5), 4 * 1000 * 131072 / (bw * 0.8)) \
        + 512 * 256 * 524288 / (peak * 0.5)
    assert float(parts["dense_gemm"]) == pytest.approx(dense)
    assert float(parts["attention"]) == pytest.approx(attention)
    assert float(parts["moe_experts"]) == 0 and float(parts["tp_allreduce"]) == 0
    assert float(iteration_s(t, e, 4, 1000.0, 512, 256.0, 1)) == pytest.approx(dense + attention + 1e-3)


def test_moe_touches_more_experts_with_more_tokens_and_ep_adds_all_to_all():
    s = get_shape("qwen3-30b-a3b")
    t = terms(s, HW["nv_h200_sxm"], PRECISIONS["bf16"], Layout())
    e = Efficiency()
    one, many = iteration(t, e, 1, 1000.0, 0, 0.0, 0), iteration(t, e, 256, 1000.0, 0, 0.0, 0)
    assert float(one["moe_experts"]) < float(many["moe_experts"])
    ep = terms(s, HW["nv_h200_sxm"], PRECISIONS["bf16"], Layout(tp=4, ep=4))
    assert float(iteration(ep, e, 8, 1000.0, 0, 0.0, 0)["ep_alltoall"]) > 0


@pytest.mark.parametrize("clients, isl, osl", [(1, 512, 64), (4, 512, 64), (16, 1024, 128), (300, 512, 128)])
def test_closed_loop_agrees_with_the_event_driven_simulator(clients, isl, osl):
    """Clients that start together stay in step (every prompt of a cycle queues together: cluster 1,
    scale 1); a prefill-first engine taking one prompt per prefill iteration; 128 sequences at most."""
    t = terms(get_shape("llama-3.1-8b"), H100, PRECISIONS["bf16"], Layout())
    engine = replace(ENGINES["sglang"], token_budget=isl, max_seqs=128)
    e = Efficiency(cluster=1.0, cluster_scale=1.0, t_request=0.0)
    s = closed_loop(t, e, EngineTerms.of(engine), clients, isl, osl)
    prefill = float(iteration_s(t, e, 0.0, isl + osl / 2, isl, isl / 2, 1.0))
    reqs = simulate_closed(clients, 6, prefill, osl, lambda b: float(iteration_s(t, e, b, isl + osl / 2, 0.0,
                                                                                   isl / 2, 0.0)), 128)
    done = [r for r in reqs if r.done is not None][clients:]  # after the first round
    assert float(s.ttft_s) == pytest.approx(np.mean([r.ttft for r in done]), rel=0.05)
    assert float(s.tpot_s) == pytest.approx(np.mean([r.tpot for r in done]), rel=0.06)


def test_the_fit_recovers_known_efficiencies_from_synthetic_points():
    """Measurements made by the model itself with known factors for one (hardware, engine, precision,
    class): the fit, anchored on the shipped one, finds the factors again (within the pull of its prior
    towards the anchor) and reproduces every point."""
    truth = {"mbu": 0.55, "mfu": 0.35, "t_iter": 4e-3}
    points = [Measurement(model, "nv_h200_sxm", "vllm", "", "fp8", tp, 1, 1, 1, c, isl, osl, None, None, "synthetic")
              for model, tp in (("llama-3.1-8b", 1), ("qwen3-32b", 2), ("llama-3.1-70b", 4))
              for c in (1, 4, 16, 64) for isl, osl in ((512, 128), (2048, 256), (4096, 512))]
    problem, _ = F.Problem.build(points, HW)
    shipped = F.shipped()
    eff, _ = shipped.efficiency(problem.cases)
    made = problem.predict(replace(eff, **{k: np.full(len(points), v) for k, v in truth.items()}))
    points = [replace(p, ttft_s=float(a), tpot_s=float(b)) for p, a, b in zip(points, made.ttft_s, made.tpot_s)]
    problem, _ = F.Problem.build(points, HW)
    fitted = F.fit(problem, anchor=shipped, max_evals=300)
    got, missing = fitted.efficiency(problem.cases)
    assert not any(missing)
    for k, v in truth.items():
        assert float(np.mean(getattr(got, k))) == pytest.approx(v, rel=0.15), k
    again = problem.predict(got)
    assert np.allclose(again.tpot_s, made.tpot_s, rtol=0.05) and np.allclose(again.ttft_s, made.ttft_s, rtol=0.08)


def _predict(*args: str, tmp: Path) -> dict:
    p = run_cli("predict", *args, "--json", cwd=tmp)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_predict_closed_loop_max_throughput_and_intervals(tmp: Path):
    one = _predict("--model", "llama-3.1-70b", "--hardware", "nv_h200_sxm", "--tp", "4", "--precision", "fp8",
                   "--engine", "trt-llm", "--concurrency", "8", tmp=tmp)
    busy = _predict("--model", "llama-3.1-70b", "--hardware", "nv_h200_sxm", "--tp", "4", "--precision", "fp8",
                    "--engine", "trt-llm", "--concurrency", "64", tmp=tmp)
    best = _predict("--model", "llama-3.1-70b", "--hardware", "nv_h200_sxm", "--tp", "4", "--precision", "fp8",
                    "--engine", "trt-llm", "--max-throughput", tmp=tmp)
    assert one["fits"] and one["mode"] == "closed loop" and one["fit"]["tier"] == "fitted"
    assert busy["tpot_s"] > one["tpot_s"] and busy["output_tokens_per_s"] > one["output_tokens_per_s"]
    assert best["mode"] == "max throughput" and best["output_tokens_per_s"] >= busy["output_tokens_per_s"]
    for key in ("ttft_s", "tpot_s", "output_tokens_per_s", "j_per_token"):
        low, high = one["intervals"][key]
        value = one["energy"]["j_per_token"] if key == "j_per_token" else one[key]
        assert low < value < high, key
    assert one["energy"]["energy_source"] == "estimated" and "GenZ" in one["energy"]["basis"]


def test_intervals_widen_for_what_was_never_measured(tmp: Path):
    """Qwen3-32B: fp8 on H100 under vLLM was measured; the 910B2 ran vLLM-Ascend in the data, not
    MindIE; the MI300X never ran at all."""
    fitted = _predict("--model", "qwen3-32b", "--hardware", "nv_h100_sxm", "--precision", "fp8", "--engine",
                      "vllm", "--concurrency", "8", tmp=tmp)
    engine = _predict("--model", "qwen3-32b", "--hardware", "hw_910b2", "--tp", "2", "--engine", "mindie",
                      "--concurrency", "8", tmp=tmp)
    hardware = _predict("--model", "qwen3-32b", "--hardware", "amd_mi300x", "--engine", "vllm", "--concurrency", "8",
                        tmp=tmp)
    width = lambda p: math.log(p["intervals"]["tpot_s"][1] / p["intervals"]["tpot_s"][0])  # noqa: E731
    assert fitted["fit"]["tier"] == "fitted" and not fitted["fit"]["not_measured"]
    assert engine["fit"]["tier"] == "other_engine" and engine["fit"]["not_measured"]
    assert hardware["fit"]["tier"] == "other_hardware" and hardware["fit"]["not_measured"]
    assert width(fitted) < width(engine) <= width(hardware)


def test_an_engine_without_a_fit_is_said_in_the_output(tmp: Path):
    p = run_cli("predict", "--model", "qwen3-32b", "--hardware", "nv_h100_sxm", "--engine", "mindie", cwd=tmp)
    assert p.returncode == 0, p.stderr
    fit_line = next(line for line in p.stdout.splitlines() if line.startswith("fit:"))
    assert "not measured: mindie (engine)" in fit_line and "nv_h100_sxm|mindie (hardware|engine)" in fit_line
    assert "other engine residuals" in fit_line


def test_fp4_where_the_profile_has_it(tmp: Path):
    b200 = _predict("--model", "llama-3.1-70b", "--hardware", "nv_b200", "--precision", "fp4", tmp=tmp)
    fp8 = _predict("--model", "llama-3.1-70b", "--hardware", "nv_b200", "--precision", "fp8", tmp=tmp)
    assert b200["memory"]["weights_gb_per_device"] < fp8["memory"]["weights_gb_per_device"] * 0.6
    assert b200["tpot_s"] < fp8["tpot_s"]
    assert_one_line_error(run_cli("predict", "--model", "llama-3.1-70b", "--hardware", "nv_h100_sxm", "--precision",
                                  "fp4", cwd=tmp), "nv_h100_sxm has no fp4 tensor-core rate")


def test_bad_configurations_are_one_line_errors(tmp: Path):
    assert_one_line_error(run_cli("predict", "--model", "llama-3.1-70b", "--hardware", "nv_h100_sxm", cwd=tmp),
                          "does not fit")
    p = run_cli("predict", "--model", "llama-3.1-70b", "--hardware", "nv_h100_sxm", cwd=tmp)
    assert "--tp 4 fits" in p.stderr  # 141 GB of bf16 weights: TP 2 leaves no KV room under 0.9 of 80 GB
    assert_one_line_error(run_cli("predict", "--model", "llama-3.1-70b", "--hardware", "nv_h100_sxm", "--tp", "16",
                                  cwd=tmp), "exceeds nv_h100_sxm's scale-up domain of 8 devices")
    assert_one_line_error(run_cli("predict", "--model", "llama-3.1-8", "--hardware", "nv_h100_sxm", cwd=tmp),
                          "unknown model 'llama-3.1-8' (did you mean 'llama-3.1-8b'?)")
    assert_one_line_error(run_cli("predict", "--model", "llama-3.1-8b", "--hardware", "h100", cwd=tmp),
                          "unknown hardware profile 'h100'")
    assert_one_line_error(run_cli("predict", "--model", "llama-3.1-8b", "--hardware", "nv_h100_sxm", "--engine",
                                  "vlm", cwd=tmp), "unknown engine 'vlm'")
    assert_one_line_error(run_cli("predict", "--model", "llama-3.1-8b", "--hardware", "nv_h100_sxm", "--tp", "2",
                                  "--count", "3", cwd=tmp), "--count 3 is not a multiple of TP x PP x DP = 2")
    assert_one_line_error(run_cli("predict", "--model", "llama-3.1-8b", "--hardware", "hw_910b2", "--precision",
                                  "fp8", cwd=tmp), "hw_910b2 has no published fp8 peak")
    with pytest.raises(UserError, match="attention heads do not split"):
        m.replica("llama-3.1-8b", H100, "bf16", tp=3)


def test_text_output_names_the_fit_and_the_energy(tmp: Path):
    p = run_cli("predict", "--model", "deepseek-v3", "--hardware", "nv_h200_sxm", "--tp", "8", "--precision", "fp8",
                "--engine", "sglang", "--concurrency", "32", "--count", "16", cwd=tmp)
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "16 x NVIDIA H200" in out and "2 replicas" in out and "J per output token" in out
    assert "(80% intervals)" in out and "mla-moe model" in out and "MoE:" in out
