"""The analytic LLM model: memory arithmetic on known configs, monotonicity, the memory gate."""
import dataclasses
import json
from pathlib import Path

import pytest

from infra_bench.errors import UserError
from infra_bench.planner import llm_model as m
from infra_bench.planner import profiles as pr
from .conftest import assert_one_line_error, run_cli

HW = pr.load_hardware()


def test_kv_cache_per_token_on_known_configs():
    assert m.kv_bytes_per_token(m.get_shape("llama-3.1-8b"), "bf16") == 131072  # 2*32*8*128*2
    assert m.kv_bytes_per_token(m.get_shape("llama-3.1-70b"), "bf16") == 327680
    assert m.kv_bytes_per_token(m.get_shape("qwen3-8b"), "fp8") == 147456 / 2
    assert m.kv_bytes_per_token(m.get_shape("deepseek-v3"), "bf16") == 61 * (512 + 64) * 2  # MLA latent


def test_weights_and_memory_gate():
    h100 = HW["nv_h100_sxm"]
    p = m.predict(m.get_shape("llama-3.1-8b"), h100, "bf16", batch=1, input_len=1000, output_len=24)
    assert p.memory["weights_gb_per_device"] == pytest.approx(8030261248 * 2 / 1e9)
    assert p.memory["kv_cache_gb_per_device"] == pytest.approx(1024 * 131072 / 1e9)
    assert p.fits and p.max_concurrency > 100
    big = m.predict(m.get_shape("llama-3.1-70b"), h100, "bf16", batch=1)
    assert not big.fits and big.ttft_s is None and "does not fit" in big.notes[-1]
    split = m.predict(m.get_shape("llama-3.1-70b"), h100, "bf16", tp=4, batch=1)
    assert split.fits and split.memory["weights_gb_per_device"] == pytest.approx(70553706496 * 2 / 4 / 1e9)


def test_monotonicity():
    s, h100 = m.get_shape("llama-3.1-8b"), HW["nv_h100_sxm"]
    base = m.predict(s, h100, batch=8)
    faster = m.predict(s, h100.model_copy(update={"memory_bandwidth_tbs": 6.7}), batch=8)
    assert faster.tpot_s < base.tpot_s  # more bandwidth, lower TPOT
    assert m.predict(s, h100, batch=8, input_len=4096).ttft_s > base.ttft_s  # longer prompt, higher TTFT
    assert m.predict(s, h100, batch=64).output_tokens_per_s > base.output_tokens_per_s  # batching helps throughput
    assert m.predict(s, h100, "fp8", batch=8).tpot_s < base.tpot_s  # fewer bytes per weight
    assert base.bound["decode"] == "memory_bandwidth"  # small-batch decode is memory-bound


def test_moe_reads_only_touched_experts():
    s, h200 = m.get_shape("qwen3-30b-a3b"), HW["nv_h200_sxm"]
    one = m.predict(s, h200, batch=1)
    many = m.predict(s, h200, batch=256)
    assert one.bound["decode_terms_s"]["memory_bandwidth"] < many.bound["decode_terms_s"]["memory_bandwidth"]
    assert any("MoE" in n for n in one.notes)


def test_prior_lands_near_a_published_measurement():
    """GPUStack: Qwen3-8B BF16 on one H100 SXM, vLLM, concurrency 4: mean TPOT 7.38 ms."""
    p = m.predict(m.get_shape("qwen3-8b"), HW["nv_h100_sxm"], "bf16", batch=4, input_len=1024, output_len=256)
    assert p.tpot_s == pytest.approx(7.38e-3, rel=p.interval)


def test_bad_input(tmp: Path):
    with pytest.raises(UserError, match="no published fp8 peak"):
        m.predict(m.get_shape("llama-3.1-8b"), HW["hw_910b2"], "fp8")
    with pytest.raises(UserError, match="must be a multiple of --tp"):
        m.predict(m.get_shape("llama-3.1-8b"), HW["nv_h100_sxm"], tp=4, count=6)
    assert_one_line_error(run_cli("predict", "--model", "llama-3.1-8", "--hardware", "nv_h100_sxm", cwd=tmp),
                          "unknown model 'llama-3.1-8' (did you mean 'llama-3.1-8b'?)")
    assert_one_line_error(run_cli("predict", "--model", "llama-3.1-8b", "--hardware", "h100", cwd=tmp),
                          "unknown hardware profile 'h100'")
    p = run_cli("predict", "--model", "qwen3-8b", "--hardware", "hw_910b2", "--batch", "8", "--json", cwd=tmp)
    out = json.loads(p.stdout)
    assert p.returncode == 0 and out["fits"] and out["calibrated"] is False and out["tpot_s"] > 0
    text = run_cli("predict", "--model", "llama-3.1-70b", "--hardware", "nv_h20", "--tp", "2", cwd=tmp)
    assert text.returncode == 0 and "TPOT" in text.stdout and "priors" in text.stdout
    assert dataclasses.is_dataclass(m.predict(m.get_shape("gpt2-small"), HW["nv_l20"]))
