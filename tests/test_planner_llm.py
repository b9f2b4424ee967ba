"""The LLM serving model: memory arithmetic, one iteration by hand, the closed loop against the
event-driven simulator, the fit recovering known parameters, and predict as a user meets it."""
import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from infra_bench.errors import UserError
from infra_bench.planner import calibration as cal_mod
from infra_bench.planner import fit as F
from infra_bench.planner import llm_model as m
from infra_bench.planner import profiles as pr
from infra_bench.planner.engines import ENGINES, default_engine
from infra_bench.planner.iteration import PRECISIONS, SCALE_OUT_GBS, Efficiency, Layout, iteration, iteration_s, terms
from infra_bench.planner.measurements import Measurement, aic_layout, aic_measurements
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
    e = Efficiency(mbu=0.8, mfu=0.6, n_half=100.0, attn=0.5, t_iter=1e-3, t_layer=1e-5)
    parts = iteration(t, e, 4, 1000.0, 512, 256.0, 1)
    s = get_shape("llama-3.1-8b")
    head = s.vocab * s.hidden
    dense_flops = 2 * (s.dense_params - head) * 516 + 2 * head * 5
    peak, bw = H100.peak_tflops["bf16"] * 1e12, H100.memory_bandwidth_tbs * 1e12
    dense = max(dense_flops / (peak * 0.6 * 516 / 616), (s.dense_params * 2) / (bw * 0.8))
    # the prompt's attention runs at what a kernel reaches on a 512-token sequence (16-bit KV), below the fitted 0.5
    attention = max(4 * 1000 * 524288 / (peak * 0.5), 4 * 1000 * 131072 / (bw * 0.8)) \
        + 512 * 256 * 524288 / (peak * 0.63 * 512 / (512 + 1370))
    assert float(parts["dense_gemm"]) == pytest.approx(dense)
    assert float(parts["attention"]) == pytest.approx(attention)
    assert float(parts["moe_experts"]) == 0 and float(parts["tp_allreduce"]) == 0
    assert float(parts["fixed"]) == pytest.approx(1e-3 + 32 * 1e-5)  # per iteration + per layer
    assert float(iteration_s(t, e, 4, 1000.0, 512, 256.0, 1)) == pytest.approx(dense + attention + 1e-3 + 32e-5)


def test_expert_parallel_ranks_exchange_tokens_only_under_attention_data_parallelism():
    """DeepSeek-V3 in fp8 on eight H200 with its experts over EP 8, 64 sequences decoding per attention rank. Under TP
    attention every rank already holds every token, and the layer's TP all-reduce sums the experts' outputs, so there
    is no all-to-all; with attention DP 8 each rank dispatches its tokens' k copies to the experts' ranks and combines
    them back: per MoE layer 2 x (64 x 8 x 7168 x 2 bytes x 7/8 over the link, plus a latency)."""
    shape, h200 = get_shape("deepseek-v3"), HW["nv_h200_sxm"]
    e = Efficiency(link=0.5, ar_latency=1e-5)
    tp = terms(shape, h200, PRECISIONS["fp8"], Layout(tp=8, ep=8))
    parts = iteration(tp, e, 64, 2000.0, 0, 0.0, 0)
    assert float(parts["ep_alltoall"]) == 0 and float(parts["tp_allreduce"]) > 0
    dp = terms(shape, h200, PRECISIONS["fp8"], Layout(dp=8, ep=8))
    parts = iteration(dp, e, 64, 2000.0, 0, 0.0, 0)
    link = h200.scale_up.bandwidth_gbs * 1e9 / 2
    per_layer = 2 * (64 * 8 * 7168 * 2 * 7 / 8 / (link * 0.5) + 1e-5)
    assert float(parts["ep_alltoall"]) == pytest.approx((61 - 3) * per_layer)
    assert float(parts["tp_allreduce"]) == 0


def test_a_prompt_prefilled_on_one_attention_dp_rank_shares_the_experts_with_the_others_own_tokens():
    """DeepSeek-V3 at DP 8 / EP 8 on eight H200: one rank prefills a 1,024-token prompt while the other seven decode
    16 sequences each. The experts serve 1,024 + 7 x 16 = 1,136 tokens, as in an iteration where every rank carries
    142, not 8 x 1,024 (fewer FLOPs; every expert's weights are read either way); the all-to-all is this rank's own sends, as when every rank carries 1,024; the rank's own
    attention and dense layers are its prompt's."""
    t = terms(get_shape("deepseek-v3"), HW["nv_h200_sxm"], PRECISIONS["fp8"], Layout(dp=8, ep=8))
    e = Efficiency()
    lone = iteration(t, e, 0, 0.0, 1024, 512.0, 1, others=16)
    assert float(lone["moe_experts"]) == pytest.approx(float(iteration(t, e, 0, 0.0, 142, 512.0, 1)["moe_experts"]))
    alike = iteration(t, e, 0, 0.0, 1024, 512.0, 1)
    assert float(lone["moe_experts"]) < float(alike["moe_experts"])
    for k in ("ep_alltoall", "dense_gemm", "attention"):
        assert float(lone[k]) == pytest.approx(float(alike[k])), k


def test_prefill_attention_runs_at_most_at_what_the_kernels_reach():
    """A 32,768-token prompt's attention at a fitted efficiency of 0.88 is priced at the kernels' ceiling for its
    length (16-bit KV: 0.63 x s / (s + 1370); 8-bit KV: 0.71 x s / (s + 1740)); a lower fitted efficiency stays the
    bound; a CPU keeps the fitted one (the ceiling is GPU kernels')."""
    from infra_bench.planner.iteration import PREFILL_ATTENTION

    shape = get_shape("llama-3.1-8b")
    peak = H100.peak_tflops["bf16"] * 1e12
    for kv, (top, half) in ((None, PREFILL_ATTENTION["16-bit"]), (1.0, PREFILL_ATTENTION["8-bit"])):
        t = terms(shape, H100, PRECISIONS["bf16"], Layout(), kv_bytes=kv)
        flops = 32768 * 16384 * t.attn_pf
        got = float(iteration(t, Efficiency(attn=0.88), 0, 0.0, 32768, 16384.0, 1)["attention"])
        assert got == pytest.approx(flops / (peak * top * 32768 / (32768 + half)))
        assert float(iteration(t, Efficiency(attn=0.1), 0, 0.0, 32768, 16384.0, 1)["attention"]) == \
            pytest.approx(flops / (peak * 0.1))
    assert PREFILL_ATTENTION["16-bit"] == (0.63, 1370.0) and PREFILL_ATTENTION["8-bit"] == (0.71, 1740.0)
    cpu = terms(shape, H100.model_copy(update={"kind": "cpu"}), PRECISIONS["bf16"], Layout())  # GPU kernels' ceiling
    assert float(iteration(cpu, Efficiency(attn=0.88), 0, 0.0, 32768, 16384.0, 1)["attention"]) == \
        pytest.approx(32768 * 16384 * cpu.attn_pf / (peak * 0.88))


def test_mla_decode_attention_runs_at_most_at_what_the_kernels_reach():
    """DeepSeek-V3 with attention data-parallelism keeps all 128 heads on each H200, where its absorbed decode
    attention is compute-bound: at a fitted efficiency of 0.88 it is priced at the MLA decode kernels' median (0.51 of
    the 16-bit peak with a 16-bit KV cache, 0.64 with an 8-bit one; workloads/reference/mla_decode_kernels.csv); a
    lower fitted efficiency stays the bound, and a CPU keeps the fitted one."""
    from infra_bench.planner.iteration import DECODE_ATTENTION

    shape, h200 = get_shape("deepseek-v3"), HW["nv_h200_sxm"]
    peak = h200.peak_tflops["bf16"] * 1e12
    compute_bound = Efficiency(attn=0.88, mbu=1e9)  # KV reads at no cost, so the compute term is the one read
    for kv, top in ((2.0, DECODE_ATTENTION["16-bit"]), (1.0, DECODE_ATTENTION["8-bit"])):
        t = terms(shape, h200, PRECISIONS["fp8"], Layout(dp=8), kv_bytes=kv)
        flops = 256 * 8000.0 * t.attn_dec
        assert float(iteration(t, compute_bound, 256, 8000.0, 0, 0.0, 0)["attention"]) == \
            pytest.approx(flops / (peak * top))
        low = replace(compute_bound, attn=0.3)
        assert float(iteration(t, low, 256, 8000.0, 0, 0.0, 0)["attention"]) == pytest.approx(flops / (peak * 0.3))
    assert DECODE_ATTENTION == {"16-bit": 0.51, "8-bit": 0.64}
    cpu = terms(shape, h200.model_copy(update={"kind": "cpu"}), PRECISIONS["fp8"], Layout(dp=8))
    assert float(iteration(cpu, compute_bound, 256, 8000.0, 0, 0.0, 0)["attention"]) == \
        pytest.approx(256 * 8000.0 * cpu.attn_dec / (peak * 0.88))


def test_expert_gemms_run_at_most_at_what_fused_moe_kernels_reach():
    """DeepSeek-V3's experts on a B200, 8,192 tokens through one layer (256 tokens per expert): at a fitted efficiency of
    0.9 they are priced at the fused-MoE kernels' compute-bound median for the precision (fp4 0.32, fp8 0.33, bf16 0.30
    of its peak; workloads/reference/moe_kernels.csv) on the fitted ramp n / (n + n_half); a lower fitted efficiency
    stays the bound; w4a16 (no kernels cut) and a CPU keep the fitted one."""
    from infra_bench.planner.iteration import EXPERT_GEMM

    shape, b200 = get_shape("deepseek-v3"), HW["nv_b200"]
    compute_bound = Efficiency(moe_mfu=0.9, moe_n_half=64.0, mbu=1e9)  # weights read at no cost
    tokens = 8192
    ramp = 256 / (256 + 64.0)
    for precision in ("fp4", "fp8", "bf16"):
        t = terms(shape, b200, PRECISIONS[precision], Layout(tp=8))
        flops = t.routed_flops_tok * tokens / 8
        assert float(iteration(t, compute_bound, 0, 0.0, tokens, 1.0, 1)["moe_experts"]) == \
            pytest.approx(flops / (t.peak * EXPERT_GEMM[precision] * ramp), rel=1e-3)
        low = replace(compute_bound, moe_mfu=0.05)
        assert float(iteration(t, low, 0, 0.0, tokens, 1.0, 1)["moe_experts"]) == \
            pytest.approx(flops / (t.peak * 0.05 * ramp), rel=1e-3)
    assert {k: EXPERT_GEMM[k] for k in ("bf16", "fp8", "fp4")} == {"bf16": 0.30, "fp8": 0.33, "fp4": 0.32}
    for t in (terms(shape, b200, PRECISIONS["int4"], Layout(tp=8)),
              terms(shape, b200.model_copy(update={"kind": "cpu"}), PRECISIONS["fp4"], Layout(tp=8))):
        assert float(iteration(t, compute_bound, 0, 0.0, tokens, 1.0, 1)["moe_experts"]) == \
            pytest.approx(t.routed_flops_tok * tokens / 8 / (t.peak * 0.9 * ramp), rel=1e-3)


def test_a_scheduler_that_polls_every_r_passes_makes_each_request_wait_half_of_them():
    """SGLang with --scheduler-recv-interval r reads new requests once per r forward passes, so a prompt waits
    (r - 1) / 2 decode iterations before its prefill can start: the closed loop's TTFT grows by about that, its TPOT
    does not change, and r = 1 (every engine's default) is the loop as it was."""
    shape, b200 = get_shape("deepseek-v3"), HW["nv_b200"]
    t = terms(shape, b200, PRECISIONS["fp8"], Layout(tp=8, ep=8))
    e = Efficiency()
    sglang = ENGINES["sglang"].on(b200.memory_bytes)
    base = closed_loop(t, e, EngineTerms.of(sglang), 32, 1024, 1024)
    polled = closed_loop(t, e, EngineTerms.of(sglang.with_limits(recv_interval=30)), 32, 1024, 1024)
    step = float(iteration_s(t, e, float(polled.decoding), 1024 + 512, 0.0, 512.0, 0.0))
    assert float(polled.ttft_s) - float(base.ttft_s) == pytest.approx(14.5 * step, rel=0.05)
    assert float(polled.tpot_s) == pytest.approx(float(base.tpot_s), rel=0.02)
    with pytest.raises(UserError, match="receive interval"):
        sglang.with_limits(recv_interval=0)


def test_inferencex_sglang_runs_on_blackwell_carry_their_scripts_polling_interval():
    """InferenceX's B200/B300 SGLang scripts: 30 passes from 16 clients up, else 10; DeepSeek fp8 at TP 4 and Qwen3.5
    fp8 on a B300 always 10; GLM-5 fp8 and other parts SGLang's default, 1. The sample's rows carry it."""
    from infra_bench.planner.measurements import aic_measurements, ix_recv

    assert ix_recv("deepseek-r1", "nv_b200", "sglang", "fp4", 8, 32, "2026-03-25") == 30
    assert ix_recv("deepseek-r1", "nv_b200", "sglang", "fp4", 8, 8, "2026-03-25") == 10
    assert ix_recv("deepseek-r1", "nv_b200", "sglang", "fp8", 4, 64, "2026-03-25") == 10
    assert ix_recv("qwen3.5-397b-a17b", "nv_b300", "sglang", "fp8", 4, 64, "2026-04-17") == 10
    assert ix_recv("glm-5", "nv_b200", "sglang", "fp8", 8, 64, "2026-03-20") == 1
    assert ix_recv("deepseek-r1", "nv_h200_sxm", "sglang", "fp8", 8, 64, "2026-03-25") == 1
    assert ix_recv("deepseek-r1", "nv_b200", "trt-llm", "fp4", 8, 32, "2026-03-25") == 1
    rows = aic_measurements()[0]
    polled = [m for m in rows if m.recv_interval > 1]
    assert polled and all(m.engine == "sglang" and m.hardware in ("nv_b200", "nv_b300") for m in polled)
    assert not any(m.recv_interval > 1 for m in rows if m.engine != "sglang")


def test_inferencex_runs_that_leave_the_kv_cache_at_16_bits_are_priced_so():
    """InferenceX's scripts for DeepSeek and GLM-5 in fp8 under SGLang on the H200, and for MiniMax-M2.5 in fp8 under
    vLLM on the H100 and H200, pass no --kv-cache-dtype, so those runs kept a 16-bit cache where the planner's fp8
    precision assumes an 8-bit one: the rows carry it, and the fit prices their KV at 2 bytes an element."""
    from infra_bench.planner.measurements import ix_kv

    assert ix_kv("deepseek-r1", "nv_h200_sxm", "sglang", "fp8") == 2.0
    assert ix_kv("minimax-m2.5", "nv_h100_sxm", "vllm", "fp8") == 2.0
    assert ix_kv("deepseek-r1", "nv_h200_sxm", "trt-llm", "fp8") is None  # its script sets fp8
    assert ix_kv("deepseek-r1", "nv_b200", "sglang", "fp8") is None
    rows = [m for m in aic_measurements()[0] if m.kv_bytes]
    assert rows and {(m.engine, m.precision) for m in rows} <= {("sglang", "fp8"), ("vllm", "fp8")}
    problem, _ = F.Problem.build(rows[:3], pr.load_hardware())
    for point, kv in zip(problem.points, problem.terms.kv_tok):
        assert kv == pytest.approx(get_shape(point.model).kv_bytes_per_token_bf16)


def test_sglang_takes_larger_prefill_batches_on_the_largest_gpus():
    """SGLang's chunked_prefill_size is 16384 on GPUs over 160 GiB (B200), 8192 below (H200)."""
    assert ENGINES["sglang"].on(HW["nv_b200"].memory_bytes).token_budget == 16384
    assert ENGINES["sglang"].on(HW["nv_h200_sxm"].memory_bytes).token_budget == 8192


def test_a_4bit_moe_keeps_its_other_layers_wider_and_attention_runs_in_16_bit():
    """gpt-oss at w4a16 and DeepSeek at nvfp4 quantise the routed experts only: the layers outside
    them are read at 16 and 8 bits and computed at those peaks; attention runs at the 16-bit peak."""
    b200, oss, ds = HW["nv_b200"], get_shape("gpt-oss-120b"), get_shape("deepseek-v3")
    w4 = terms(oss, H100, PRECISIONS["int4"], Layout())
    head = oss.vocab * oss.hidden
    assert w4.dense_bytes == pytest.approx((oss.dense_params - head) * 2 + head * 2)
    assert w4.expert_bytes == pytest.approx(oss.expert_params * PRECISIONS["int4"].weight_bytes)
    fp4 = terms(ds, b200, PRECISIONS["fp4"], Layout(tp=8))
    assert fp4.peak == b200.peak_tflops["fp4"] * 1e12 and fp4.peak_dense == b200.peak_tflops["fp8"] * 1e12
    assert fp4.peak_attn == b200.peak_tflops["bf16"] * 1e12
    assert fp4.dense_bytes == pytest.approx((ds.dense_params - ds.vocab * ds.hidden) * 1.0 + ds.vocab * ds.hidden * 2)
    dense4 = terms(get_shape("llama-3.1-70b"), b200, PRECISIONS["fp4"], Layout())  # a dense model: all fp4
    assert dense4.peak_dense == dense4.peak == b200.peak_tflops["fp4"] * 1e12
    # the iteration prices them there: 8192 prompt tokens are compute-bound in the dense GEMMs and attention
    e = Efficiency(mfu=0.5, n_half=1.0, attn=0.5)
    parts = iteration(fp4, e, 0, 0.0, 8192, 4096.0, 1)
    head = ds.vocab * ds.hidden
    dense_flops = (2 * (ds.dense_params - head) * 8192 + 2 * head) / 8
    assert float(parts["dense_gemm"]) == pytest.approx(dense_flops / (fp4.peak_dense * 0.5 * 8192 / 8193))
    assert float(parts["attention"]) == pytest.approx(8192 * 4096 * fp4.attn_pf / 8 / (fp4.peak_attn * 0.5))


def test_moe_touches_more_experts_with_more_tokens():
    s = get_shape("qwen3-30b-a3b")
    t = terms(s, HW["nv_h200_sxm"], PRECISIONS["bf16"], Layout())
    e = Efficiency()
    one, many = iteration(t, e, 1, 1000.0, 0, 0.0, 0), iteration(t, e, 256, 1000.0, 0, 0.0, 0)
    assert float(one["moe_experts"]) < float(many["moe_experts"])
    moe_layers = s.layers - s.first_dense_layers
    assert float(one["fixed"]) == pytest.approx(e.t_iter + e.t_layer * s.layers
                                                + e.t_moe_layer * moe_layers * s.experts_per_token / 8)


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


@pytest.mark.parametrize("clients", [4, 16, 100])
def test_a_benchmarks_first_burst_agrees_with_the_simulator(clients):
    """A measured run's first C requests arrive together: with the run as long as the burst
    (bench_requests = C) the model's TTFT is the burst's, which the simulator's first round gives;
    a longer run blends it with the steady state by C / N, and a service (N = 0) has none."""
    isl, osl = 512, 64
    t = terms(get_shape("llama-3.1-8b"), H100, PRECISIONS["bf16"], Layout())
    engine = EngineTerms.of(replace(ENGINES["sglang"], token_budget=isl, max_seqs=128))
    e = Efficiency(cluster=0.01, cluster_scale=0.5, t_request=0.0)
    prefill = float(iteration_s(t, e, 0.0, isl + osl / 2, isl, isl / 2, 1.0))
    reqs = simulate_closed(clients, 1, prefill, osl, lambda b: float(iteration_s(t, e, b, isl + osl / 2, 0.0,
                                                                                   isl / 2, 0.0)), 128)
    burst = float(closed_loop(t, replace(e, bench_requests=float(clients)), engine, clients, isl, osl).ttft_s)
    assert burst == pytest.approx(np.mean([r.ttft for r in reqs]), rel=0.02)
    steady = float(closed_loop(t, e, engine, clients, isl, osl).ttft_s)
    long = float(closed_loop(t, replace(e, bench_requests=10.0 * clients), engine, clients, isl, osl).ttft_s)
    assert long == pytest.approx(0.9 * steady + 0.1 * burst)
    assert steady < long < burst


def test_a_mixed_engine_cannot_prefill_faster_than_its_iterations_carry_prompts():
    """Short outputs after long prompts at many clients: each cycle brings more prompt tokens than the
    decode iterations can carry beside the decoding (one budget's chunk each). The prompts wait, in
    TTFT, and the prompt tokens per second stay within a chunk per mixed iteration; before this was
    charged, the excess prompts were simply lost and the offline maximum was 2x too high."""
    t = terms(get_shape("llama-3.1-8b"), H100, PRECISIONS["fp8"], Layout())
    engine = ENGINES["vllm"].on(H100.memory_bytes)  # 8,192 tokens per iteration on an 80 GB part
    e = Efficiency(t_request=0.0)
    isl, osl = 2048, 16
    s = closed_loop(t, e, EngineTerms.of(engine), 512, isl, osl)
    n_d = float(s.decoding)
    chunk = engine.token_budget - n_d
    t_mix = float(iteration_s(t, e, n_d, isl + osl / 2, chunk, isl / 2, chunk / isl))
    assert float(s.requests_per_s) * isl == pytest.approx(chunk / t_mix, rel=1e-6)
    assert float(s.ttft_s) > 10 * t_mix  # the prompts queue for the iterations that carry them
    light = closed_loop(t, e, EngineTerms.of(engine), 2, isl, osl)  # far from the bound
    assert float(light.requests_per_s) * isl < 0.5 * chunk / t_mix


def test_a_burst_that_fits_one_iteration_prefills_only_its_prompts():
    """With a budget larger than the burst's prompts, the burst is one iteration of those prompts: one
    client alone waits for its own prefill, not for a full budget of tokens."""
    t = terms(get_shape("llama-3.1-8b"), H100, PRECISIONS["bf16"], Layout())
    engine = EngineTerms.of(replace(ENGINES["sglang"], token_budget=8192))
    e = Efficiency(t_request=0.0, bench_requests=1.0)
    for clients in (1, 4):
        burst = float(closed_loop(t, e, engine, clients, 512, 64).ttft_s)
        assert burst == pytest.approx(float(iteration_s(t, e, 0.0, 544.0, clients * 512, 256.0, clients)))


def test_the_fit_recovers_known_efficiencies_from_synthetic_points():
    """Measurements made by the model itself with known factors for one (hardware, engine, precision,
    class): the fit, anchored on the shipped one, finds the factors again (within the pull of its prior
    towards the anchor) and reproduces every point. Each model runs at two TPs, so the weights read per device
    change while the fixed step time does not: with one TP per model the bandwidth and the fixed time traded
    places (mbu 0.49 against 0.55). Only three layer counts tell the per-iteration and per-layer step times
    apart, so it is their sum for each model that is checked."""
    truth = {"mbu": 0.55, "mfu": 0.35, "t_iter": 1.5e-3, "t_layer": 3e-5}
    models = (("llama-3.1-8b", 1), ("llama-3.1-8b", 4), ("qwen3-32b", 2), ("qwen3-32b", 8), ("llama-3.1-70b", 4),
              ("llama-3.1-70b", 8))
    points = [Measurement(model, "nv_h200_sxm", "vllm", "", "fp8", tp, 1, 1, 1, c, isl, osl, None, None, "synthetic")
              for model, tp in models for c in (1, 2, 4, 8, 16, 32, 64)
              for isl, osl in ((512, 128), (1024, 1024), (2048, 256), (4096, 512))]
    problem, _ = F.Problem.build(points, HW)
    shipped = F.shipped()
    eff, _ = shipped.efficiency(problem.cases)
    made = problem.predict(replace(eff, **{k: np.full(len(points), v) for k, v in truth.items()}))
    points = [replace(p, ttft_s=float(a), tpot_s=float(b)) for p, a, b in zip(points, made.ttft_s, made.tpot_s)]
    problem, _ = F.Problem.build(points, HW)
    fitted = F.fit(problem, anchor=shipped, max_evals=300)
    got, missing = fitted.efficiency(problem.cases)
    assert not any(missing)
    for k in ("mbu", "mfu"):
        assert float(np.mean(getattr(got, k))) == pytest.approx(truth[k], rel=0.15), k
    for model, tp in models:
        layers = get_shape(model).layers
        j = [(p.model, p.tp) for p in points].index((model, tp))
        fixed = float(np.asarray(got.t_iter)[j] + np.asarray(got.t_layer)[j] * layers)
        assert fixed == pytest.approx(truth["t_iter"] + truth["t_layer"] * layers, rel=0.2), model
    again = problem.predict(got)
    assert np.allclose(again.tpot_s, made.tpot_s, rtol=0.05) and np.allclose(again.ttft_s, made.ttft_s, rtol=0.08)
    # the models a category measured are recorded, the anchor's and these alike, so these take its child whole
    assert {"llama-3.1-8b", "qwen3-32b", "llama-3.1-70b"} <= set(fitted.models["nv_h200_sxm|vllm|fp8|dense"])


def test_a_model_its_category_never_measured_takes_the_categorys_child_shrunk():
    """The bandwidth and GEMM efficiencies' child per (part, engine, precision, class) is fitted on the models
    measured there. Those models take it whole; another takes it to the power n / (n + SHRINK_MODELS), n the models
    measured (DeepSeek-R1 and -V3, one architecture, count once and speak for each other); the per-request time is
    not shrunk, and a fit that does not record its models (Fit.uniform, hand-made fits) takes the child whole."""
    group = F._level_name(F.GROUP)
    fit = F.Fit.from_dict(json.loads(json.dumps(F.Fit.uniform().to_dict())), "test")
    for p, factor in (("mbu", 1.5), ("mfu", 0.5)):
        fit.values[p][group].update({"nv_h100_sxm|vllm|bf16|dense": factor, "nv_h200_sxm|sglang|fp8|moe": factor})
    whole = {p: np.array(v) for p, v in fit.raw([F.Case("qwen3-32b", "nv_h100_sxm", "vllm", "bf16")])[0].items()}
    fit.models.update({"nv_h100_sxm|vllm|bf16|dense": ["llama-3.1-8b"],
                       "nv_h200_sxm|sglang|fp8|moe": ["deepseek-r1 + deepseek-v3", "minimax-m2.5"]})
    fit = F.Fit.from_dict(json.loads(json.dumps(fit.to_dict())), "test")  # the models go through the fit's JSON
    cases = [F.Case("llama-3.1-8b", "nv_h100_sxm", "vllm", "bf16"), F.Case("qwen3-32b", "nv_h100_sxm", "vllm", "bf16"),
             F.Case("deepseek-v3", "nv_h200_sxm", "sglang", "fp8"), F.Case("kimi-k2.5", "nv_h200_sxm", "sglang", "fp8")]
    raw, _ = fit.raw(cases)
    unit = F.Fit.uniform().raw(cases)[0]
    for p, factor in (("mbu", 1.5), ("mfu", 0.5)):
        child = raw[p] / unit[p]
        k = F.SHRINK_MODELS
        assert child == pytest.approx([factor, factor ** (1 / (1 + k)), factor, factor ** (2 / (2 + k))]), p
        assert whole[p][0] == pytest.approx(unit[p][1] * factor)  # no models recorded: the child whole
    assert raw["t_request"] == pytest.approx(unit["t_request"])
    # predict says so, and where the category's factors come from
    seen = m.predict(m.replica("llama-3.1-8b", H100, "bf16", engine="vllm"), fit, 1)
    unseen = m.predict(m.replica("qwen3-32b", H100, "bf16", engine="vllm", tp=2), fit, 1)
    assert seen.fit["category_models"] is None and not any("was not measured on" in n for n in seen.notes)
    assert unseen.fit["category_models"] == {"models": ["llama-3.1-8b"], "power": pytest.approx(1 / (1 + k))}
    assert any(n.startswith("the model was not measured on nv_h100_sxm under vllm at bf16") and "llama-3.1-8b" in n
               for n in unseen.notes)


def test_a_problems_arrays_are_made_once_and_cannot_be_changed_by_a_caller():
    """A fit reads the measured arrays at every evaluation; they are built once per problem (and once more
    for a subset), and a caller writing into them fails loudly instead of changing the next evaluation."""
    points = [Measurement("llama-3.1-8b", "nv_h200_sxm", "vllm", "", "fp8", 1, 1, 1, 1, c, 1024, 256, 0.1, 0.01,
                          "synthetic") for c in (1, 4, 16)]
    problem, _ = F.Problem.build(points, HW)
    first = problem.arrays()
    assert problem.arrays() is first and list(first[0]) == [1, 4, 16]
    with pytest.raises(ValueError, match="read-only"):
        first[3][0] = 1.0
    assert list(problem.take(np.array([2, 0])).arrays()[0]) == [16, 1]


def test_a_measured_runs_own_length_sets_its_opening_burst():
    """A closed-loop run starts all its clients together, so its mean TTFT holds a burst whose weight is the clients
    over the run's requests. A loadtest point knows its requests (100 by default, a third of them in the burst at 32
    clients); the fit's `bench_requests` (about 2,000, the reference campaigns') stands in only where a point does
    not, so calibrate no longer puts a short run's burst into the part's own factors."""
    points = [Measurement("llama-3.1-8b", "nv_h100_sxm", "vllm", "", "fp8", 1, 1, 1, 1, 32, 1024, 256, 0.1, 0.01,
                          "synthetic", requests=r) for r in (None, 100, 32)]
    problem, _ = F.Problem.build(points, HW)
    shipped = F.shipped()
    ttft = F.predict_problem(shipped, problem)[0].ttft_s
    assert ttft[0] < ttft[1] < ttft[2]
    eff, _ = shipped.efficiency(problem.cases[:1])
    assert ttft[0] == pytest.approx(F.predict_problem(shipped, problem.take(np.array([0])))[0].ttft_s[0])
    alone = problem.take(np.array([0])).predict(replace(eff, bench_requests=np.array([32.0])))
    assert ttft[2] == pytest.approx(alone.ttft_s[0])


def test_the_expert_gemm_efficiency_is_one_per_generation_and_precision():
    """Grouped expert GEMMs reach different shares of each precision's peak on each generation (fp4 and fp8 on
    Blackwell, fp8 on Hopper); parts of one generation share the value, and another engine does not move it."""
    shipped = F.shipped()

    def moe(hw: str, engine: str, prec: str) -> float:
        return shipped.efficiency([F.Case("deepseek-r1", hw, engine, prec)])[0].moe_mfu

    assert moe("nv_b200", "trt-llm", "fp4") == moe("nv_b300", "sglang", "fp4")
    assert moe("nv_h100_sxm", "trt-llm", "fp8") == moe("nv_h200_sxm", "vllm", "fp8")
    values = [moe("nv_b200", "trt-llm", "fp4"), moe("nv_b200", "trt-llm", "fp8"), moe("nv_h200_sxm", "trt-llm", "fp8")]
    assert len({round(v, 3) for v in values}) == 3 and values[0] > values[2] > values[1]


def test_a_generation_measured_on_moe_models_alone_keeps_its_expert_gemms_near_other_generations():
    """AMD's parts were measured on DeepSeek-R1 alone, whose expert GEMMs and other GEMMs grow alike with the tokens.
    With a free expert efficiency per generation the fit put MI300X's experts at 0.67 of the fp8 peak (Hopper's 0.29,
    Blackwell's 0.18) and its other GEMMs low, and a dense model there took the low figure; another reading of the same
    runs' lengths swapped the two. The expert efficiency now has a parent per precision that the generation's factor is
    pulled towards, so the split stays within what the measured generations show."""
    shipped = F.shipped()

    def moe(hw: str, prec: str) -> float:
        return shipped.efficiency([F.Case("deepseek-r1", hw, "sglang", prec)])[0].moe_mfu

    for prec, nvidia in (("fp8", ("nv_h100_sxm", "nv_b200")), ("fp4", ("nv_b200",))):
        theirs = [moe(hw, prec) for hw in nvidia]
        for hw in ("amd_mi300x", "amd_mi355x") if prec == "fp8" else ("amd_mi355x",):
            assert min(theirs) / 1.5 < moe(hw, prec) < 1.5 * max(theirs), (hw, prec, moe(hw, prec), theirs)


def test_amd_parts_are_fitted_and_an_unmeasured_part_takes_its_generations_step_time():
    """InferenceX's runs of DeepSeek-R1 under SGLang make AMD parts fitted there (they were carried from NVIDIA's
    factors, TPOT half the measured one); under vLLM they are measured under another engine. The fixed step time has
    a parent per generation x engine: an MI350X, never measured, takes the MI355X generation's, not another
    vendor's (before, an MI300X held out took NVIDIA's overheads with the MI325X measured)."""
    shipped = F.shipped()
    assert shipped.tier(F.Case("deepseek-r1", "amd_mi300x", "sglang", "fp8")) == "fitted"
    assert shipped.tier(F.Case("llama-3.1-70b", "amd_mi300x", "vllm", "fp8")) == "other_engine"
    t_iter = lambda hw: shipped.efficiency([F.Case("deepseek-r1", hw, "sglang", "fp8")])[0].t_iter
    generation = shipped.values["t_iter"]["family|engine"]
    assert t_iter("amd_mi350x") == pytest.approx(generation["AMD+fp8+fp4|sglang"])
    assert t_iter("amd_mi300x") > 3 * max(t_iter(hw) for hw in ("nv_h100_sxm", "nv_h200_sxm", "nv_b200"))
    # a dense model on an AMD part takes the dense factor from other vendors' parts, and predict says so
    note = "the fit measured amd_mi300x and amd_mi325x with MoE models only"
    dense = m.predict(m.replica("llama-3.1-70b", HW["amd_mi300x"], "fp8"), shipped, 16).notes
    assert any(note in n and "+-50%" in n for n in dense)
    moe = m.predict(m.replica("deepseek-r1", HW["amd_mi300x"], "fp8", tp=8, engine="sglang"), shipped, 16).notes
    assert not any("models only" in n for n in moe)
    assert not any("models only" in n for n in m.predict(m.replica("llama-3.1-70b", HW["nv_b300"], "fp8"), shipped,
                                                           16).notes)  # the B200, its generation, ran dense models


def test_calibrating_one_part_leaves_the_rest_of_its_generation_alone():
    """Six H100 runs at a bandwidth efficiency of 0.45 move H100's, not H200's: the generation's
    factor is shared and held, the part's own factor is the runs' to move."""
    shipped = F.shipped()
    points = [Measurement("llama-3.1-8b", "nv_h100_sxm", "vllm", "", "fp8", 1, 1, 1, 1, c, 1024, 256, None, None,
                          "synthetic") for c in (1, 2, 4, 8, 16, 32)]
    problem, _ = F.Problem.build(points, HW)
    eff, _ = shipped.efficiency(problem.cases)
    made = problem.predict(replace(eff, mbu=np.full(len(points), 0.45)))
    points = [replace(p, ttft_s=float(a), tpot_s=float(b)) for p, a, b in zip(points, made.ttft_s, made.tpot_s)]
    problem, _ = F.Problem.build(points, HW)
    mine = F.fit(problem, anchor=shipped, max_evals=200)
    mbu = lambda f, hw: f.efficiency([F.Case("llama-3.1-8b", hw, "vllm", "fp8")])[0].mbu  # noqa: E731
    assert mbu(mine, "nv_h100_sxm") == pytest.approx(0.45, rel=0.1) and mbu(shipped, "nv_h100_sxm") > 0.55
    assert mbu(mine, "nv_h200_sxm") == pytest.approx(mbu(shipped, "nv_h200_sxm"), rel=0.02)


def _predict(*args: str, tmp: Path) -> dict:
    p = run_cli("predict", *args, "--json", cwd=tmp)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_predict_refuses_requests_longer_than_the_models_context(tmp: Path):
    """Llama 2 has 4,096 positions: 4,000 + 256 tokens was predicted with a note, as if the context allowed it.
    It is refused in one line (exit 2) naming the model, its context, the lengths and the fix; 3,840 + 256 is
    predicted. Where the config gives no context it cannot be checked, and the prediction says so."""
    args = ("predict", "--model", "llama-2-7b", "--hardware", "nv_h100_sxm", "--output-len", "256")
    assert_one_line_error(run_cli(*args, "--input-len", "4000", cwd=tmp),
                          "llama-2-7b's context is 4,096 tokens and --input-len 4000 + --output-len 256 = 4,256 "
                          "exceed it: lower them to 4,096 tokens together, or choose a model with a longer context")
    assert run_cli(*args, "--input-len", "3840", cwd=tmp).returncode == 0
    rep = m.replica("llama-2-7b", HW["nv_h100_sxm"], engine="vllm")
    rep.shape = replace(rep.shape, max_positions=None)
    p = m.predict(rep, F.shipped(), 1, 8000, 256)
    assert p.fits and "llama-2-7b's context is not known (its config gives no max_position_embeddings), so 8,256 " \
                      "tokens per request are not checked against it" in p.notes


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
    assert one["energy"]["energy_source"] == "estimated" and "fitted to measured GPU power" in one["energy"]["basis"]


def test_predict_answers_for_a_service_and_names_what_a_benchmark_would_average(tmp: Path):
    """TTFT is the steady state of the closed loop; a benchmark whose first C requests start
    together averages that burst in, and predict says by how much."""
    p = _predict("--model", "llama-3.1-8b", "--hardware", "nv_h100_sxm", "--concurrency", "128",
                 "--input-len", "2048", "--output-len", "256", tmp=tmp)
    (note,) = [n for n in p["notes"] if "benchmark of 1,000 requests" in n]
    assert float(note.split("averages ")[1].split(" s")[0]) > p["ttft_s"]
    assert p["efficiency"]["bench_requests"] > 0  # the fit's reading of the measured runs


def test_intervals_widen_for_what_was_never_measured(tmp: Path):
    """Qwen3-32B: fp8 on H100 under vLLM was measured; the B300 ran vLLM and SGLang in the data, not
    TensorRT-LLM; the MI350X never ran at all (the MI300X did, under SGLang, since InferenceX's AMD runs)."""
    fitted = _predict("--model", "qwen3-32b", "--hardware", "nv_h100_sxm", "--precision", "fp8", "--engine",
                      "vllm", "--concurrency", "8", tmp=tmp)
    engine = _predict("--model", "qwen3-32b", "--hardware", "nv_b300", "--precision", "fp8", "--engine", "trt-llm",
                      "--concurrency", "8", tmp=tmp)
    hardware = _predict("--model", "qwen3-32b", "--hardware", "amd_mi350x", "--engine", "vllm", "--concurrency", "8",
                        tmp=tmp)
    width = lambda p: math.log(p["intervals"]["tpot_s"][1] / p["intervals"]["tpot_s"][0])  # noqa: E731
    assert fitted["fit"]["tier"] == "fitted" and not fitted["fit"]["not_measured"]
    assert engine["fit"]["tier"] == "other_engine" and engine["fit"]["not_measured"]
    assert hardware["fit"]["tier"] == "other_hardware" and hardware["fit"]["not_measured"]
    assert width(fitted) < width(engine) <= width(hardware)


def test_nim_tables_are_fitted_so_the_l40s_is_a_measured_part(tmp: Path):
    """NVIDIA NIM's tables (since FIT_VERSION 17) hold the only serving runs of an L40S: Llama 3.1 8B in fp8 there
    under TensorRT-LLM is a measured category, and the fit names the tables among its sources."""
    p = _predict("--model", "llama-3.1-8b", "--hardware", "nv_l40s", "--precision", "fp8", "--engine", "trt-llm",
                 "--concurrency", "8", tmp=tmp)
    assert p["fit"]["tier"] == "fitted" and not p["fit"]["not_measured"]
    assert "NVIDIA NIM's benchmark tables" in p["fit"]["source"]


def test_each_engine_gets_its_own_held_out_interval(tmp: Path):
    """Leaving one model out, vLLM's residuals are half as wide as SGLang's: a new model under vLLM gets
    the narrower interval, and the output says whose residuals it came from."""
    args = ("--model", "qwen3-235b-a22b", "--hardware", "nv_h200_sxm", "--precision", "fp8", "--tp", "4",
            "--concurrency", "16")
    vllm, sglang = (_predict(*args, "--engine", engine, tmp=tmp) for engine in ("vllm", "sglang"))

    def width(p: dict, key: str) -> float:
        return math.log(p["intervals"][key][1] / p["intervals"][key][0])
    assert vllm["fit"]["tier"] == sglang["fit"]["tier"] == "fitted"
    assert (vllm["fit"]["interval_engine"], sglang["fit"]["interval_engine"]) == ("vllm", "sglang")
    for key in ("ttft_s", "tpot_s", "output_tokens_per_s"):
        assert width(vllm, key) < 0.8 * width(sglang, key), key
    text = run_cli("predict", *args, "--engine", "vllm", cwd=tmp).stdout
    assert "residuals of vllm points" in text


def test_an_engine_without_a_fit_is_said_in_the_output(tmp: Path):
    p = run_cli("predict", "--model", "qwen3-32b", "--hardware", "nv_h100_sxm", "--engine", "generic", cwd=tmp)
    assert p.returncode == 0, p.stderr
    fit_line = next(line for line in p.stdout.splitlines() if line.startswith("fit:"))
    assert "not measured: " in fit_line and "generic (engine)" in fit_line
    assert "nv_h100_sxm|generic (hardware|engine)" in fit_line and "NVIDIA+fp8|generic (generation|engine)" in fit_line
    assert "other engine residuals" in fit_line
    assert p.stdout.count("nv_h100_sxm|generic (hardware|engine)") == 1  # the fit line's list, not again in a note


def test_an_engine_is_refused_on_parts_it_does_not_run_on(tmp: Path):
    """TensorRT-LLM runs on NVIDIA parts only, MindIE and vLLM-Ascend on Ascend only, and vLLM runs on Ascend as
    vLLM-Ascend: predict and plan used to price such a pair with another stack's efficiencies (TensorRT-LLM
    on a 910B2 came out 3x faster than vLLM-Ascend there)."""
    for hw, engine, fragment in (("hw_910b2", "trt-llm", "use --engine vllm-ascend"),
                                 ("amd_mi300x", "trt-llm", "runs on NVIDIA parts only"),
                                 ("nv_h100_sxm", "mindie", "runs on Huawei parts only"),
                                 ("nv_h100_sxm", "vllm-ascend", "use --engine vllm (or auto)"),
                                 ("hw_910b2", "vllm", "runs on Huawei parts as vllm-ascend")):
        assert_one_line_error(run_cli("predict", "--model", "llama-3.1-8b", "--hardware", hw, "--engine", engine,
                                      cwd=tmp), fragment)
    assert run_cli("predict", "--model", "llama-3.1-8b", "--hardware", "hw_910b2", "--engine", "mindie",
                   cwd=tmp).returncode == 0
    # a profile of your own may spell the vendor out: auto's engine must then be one that runs there
    for vendor in ("Huawei", "Huawei Technologies"):
        assert default_engine(vendor) == "vllm-ascend"
        assert ENGINES["vllm-ascend"].refusal("my_910", vendor) is None
        assert ENGINES["vllm"].refusal("my_910", vendor) == f"vllm runs on {vendor} parts as vllm-ascend"
    # fewer clients than attention-DP ranks: each rank would be given a client the user did not ask for
    assert_one_line_error(run_cli("predict", "--model", "llama-3.1-8b", "--hardware", "nv_h100_sxm", "--dp", "4",
                                  "--concurrency", "2", cwd=tmp), "use --concurrency 4 or more")
    demand = tmp / "demand.yaml"
    demand.write_text("name: d\nservices:\n  - name: chat\n    model: llama-3.1-8b\n    engine: {name: trt-llm}\n"
                      "    traffic: {requests_per_s: 1, input_len: {mean: 512}, output_len: {mean: 128}}\n"
                      "    slo: {ttft_p95_s: 3, tpot_p99_s: 0.1}\n")
    plan = json.loads(run_cli("plan", str(demand), "--hardware", "hw_910b2,nv_h100_sxm", "--json", cwd=tmp).stdout)
    by_hw = {c["hardware"]: c for c in plan["candidates"]}
    assert by_hw["nv_h100_sxm"]["feasible"] and not by_hw["hw_910b2"]["feasible"]
    assert "runs on NVIDIA parts only" in json.dumps(by_hw["hw_910b2"])
    # plan has no --engine: the fix it names is the demand's (it said "use --engine vllm-ascend")
    assert "--engine" not in json.dumps(by_hw["hw_910b2"]) and "engine: {name: auto}" in json.dumps(by_hw["hw_910b2"])


def test_fp4_where_the_profile_has_it(tmp: Path):
    b200 = _predict("--model", "llama-3.1-70b", "--hardware", "nv_b200", "--precision", "fp4", tmp=tmp)
    fp8 = _predict("--model", "llama-3.1-70b", "--hardware", "nv_b200", "--precision", "fp8", tmp=tmp)
    assert b200["memory"]["weights_gb_per_device"] < fp8["memory"]["weights_gb_per_device"] * 0.6
    assert b200["tpot_s"] < fp8["tpot_s"]
    assert_one_line_error(run_cli("predict", "--model", "llama-3.1-70b", "--hardware", "nv_h100_sxm", "--precision",
                                  "fp4", cwd=tmp), "nv_h100_sxm has no fp4 tensor-core rate")


def test_tp_beyond_the_scale_up_domain_goes_over_the_scale_out_network(tmp: Path):
    s = get_shape("llama-3.1-70b")
    inside, across = (terms(s, H100, PRECISIONS["bf16"], Layout(tp=tp)) for tp in (8, 16))
    assert inside.link == H100.scale_up.bandwidth_gbs * 1e9 / 2 and across.link == SCALE_OUT_GBS * 1e9
    e = Efficiency()
    message = 64 * s.hidden * 2  # 64 decode tokens, 16-bit activations
    ring = 2 * s.layers * (2 * 15 / 16 * message / (SCALE_OUT_GBS * 1e9 * e.link) + e.ar_latency)
    assert float(iteration(across, e, 64, 1000.0, 0, 0.0, 0)["tp_allreduce"]) == pytest.approx(ring)
    p = run_cli("predict", "--model", "llama-3.1-70b", "--hardware", "nv_h100_sxm", "--tp", "16", cwd=tmp)
    assert p.returncode == 0, p.stderr
    assert "spans 2 nodes" in p.stdout and "scale-out network" in p.stdout


@pytest.mark.parametrize("row_id, recorded, read", [
    ("x_b200_sxm_trtllm_fp4_agg_1024x1024_c16_tp8_ep8_9", (64, 1, 8, 8), (8, 1, 8)),
    ("x_b200_sxm_trtllm_fp8_agg_1024x1024_c16_tp8_ep8_9", (1, 64, 8, 8), (1, 8, 8)),
    ("x_h100_sxm_vllm_fp8_agg_8192x1024_c32_tp4_ep4_1", (4, 4, 1, 16), (1, 4, 4)),
    ("x_b200_sxm_trtllm_fp4_agg_1024x1024_c16_tp8_ep8_9", (8, 1, 1, 8), (8, 1, 8)),   # recorded as run
    ("x_b200_sxm_trtllm_agg_4000x1000_c96_tp8_epnone_4", (8, 1, 2, 4), (8, 1, 4)),    # moe TP 2 x EP 4
    ("qwen3_5_b200_sglang_fp8_agg_8192x1024_c64_cfg615", (16, 1, 4, 4), (4, 1, 4)),  # no EP in the id
    ("minimaxm2_5_b200_vllm_fp8_agg_1024x1024_c64_cfg691", (4, 4, 1, 16), (1, 4, 4)),
    ("x_b200_sxm_trtllm_fp4_agg_1024x1024_c16_cfg9", (4, 1, 2, 2), (4, 1, 2)),        # fits one node as recorded
])
def test_sample_layouts_multiplied_by_their_ep_are_read_at_the_size_that_ran(row_id, recorded, read):
    tp, dp, ep, note = aic_layout(row_id, *recorded)
    assert (tp, dp, ep) == read
    assert bool(note) == (read[:2] != recorded[:2])


def test_sample_concurrency_is_the_recorded_clients_per_dp_rank():
    points, skipped = aic_measurements()
    points = {m.source.split()[-1]: m for m in points}
    # 256 clients over the 4 attention-DP ranks the row ran with (recorded as TP 4 x DP 4, EP 16)
    m = points["minimaxm2_5_b200_vllm_fp8_agg_1024x1024_c256_cfg691"]
    assert (m.tp, m.dp, m.ep, m.concurrency) == (1, 4, 4, 64)
    # an InferenceX row (its id ends with the dump's config id, or begins with the dump's date) ran lengths drawn from
    # 0.8-1 x the nominal ones; NVIDIA's own campaigns ran them as named
    assert (m.input_len, m.output_len) == pytest.approx((0.9 * 1024, 0.9 * 1024))
    nvidia = points["qwen_qwen3_32b_qwen_qwen3_32b_gb200_trtllm_agg_2000x500_c1_tp2_epnone_2"]
    assert (nvidia.input_len, nvidia.output_len) == (2000, 500)
    dump = next(m for k, m in points.items() if k.startswith("2026_04_06_"))
    assert dump.input_len == pytest.approx(0.9 * int(dump.source.split("_agg_")[1].split("x")[0]))
    # 224 clients drove this TP 4 replica, but its batch_size says 56: the load cannot be read
    assert any("c224_tp4_epnone_1: batch_size x attention_dp_size (56) disagrees with its 224 clients" in s
               for s in skipped)
    assert any("qwen3_32b_qwen3_32b_h100_sxm_trtllm_agg_4000x1000_c_tp2_epnone_1" in s for s in skipped)
    # TP 1 with moe TP 2: how many devices ran cannot be read (235 GB of fp8 weights on one H200)
    assert any("h200_sxm_vllm_agg_1000x100_c8_tp1_epnone_2: TP x DP does not equal moe TP x moe EP" in s
               for s in skipped)


def test_a_layout_whose_memory_cannot_hold_the_measured_load_is_left_out():
    gb200 = [m for m in aic_measurements()[0] if m.hardware == "nv_gb200_gpu" and m.model == "deepseek-r1"]
    problem, skipped = F.Problem.build(gb200, HW)
    why = next(s for s in skipped if "c2150_tp32_ep1_121" in s)
    assert "1882 sequences in flight, but its layout's memory holds 568" in why
    assert all("c2150_tp32" not in m.source for m in problem.points)


def test_the_engines_memory_share_can_be_set(tmp: Path):
    """The sample measured DeepSeek-R1 in fp8 on four B200 under SGLang; at SGLang's default share (0.88 of the
    device's memory) its weights leave no KV room, so the refusal names the setting, and --memory-fraction (a
    demand's engine: memory_fraction) lets it fit. A share of the memory left after the weights (TensorRT-LLM)
    scales the KV room by the share; a value outside (0, 1] is a one-line error."""
    args = ("predict", "--model", "deepseek-r1", "--hardware", "nv_b200", "--engine", "sglang", "--precision", "fp8",
            "--tp", "4")
    assert_one_line_error(run_cli(*args, cwd=tmp), "(0.88 of the device's memory; --memory-fraction, or "
                                                   "memory_fraction under a demand's engine, sets it); --tp 8 fits")
    got = json.loads(run_cli(*args, "--memory-fraction", "0.95", "--json", cwd=tmp).stdout)
    assert got["engine_limits"]["memory_fraction"] == 0.95 and got["memory"]["max_sequences"] > 100
    assert_one_line_error(run_cli(*args, "--memory-fraction", "1.5", cwd=tmp),
                          "--memory-fraction 1.5 is not a share of memory; give a number above 0 and at most 1")
    trt = [m.replica("llama-3.1-70b", HW["nv_b200"], "fp8", engine="trt-llm", memory_fraction=f).memory(1, 1024, 256)
           for f in (0.45, 0.9)]
    assert trt[0]["kv_room_gb_per_device"] == pytest.approx(trt[1]["kv_room_gb_per_device"] / 2)
    demand = tmp / "demand.yaml"
    demand.write_text("name: d\nservices:\n  - name: chat\n    model: deepseek-r1\n    precision: [fp8]\n"
                      "    engine: {name: sglang, memory_fraction: 1.2}\n    traffic: {requests_per_s: 1, input_len: "
                      "{mean: 1024}, output_len: {mean: 256}}\n    slo: {ttft_p95_s: 5, tpot_p99_s: 0.1}\n")
    assert_one_line_error(run_cli("plan", str(demand), "--hardware", "nv_b200", cwd=tmp), "memory_fraction")


def test_a_prediction_beyond_the_fits_data_says_it_is_an_upper_bound(tmp: Path):
    """Few of the sample's points ran more than 256 clients, and there held-out throughput came out optimistic:
    the offline maximum of Llama-3.1-8B on an H100 (857 clients) says so with the bias the shipped fit stores for
    its tier, 32 clients do not; so does a benchmark run of 1,000 prompts sent at once (857 running), 100 do not; a fit
    without held-out residuals says it without figures; and `plan` names a capacity that runs that many sequences."""
    rep = m.replica("llama-3.1-8b", H100, "fp8", engine="vllm")
    fit = F.shipped()
    busy = m.predict(rep, fit, max_throughput=True)
    assert busy.concurrency > m.FEW_POINTS_ABOVE
    stored = fit.beyond("fitted")
    assert stored["points"] > 0 and stored["clients"] == m.FEW_POINTS_ABOVE
    note = [n for n in busy.notes if "thin out beyond 256" in n]
    assert len(note) == 1 and "read it as an upper bound" in note[0]
    assert stored["bias"] > 0 and f"{stored['bias']:.0%} above the measurement for a model the fit never saw" in note[0]
    assert f"({stored['points']} of" in note[0]
    assert not any("thin out" in n for n in m.predict(rep, fit, 32).notes)
    burst = [n for n in m.predict_run(rep, fit, 1000).notes if "thin out" in n]  # every prompt at once: 857 running
    assert len(burst) == 1 and burst[0].startswith("857 sequences running at most per replica")
    assert not any("thin out" in n for n in m.predict_run(rep, fit, 100).notes)
    bare = [n for n in m.predict(rep, F.Fit.uniform(mbu=0.7), max_throughput=True).notes if "thin out" in n]
    assert len(bare) == 1 and "%" not in bare[0] and "upper bound" in bare[0]
    demand = tmp / "demand.yaml"
    demand.write_text("name: d\nservices:\n  - name: chat\n    model: llama-3.1-8b\n    precision: [fp8]\n"
                      "    traffic: {requests_per_s: 50, input_len: {mean: 512}, output_len: {mean: 256}}\n"
                      "    slo: {ttft_p95_s: 20, tpot_p99_s: 0.2}\n")
    got = json.loads(run_cli("plan", str(demand), "--hardware", "nv_h100_sxm", "--json", cwd=tmp).stdout)
    batch = got["candidates"][0]["options"][0]["batch"]
    assert batch > m.FEW_POINTS_ABOVE
    assert any(f"nv_h100_sxm (chat: {batch:,.0f} running)" in n and "upper bound" in n for n in got["notes"])
    demand.write_text(demand.read_text().replace("tpot_p99_s: 0.2", "tpot_p99_s: 0.012"))
    got = json.loads(run_cli("plan", str(demand), "--hardware", "nv_h100_sxm", "--json", cwd=tmp).stdout)
    assert got["candidates"][0]["options"][0]["batch"] <= m.FEW_POINTS_ABOVE
    assert not any("thin out" in n for n in got["notes"])


def test_a_low_precision_whose_ttft_comes_out_above_bf16_says_so():
    """The fit's GEMM efficiency has a factor per part x precision (their measuring campaigns), so a low precision can
    come out slower than bf16; predict then names the bf16 figure. No catalog case of the shipped fit does since
    FIT_VERSION 14 (the per-request time no longer varies by precision), so a copy of it slows the B200's fp8 GEMMs
    five-fold, as a campaign could. Where fp8 is the faster, and for 4-bit weights into 16-bit GEMMs, it says nothing."""
    shipped = F.shipped()
    values = json.loads(json.dumps(shipped.values))
    values["mfu"]["hw|precision"]["nv_b200|fp8"] *= 0.2
    fit = F.Fit(values, shipped.residuals, shipped.meta, shipped.counts)
    b200 = m.replica("llama-3.1-8b", HW["nv_b200"], "fp8", engine="vllm")
    bf16 = m.predict(m.replica("llama-3.1-8b", HW["nv_b200"], "bf16", engine="vllm"), fit, 1)
    got = m.predict(b200, fit, 1)
    assert got.ttft_s > 1.05 * bf16.ttft_s
    note = [n for n in got.notes if "the same configuration in bf16 comes out with a shorter TTFT" in n]
    assert len(note) == 1 and f"({bf16.ttft_s * 1e3:.1f} ms against {got.ttft_s * 1e3:.1f})" in note[0]
    assert not any("shorter TTFT" in n for n in m.predict(b200, shipped, 1).notes)
    h100 = m.predict(m.replica("llama-3.1-8b", H100, "fp8", engine="vllm"), fit, 1)
    assert not any("shorter TTFT" in n for n in h100.notes)
    assert not any("shorter TTFT" in n for n in m.predict(m.replica("gpt-oss-120b", H100, "int4"), fit, 1).notes)


def test_bad_configurations_are_one_line_errors(tmp: Path):
    assert_one_line_error(run_cli("predict", "--model", "llama-3.1-70b", "--hardware", "nv_h100_sxm", cwd=tmp),
                          "does not fit")
    p = run_cli("predict", "--model", "llama-3.1-70b", "--hardware", "nv_h100_sxm", cwd=tmp)
    assert "--tp 2 fits" in p.stderr  # 141 GB of bf16 weights: TP 2 leaves 3.3 GB per device under 0.9 of 80 GiB
    assert_one_line_error(run_cli("predict", "--model", "llama-3.1-8", "--hardware", "nv_h100_sxm", cwd=tmp),
                          "unknown model 'llama-3.1-8' (did you mean 'llama-3.1-8b'?)")
    # a name that begins several: the full-size model is named, not only the shortest (a test model)
    p = run_cli("predict", "--model", "sdxl", "--hardware", "nv_h100_sxm", cwd=tmp)
    assert_one_line_error(p, "unknown model 'sdxl' (did you mean 'sdxl-base-1.0' or 'sdxl-tiny'?)")
    assert "the planner catalog holds llm: " in p.stderr and "llama-3.1-405b" in p.stderr  # --help shows examples only
    assert_one_line_error(run_cli("predict", "--model", "llama-3.1-8b", "--hardware", "h100", cwd=tmp),
                          "unknown hardware profile 'h100' (did you mean 'nv_h100_nvl' or 'nv_h100_pcie' or "
                          "'nv_h100_sxm'?)")  # part of their ids; by spelling alone it was a Hygon part, hg_z100
    assert_one_line_error(run_cli("predict", "--model", "llama-3.1-8b", "--hardware", "nv_h100_sxm", "--engine",
                                  "vlm", cwd=tmp), "unknown engine 'vlm'")
    assert_one_line_error(run_cli("predict", "--model", "llama-3.1-8b", "--hardware", "nv_h100_sxm", "--tp", "2",
                                  "--count", "3", cwd=tmp), "--count 3 is not a multiple of TP x PP x DP = 2")
    assert_one_line_error(run_cli("predict", "--model", "llama-3.1-8b", "--hardware", "hw_910b2", "--precision",
                                  "fp8", cwd=tmp), "hw_910b2 has no published fp8 peak")
    with pytest.raises(UserError, match="attention heads do not split"):
        m.replica("llama-3.1-8b", H100, "bf16", tp=3)


def test_a_model_published_narrower_than_asked_says_what_its_own_checkpoint_needs():
    """gpt-oss-120b is published with MXFP4 experts and runs on one H100; in bf16 it needs four, and the refusal of
    one bf16 device said only "--tp 4 fits", a purchase four times too large. The refusal names the published
    precision's fit, a prediction at a wider precision than published says it prices a converted copy, and a
    16-bit model or the published precision itself carries neither."""
    vllm = m.replica("llama-3.1-8b", H100).engine  # vLLM's limits on an 80 GB part
    assert m.what_fits(get_shape("gpt-oss-120b"), H100, "bf16", vllm, 1024, 256) == (
        "--tp 4 fits; --precision int4 fits on one device: gpt-oss-120b is published as MXFP4 MoE expert weights + "
        "bfloat16 rest")
    h200 = HW["nv_h200_sxm"]
    # where the published precision is the next one tried anyway, the hint names it once
    assert m.what_fits(get_shape("deepseek-r1"), h200, "bf16", m.replica("llama-3.1-8b", h200).engine, 1024, 256) == (
        "no TP within one 8-device node fits in bf16; --precision fp8 --tp 8 fits (deepseek-r1 is published as "
        "float8_e4m3)")
    assert m.what_fits(get_shape("llama-3.1-70b"), H100, "bf16", vllm, 1024, 256) == "--tp 2 fits"
    wide = m.predict(m.replica("gpt-oss-120b", H100, "bf16", tp=4), F.shipped(), 16)
    said = [n for n in wide.notes if "is published as" in n]
    assert said == [f"gpt-oss-120b is published as MXFP4 MoE expert weights + bfloat16 rest, which --precision int4 "
                    f"prices; this prices a copy converted to bf16, {wide.memory['weights_gb_per_device']:.1f} GB of "
                    f"weights per device"]
    for model, precision in (("gpt-oss-120b", "int4"), ("llama-3.1-8b", "bf16"), ("deepseek-r1", "fp4")):
        rep = m.replica(model, HW["nv_b200"], precision, tp=8 if model == "deepseek-r1" else 1)
        got = m.predict(rep, F.shipped(), 16)
        assert got.fits and not any("is published as" in n for n in got.notes), (model, got.notes)


def test_predict_without_a_precision_prices_the_checkpoint_as_published(tmp: Path):
    """DeepSeek-R1 is published in fp8, and vLLM loads it so: predict without --precision prices fp8 on eight H200
    (in bf16 it does not fit there) and says why; a part with no fp8 peak prices a 16-bit copy and says that; a
    16-bit model stays bf16 with no such note."""
    def run(*args: str) -> dict:
        p = run_cli("predict", *args, "--concurrency", "16", "--json", cwd=tmp)
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout)

    got = run("--model", "deepseek-r1", "--hardware", "nv_h200_sxm", "--tp", "8")
    assert got["precision"] == "fp8"
    assert "fp8: deepseek-r1 as published (float8_e4m3), which an engine loads unless told otherwise; --precision " \
           "bf16 prices a 16-bit copy" in got["notes"]
    a100 = run("--model", "minimax-m2.5", "--hardware", "nv_a100_80g_sxm", "--tp", "8")
    assert a100["precision"] == "bf16"
    assert "bf16: minimax-m2.5 is published as float8_e4m3fn weights, for which nv_a100_80g_sxm has no published " \
           "peak, so a 16-bit copy is priced" in a100["notes"]
    dense = run("--model", "llama-3.1-8b", "--hardware", "nv_h200_sxm")
    assert dense["precision"] == "bf16" and not any("published" in n for n in dense["notes"])
    # a refusal, one line, says why bf16 was priced where the part has no peak for the published precision
    p = run_cli("predict", "--model", "deepseek-r1", "--hardware", "hw_910c", "--tp", "8", cwd=tmp)
    assert_one_line_error(p, "--precision int8 --tp 8 fits (priced in bf16: deepseek-r1 is published as float8_e4m3, "
                             "for which hw_910c has no published peak)")


def test_text_output_names_the_fit_and_the_energy(tmp: Path):
    p = run_cli("predict", "--model", "deepseek-v3", "--hardware", "nv_h200_sxm", "--tp", "8", "--precision", "fp8",
                "--engine", "sglang", "--concurrency", "32", "--count", "16", cwd=tmp)
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "16 x NVIDIA H200" in out and "2 replicas" in out and "J per output token" in out
    assert "(80% intervals)" in out and "moe model" in out and "MoE:" in out


def test_parts_of_the_same_peaks_with_different_fitted_efficiencies_are_named(tmp: Path):
    """H100 SXM and H200 SXM are one die, and B200 and B300 have the same fp8 and 16-bit peaks: a fit that
    gives such parts different GEMM efficiencies (campaigns, not silicon) is said in predict's note and JSON
    and in plan's notes; equal ones are not, nor parts whose peaks differ at the precision asked."""
    assert set(F.peak_twins("nv_h200_sxm", ("bf16", "fp8"))) >= {"nv_h100_sxm", "nv_h800_sxm"}
    assert F.peak_twins("nv_b200", ("bf16", "fp8")) == ["nv_b300"]
    assert F.peak_twins("nv_b200", ("bf16", "fp4", "fp8")) == []  # B300's fp4 peak is higher
    assert F.peak_twins("hg_z100", ("bf16",)) == []  # no known peak
    assert F.case_computes(F.Case("gpt-oss-120b", "nv_b200", "vllm", "fp4")) == ("bf16", "fp4", "fp8")
    b300 = F.Case("llama-3.1-70b", "nv_b300", "trt-llm", "fp8")
    assert [d["hardware"] for d in F.Fit.uniform().same_peaks(b300)] == []
    lifted = F.Fit.from_dict(json.loads(json.dumps(F.Fit.uniform().to_dict())), "test")
    lifted.values["mfu"]["hw|precision"]["nv_b200|fp8"] = 1.5
    assert [d["hardware"] for d in lifted.same_peaks(b300)] == ["nv_b200"]
    assert lifted.same_peaks(replace(b300, hardware="nv_b200", precision="fp4")) == []
    case = F.Case("llama-3.1-70b", "nv_h200_sxm", "trt-llm", "fp8")
    even = F.Fit.uniform()
    assert even.same_peaks(case) == []
    uneven = F.Fit.from_dict(json.loads(json.dumps(even.to_dict())), "test")
    uneven.values["mfu"]["hw|precision"]["nv_h200_sxm|fp8"] = 1.5
    gaps = {d["hardware"]: d for d in uneven.same_peaks(case)}
    assert set(gaps) == {"nv_h100_sxm", "nv_h800_sxm"}
    assert gaps["nv_h100_sxm"]["gemm_ratio"] > F.SAME_PEAKS_SPREAD
    assert gaps["nv_h100_sxm"]["bandwidth_efficiency_ratio"] == pytest.approx(1.0)
    assert [d["hardware"] for d in uneven.same_peaks(replace(case, hardware="nv_h100_sxm"))] == ["nv_h200_sxm"]
    for fit, named in ((even, False), (uneven, True)):
        cal = tmp / f"cal_{named}.json"
        cal.write_text(json.dumps({"kind": cal_mod.KIND, "version": cal_mod.VERSION, "llm": fit.to_dict()}))
        out = run_cli("predict", "--model", "llama-3.1-70b", "--hardware", "nv_h200_sxm", "--precision", "fp8",
                      "--engine", "trt-llm", "--tp", "2", "--calibration", str(cal), "--json", cwd=tmp)
        got = json.loads(out.stdout)
        assert [d["hardware"] for d in got["fit"]["same_peaks"]] == (["nv_h100_sxm", "nv_h800_sxm"] if named else [])
        assert any("the same spec peaks at bf16/fp8" in n for n in got["notes"]) == named
        demand = tmp / "demand.yaml"
        demand.write_text("name: d\nservices:\n  - name: chat\n    model: llama-3.1-8b\n    precision: [fp8]\n"
                          "    engine: {name: trt-llm}\n    traffic: {requests_per_s: 2, input_len: {mean: 512}, "
                          "output_len: {mean: 128}}\n    slo: {ttft_p95_s: 3, tpot_p99_s: 0.1}\n")
        plan = run_cli("plan", str(demand), "--hardware", "nv_h100_sxm,nv_h200_sxm", "--calibration", str(cal), cwd=tmp)
        assert ("nv_h100_sxm and nv_h200_sxm have the same spec peaks" in plan.stdout) == named


def test_predict_count_gives_the_replicas_totals_in_json_as_in_text(tmp: Path):
    """--count N: the JSON says how many replicas and carries their totals, as the text's first and
    throughput lines do (it gave one replica's figures only)."""
    args = ("predict", "--model", "llama-3.1-8b", "--hardware", "nv_h100_sxm", "--count", "4", "--concurrency", "8")
    got = json.loads(run_cli(*args, "--json", cwd=tmp).stdout)
    text = run_cli(*args, cwd=tmp).stdout
    assert got["replicas"] == 4 and got["devices"] == 1 and got["total"]["devices"] == 4
    assert got["total"]["clients"] == 32
    assert got["total"]["output_tokens_per_s"] == pytest.approx(4 * got["output_tokens_per_s"])
    assert got["total"]["output_tokens_per_s_interval"] == pytest.approx([4 * x for x in got["intervals"]["output_tokens_per_s"]])
    assert f"output tokens/s {got['total']['output_tokens_per_s']:.0f} " in text and "on 4 x " in text


def test_what_to_do_instead_names_only_what_the_part_runs(tmp: Path):
    """The fix an error suggests works on that part: no fp8 for a 910B2 (its profile has no fp8 peak), and a
    model too big in bf16 is pointed at the precision and TP that do hold it."""
    fp4 = run_cli("predict", "--model", "llama-3.1-8b", "--hardware", "hw_910b2", "--precision", "fp4", cwd=tmp)
    assert_one_line_error(fp4, "use --precision int4")
    assert "fp8" not in fp4.stderr
    assert_one_line_error(run_cli("predict", "--model", "deepseek-v3", "--hardware", "hw_910b2", "--precision", "bf16",
                                  cwd=tmp), "--precision int4 --tp 8 fits")
    assert run_cli("predict", "--model", "deepseek-v3", "--hardware", "hw_910b2", "--precision", "int4", "--tp", "8",
                   cwd=tmp).returncode == 0
    assert_one_line_error(run_cli("predict", "--model", "llama-3.1-8b", "--hardware", "hw_910b2", "--kv-cache", "fp8",
                                  cwd=tmp), "use --kv-cache bf16")


def test_predict_help_names_every_kind_and_errors_name_the_alias_typed(tmp: Path):
    """predict serves embeddings and video too, but its help named LLMs, diffusion and TTS only, and said
    --input-len and --batch were for the others; `--batch 8` on a VITS voice was refused as --concurrency."""
    text = " ".join(run_cli("predict", "--help", cwd=tmp).stdout.split())
    assert all(s in text for s in ("bge-m3", "wan2.1-t2v-1.3b", "an embedding request's latency",
                                   "embedding: tokens per sequence", "embedding: sequences per request"))
    assert_one_line_error(run_cli("predict", "--model", "vits-mms", "--hardware", "nv_l4", "--batch", "8", cwd=tmp),
                          "--concurrency/--batch applies to speech LMs")
    assert_one_line_error(run_cli("predict", "--model", "sd-1.5", "--hardware", "nv_l4", "--batch", "2",
                                  "--max-throughput", cwd=tmp), "--concurrency/--batch and --max-throughput contradict")


def test_a_flag_the_models_kind_does_not_read_is_refused(tmp: Path):
    """--tp on a diffusion pipeline, --steps on an LLM and --concurrency beside --max-throughput were silently
    ignored; each is now a one-line error."""
    assert_one_line_error(run_cli("predict", "--model", "sd-1.5", "--hardware", "nv_h100_sxm", "--tp", "2", cwd=tmp),
                          "--tp does not apply to sd-1.5, a model of kind diffusion")
    assert_one_line_error(run_cli("predict", "--model", "llama-3.1-8b", "--hardware", "nv_h100_sxm", "--steps", "3",
                                  "--resolution", "256", cwd=tmp), "--resolution, --steps do not apply to llama-3.1-8b")
    assert_one_line_error(run_cli("predict", "--model", "llama-3.1-8b", "--hardware", "nv_h100_sxm", "--concurrency",
                                  "4", "--max-throughput", cwd=tmp), "contradict each other")
    assert run_cli("predict", "--model", "sd-1.5", "--hardware", "nv_h100_sxm", "--steps", "20", "--batch", "2",
                   cwd=tmp).returncode == 0
    assert_one_line_error(run_cli("predict", "--model", "deepseek-v3", "--hardware", "nv_h200_sxm", "--precision", "fp8",
                                  "--tp", "8", "--ep", "3", cwd=tmp), "use --ep 1 or 2 or 4 or 8")


def test_predict_says_that_ep_under_tp_attention_is_priced_as_tp_split_experts(tmp: Path):
    """DeepSeek-V3 on eight H200: TP 8 with EP 8 and TP 8 alone price alike (no all-to-all under TP attention), so the
    EP answer says what it leaves out; attention DP 8 with EP 8 exchanges tokens and carries no such note."""
    args = ("predict", "--model", "deepseek-v3", "--hardware", "nv_h200_sxm", "--precision", "fp8", "--concurrency", "16")
    ep = run_cli(*args, "--tp", "8", "--ep", "8", cwd=tmp)
    tp = run_cli(*args, "--tp", "8", cwd=tmp)
    dp = run_cli(*args, "--dp", "8", "--ep", "8", cwd=tmp)
    assert ep.returncode == tp.returncode == dp.returncode == 0
    assert "EP 8 under TP attention is priced as experts split by TP" in ep.stdout
    assert "under TP attention" not in tp.stdout + dp.stdout
    latency = [line for line in ep.stdout.splitlines() if line.startswith("TTFT")]
    assert latency and latency == [line for line in tp.stdout.splitlines() if line.startswith("TTFT")]


def test_a_part_without_a_scale_up_bandwidth_says_what_its_collectives_were_priced_at():
    """A profile with no scale-up bandwidth (the MetaX C500's is unpublished) has its all-reduces priced at a PCIe
    link, so TTFT can rise with TP; a note says so (the MI355X was the example until its Infinity Fabric links were
    found published: 7 x 153.6 GB/s)."""
    note = "mx_c500's profile gives no scale-up bandwidth"
    assert any(note in n for n in m.replica("qwen2.5-72b", HW["mx_c500"], "bf16", tp=4).notes)
    assert not any(note in n for n in m.replica("qwen2.5-7b", HW["mx_c500"], "bf16", tp=1).notes)
    assert not any("scale-up bandwidth" in n for n in m.replica("qwen2.5-72b", HW["amd_mi355x"], "bf16", tp=8).notes)
    assert not any("scale-up bandwidth" in n for n in m.replica("qwen2.5-72b", HW["nv_h100_sxm"], "bf16", tp=8).notes)
