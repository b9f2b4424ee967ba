"""Diffusion and TTS predictions: FLOPs counted on the real (tiny) models, the arithmetic of the
model, and a calibration round trip from real runs on this CPU."""
import json
from pathlib import Path

import pytest
import yaml

from infra_bench.errors import UserError
from infra_bench.planner import media_model as mm
from infra_bench.planner import profiles as pr

from .conftest import assert_one_line_error, read_records, run_cli, write_cpu_profile

HW = pr.load_hardware()


def test_diffusion_flops_follow_steps_and_guidance():
    u10, u20 = mm.diffusion_unit("sd-tiny", 64, 10, 7.5), mm.diffusion_unit("sd-tiny", 64, 20, 7.5)
    no_cfg = mm.diffusion_unit("sd-tiny", 64, 10, 1.0)
    assert u20["flops_per_image"] - u10["flops_per_image"] == pytest.approx(10 * u10["unet_flops_per_step"])
    assert u10["unet_flops_per_step"] == 2 * no_cfg["unet_flops_per_step"]  # two UNet evaluations per step
    bigger = mm.diffusion_unit("sd-tiny", 128, 10, 7.5)
    assert bigger["unet_flops_per_step"] > 3 * u10["unet_flops_per_step"]  # 4x the latent pixels


def test_diffusion_prediction_arithmetic():
    h100, a100 = HW["nv_h100_sxm"], HW["nv_a100_80g_sxm"]
    from infra_bench.planner import unet_prior

    p = mm.predict_diffusion("sd-tiny", h100, "fp16", 64, 10)
    peak = min(h100.peak_tflops["fp16"], mm.PEAK_RANGE[1])  # the curve is held within its parts' range
    mfu = unet_prior.A * (peak / mm.REFERENCE_PEAK) ** -mm.PEAK_EXPONENT  # the UNet prior
    expected = p.flops_per_unit / (h100.peak_tflops["fp16"] * 1e12 * mfu) + 10 * unet_prior.T_STEP
    assert p.fits and p.latency_s == pytest.approx(expected) and not p.calibrated and p.interval == 0.5
    assert mm.predict_diffusion("sd-tiny", a100, "fp16", 64, 10).latency_s > p.latency_s  # less compute, slower
    assert mm.predict_diffusion("sd-tiny", h100, "fp16", 64, 20).latency_s > p.latency_s


def test_tts_prediction_arithmetic():
    u = mm.tts_unit("vits-tiny", 12, 5)
    assert u["audio_s"] == pytest.approx(12 * 5 * 256 / 16000) and u["flops_per_audio_s"] > 0
    p = mm.predict_tts("vits-tiny", HW["nv_h100_sxm"], "fp16", 12)
    assert p.fits and p.rtf == pytest.approx(p.latency_s / u["audio_s"]) and p.bound == "fixed_overhead"
    assert p.units_per_s_per_device == pytest.approx(1 / p.rtf)


def test_a_long_utterance_s_flops_come_from_three_short_counts_and_match_a_direct_one(monkeypatch):
    """Counting 2,000 tokens of FastSpeech2-Conformer on the CPU took minutes; an utterance beyond
    QUADRATIC_COUNTS is now the quadratic through three short counts, which must equal counting it."""
    import torch

    from infra_bench.spec.tts import TtsSpec
    from infra_bench.workloads import tts as tw

    n = 2 * max(mm.QUADRATIC_COUNTS) + 3
    counted, token_ids = [], tw.token_ids
    monkeypatch.setattr(tw, "token_ids", lambda r, s, cell: counted.append(cell["text_len"]) or token_ids(r, s, cell))
    u = mm.tts_unit("vits-tiny", n, 5)
    assert counted == list(mm.QUADRATIC_COUNTS)  # the utterance itself was not run
    monkeypatch.undo()
    spec = TtsSpec(arch="vits-tiny", text_len=n, frames_per_token=5)
    resolved = tw.resolve(spec)
    m = tw.build_model(resolved, spec, torch.device("cpu"), torch.float32)
    ids = tw.token_ids(resolved, spec, {"batch_size": 1, "text_len": n})
    assert u["flops_per_audio_s"] == pytest.approx(tw.count_flops(lambda: m(ids), u["audio_s"]), rel=1e-9)


def test_memory_gate_for_a_pipeline(tmp: Path):
    small = pr.HardwareProfile(id="small", kind="accelerator", vendor="X", model="2 GB card", peak_tflops={"fp16": 10},
                               memory_gb=2, memory_bandwidth_tbs=0.1, sources=["test"])
    p = mm.predict_diffusion("sd-1.5", small, "fp16", 512, 30)
    assert not p.fits and "does not fit" in p.notes[-1] and p.latency_s is None


def test_a_missing_peak_points_to_a_precision_the_part_has(tmp: Path):
    """It said "no published bf16 peak; try --precision bf16", whatever the part had."""
    fp32_only = pr.HardwareProfile(id="fp32_only", kind="accelerator", vendor="X", model="card",
                                   peak_tflops={"fp32": 10}, memory_gb=16, memory_bandwidth_tbs=0.5, sources=["test"])
    with pytest.raises(UserError, match=r"no published bf16 peak; try --precision fp32 \("):
        mm.predict_diffusion("sd-1.5", fp32_only, "bf16", 512, 30)
    assert_one_line_error(run_cli("predict", "--model", "sd-1.5", "--hardware", "hw_950pr", "--precision", "bf16",
                                  cwd=tmp), "hw_950pr has no published bf16 peak; it publishes none of fp32, bf16, "
                                            "fp16; add one with --profiles DIR")


def test_predict_cli_for_diffusion_and_tts(tmp: Path):
    p = run_cli("predict", "--model", "sd-tiny", "--hardware", "nv_h100_sxm", "--resolution", "64", "--steps", "3",
                "--json", cwd=tmp)
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    assert d["kind"] == "diffusion" and d["precision"] == "fp16" and d["latency_s"] > 0
    p = run_cli("predict", "--model", "vits-tiny", "--hardware", "hw_910b2", "--text-len", "12", cwd=tmp)
    assert p.returncode == 0 and "RTF" in p.stdout and "assumed priors" in p.stdout
    assert_one_line_error(run_cli("predict", "--model", "vits-mm", "--hardware", "nv_h100_sxm", cwd=tmp),
                          "did you mean 'vits-mms'")
    assert_one_line_error(run_cli("predict", "--model", "vits-tiny", "--hardware", "hw_910b2", "--concurrency", "8",
                                  cwd=tmp), "vits-tiny synthesizes one utterance at a time")  # it was ignored
    p = run_cli("predict", "--model", "vits-tiny", "--hardware", "hw_910b2", "--concurrency", "8", cwd=tmp)
    assert "--max-throughput" not in p.stderr  # it pointed there, and predict refuses --max-throughput for TTS
    assert_one_line_error(run_cli("predict", "--model", "sd-tiny", "--hardware", "nv_h100_sxm", "--precision", "int4",
                                  cwd=tmp), "not offered for diffusion or tts")


def test_calibration_round_trip_from_real_runs(tmp: Path):
    """Real sd-tiny and vits-tiny runs on this CPU, a user profile for it, calibrate, predict them back."""
    write_cpu_profile(tmp)
    (tmp / "s.yaml").write_text(yaml.safe_dump_all([
        {"kind": "diffusion", "arch": "sd-tiny", "resolution": [64], "steps": [3], "warmup": 1, "min_iters": 2,
         "min_time_s": 0.0},
        {"kind": "tts", "arch": "vits-tiny", "text_len": [12], "warmup": 1, "min_iters": 2, "min_time_s": 0.0}]))
    run = run_cli("run", "s.yaml", "--out", "res", "--device", "cpu", cwd=tmp)
    assert run.returncode == 0, run.stderr
    recs = {r["kind"]: r for r in read_records(tmp / "res")}
    p = run_cli("calibrate", recs["tts"]["run_id"], "--results", "res", "--out", "cal.json", "--profiles", "mine",
                cwd=tmp)
    assert p.returncode == 0, p.stderr
    fits = json.loads((tmp / "cal.json").read_text())["media_fits"]
    assert set(fits) == {"diffusion|this_cpu|torch|fp32", "tts|this_cpu|torch|fp32"}
    common = ("--hardware", "this_cpu", "--precision", "fp32", "--calibration", "cal.json", "--json", "--profiles", "mine")
    d = json.loads(run_cli("predict", "--model", "sd-tiny", "--resolution", "64", "--steps", "3", *common, cwd=tmp).stdout)
    assert d["calibrated"] and d["latency_s"] == pytest.approx(recs["diffusion"]["metrics"]["image_s"]["mean"], rel=1e-6)
    t = json.loads(run_cli("predict", "--model", "vits-tiny", "--text-len", "12", *common, cwd=tmp).stdout)
    assert t["calibrated"] and t["rtf"] == pytest.approx(recs["tts"]["metrics"]["rtf"]["mean"], rel=1e-6)


def test_the_unet_prior_is_the_fit_of_its_public_timings_and_its_held_out_error_is_stated():
    """A and the per-step time are what the six current-stack timings give; the median error on the eight
    timings it never saw (older stacks, stable-fast's denoising-loop rates) is the one the basis states."""
    import statistics

    from infra_bench.planner import unet_prior

    assert unet_prior.fit_prior() == (unet_prior.A, unet_prior.T_STEP)
    errors = [h["error"] for h in unet_prior.held_out()]
    assert len(errors) == 8 and round(statistics.median(abs(e) for e in errors), 2) == unet_prior.HELD_OUT_ERROR
    assert all(abs(unet_prior.predicted(t) / t.seconds - 1) < 0.25 for t in unet_prior.FIT)
    a100 = HW["nv_a100_80g_sxm"]  # what predict computes is what was fitted
    fitted = next(t for t in unet_prior.FIT if t.hardware == a100.id and t.model == "sdxl-base-1.0")
    assert mm.predict_diffusion("sdxl-base-1.0", a100, "fp16", 1024, 50, 5.0).latency_s == \
        pytest.approx(unet_prior.predicted(fitted))


def test_the_unet_prior_stays_within_what_its_timings_cover():
    """fp32 and CPUs keep the assumed prior; a part below or above the measured peaks takes the curve's edge."""
    from infra_bench.planner import unet_prior

    cpu = pr.HardwareProfile(id="cpu", kind="cpu", vendor="X", model="cpu", peak_tflops={"fp32": 0.3, "fp16": 0.3},
                             memory_gb=64, memory_bandwidth_tbs=0.1, sources=["test"])
    for hw, precision in ((cpu, "fp16"), (HW["nv_a100_80g_sxm"], "fp32")):
        priors, basis = mm.diffusion_priors("sd-1.5", hw, precision, 1e12)
        assert priors == mm.DIFFUSION_PRIORS and "outside the public UNet timings" in basis
    assert unet_prior.mfu_prior(10) == unet_prior.mfu_prior(mm.PEAK_RANGE[0]) < 0.9  # not extrapolated to 0.9
    assert unet_prior.mfu_prior(5000) == unet_prior.mfu_prior(mm.PEAK_RANGE[1])
    record = {"flops_per_image": 1e12, "image_s": {"mean": 1.0}, "denoise_steps_run": 10}
    unet = mm.diffusion_point(record, {"batch_size": 1, "model": "sd-1.5", "dtype": "fp16", "accelerator": True})
    dit = mm.diffusion_point(record, {"batch_size": 1, "model": "flux-1-dev", "dtype": "bf16", "accelerator": True})
    cpu_point = mm.diffusion_point(record, {"batch_size": 1, "model": "sd-1.5", "dtype": "fp32", "accelerator": False})
    assert unet[2] == pytest.approx(10 * unet_prior.T_STEP) and dit[2] == pytest.approx(10 * mm.DIT_PRIORS["t_step_s"])
    assert cpu_point[2] == pytest.approx(10 * mm.DIFFUSION_PRIORS["t_step_s"])


def test_a_part_above_the_fitted_peaks_is_said_to_be_an_upper_bound():
    """The priors stop at the H100's peak; a B200 image or video prediction says it is not extrapolated and is
    an upper bound, an H100 one does not, and a calibrated prediction (its own fit) says nothing of it."""
    from infra_bench.kinds.video import planner as video

    flux = mm.predict_diffusion("flux-1-dev", HW["nv_b200"], "bf16", 1024, 28, 3.5)
    wan = video.predict("wan2.1-t2v-1.3b", HW["nv_b200"], "bf16", 832, 480, 81, 50, 5.0)
    assert all(any("upper bound" in n and "2,250 TFLOP/s" in n for n in p.notes) for p in (flux, wan))
    h100 = mm.predict_diffusion("flux-1-dev", HW["nv_h100_sxm"], "bf16", 1024, 28, 3.5)
    own = mm.predict_diffusion("flux-1-dev", HW["nv_b200"], "bf16", 1024, 28, 3.5,
                               {"mfu": 0.3, "overhead_scale": 1.0, "interval": 0.1, "n": 3, "key": "dit|nv_b200"})
    assert not any("upper bound" in n for p in (h100, own) for n in p.notes)


def test_an_utterance_beyond_speecht5s_text_positions_is_refused():
    """SpeechT5 holds 450 text positions: a longer --text-len (or a demand's text_len) is refused before its FLOP
    count, which failed inside transformers ('internal error', exit 1)."""
    with pytest.raises(UserError, match="speecht5 takes at most 450 text tokens .* lower --text-len"):
        mm.tts_unit("speecht5", 451, 5)


def test_a_slow_image_rate_keeps_its_digits_in_predict():
    """`predict` printed images/s per device with two decimals: SD-1.5 at 1024 px on an Atlas 300I Pro read '0.01'
    for 0.0117 at 400 steps and '0.00' at 1,000; it takes three significant digits, as the TTS line does."""
    from infra_bench.planner import media_model
    from infra_bench.planner.profiles import shipped_hardware
    from infra_bench.report.predictions import diffusion_result

    hw = shipped_hardware()["hw_300i_pro"]
    for steps in (400, 1000):
        p = media_model.predict_diffusion("sd-1.5", hw, "fp16", 1024, steps, 7.5, None)
        assert 0.001 < p.units_per_s_per_device < 0.02
        assert f"images/s per device {p.units_per_s_per_device:.3g};" in diffusion_result(p)
