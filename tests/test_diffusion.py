"""Diffusion workloads on real tiny pipelines: the loop, timings, FLOPs, ORT parity, bad input."""
import re
from pathlib import Path

import pytest
import torch

from infra_bench.backends.torch.diffusion import build_diffusion
from infra_bench.devices import select_device
from infra_bench.engine import RANDOM_WEIGHTS_NOTE
from infra_bench.spec import spec_from_dict
from infra_bench.spec.diffusion import SCHEDULERS
from infra_bench.workloads import diffusion as dw
from .conftest import assert_one_line_error, read_records, run_cli

TINY = {"kind": "diffusion", "arch": "sd-tiny", "resolution": [64], "steps": [3], "warmup": 0, "min_iters": 2,
        "min_time_s": 0.0}


def _torch(fields: dict | None = None):
    spec = spec_from_dict({**TINY, **(fields or {})})
    resolved = dw.resolve(spec)
    return spec, resolved, build_diffusion(spec, resolved, select_device("cpu"))


def test_our_loop_gives_the_pipeline_image():
    """The denoising loop is StableDiffusionPipeline's: same seed, same image."""
    from diffusers import StableDiffusionPipeline
    spec, resolved, built = _torch({"steps": [4]})
    ex, mods = built.runner, built.runner.mods
    req = dw.make_request(spec, resolved, {"batch_size": 1, "resolution": 64, "steps": 4}, ex)
    with torch.inference_mode():
        hidden, _ = ex.text(req.ids)
        pipe = StableDiffusionPipeline(unet=mods.unet.unet, vae=mods.vae.vae, text_encoder=mods.text.te, tokenizer=None,
                                       scheduler=dw.make_scheduler("euler", resolved.scheduler_config),
                                       safety_checker=None, feature_extractor=None, requires_safety_checker=False)
        expected = pipe(prompt_embeds=hidden[1:], negative_prompt_embeds=hidden[:1], num_inference_steps=4,
                        guidance_scale=spec.guidance_scale, latents=req.noise, output_type="pt").images
        seen = []
        ex_decode = ex.decode
        ex.decode = lambda lat: seen.append(ex_decode(lat)) or seen[-1]
        dw.run_request(ex, req, select_device("cpu").now_ns)
    assert torch.allclose(seen[0], expected, atol=1e-5)


@pytest.mark.parametrize("batch", [1, 2])
def test_step_timings_and_phases_add_up(batch):
    spec, resolved, built = _torch()
    req = dw.make_request(spec, resolved, {"batch_size": batch, "resolution": 64, "steps": 5}, built.runner)
    with torch.inference_mode():
        t = dw.run_request(built.runner, req, select_device("cpu").now_ns)
    assert len(t.step_s) == 5 and all(s > 0 for s in t.step_s) and t.batch_size == batch
    parts = t.text_encode_s + sum(t.step_s) + t.vae_decode_s
    assert parts <= t.image_s and parts > 0.9 * t.image_s  # only scheduler setup is outside the phases


@pytest.mark.parametrize("scheduler", sorted(set(SCHEDULERS) - {"flow_euler"}))  # flow_euler: DiT pipelines
def test_every_scheduler_runs_one_timing_per_scheduler_step(scheduler):
    spec, resolved, built = _torch({"scheduler": scheduler})
    req = dw.make_request(spec, resolved, {"batch_size": 1, "resolution": 64, "steps": 3}, built.runner)
    with torch.inference_mode():
        t = dw.run_request(built.runner, req, select_device("cpu").now_ns)
    sched = dw.make_scheduler(scheduler, resolved.scheduler_config)
    sched.set_timesteps(3)
    assert len(t.step_s) == len(sched.timesteps) == (4 if scheduler == "pndm" else 3)  # PLMS repeats one step
    assert resolved.info["scheduler"] == SCHEDULERS[scheduler]  # the record names what ran


def test_flops_match_the_reference_and_scale_with_pixels():
    spec = spec_from_dict({"kind": "diffusion", "arch": "sd-1.5", "guidance_scale": 1.0})
    resolved = dw.resolve(spec)
    f512 = dw.count_flops(resolved, {"batch_size": 1, "resolution": 512, "steps": 1}, cfg=False)
    f256 = dw.count_flops(resolved, {"batch_size": 1, "resolution": 256, "steps": 1}, cfg=False)
    # model_architectures.csv: SD-1.5 UNet 0.803 TFLOPs per batch-1 eval at 512 px
    assert f512["unet_flops_per_step"] == pytest.approx(0.803e12, rel=0.01)
    assert 3.8 < f512["unet_flops_per_step"] / f256["unet_flops_per_step"] < 4.6
    assert f512["vae_decode_flops"] > 0 and f512["text_encode_flops"] > 0
    cfg = dw.count_flops(resolved, {"batch_size": 1, "resolution": 256, "steps": 1}, cfg=True)
    assert cfg["unet_flops_per_step"] == pytest.approx(2 * f256["unet_flops_per_step"], rel=1e-6)
    assert cfg["unet_evals_per_step"] == 2


@pytest.mark.parametrize("arch", ["sd-1.5", "sdxl-base-1.0"])
def test_component_parameter_counts_match_the_reference(arch):
    resolved = dw.resolve(spec_from_dict({"kind": "diffusion", "arch": arch}))
    mods = dw.build_modules(resolved, torch.device("meta"), torch.float32, 0)
    ref = resolved.info["params_reference"]
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(mods.unet) == ref["unet"] and count(mods.vae) == ref["vae"]
    assert count(mods.text.te) == ref["text_encoder"]
    if mods.text.te2 is not None:
        assert count(mods.text.te2) == ref["text_encoder_2"]


def test_cli_run_torch_and_ort_with_parity(tmp: Path):
    """torch and ONNX Runtime cells, and an ONNX Runtime spec whose parity gate cannot pass, in one
    run (one process: the run's own isolation of a failing spec is tested too)."""
    import yaml
    (tmp / "d.yaml").write_text(yaml.safe_dump({**TINY, "batch_size": [2]}))
    (tmp / "o.yaml").write_text(yaml.safe_dump({**TINY, "batch_size": [2], "backend": "onnxruntime", "name": "o"}))
    impossible = {**TINY, "backend": "onnxruntime", "parity_tolerance": 0.0, "name": "z"}
    (tmp / "z.yaml").write_text(yaml.safe_dump(impossible))
    p = run_cli("run", "d.yaml", "o.yaml", "z.yaml", "--out", "res", cwd=tmp)
    assert p.returncode == 1, p.stderr  # the impossible gate fails its cell; the others are measured
    assert "step p50 ms" in p.stdout and "J/image" in p.stdout
    torch_rec, ort_rec, failed = read_records(tmp / "res")
    assert torch_rec["backend"]["name"] == "torch" and ort_rec["backend"]["name"] == "onnxruntime"
    for r in (torch_rec, ort_rec):
        m = r["metrics"]
        assert r["status"] == "ok" and r["kind"] == "diffusion" and m["step_s"]["n"] == 3 * m["iterations"]
        assert m["images"] == 2 * m["iterations"] and m["images_per_s"] > 0 and m["j_per_image"] > 0
        assert m["unet_flops_per_step"] > 0 and m["unet_evals_per_step"] == 2
        assert all(len(s["step_s"]) == 3 for s in r["samples"])
    parity = ort_rec["backend"]["parity"]
    assert parity["component"] == "unet" and parity["max_rel_diff"] < parity["tolerance"] == 1e-4
    assert failed["status"] == "failed" and failed["error"].startswith("parity gate failed: UNet max_rel_diff")


def test_pndm_records_and_shows_the_steps_it_ran(tmp: Path):
    """PNDM runs one step more than asked (its PLMS warm-up repeats one): the record counts, and the
    table and notes show, the steps the scheduler ran, so no per-step figure is read against the asked count."""
    import yaml
    (tmp / "p.yaml").write_text(yaml.safe_dump({**TINY, "steps": [2], "min_iters": 1, "scheduler": "pndm"}))
    p = run_cli("run", "p.yaml", "--out", "res", cwd=tmp)
    assert p.returncode == 0, p.stderr
    (r,) = read_records(tmp / "res")
    m, note = r["metrics"], "steps: PNDMScheduler ran 3 denoising steps for the 2 asked"
    assert r["cell"]["steps"] == 2 and m["denoise_steps_run"] == 3 and m["step_s"]["n"] == 3 * m["iterations"]
    assert m["flops_per_image"] == m["text_encode_flops"] + 3 * m["unet_flops_per_step"] + m["vae_decode_flops"]
    assert any(n.startswith(note) for n in r["notes"]) and f"note: {note}" in p.stdout
    # random weights said without the LLM's 'generated lengths are forced': an image has no length to force
    assert RANDOM_WEIGHTS_NOTE in r["notes"]
    header, _, row = p.stdout.splitlines()[:3]
    assert row[header.index("steps"):].startswith("3 (2 asked)")


def test_local_diffusers_folder(tmp: Path):
    import yaml
    from diffusers import StableDiffusionPipeline
    _, resolved, built = _torch()
    m = built.runner.mods
    StableDiffusionPipeline(unet=m.unet.unet, vae=m.vae.vae, text_encoder=m.text.te, tokenizer=None,
                            scheduler=dw.make_scheduler("pndm", resolved.scheduler_config), safety_checker=None,
                            feature_extractor=None, requires_safety_checker=False).save_pretrained(tmp / "pipe")
    (tmp / "d.yaml").write_text(yaml.safe_dump({**TINY, "arch": None, "model": "pipe"}))
    p = run_cli("run", "d.yaml", "--out", "res", cwd=tmp)
    assert p.returncode == 0, p.stderr
    (rec,) = read_records(tmp / "res")
    assert rec["model"]["weights"] == "checkpoint" and rec["model"]["weights_hash"].startswith("sha256:")
    assert rec["model"]["scheduler"] == "EulerDiscreteScheduler"  # the spec's default, whatever the folder names
    # a copy cut short is refused before anything is built, naming the file
    (vae,) = (tmp / "pipe" / "vae").glob("*.safetensors")
    vae.write_bytes(vae.read_bytes()[: vae.stat().st_size // 2])
    assert_one_line_error(run_cli("run", "d.yaml", "--out", "res2", cwd=tmp), f"vae/{vae.name}: ")


def test_a_local_diffusers_folder_with_broken_files_is_refused_naming_the_file(tmp: Path):
    """Each was an internal error (a component's config.json cut short or a list) or failed every cell after the
    build (a text encoder left at CLIP's bos/eos ids over a 1000-word vocabulary: 'index out of range in self')."""
    import json
    import shutil

    from diffusers import StableDiffusionPipeline

    from infra_bench.errors import UserError

    _, resolved, built = _torch()
    m = built.runner.mods
    StableDiffusionPipeline(unet=m.unet.unet, vae=m.vae.vae, text_encoder=m.text.te, tokenizer=None,
                            scheduler=dw.make_scheduler("euler", resolved.scheduler_config), safety_checker=None,
                            feature_extractor=None, requires_safety_checker=False).save_pretrained(tmp / "pipe")
    spec = spec_from_dict({**TINY, "arch": None, "model": str(tmp / "pipe")})
    assert dw.resolve(spec).info["weights"] == "checkpoint"

    def broken(file: str, text: str, said: str) -> None:
        shutil.copytree(tmp / "pipe", tmp / "bad", dirs_exist_ok=True)
        (tmp / "bad" / file).write_text(text)
        with pytest.raises(UserError, match=f"^{re.escape(str(tmp / 'bad' / file))}: {re.escape(said)}"):
            dw.resolve(spec_from_dict({**TINY, "arch": None, "model": str(tmp / "bad")}))
        shutil.rmtree(tmp / "bad")
    text = json.loads((tmp / "pipe" / "text_encoder" / "config.json").read_text())
    broken("text_encoder/config.json", json.dumps({**text, "bos_token_id": 49406, "eos_token_id": 49407}),
           "bos_token_id 49406, eos_token_id 49407 outside its vocab_size 1000; set the ids its tokenizer uses")
    broken("unet/config.json", "[1]", "holds a JSON list, not the object of fields save_pretrained writes")
    broken("vae/config.json", "{cut", "unreadable (JSONDecodeError: ")
    broken("model_index.json", "[1]", "holds a JSON list, not the mapping of components")
    broken("scheduler/scheduler_config.json", "\xff", "unreadable (")


@pytest.mark.parametrize("fields, message", [
    ({"arch": "sd-1.5", "resolution": 100}, "resolution 100 is not divisible by the VAE factor 8"),
    ({"steps": 0}, "field 'steps.0': Input should be greater than or equal to 1"),
    ({"guidance_scale": -1}, "field 'guidance_scale': Input should be greater than or equal to 0"),
    ({"scheduler": "eulerr"}, "unknown scheduler 'eulerr' (did you mean 'euler'?)"),
    ({"arch": "sd-15"}, "unknown diffusion architecture 'sd-15' (did you mean 'sd-1.5'?)"),
    ({"dtype": "int8"}, "int8 is not offered for diffusion"),
    ({"arch": None, "model": "gone"}, "model path not found: "),
])
def test_bad_diffusion_input_is_one_line(tmp: Path, fields, message):
    import yaml
    (tmp / "d.yaml").write_text(yaml.safe_dump({**TINY, **fields}))
    assert_one_line_error(run_cli("run", "d.yaml", "--out", "res", cwd=tmp), message)
