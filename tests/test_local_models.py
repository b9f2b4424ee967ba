"""Local Hugging Face folders as a user brings them: real save_pretrained folders of tiny models, and
the ways such a folder goes wrong, each refused before anything is built with the problem and the fix."""
from pathlib import Path

from .conftest import (
    TINY,
    assert_one_line_error,
    refused_before_running,
    run_cli,
    write_spec,
)


def _refused(folder: Path, fragment: str, trust_remote_code: bool = False, **fields) -> str:
    """A spec of `folder` refused before anything runs (the command line's error is checked once, below)."""
    return refused_before_running({**TINY, "arch": None, "model": str(folder), **fields}, fragment,
                                  folder.parent / "res", trust_remote_code)


def _llama(folder: Path) -> Path:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM
    cfg = AutoConfig.for_model("llama", hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                               num_attention_heads=4, num_key_value_heads=2, vocab_size=1000)
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(cfg).save_pretrained(folder)
    return folder


def test_a_truncated_safetensors_file_is_refused_naming_it(tmp: Path):
    (weights,) = _llama(tmp / "ckpt").glob("*.safetensors")
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    write_spec(tmp, "s.yaml", arch=None, model="ckpt")
    assert_one_line_error(run_cli("run", "s.yaml", "--out", "res", cwd=tmp),
                          f"{weights.resolve()}: {weights.stat().st_size} bytes of the")
    weights.write_bytes(b"not a safetensors file at all")
    _refused(tmp / "ckpt", "not a safetensors file")


def test_a_checkpoint_lacking_weights_is_not_timed_with_random_ones(tmp: Path):
    """A folder whose safetensors lack some of its model's weights loaded with transformers filling them with
    random values, and the run was recorded as `weights: checkpoint`; its cells now fail naming what is missing,
    as a local embedder's do."""
    from safetensors.torch import load_file, save_file

    from infra_bench.engine import RunOptions, build, plan
    from infra_bench.spec.loader import spec_from_dict

    (weights,) = _llama(tmp / "ckpt").glob("*.safetensors")
    tensors = load_file(weights)
    del tensors["model.norm.weight"]
    save_file(tensors, weights, metadata={"format": "pt"})
    opts = RunOptions(out=tmp / "res")
    (planned,) = plan([spec_from_dict({**TINY, "arch": None, "model": str(tmp / "ckpt")})], opts)
    said = (f"{tmp / 'ckpt'}: the checkpoint lacks 1 of LlamaForCausalLM's weights (such as model.norm.weight); "
            f"it was not saved from a model of this kind")
    assert build(planned, opts) == (None, said)


def test_an_encoder_folder_given_as_an_llm_is_refused(tmp: Path):
    """A BERT embedder under kind: llm ran, timing an LM head transformers made up with random weights."""
    import json

    import torch
    from transformers import BertConfig, BertModel
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=100, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2)).save_pretrained(tmp / "bert")
    _refused(tmp / "bert", "architectures BertModel is not a causal language model")
    config = tmp / "bert" / "config.json"
    config.write_text(json.dumps({"model_type": "t5", "d_model": 32, "num_layers": 1, "num_heads": 2}))
    _refused(tmp / "bert", "model_type 't5' has no causal language model")


def test_a_model_larger_than_this_hosts_memory_is_refused_before_it_is_built(tmp: Path):
    """A folder whose config describes far more parameters than any host holds (its weights file is
    small: nothing is read or allocated) is refused with the size, not ended by the OOM killer (exit 137)."""
    import json
    config = _llama(tmp / "big") / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "hidden_size": 32768, "intermediate_size": 131072,
                                  "num_hidden_layers": 256, "num_attention_heads": 64, "head_dim": 512}))
    said = _refused(tmp / "big", "B parameters need", dtype="bf16", device="cpu")
    assert "GiB in bf16 to load, but this host has" in said


def test_calibrate_takes_a_local_folder_as_its_own_shape_or_its_catalog_models(tmp: Path):
    """A local folder's records were skipped as "model 'None' is not in the planner catalog", then as "the shape
    of no planner catalog model": a folder of no catalog shape calibrates as its own (the round trip is in
    test_calibration.py), a fine-tune of a catalog model as that model, and one whose config.json is gone or
    can no longer be planned is skipped naming the file."""
    import json

    from infra_bench.planner.measurements import record_measurements
    from infra_bench.planner.profiles import load_hardware
    from infra_bench.planner.shapes import shapes

    from .conftest import write_cpu_profile
    folder = _llama(tmp / "inhouse-2layer").resolve()
    write_spec(tmp, "s.yaml", arch=None, model="inhouse-2layer", batch_size=[1], prompt_len=[8], output_len=[4])
    assert run_cli("run", "s.yaml", "--out", "res", "--device", "cpu", cwd=tmp).returncode == 0
    write_cpu_profile(tmp)
    run = str(next((tmp / "res").iterdir()))
    records = [json.loads(line) for line in next((tmp / "res").glob("*/records.jsonl")).read_text().splitlines()]
    hw = load_hardware([tmp / "mine"])
    [m], skipped = record_measurements(records, hw)
    assert m.model == "inhouse-2layer" and not skipped
    assert m.note == (f"a run of {folder} (no catalog model has its shape) is calibrated as that local shape, "
                      f"'inhouse-2layer'")
    # a fine-tune of a catalog model (its config.json has that model's shape) calibrates as that model
    q = shapes()["qwen2.5-0.5b"]
    config = folder / "config.json"
    saved = json.loads(config.read_text())
    config.write_text(json.dumps({**saved, "num_hidden_layers": q.layers, "hidden_size": q.hidden,
                                  "num_attention_heads": q.heads, "num_key_value_heads": q.kv_heads,
                                  "vocab_size": q.vocab}))
    [m], skipped = record_measurements(records, hw)
    assert m.model == "qwen2.5-0.5b" and not skipped
    assert m.note == f"local model {folder} calibrated as qwen2.5-0.5b, the catalog model of its shape"
    # a config that can no longer be planned, and one that is gone: the record is skipped naming the file (the
    # only record, so calibrate says so in one line)
    config.write_text(json.dumps({**saved, "layer_types": ["full_attention"]}))
    p = run_cli("calibrate", run, "--profiles", "mine", cwd=tmp)
    assert_one_line_error(p, f"a run of the local model 'inhouse-2layer', whose config.json can no longer be planned: "
                             f"{config}: transformers")
    config.unlink()
    p = run_cli("calibrate", run, "--profiles", "mine", cwd=tmp)
    assert_one_line_error(p, f"a run of {folder}, whose {config} is gone; put the folder back where it ran")
    assert "'None'" not in p.stderr


def test_a_folder_whose_auto_map_names_a_missing_file_is_refused_naming_it(tmp: Path):
    """With --trust-remote-code, an auto_map naming configuration_x.py the folder lacks ended with
    transformers' pointer to a huggingface.co URL and "check model_type", which is not the problem."""
    import json
    config = _llama(tmp / "own") / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "auto_map": {
        "AutoConfig": "configuration_x.XConfig", "AutoModelForCausalLM": "modeling_x.XForCausalLM"}}))
    said = _refused(tmp / "own", "auto_map names AutoConfig 'configuration_x.XConfig', but configuration_x.py is not "
                                 "in the folder; copy configuration_x.py", trust_remote_code=True)
    assert "http" not in said and "model_type" not in said
