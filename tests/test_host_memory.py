"""Media pipelines (diffusion, DiT, video, TTS) and LLMs for ONNX Runtime too large for this host's free memory
are refused before they are built, with their size, rather than ended by the OOM killer (exit 137, no record,
no message). Nothing large is allocated: sizes are the catalogs' shipped counts or counts on the meta device."""
import json
from pathlib import Path

import pytest

from infra_bench.errors import UserError
from infra_bench.kinds.video import workload as vw
from infra_bench.spec import spec_from_dict
from infra_bench.workloads import diffusion as dw
from infra_bench.workloads import llm as lw
from infra_bench.workloads import tts as tw
from infra_bench.workloads.host_memory import ort_build_peak

from .conftest import assert_one_line_error, run_cli

GIB = 2**30
ROOMY = 1 << 50  # more memory than any host has


def _resolved(fields: dict, module):
    spec = spec_from_dict(fields)
    return spec, module.resolve(spec)


def test_flux_in_fp32_on_a_24_gib_cpu_host_is_refused_with_its_size():
    spec, resolved = _resolved({"kind": "diffusion", "arch": "flux-1-dev", "dtype": "fp32", "device": "cpu"}, dw)
    with pytest.raises(UserError) as e:
        dw.check_host_memory(spec, resolved, free=24 * GIB)
    # 16.9 B parameters, the 11.9 B transformer made in fp32 first: 62.8 GiB in fp32, 44.3 GiB in bf16
    assert "its 16.9 B parameters need 62.8 GiB in fp32 to build, but this host has 24.0 GiB" in str(e.value)
    assert "in bf16 it needs 44.3 GiB" in str(e.value)
    dw.check_host_memory(spec, resolved, free=ROOMY)
    # random weights for an accelerator are made on the accelerator: host memory is not what limits them
    gpu, resolved = _resolved({"kind": "diffusion", "arch": "flux-1-dev", "dtype": "bf16", "device": "cuda"}, dw)
    dw.check_host_memory(gpu, resolved, free=24 * GIB)


@pytest.mark.parametrize("fields, module", [
    ({"kind": "diffusion", "arch": "sd-tiny"}, dw),
    ({"kind": "diffusion", "arch": "sd-tiny", "backend": "onnxruntime", "dtype": "fp16"}, dw),
    ({"kind": "diffusion", "arch": "flux-tiny", "dtype": "bf16"}, dw),
    ({"kind": "video", "arch": "wan-tiny"}, vw),
    ({"kind": "tts", "arch": "vits-tiny"}, tw),
    ({"kind": "tts", "arch": "csm-tiny"}, tw),
    ({"kind": "tts", "arch": "cosyvoice2-tiny"}, tw),
])
def test_every_media_kind_is_checked_against_the_hosts_free_memory(fields, module):
    """A tiny pipeline on the CPU against a free-memory figure smaller than it is refused; against a
    roomy one, and against this host's real figure (through check_cells), it is not."""
    spec, resolved = _resolved({**fields, "device": "cpu"}, module)
    with pytest.raises(UserError, match=r"B parameters need .* GiB in .* but this host has 0\.0 GiB of memory free"):
        module.check_host_memory(spec, resolved, free=1024)
    module.check_host_memory(spec, resolved, free=ROOMY)
    module.check_cells(spec, resolved)


def test_a_diffusers_folder_larger_than_this_hosts_memory_is_refused_before_it_is_built(tmp: Path):
    """A folder whose UNet config describes far more parameters than any host holds (its weights files
    are tiny: nothing is read or allocated) is refused with the size, not ended by the OOM killer."""
    import torch
    import yaml
    from safetensors.torch import save_file

    tiny = dw.catalog()["sd-tiny"].components
    unet = {**tiny["unet"]["config"], "block_out_channels": [32768, 65536]}
    (tmp / "pipe").mkdir()
    (tmp / "pipe" / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    for name, config in (("unet", unet), ("vae", tiny["vae"]["config"]),
                         ("text_encoder", tiny["text_encoder"]["config"])):
        (tmp / "pipe" / name).mkdir()
        (tmp / "pipe" / name / "config.json").write_text(json.dumps(config))
        save_file({"w": torch.zeros(1)}, tmp / "pipe" / name / "model.safetensors")
    (tmp / "d.yaml").write_text(yaml.safe_dump({"kind": "diffusion", "model": "pipe", "resolution": [64],
                                                "steps": [1], "warmup": 0, "min_iters": 1, "min_time_s": 0.0}))
    p = run_cli("run", "d.yaml", "--out", "res", cwd=tmp)
    assert_one_line_error(p, "B parameters need")
    assert "GiB in fp32 to load, but this host has" in p.stderr and not (tmp / "res").exists()


def test_an_onnxruntime_llm_build_is_counted_at_its_peak_not_at_its_weights():
    """ONNX Runtime builds an LLM from its fp32 torch model, exports it and opens a session beside it: about
    4.3x the weights at the peak (2.1x past protobuf's 2 GiB), where the check counted the weights once. Free
    memory of twice the weights takes the torch model on the CPU, and now refuses the ONNX Runtime build."""
    import torch
    from transformers import AutoModelForCausalLM

    on_torch = spec_from_dict({"arch": "llama-tiny", "device": "cpu", "dtype": "fp32"})
    on_ort = spec_from_dict({"arch": "llama-tiny", "backend": "onnxruntime", "name": "ort"})
    resolved = lw.resolve(on_torch)
    with torch.device("meta"):
        weights = lw.param_count(AutoModelForCausalLM.from_config(resolved.config)) * 4
    assert ort_build_peak(weights, "fp32") > 4 * weights and ort_build_peak(3 * GIB, "fp32") < 2.2 * 3 * GIB
    lw.check_host_memory(on_torch, resolved, free=2 * weights)
    with pytest.raises(UserError) as e:
        lw.check_host_memory(on_ort, resolved, free=2 * weights)
    assert str(e.value).startswith("spec 'ort': its 0.0 B parameters need 0.3 GiB in fp32 (an estimate of the peak")
    assert "to export and run in ONNX Runtime, but this host has 0.1 GiB of memory free" in str(e.value)
    assert "\n" not in str(e.value)
    lw.check_host_memory(on_ort, resolved, free=ROOMY)
