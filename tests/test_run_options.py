"""Run options that a spec's cells cannot use (--trust-remote-code for a model with no code of its own,
--cpu-watts-per-core where energy is measured) were recorded as if they had applied; each is now noted in
the records (and so under the run's table), and where the option does apply no note is made."""
import json
from pathlib import Path

from infra_bench.devices.onnxruntime import EpProbe
from infra_bench.engine import NO_OWN_CODE_NOTE, RunOptions, plan, unused_options
from infra_bench.measure.energy import (
    CounterMeter,
    RaplMeter,
    cpu_meter,
    rapl_domains,
    unused_watts_note,
)
from infra_bench.spec.loader import spec_from_dict
from infra_bench.workloads import llm

from .conftest import TINY


def _own_code_folder(folder: Path) -> Path:
    """A local folder whose config is its own class (auto_map: AutoConfig -> configuration_x.XConfig)."""
    import torch
    from safetensors.torch import save_file

    folder.mkdir()
    (folder / "configuration_x.py").write_text(
        "from transformers import LlamaConfig\n\n\nclass XConfig(LlamaConfig):\n    model_type = 'xllama'\n")
    (folder / "config.json").write_text(json.dumps({
        "model_type": "xllama", "auto_map": {"AutoConfig": "configuration_x.XConfig"}, "hidden_size": 64,
        "intermediate_size": 128, "num_hidden_layers": 1, "num_attention_heads": 4, "vocab_size": 1000}))
    save_file({"w": torch.zeros(1)}, str(folder / "model.safetensors"))
    return folder


def test_trust_remote_code_is_noted_where_the_model_has_no_code_of_its_own(tmp_path: Path):
    trusted = RunOptions(out=tmp_path / "res", trust_remote_code=True)
    (built_in,) = plan([spec_from_dict(TINY)], trusted)
    assert built_in.notes == [NO_OWN_CODE_NOTE]
    (untrusted,) = plan([spec_from_dict(TINY)], RunOptions(out=tmp_path / "res"))
    assert untrusted.notes == []
    own = _own_code_folder(tmp_path / "own")
    (folder,) = plan([spec_from_dict({**TINY, "arch": None, "model": str(own)})], trusted)
    assert folder.notes == [] and folder.resolved.info["own_code"] is True  # the flag let its code run


def test_cpu_watts_per_core_is_noted_where_energy_is_not_estimated(tmp_path: Path):
    gpu_without_nvml = EpProbe("cuda", "CUDAExecutionProvider", 0, None, "NVML is not installed")
    resolved = llm.resolve(spec_from_dict(TINY))
    (note,) = unused_options(resolved, gpu_without_nvml, RunOptions(cpu_watts_per_core=5.0))
    assert note == ("--cpu-watts-per-core had no effect: this device's energy is not measured (energy_note says "
                    "why), and the watts-per-core estimate is made only on a CPU whose RAPL counters cannot be read")
    assert unused_options(resolved, gpu_without_nvml, RunOptions()) == []  # not given: nothing to say
    assert unused_watts_note(CounterMeter(lambda: 0.0, "nvml_counter", "device")).startswith(
        "--cpu-watts-per-core had no effect: nvml_counter measures this device's energy, and")
    domain = tmp_path / "intel-rapl:0"
    domain.mkdir()
    (domain / "energy_uj").write_text("100")
    assert "rapl measures this device's energy" in unused_watts_note(RaplMeter(rapl_domains(str(tmp_path))))
    # this machine's CPU: estimated (the watts apply, no note) unless RAPL is readable here
    assert (unused_watts_note(cpu_meter(5.0)) is None) == (not rapl_domains())
