"""Diffusion-transformer pipelines (FLUX.1, SD3.5, Qwen-Image, HunyuanDiT): the catalog builds at the official parameter
counts, the shipped FLOP table matches a fresh count, predict answers for each model with guidance
applied as the model runs it, and the tiny shapes run end to end (run, calibrate, predict back)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from infra_bench.planner import dit
from tests.conftest import assert_one_line_error, read_records, refused_before_running, run_cli, write_cpu_profile

# The transformers' official parameter counts (FLUX.1: 12B; SD3.5: 2.5B / 8.1B with the pos_embed buffer;
# Qwen-Image and HunyuanDiT: the exact counts of these builds, against the published 20B and 1.5B).
TRANSFORMERS = {"flux-1-dev": 11_901_408_320, "flux-1-schnell": 11_891_178_560,
                "sd3.5-medium": 2_243_171_520 + 226_492_416, "sd3.5-large": 8_056_627_520 + 89_653_248,
                "qwen-image": 20_430_401_088, "hunyuandit-v1.2": 1_499_952_032}  # Qwen-Image 20B; HunyuanDiT 1.5B


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


def test_predict_answers_for_each_model_with_its_guidance(tmp: Path):
    """In process for every model (the shipped FLOP table needs no torch), through the CLI for one."""
    from infra_bench.planner import dit_prior
    from infra_bench.planner import media_model as mm
    from infra_bench.planner.profiles import load_hardware

    h100 = load_hardware()["nv_h100_sxm"]
    table = json.loads((Path(__file__).parents[1] / "workloads/reference/diffusion_flops.json").read_text())
    for model, cfg in (("flux-1-dev", False), ("flux-1-schnell", False), ("sd3.5-medium", True),
                       ("sd3.5-large", True), ("qwen-image", True), ("hunyuandit-v1.2", True)):
        got = mm.predict_diffusion(model, h100, "bf16", 1024, 28, 3.5).to_dict()
        base, passes = table[model]["1024"], 2 if cfg else 1
        assert got["flops_per_unit"] == passes * base["text"] + 28 * passes * base["unet_per_step"] + base["vae"]
        mfu = dit_prior.mfu_prior(989.5, dit_prior.pass_work(model))
        assert got["efficiency"]["mfu"] == mfu and "fitted to 11 public eager timings" in got["notes"][0]
        if got["fits"]:
            assert got["latency_s"] == pytest.approx(got["flops_per_unit"] / (989.5e12 * mfu) + 28 * 2e-3, rel=1e-6)
        else:
            assert model == "qwen-image" and "does not fit" in got["notes"][-1]  # 20B + 8.3B in bf16 on 80 GB
    p = run_cli("predict", "--model", "flux-1-dev", "--hardware", "nv_h100_sxm", "--precision", "bf16", "--resolution",
                "1024", "--steps", "28", "--guidance-scale", "3.5", "--json", cwd=tmp)
    assert p.returncode == 0, p.stderr
    got, api = json.loads(p.stdout), json.loads(json.dumps(mm.predict_diffusion("flux-1-dev", h100, "bf16", 1024, 28,
                                                                                 3.5).to_dict()))
    # the command says what it priced: flux-1-dev is guidance-distilled, one pass per step at any guidance
    assert got["notes"][-1] == "one image of 1024 x 1024 px, 28 steps, guidance scale 3.5 (one pass per step)"
    assert {**got, "notes": got["notes"][:-1]} == api


def test_tiny_dit_pipelines_run_calibrate_and_predict_back(tmp: Path):
    """The tiny FLUX, SD3, Qwen-Image and HunyuanDiT shapes through diffusers' own pipelines with random
    weights: every step timed,
    guidance as each family runs it, FLOPs from the meta-device count; a calibrated predict of the
    batch-1 FLUX cell gives its measured time back."""
    pytest.importorskip("diffusers")
    write_cpu_profile(tmp)
    common = {"kind": "diffusion", "resolution": [64], "steps": [3], "warmup": 1, "min_iters": 2, "min_time_s": 0.0}
    once = {**common, "warmup": 0, "min_iters": 1}  # only the FLUX record calibrates
    (tmp / "s.yaml").write_text(yaml.safe_dump_all([{**common, "arch": "flux-tiny", "guidance_scale": 3.5},
                                                    {**once, "arch": "sd3-tiny", "guidance_scale": 7.0},
                                                    {**once, "arch": "qwen-image-tiny", "guidance_scale": 4.0},
                                                    {**once, "arch": "hunyuandit-tiny", "guidance_scale": 5.0}]))
    run = run_cli("run", "s.yaml", "--out", "res", "--device", "cpu", cwd=tmp)
    assert run.returncode == 0, run.stderr
    recs = {r["spec"]["arch"]: r for r in read_records(tmp / "res")}
    schedulers = {"hunyuandit-tiny": "DDPMScheduler"}
    for arch, passes in (("flux-tiny", 1), ("sd3-tiny", 2), ("qwen-image-tiny", 2), ("hunyuandit-tiny", 2)):
        r = recs[arch]
        m, base = r["metrics"], dit.count(arch, 64)
        assert r["status"] == "ok" and r["model"]["weights"] == "random" and r["model"]["family"] == arch[:-5]
        assert r["model"]["scheduler"] == schedulers.get(arch, "FlowMatchEulerDiscreteScheduler")
        assert m["denoise_steps_run"] == 3 and m["step_s"]["n"] == 3 * m["iterations"]
        assert m["unet_evals_per_step"] == passes
        assert m["flops_per_image"] == passes * base["text"] + 3 * passes * base["unet_per_step"] + base["vae"]
        assert 0 < m["vae_decode_s"]["mean"] < m["image_s"]["mean"]
    (tmp / "flux").mkdir()  # calibrate on the FLUX record alone: one MFU fits the DiT family's records
    (tmp / "flux" / "records.jsonl").write_text(json.dumps(recs["flux-tiny"]) + "\n")
    (tmp / "flux" / "run.json").write_bytes(next((tmp / "res").glob("*/run.json")).read_bytes())
    p = run_cli("calibrate", str(tmp / "flux"), "--out", "cal.json", "--profiles", "mine", cwd=tmp)
    assert p.returncode == 0, p.stderr
    assert list(json.loads((tmp / "cal.json").read_text())["media_fits"]) == ["dit|this_cpu|torch|fp32"]
    d = json.loads(run_cli("predict", "--model", "flux-tiny", "--resolution", "64", "--steps", "3", "--guidance-scale",
                           "3.5", "--hardware", "this_cpu", "--precision", "fp32", "--calibration", "cal.json",
                           "--json", "--profiles", "mine", cwd=tmp).stdout)
    assert d["calibrated"] and d["latency_s"] == pytest.approx(recs["flux-tiny"]["metrics"]["image_s"]["mean"], rel=1e-6)


def test_a_bad_dit_resolution_is_a_one_line_error(tmp: Path):
    pytest.importorskip("diffusers")
    (tmp / "s.yaml").write_text("kind: diffusion\narch: flux-tiny\nresolution: [62]\n")
    assert_one_line_error(run_cli("run", "s.yaml", cwd=tmp), "resolution 62 is not a multiple of 4 (flux-tiny")


def test_dit_transformers_run_on_onnxruntime_inside_the_pipeline(tmp: Path):
    """flux-tiny with the transformer exported (torch.export-based, the batch dynamic: traced at 2, run at
    1) and run by ORT inside diffusers' pipeline; parity against torch fp32 recorded and within
    tolerance; the FLOPs are the torch run's. (SD3 exports the same way; checked by hand, docs.)"""
    pytest.importorskip("onnxruntime")
    (tmp / "s.yaml").write_text(yaml.safe_dump({"kind": "diffusion", "backend": "onnxruntime", "arch": "flux-tiny",
                                                "resolution": [64], "steps": [2], "guidance_scale": 3.5, "warmup": 0,
                                                "min_iters": 1, "min_time_s": 0.0}))
    run = run_cli("run", "s.yaml", "--out", "res", "--device", "cpu", cwd=tmp)
    assert run.returncode == 0, run.stderr
    assert "[torch.onnx]" not in run.stdout + run.stderr  # the exporter's progress lines stay off the terminal
    for r in read_records(tmp / "res"):
        b, m = r["backend"], r["metrics"]
        assert r["status"] == "ok" and b["name"] == "onnxruntime" and b["exporter"] == "torch.onnx.export(dynamo=True)"
        assert b["parity"]["component"] == "transformer" and b["parity"]["max_rel_diff"] <= 1e-4
        base, passes = dit.count(r["spec"]["arch"], 64), m["unet_evals_per_step"]
        assert m["flops_per_image"] == passes * base["text"] + 2 * passes * base["unet_per_step"] + base["vae"]


@pytest.mark.parametrize("fields, fragment", [
    ({"backend": "onnxruntime", "dtype": "fp16"}, "onnxruntime runs DiT transformers in fp32 here"),
    ({"scheduler": "ddim"}, "flux-tiny is a flow-matching pipeline; its scheduler is flow_euler"),
])
def test_dit_specs_the_pipeline_cannot_run_are_refused(fields: dict, fragment: str):
    pytest.importorskip("diffusers")
    from infra_bench.errors import UserError
    from infra_bench.spec.loader import spec_from_dict
    from infra_bench.workloads import diffusion as dw

    spec = spec_from_dict({"kind": "diffusion", "arch": "flux-tiny", "resolution": 64, **fields}, "test")
    with pytest.raises(UserError, match=fragment):
        dw.check_cells(spec, dw.resolve(spec))
    qwen = spec_from_dict({"kind": "diffusion", "arch": "qwen-image-tiny", "backend": "onnxruntime"}, "test")
    with pytest.raises(UserError, match="onnxruntime runs the FLUX.1 and SD3.5 transformers"):
        dw.check_cells(qwen, dw.resolve(qwen))
    hunyuan = spec_from_dict({"kind": "diffusion", "arch": "hunyuandit-tiny", "scheduler": "flow_euler"}, "test")
    with pytest.raises(UserError, match="hunyuandit-tiny is a v-prediction DDPM pipeline; its scheduler is ddpm"):
        dw.resolve(hunyuan)
    unet = spec_from_dict({"kind": "diffusion", "arch": "sd-tiny", "scheduler": "flow_euler"}, "test")
    with pytest.raises(UserError, match="flow_euler is for flow-matching"):
        dw.resolve(unet)


def test_the_dit_prior_is_the_fit_of_its_public_timings_and_its_held_out_error_is_stated():
    """A and C are what the eleven fitted timings give; the median error on the eight it never saw (other
    harnesses) is the one the basis states; a smaller transformer and a bigger part use less of the peak,
    and outside the fitted parts and sizes the curve is held, not extrapolated."""
    import statistics

    from infra_bench.planner import dit_prior as d
    from infra_bench.planner import media_model as mm

    assert d.fit_prior() == (d.A, d.C)
    errors = [h["error"] for h in d.held_out()]
    assert len(errors) == 8 and round(statistics.median(abs(e) for e in errors), 2) == d.HELD_OUT_ERROR
    assert all(abs(d.predicted(t) / t.seconds - 1) < 0.25 for t in d.FIT)
    small, big = d.pass_work("hunyuandit-v1.2"), d.pass_work("flux-1-dev")
    assert d.mfu_prior(312, small) < d.mfu_prior(312, big) and d.mfu_prior(990, big) < d.mfu_prior(312, big)
    assert d.mfu_prior(5000, big) == d.mfu_prior(mm.PEAK_RANGE[1], big)
    assert d.mfu_prior(312, 1e12) == d.mfu_prior(312, d.WORK_RANGE[0])
    from infra_bench.planner.profiles import load_hardware

    a100 = load_hardware()["nv_a100_80g_sxm"]  # what predict computes is what was fitted
    t = next(t for t in d.FIT if t.hardware == a100.id and t.model == "hunyuandit-v1.2")
    assert mm.predict_diffusion(t.model, a100, "bf16", 1024, t.steps, t.guidance).latency_s == \
        pytest.approx(d.predicted(t))


def _save_tiny_pipeline(arch: str, folder: Path) -> dict:
    """A tiny pipeline of `arch`'s family with random weights, written by diffusers' save_pretrained as a
    downloaded pipeline is (model_index.json, one folder per component; no tokenizers: a run needs none).
    Returns its components."""
    import diffusers
    import torch

    from infra_bench.spec.diffusion import SCHEDULERS
    from infra_bench.workloads.dit import FLOW_SCHEDULER, OWN_SCHEDULER, PIPELINES

    entry = dit.catalog()[arch]
    family = entry["family"]
    torch.manual_seed(1)
    parts = {n: dit.build(arch, n, "cpu") for n in entry["components"]}
    sched = getattr(diffusers, SCHEDULERS[OWN_SCHEDULER.get(family, FLOW_SCHEDULER)]).from_config(entry["scheduler"])
    tokenizers = {n.replace("text_encoder", "tokenizer"): None for n in parts if n.startswith("text_encoder")}
    extra = {"safety_checker": None, "feature_extractor": None, "requires_safety_checker": False} \
        if family == "hunyuandit" else {}
    getattr(diffusers, PIPELINES[family])(scheduler=sched, **tokenizers, **parts, **extra).save_pretrained(folder)
    return parts


@pytest.mark.parametrize("arch, tokens", [
    ("flux-tiny", {"text_encoder": 77, "text_encoder_2": 512}),  # FLUX.1-dev's; CLIP's 77 positions
    ("sd3-tiny", {"text_encoder": 77, "text_encoder_2": 77, "text_encoder_3": 256}),
    ("qwen-image-tiny", {"text_encoder": 512}),  # after the template's 34 tokens
    ("hunyuandit-tiny", {"text_encoder": 8, "text_encoder_2": 16}),  # what the transformer is built for
])
def test_a_local_dit_folder_runs_its_own_weights_in_its_familys_pipeline(tmp: Path, arch: str, tokens: dict):
    """A save_pretrained DiT folder (a transformer, no UNet) is read as its family's pipeline: the folder's
    weights in every component, the family's prompt lengths and guidance, one timed request through
    diffusers' pipeline of that family."""
    pytest.importorskip("diffusers")
    import torch

    from infra_bench.devices import select_device
    from infra_bench.spec.loader import spec_from_dict
    from infra_bench.workloads import diffusion as dw
    from infra_bench.workloads import dit as dw_dit

    parts = _save_tiny_pipeline(arch, tmp / "pipe")
    spec = spec_from_dict({"kind": "diffusion", "model": str(tmp / "pipe"), "resolution": [64], "steps": [2]})
    resolved = dw.resolve(spec)
    dw.check_cells(spec, resolved)
    entry = dit.catalog()[arch]
    assert resolved.family == entry["family"] and resolved.entry["guidance"] == entry["guidance"]
    assert resolved.info["weights"] == "checkpoint" and resolved.info["text_tokens"] == tokens
    assert resolved.info["weights_hash"].startswith("sha256:") and resolved.vae_scale_factor == dit.vae_factor(arch)
    ex = dw_dit.DitExecutor(resolved, torch.device("cpu"), torch.float32, seed=99)  # not the folder's seed
    for name, m in {**ex.encoders, "transformer": ex.transformer, "vae": ex.vae}.items():
        saved = parts[name].state_dict()
        assert all(torch.equal(v, saved[k]) for k, v in m.state_dict().items()), name
    req = dw_dit.make_request(spec, resolved, {"batch_size": 1, "resolution": 64, "steps": 2}, ex)
    assert {k: v.shape[1] for k, v in req.ids.items()} == {k: n + entry.get("text_prefix", 0) for k, n in tokens.items()}
    with torch.inference_mode():
        t = dw_dit.run_request(ex, req, select_device("cpu").now_ns)
    assert len(t.step_s) == 2 and t.image_s > 0


def test_a_local_dit_folder_runs_from_the_command_line_and_an_unsupported_one_is_refused(tmp: Path):
    """`model: PATH` of a FLUX folder: measured and recorded as a checkpoint (its path, content hash, family,
    pipeline), FLOPs counted on its own configs, calibrating the DiT fit; a DiT pipeline of a family not run
    here is one line naming it."""
    pytest.importorskip("diffusers")
    from infra_bench.spec.loader import spec_from_dict
    from infra_bench.workloads import diffusion as dw

    parts = _save_tiny_pipeline("flux-tiny", tmp / "flux")
    fields = {"kind": "diffusion", "model": "flux", "resolution": [64], "steps": [2], "guidance_scale": 3.5,
              "warmup": 0, "min_iters": 1, "min_time_s": 0.0}
    (tmp / "s.yaml").write_text(yaml.safe_dump(fields))
    run = run_cli("run", "s.yaml", "--out", "res", "--device", "cpu", cwd=tmp)
    assert run.returncode == 0, run.stderr
    (r,) = read_records(tmp / "res")
    m, model = r["metrics"], r["model"]
    assert r["status"] == "ok" and r["workload"] == "flux" and "weights: random" not in " ".join(r["notes"])
    assert model["weights"] == "checkpoint" and model["path"] == str((tmp / "flux").resolve())
    assert model["family"] == "flux" and model["pipeline"] == "diffusers.FluxPipeline"
    assert model["weights_hash"].startswith("sha256:") and model["scheduler"] == "FlowMatchEulerDiscreteScheduler"
    assert model["params"] == sum(p.numel() for c in parts.values() for p in c.parameters())
    base = dit.count(dw.resolve(spec_from_dict({**fields, "model": str(tmp / "flux")})).entry, 64)
    assert m["unet_evals_per_step"] == 1 and m["denoise_steps_run"] == 2  # guidance-distilled: one pass
    assert m["flops_per_image"] == base["text"] + 2 * base["unet_per_step"] + base["vae"]
    write_cpu_profile(tmp)  # it calibrates the DiT pipelines' fit, not the UNet pipelines'
    run_dir = next((tmp / "res").glob("*/run.json")).parent
    p = run_cli("calibrate", str(run_dir), "--out", "cal.json", "--profiles", "mine", cwd=tmp)
    assert p.returncode == 0, p.stderr
    assert list(json.loads((tmp / "cal.json").read_text())["media_fits"]) == ["dit|this_cpu|torch|fp32"]
    index = json.loads((tmp / "flux" / "model_index.json").read_text())
    (tmp / "flux" / "model_index.json").write_text(json.dumps({**index, "_class_name": "PixArtSigmaPipeline"}))
    refused_before_running({**fields, "model": str(tmp / "flux")},
                           "model_index.json names PixArtSigmaPipeline, a diffusion-transformer pipeline infra-bench "
                           "does not run; local DiT folders run as FluxPipeline, StableDiffusion3Pipeline", tmp / "res2")
