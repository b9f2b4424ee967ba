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
    p = run_cli("predict", "--model", "wan2.1-t2v-1.3b", "--hardware", "nv_h20", "--precision", "int8", "--json", cwd=tmp)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["efficiency"]["quant_speedup"] > 1.0
    assert_one_line_error(run_cli("predict", "--model", "sdxl-base-1.0", "--hardware", "nv_h100_sxm", "--precision",
                                  "fp8", cwd=tmp), "sdxl-base-1.0 is a UNet pipeline: use --precision fp16 or bf16")
    (tmp / "d.yaml").write_text(yaml.safe_dump({"services": [
        {"name": "images", "model": "sd-1.5", "precision": ["fp8"], "traffic": {"images_per_s": 1},
         "slo": {"latency_p95_s": 10}}]}))
    assert_one_line_error(run_cli("plan", "d.yaml", cwd=tmp), "sd-1.5 is a UNet pipeline: use fp16 or bf16")
