"""Calibration round trips: a measured cell, predicted with its own fit, comes back."""
import json
from pathlib import Path

import pytest

from infra_bench.planner import calibration as cal
from infra_bench.planner import llm_model as m
from infra_bench.planner import profiles as pr
from .conftest import assert_one_line_error, read_records, run_cli, write_cpu_profile, write_spec


def test_published_points_round_trip_and_leave_one_out(tmp_path: Path):
    hw = pr.load_hardware()
    points, skipped = cal.published_points(hw)
    assert {p.source.split()[1] for p in points} == {"S1", "S2", "S3", "S4", "S5", "S14"}
    assert any("burst load" in s for s in skipped)
    data = cal.write(tmp_path / "cal.json", points, skipped)
    for p in points:
        if p.note:  # clamped fits cannot reproduce their point
            continue
        fitted = cal.for_prediction(data, p.hardware, p.engine, p.precision)
        pred = m.predict(m.get_shape(p.model), hw[p.hardware], p.precision, p.tp, p.tp, p.batch, p.input_len,
                         p.output_len, calibration=fitted)
        assert pred.calibrated and pred.tpot_s == pytest.approx(p.tpot_s, rel=1e-6)
    h100_bf16 = [p.mbu for p in points if p.hardware == "nv_h100_sxm" and p.precision == "bf16"]
    assert len(h100_bf16) == 2 and all(0.6 < x < 0.8 for x in h100_bf16)  # vLLM and TRT-LLM agree
    assert 0 < data["cross_engine_loo"]["mean"] < 1
    merged = cal.for_prediction(data, "nv_h100_sxm", None, "bf16")  # no engine: mean over engines
    assert merged["n"] == 2 and merged["key"] == "nv_h100_sxm|any engine|bf16"
    assert cal.for_prediction(data, "nv_l20", None, "bf16") is None


def test_calibrate_from_our_own_record_and_predict_it_back(tmp: Path):
    """A real gpt2-small run on this CPU, a user profile for this CPU, calibrate, predict the cell."""
    write_cpu_profile(tmp)
    write_spec(tmp, "s.yaml", arch="gpt2-small", prompt_len=[16], output_len=[8], min_iters=2, warmup=1)
    run = run_cli("run", "s.yaml", "--out", "res", "--device", "cpu", cwd=tmp)
    assert run.returncode == 0, run.stderr
    (rec,) = read_records(tmp / "res")
    p = run_cli("calibrate", rec["run_id"], "--results", "res", "--out", "cal.json", "--profiles", "mine", cwd=tmp)
    assert p.returncode == 0, p.stderr
    data = json.loads((tmp / "cal.json").read_text())
    assert "this_cpu|torch|fp32" in data["fits"]
    out = run_cli("predict", "--model", "gpt2-small", "--hardware", "this_cpu", "--precision", "fp32",
                  "--input-len", "16", "--output-len", "8", "--calibration", "cal.json", "--engine", "torch",
                  "--json", "--profiles", "mine", cwd=tmp)
    pred = json.loads(out.stdout)
    measured = rec["metrics"]["tpot_s"]["mean"]
    assert data["fits"]["this_cpu|torch|fp32"]["points"][0]["note"] == ""  # a physical MBU, not clamped
    assert pred["calibrated"] and pred["tpot_s"] == pytest.approx(measured, rel=1e-6)


def test_bad_calibration_file(tmp: Path):
    (tmp / "bad.json").write_text("{}")
    assert_one_line_error(run_cli("predict", "--model", "qwen3-8b", "--hardware", "nv_h100_sxm", "--calibration",
                                  "bad.json", cwd=tmp), "not an infra-bench calibration file")


def test_calibrate_from_an_endpoint_curve(tmp: Path):
    """A real loadtest against `infra-bench serve --arch gpt2-small` labelled with a profile of this
    CPU: its closed-loop points become decode points (bf16 and TP 1 assumed, and said); an
    open-loop point is skipped with the reason."""
    from .test_endpoints import start_server, stop_server

    write_cpu_profile(tmp)
    proc, url = start_server("--arch", "gpt2-small", cwd=tmp)
    try:
        for load in (("--concurrency", "1,2"), ("--rate", "2")):
            p = run_cli("loadtest", "--endpoint", url, "--model", "gpt2-small", *load, "--num-requests", "4",
                        "--input-len", "16", "--output-len", "8", "--hardware", "this_cpu", "--engine", "ours 1",
                        "--out", "res", cwd=tmp)
            assert p.returncode == 0, p.stderr
    finally:
        stop_server(proc)
    runs = sorted(x.name for x in (tmp / "res").iterdir())
    p = run_cli("calibrate", *runs, "--results", "res", "--out", "cal.json", "--profiles", "mine", cwd=tmp)
    assert p.returncode == 0, p.stderr
    data = json.loads((tmp / "cal.json").read_text())
    fit = data["fits"]["this_cpu|ours|bf16"]
    assert fit["n"] == 2 and [q["batch"] for q in fit["points"]] == [1, 2]
    assert all("bf16 and TP 1 assumed" in q["note"] for q in fit["points"])
    assert any("open-loop point" in s for s in data["skipped"])
