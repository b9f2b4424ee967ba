"""Diffusion-transformer pipelines (FLUX.1, SD3.5) in the planner: the catalog builds at the official
parameter counts, the shipped FLOP table matches a fresh count, predict answers for each model
with guidance applied as the model runs it, and `run` says it does not build them yet."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from infra_bench.planner import dit
from tests.conftest import assert_one_line_error, run_cli

# The transformers' official parameter counts (FLUX.1: 12B; SD3.5: 2.5B / 8.1B with the pos_embed buffer).
TRANSFORMERS = {"flux-1-dev": 11_901_408_320, "flux-1-schnell": 11_891_178_560,
                "sd3.5-medium": 2_243_171_520 + 226_492_416, "sd3.5-large": 8_056_627_520 + 89_653_248}


@pytest.mark.parametrize("model", list(TRANSFORMERS))
def test_components_build_at_the_official_parameter_counts(model: str):
    pytest.importorskip("diffusers")
    for name, c in dit.catalog()[model]["components"].items():
        m = dit.build(model, name)
        assert sum(p.numel() for p in m.parameters()) == c["params"], name
        if name == "transformer":
            buffers = sum(b.numel() for n, b in m.named_buffers() if n == "pos_embed.pos_embed")
            assert c["params"] + buffers == TRANSFORMERS[model]


def test_the_shipped_flop_table_matches_a_fresh_count():
    pytest.importorskip("diffusers")
    table = json.loads((Path(__file__).parents[1] / "workloads/reference/diffusion_flops.json").read_text())
    assert table["flux-1-schnell"]["256"] == dit.count("flux-1-schnell", 256)


@pytest.mark.parametrize("model, cfg", [("flux-1-dev", False), ("flux-1-schnell", False),
                                        ("sd3.5-medium", True), ("sd3.5-large", True)])
def test_predict_answers_for_each_model_with_its_guidance(tmp: Path, model: str, cfg: bool):
    p = run_cli("predict", "--model", model, "--hardware", "nv_h100_sxm", "--precision", "bf16", "--resolution",
                "1024", "--steps", "28", "--guidance-scale", "3.5", "--json", cwd=tmp)
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout)
    base = json.loads((Path(__file__).parents[1] / "workloads/reference/diffusion_flops.json").read_text())[model]["1024"]
    passes = 2 if cfg else 1
    assert got["flops_per_unit"] == passes * base["text"] + 28 * passes * base["unet_per_step"] + base["vae"]
    assert got["fits"] and got["efficiency"]["mfu"] == 0.37 and "four public FLUX.1-dev runs" in got["notes"][0]
    assert got["latency_s"] == pytest.approx(got["flops_per_unit"] / (989.5e12 * 0.37) + 28 * 2e-3, rel=1e-6)


def test_run_says_it_does_not_build_a_dit_pipeline_yet(tmp: Path):
    pytest.importorskip("diffusers")
    (tmp / "s.yaml").write_text("kind: diffusion\narch: flux-1-dev\n")
    assert_one_line_error(run_cli("run", "s.yaml", cwd=tmp),
                          "flux-1-dev is a diffusion-transformer pipeline that `infra-bench predict` and `plan` size")
