"""The video kind: a tiny Wan-style pipeline runs end to end through diffusers' WanPipeline with its
metrics, calibrates and predicts its own time back; a tiny HunyuanVideo-style one runs through
HunyuanVideoPipeline with its guidance embedded (one pass per step); bad grids are one-line errors; the catalog's full
shapes build at their official parameter counts and predict answers for each."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.conftest import assert_one_line_error, read_records, run_cli, write_cpu_profile

pytest.importorskip("diffusers")


def test_wan_tiny_runs_calibrates_and_predicts_back(tmp: Path):
    from infra_bench.kinds.video import workload as vw

    write_cpu_profile(tmp)
    (tmp / "v.yaml").write_text(yaml.safe_dump({
        "kind": "video", "arch": "wan-tiny", "resolution": ["32x32"], "frames": [5], "steps": [2],
        "guidance_scale": 5.0, "warmup": 1, "min_iters": 2, "min_time_s": 0.0}))
    run = run_cli("run", "v.yaml", "--out", "res", "--device", "cpu", cwd=tmp)
    assert run.returncode == 0, run.stderr
    assert "VAE peak MiB" in run.stdout and "s/frame" in run.stdout
    (r,) = read_records(tmp / "res")
    m, base = r["metrics"], vw.count("wan-tiny", 32, 32, 5)
    assert r["status"] == "ok" and r["model"]["weights"] == "random" and r["cell_id"].endswith("b1-r32x32-f5-s2")
    assert m["denoise_steps_run"] == 2 and m["step_s"]["n"] == 2 * m["iterations"]
    assert m["transformer_evals_per_step"] == 2  # guidance 5 > 1: negative and positive passes
    assert m["flops_per_video"] == 2 * base["text"] + 2 * 2 * base["unet_per_step"] + base["vae"]
    assert m["s_per_frame"]["mean"] == pytest.approx(m["video_s"]["mean"] / 5)
    assert m["vae_decode_peak_bytes"] is None and "not measured" in m["vae_decode_peak_source"]  # a CPU
    p = run_cli("calibrate", r["run_id"], "--results", "res", "--out", "cal.json", "--profiles", "mine", cwd=tmp)
    assert p.returncode == 0, p.stderr
    assert list(json.loads((tmp / "cal.json").read_text())["media_fits"]) == ["video|this_cpu|torch|fp32"]
    d = json.loads(run_cli("predict", "--model", "wan-tiny", "--size", "32x32", "--frames", "5", "--steps", "2",
                           "--guidance-scale", "5", "--hardware", "this_cpu", "--precision", "fp32", "--calibration",
                           "cal.json", "--json", "--profiles", "mine", cwd=tmp).stdout)
    assert d["calibrated"] and d["latency_s"] == pytest.approx(m["video_s"]["mean"], rel=1e-6)


def test_hunyuanvideo_tiny_runs_with_embedded_guidance(tmp: Path):
    from infra_bench.kinds.video import workload as vw

    (tmp / "v.yaml").write_text(yaml.safe_dump({
        "kind": "video", "arch": "hunyuanvideo-tiny", "resolution": ["32x32"], "frames": [5], "steps": [2],
        "guidance_scale": 6.0, "warmup": 0, "min_iters": 1, "min_time_s": 0.0}))
    run = run_cli("run", "v.yaml", "--out", "res", "--device", "cpu", cwd=tmp)
    assert run.returncode == 0, run.stderr
    (r,) = read_records(tmp / "res")
    m, base = r["metrics"], vw.count("hunyuanvideo-tiny", 32, 32, 5)
    assert r["status"] == "ok" and r["model"]["pipeline"] == "diffusers.HunyuanVideoPipeline"
    assert m["transformer_evals_per_step"] == 1 and m["step_s"]["n"] == 2 * m["iterations"]  # guidance is an input
    assert m["flops_per_video"] == base["text"] + 2 * base["unet_per_step"] + base["vae"]
    assert 0 < m["vae_decode_s"]["mean"] < m["video_s"]["mean"]


@pytest.mark.parametrize("arch", ["wan-tiny", "hunyuanvideo-tiny"])
@pytest.mark.parametrize("dtype", ["bf16", "fp16"])
def test_half_precision_pipelines_decode(arch: str, dtype: str):
    """WanPipeline hands back fp32 latents from a bf16 transformer; the decode takes them in the VAE's dtype
    (bf16 failed every Wan cell with 'Input type (float) and bias type (c10::BFloat16)')."""
    import torch

    from infra_bench.devices import select_device
    from infra_bench.kinds.video import torch_exec
    from infra_bench.kinds.video import workload as vw
    from infra_bench.spec.loader import spec_from_dict

    spec = spec_from_dict({"kind": "video", "arch": arch, "dtype": dtype, "guidance_scale": 5.0}, "test")
    resolved = vw.resolve(spec)
    ex = torch_exec.build(spec, resolved, select_device("cpu")).runner
    req = vw.make_request(spec, resolved, {"batch_size": 1, "resolution": "32x32", "frames": 5, "steps": 2}, ex)
    with torch.inference_mode():
        t = vw.run_request(ex, req, select_device("cpu").now_ns)
    assert len(t.step_s) == 2 and t.vae_decode_s > 0


@pytest.mark.parametrize("arch", ["wan-tiny", "hunyuanvideo-tiny"])
def test_the_vae_factors_in_the_catalog_are_the_pipelines(arch: str):
    import torch

    from infra_bench.kinds.video import torch_exec, workload as vw
    from infra_bench.spec.loader import spec_from_dict

    spec = spec_from_dict({"kind": "video", "arch": arch}, "test")
    resolved = vw.resolve(spec)
    ex = torch_exec.VideoExecutor(resolved, torch.device("cpu"), torch.float32, 0)
    assert ex.pipe.vae_scale_factor_spatial == resolved.spatial == 8
    assert ex.pipe.vae_scale_factor_temporal == resolved.temporal == 4


def test_frames_the_vae_cannot_take_are_a_one_line_error(tmp: Path):
    (tmp / "v.yaml").write_text("kind: video\narch: wan-tiny\nresolution: [32x32]\nframes: [6]\n")
    # the valid counts either side: 'use e.g. 1' for 4 frames offered the one below only
    assert_one_line_error(run_cli("run", "v.yaml", cwd=tmp), "frames 6 is not 4k+1 (wan-tiny's VAE compresses 4 "
                                                             "frames into one after the first); use 5 or 9")


def test_one_size_needs_no_list():
    """Grid fields take one value or a list; `resolution: 832x480` was refused as 'Input should be a valid list'."""
    from infra_bench.spec.loader import spec_from_dict

    spec = spec_from_dict(yaml.safe_load("kind: video\narch: wan-tiny\nresolution: 832x480\nframes: 5\n"), "test")
    assert spec.resolution == ["832x480"] and spec.frames == [5]


@pytest.mark.parametrize("fields, fragment", [
    ({"resolution": ["40x32"]}, "resolution 40x32 is not a multiple of 16"),
    ({"backend": "onnxruntime"}, "the onnxruntime backend does not run video workloads"),
    ({"resolution": ["32by32"]}, "resolution '32by32' is not WIDTHxHEIGHT"),
    # a diffusion spec's square size: 'Input should be a valid string (got 512)' did not say what a size is
    ({"resolution": [512]}, "resolution '512' is not WIDTHxHEIGHT in pixels; write e.g. 832x480"),
    ({"resolution": 512}, "resolution '512' is not WIDTHxHEIGHT in pixels"),
    ({"arch": "wan-tiniest"}, "unknown video architecture 'wan-tiniest'"),
])
def test_bad_video_specs_are_refused(fields: dict, fragment: str):
    from infra_bench.errors import UserError
    from infra_bench.kinds import KINDS
    from infra_bench.kinds.video import workload as vw
    from infra_bench.spec.loader import spec_from_dict

    with pytest.raises(UserError, match=fragment):
        spec = spec_from_dict({"kind": "video", "arch": "wan-tiny", **fields}, "test")
        KINDS["video"].require_backend(spec.backend)
        vw.check_cells(spec, vw.resolve(spec))


FULL = {"wan2.1-t2v-1.3b": 1_418_996_800, "wan2.1-t2v-14b": 14_288_491_584, "hunyuanvideo": 12_821_012_544}


@pytest.mark.parametrize("model", list(FULL))
def test_full_shapes_build_at_their_official_parameter_counts(model: str):
    from infra_bench.kinds.video import workload as vw

    entry = vw.catalog()[model]
    assert entry["components"]["transformer"]["params"] == FULL[model]  # published: 1.3B, 14B, 13B
    for name, c in entry["components"].items():
        assert sum(p.numel() for p in vw.build(model, name).parameters()) == c["params"], name


def test_predict_answers_for_each_full_size_model(tmp: Path):
    """In process for each model at its defaults (shipped FLOP table), through the CLI for a bad frame count."""
    from infra_bench.kinds.video import planner as vp
    from infra_bench.planner.profiles import load_hardware

    h100 = load_hardware()["nv_h100_sxm"]
    opts = {"precision": None, "size": None, "frames": None, "steps": None, "guidance_scale": None}
    for model, passes, shape in (("wan2.1-t2v-1.3b", 2, (832, 480, 81)), ("wan2.1-t2v-14b", 2, (1280, 720, 81)),
                                 ("hunyuanvideo", 1, (1280, 720, 129))):
        p, text = vp.predict_hook(model, h100, opts, None, None)
        base = vp.base(model, *shape)
        assert p.flops_per_unit == passes * base["text"] + 50 * passes * base["unet_per_step"] + base["vae"]
        assert p.fits and p.efficiency["mfu"] == pytest.approx(vp.mfu_prior(989.5)) and "never saw" in p.notes[1]
        assert "s/video" in text and "s/frame" in text
    assert_one_line_error(run_cli("predict", "--model", "wan2.1-t2v-1.3b", "--hardware", "nv_h100_sxm", "--frames", "80",
                                  cwd=tmp), "--frames 80: wan2.1-t2v-1.3b takes 4k+1 frames")


def test_the_mfu_prior_is_the_fit_of_the_wan_points_and_holds_on_hunyuanvideo():
    """The shipped curve is what the four Wan2.1 timings give; on the five HunyuanVideo timings it never
    saw, each prediction is within the issue's 25%."""
    from infra_bench.kinds.video import planner as vp

    assert vp.fit_prior() == (vp.A, vp.B)
    errors = [h["error"] for h in vp.held_out()]
    assert len(errors) == 5 and max(abs(e) for e in errors) < 0.25, errors


def test_plan_sizes_a_video_service_one_video_at_a_time(tmp: Path):
    from infra_bench.kinds.video.planner import predict
    from infra_bench.planner import sizing
    from infra_bench.planner.cost import Assumptions
    from infra_bench.planner.demand import demand_from_dict
    from infra_bench.planner.profiles import load_hardware

    clips = {"name": "clips", "model": "wan2.1-t2v-1.3b", "size": "832x480", "frames": 81, "steps": 50,
             "traffic": {"videos_per_hour": 20}, "slo": {"latency_p95_s": 900}}
    profiles = load_hardware()
    p = sizing.plan(demand_from_dict({"services": [clips]}), profiles, ["nv_h100_sxm", "hw_910b2"], confirm_top=2)
    alone = predict("wan2.1-t2v-1.3b", profiles["nv_h100_sxm"], "bf16", 832, 480, 81, 50, 5.0).latency_s
    o = next(c for c in p.candidates if c.hardware == "nv_h100_sxm").options[0]
    assert o.kind == "video" and o.method == "simulation" and o.alone["video_s"] == pytest.approx(alone)
    assert o.latency["latency_p95_s"] <= 900 and o.capacity < 1 / alone  # the queue costs capacity
    assert o.replicas == sizing._replicas(20 / 3600, o.capacity, 0.2, 1)
    from infra_bench.planner.fleet import optimise
    from infra_bench.planner.profiles import load_sites

    site = load_sites()["us-average"]  # a mixed fleet prices videos like any service, in whole servers
    priced = sizing.plan(demand_from_dict({"services": [clips]}), profiles, ["nv_h100_sxm", "nv_l40s"], site=site,
                         rank_by="tco", confirm_top=2)
    fleet = optimise(priced, demand_from_dict({"services": [clips]}), profiles, site, Assumptions())
    assert fleet.feasible and fleet.assignments[0]["unit"] == "videos/s" and all(fleet.servers.values())
    assert priced.candidates[0].cost["per_unit"]["clips"]["unit"] == "video"
    tight = demand_from_dict({"services": [{**clips, "slo": {"latency_p95_s": alone / 2}}]})
    c = sizing.plan(tight, profiles, ["nv_h100_sxm"], confirm_top=1).candidates[0]
    assert not c.feasible and "missed even alone" in c.reason
    (tmp / "d.yaml").write_text(yaml.safe_dump({"services": [{**clips, "frames": 80}]}))
    assert_one_line_error(run_cli("plan", "d.yaml", cwd=tmp), "services[0] (clips): frames 80")
