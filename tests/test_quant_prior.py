"""fp8/int8 diffusion transformers: the speed-up prior is the fit of the shipped public comparisons with
the documented leave-one-source-out errors; predict and plan apply it to the bf16 compute time only;
UNet pipelines are refused in one line."""
from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest
import yaml

from tests.conftest import assert_one_line_error, run_cli

pytest.importorskip("diffusers")


def test_the_prior_is_the_fit_of_the_shipped_points_with_its_held_out_errors():
    from infra_bench.planner import quant_prior as q

    k, rho = q.fit()
    assert (k, rho) == pytest.approx((q.K, q.RHO), abs=5e-4)
    flux = next(p for p in q.points() if p.model == "flux-1-dev")  # the shipped share is a fresh count
    assert q.linear_share("flux-1-dev", 1024, 1024) == pytest.approx(flux.linear_share, abs=1e-6)
    errors = [abs(r["error"]) for r in q.held_out()]
    assert len(errors) == 7 and statistics.median(errors) < 0.06 and max(errors) < 0.16  # docs/planner.md


def test_fp8_divides_the_bf16_compute_and_keeps_the_fixed_time(tmp: Path):
    from infra_bench.planner import media_model as mm
    from infra_bench.planner import quant_prior as q
    from infra_bench.planner.profiles import load_hardware

    h100 = load_hardware()["nv_h100_sxm"]
    bf16 = mm.predict_diffusion("flux-1-dev", h100, "bf16", 1024, 28, 3.5)
    fp8 = mm.predict_diffusion("flux-1-dev", h100, "fp8", 1024, 28, 3.5)
    s, f, r = q.speedup(q.linear_share("flux-1-dev", 1024, 1024), h100, "fp8")
    fixed = 28 * bf16.efficiency["t_step_s"]
    assert 1.0 < s < 2.0 and 0 < f < 1 and r == pytest.approx(1 + q.RHO)  # H100: fp8 peak = 2 x bf16
    assert fp8.latency_s == pytest.approx((bf16.latency_s - fixed) / s + fixed)
    assert fp8.precision == "fp8" and fp8.memory == bf16.memory
    from infra_bench.kinds.video import planner as vp

    h20 = load_hardware()["nv_h20"]
    wan = vp.predict("wan2.1-t2v-1.3b", h20, "int8", 832, 480, 81, 50, 5.0)
    assert wan.precision == "int8" and wan.efficiency["quant_speedup"] > 1.0
    assert_one_line_error(run_cli("predict", "--model", "sdxl-base-1.0", "--hardware", "nv_h100_sxm", "--precision",
                                  "fp8", cwd=tmp), "sdxl-base-1.0 is a UNet pipeline: use --precision fp16 or bf16")
    (tmp / "d.yaml").write_text(yaml.safe_dump({"services": [
        {"name": "images", "model": "sd-1.5", "precision": ["fp8"], "traffic": {"images_per_s": 1},
         "slo": {"latency_p95_s": 10}}]}))
    assert_one_line_error(run_cli("plan", "d.yaml", cwd=tmp), "sd-1.5 is a UNet pipeline: use fp16 or bf16")


def test_the_batch_prior_is_the_fit_of_the_public_sweeps_with_its_held_out_errors():
    from infra_bench.planner import batch_prior as b

    assert b.fit() == pytest.approx(b.PHI, abs=5e-4)
    errors = [abs(r["error"]) for r in b.held_out()]
    assert len(errors) == 27 and statistics.median(errors) < 0.13 and max(errors) < 0.27  # docs/planner.md


def test_throughput_mode_batches_the_compute_and_amortizes_part_of_the_fixed_time(tmp: Path):
    from infra_bench.planner import batch_prior as b
    from infra_bench.planner import media_model as mm
    from infra_bench.planner.profiles import load_hardware

    h100 = load_hardware()["nv_h100_pcie"]
    one = mm.predict_diffusion("sd-1.5", h100, "fp16", 512, 30, 7.5)
    fixed = 30 * one.efficiency["t_step_s"]
    args = ("predict", "--model", "sd-1.5", "--hardware", "nv_h100_pcie", "--precision", "fp16", "--resolution", "512",
            "--steps", "30", "--json")
    at16 = json.loads(run_cli(*args, "--batch", "16", cwd=tmp).stdout)
    assert at16["latency_s"] == pytest.approx(16 * b.per_image(one.latency_s - fixed, fixed, 16))
    assert 1.0 < at16["units_per_s_per_device"] / one.units_per_s_per_device < 16
    act = mm.activation_gb("sd-1.5", 512, 512, "fp16")
    assert at16["memory"]["activations_gb"] == pytest.approx(16 * act)
    best = json.loads(run_cli(*args, "--max-throughput", cwd=tmp).stdout)
    assert best["efficiency"]["batch"] == min(mm.MAX_BATCH, int((one.memory["usable_gb"] - one.memory["total_gb"]) // act))
    flux = run_cli("predict", "--model", "flux-1-dev", "--hardware", "nv_l20", "--precision", "bf16",
                   "--resolution", "1024", "--batch", "64", "--json", cwd=tmp)
    assert_one_line_error(flux, "flux-1-dev on nv_l20: does not fit: ")  # 64 x 0.8 GB of activations on 48 GB
    assert flux.stdout == ""  # as an LLM that does not fit: no JSON of a prediction that cannot run
