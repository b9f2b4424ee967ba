"""`run --arch NAME` / `--model PATH` with `--set KEY=VALUE`: one model measured without writing a spec, the
same spec (and records, and resume) a YAML file would give."""
import json
import re
from pathlib import Path

import pytest
import yaml

from infra_bench.errors import UserError
from infra_bench.spec.loader import local_kind, spec_from_flags

from .conftest import assert_one_line_error, read_records, run_cli
from .test_embedding_local import _bert, _reranker

FAST = ("--min-iters", "1", "--min-time", "0", "--warmup", "0")


def _yaml_route_spec(tmp: Path, fields: dict) -> dict:
    """The spec a record holds for `fields` written as a YAML file, through the functions `run` uses for files:
    load_specs, apply_overrides (the FAST flags), plan (which pins device auto)."""
    from infra_bench.engine import RunOptions, plan
    from infra_bench.spec.loader import apply_overrides, load_specs

    path = tmp / "same.yaml"
    path.write_text(yaml.safe_dump(fields))
    (spec,) = [apply_overrides(s, {"warmup": 0, "min_iters": 1, "min_time_s": 0.0}) for s in load_specs([path])]
    (planned,) = plan([spec], RunOptions(out=tmp / "unused"))
    return planned.spec.model_dump(mode="json")


def test_run_arch_with_set_records_the_yaml_spec_and_resumes(tmp: Path):
    p = run_cli("run", "--arch", "llama-tiny", "--set", "batch_size=[2]", "--set", "prompt_len=16",
                "--set", "output_len=8", *FAST, "--out", "res", cwd=tmp)
    assert p.returncode == 0, p.stderr
    assert "llama-tiny" in p.stdout and "TTFT p50 ms" in p.stdout
    (rec,) = read_records(tmp / "res")
    assert rec["status"] == "ok" and rec["cell"] == {"batch_size": 2, "prompt_len": 16, "output_len": 8}
    yaml_spec = _yaml_route_spec(tmp, {"kind": "llm", "arch": "llama-tiny", "batch_size": [2], "prompt_len": 16,
                                       "output_len": 8})
    assert rec["spec"] == yaml_spec
    folder = tmp / "res" / rec["run_id"]
    assert json.loads((folder / "run.json").read_text())["specs"] == [yaml_spec]  # what --resume reads back

    (folder / "records.jsonl").write_text("")  # as if killed before its cell ended
    again = run_cli("run", "--resume", rec["run_id"], "--out", "res", cwd=tmp)
    assert again.returncode == 0, again.stderr
    (resumed,) = read_records(tmp / "res")
    assert resumed["status"] == "ok" and resumed["cell_id"] == rec["cell_id"] and resumed["spec"] == yaml_spec
    assert_one_line_error(run_cli("run", "--resume", rec["run_id"], "--arch", "llama-tiny", "--out", "res", cwd=tmp),
                          "give only --resume RUN_ID")


def test_run_model_folder_is_told_llm_by_its_files(tmp: Path):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    cfg = AutoConfig.for_model("llama", hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                               num_attention_heads=2, num_key_value_heads=1, vocab_size=200)
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(cfg).save_pretrained(tmp / "ckpt")
    p = run_cli("run", "--model", "ckpt", "--set", "prompt_len=8", "--set", "output_len=4", *FAST,
                "--out", "res", cwd=tmp)
    assert p.returncode == 0, p.stderr
    (rec,) = read_records(tmp / "res")
    assert rec["status"] == "ok" and rec["spec"]["kind"] == "llm" and rec["spec"]["name"] is None
    assert rec["spec"]["model"] == str((tmp / "ckpt").resolve()) and rec["model"]["weights"] == "checkpoint"
    assert "ckpt" in p.stdout  # the label: the folder's name, as a YAML `model:` gives


def test_a_local_models_kind_comes_from_its_files_or_kind(tmp: Path, monkeypatch):
    """Each kind's own hook claims its folders: a BERT base model and a sentence-transformers folder are
    embedders, a cross-encoder a reranker (embedding), model_index.json a diffusers pipeline, an .onnx file an
    LLM; a folder that says none of these is refused in one line asking for --kind, which then decides."""
    monkeypatch.chdir(tmp)
    assert local_kind(_bert(tmp / "st", pooling="cls")) == "embedding"
    assert local_kind(_bert(tmp / "plain", pooling=None)) == "embedding"
    assert local_kind(_reranker(tmp / "rerank")) == "embedding"
    (tmp / "pipe").mkdir()
    (tmp / "pipe" / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    assert local_kind(tmp / "pipe") == "diffusion"
    (tmp / "model.onnx").write_bytes(b"")
    assert local_kind(tmp / "model.onnx") == "llm"
    # only ONNX Runtime runs a file named on the command line, so it needs no --backend; another is refused
    assert spec_from_flags(None, "model.onnx", None, {}).backend == "onnxruntime"
    assert spec_from_flags(None, "model.onnx", None, {}, {"backend": "onnxruntime"}).backend == "onnxruntime"
    with pytest.raises(UserError, match="a .onnx model needs backend onnxruntime"):  # as `model: x.onnx` is
        spec_from_flags(None, "model.onnx", None, {}, {"backend": "torch"})

    (tmp / "bare").mkdir()
    (tmp / "bare" / "config.json").write_text(json.dumps({"model_type": "llama"}))  # no architectures saved
    with pytest.raises(UserError, match="its kind cannot be told from its files .*; say which with --kind, one of "
                                        "llm, diffusion, embedding"):
        spec_from_flags(None, "bare", None, {})
    spec = spec_from_flags(None, "bare", "llm", {"prompt_len": 8})
    assert (spec.kind, spec.model, spec.prompt_len) == ("llm", (tmp / "bare").resolve(), [8])
    with pytest.raises(UserError, match="--kind: unknown kind 'lm' \\(did you mean 'llm'\\?\\)"):
        spec_from_flags(None, "bare", "lm", {})


def test_a_folder_whose_config_json_is_broken_is_told_so_not_asked_for_kind(tmp: Path, monkeypatch):
    """A config.json that is not JSON, not UTF-8 or not an object, and a folder with none: the error names the
    file and the fix, with or without --kind (it asked for --kind, which fixes nothing, and with --kind a
    binary or list config.json was an internal error)."""
    from infra_bench.workloads.files import hf_folder

    monkeypatch.chdir(tmp)
    broken = {"cut": b'{"model_type": "llama", ', "binary": b"\xeb\x00\xff", "list": b"[1, 2]"}
    for name, text in broken.items():
        (tmp / name).mkdir()
        (tmp / name / "config.json").write_bytes(text)
        (tmp / name / "model.safetensors").write_bytes(b"")
    (tmp / "empty").mkdir()
    for name, said in [("cut", "unreadable (JSONDecodeError: "), ("binary", "unreadable (UnicodeDecodeError: "),
                       ("list", "holds a JSON list, not the object of fields save_pretrained writes")]:
        with pytest.raises(UserError, match=f"^{name}/config.json: {re.escape(said)}.*fix or replace the file$"):
            spec_from_flags(None, name, None, {})
        (tmp / name / "model.safetensors").unlink(missing_ok=True)
        _safetensors(tmp / name / "model.safetensors")
        with pytest.raises(UserError, match=re.escape(said)):  # --kind llm: the folder is checked as it loads
            hf_folder((tmp / name).resolve())
    with pytest.raises(UserError, match="--model empty: no config.json .* or model_index.json .*; give the folder "
                                        "save_pretrained wrote$"):
        spec_from_flags(None, "empty", None, {})


def _safetensors(path: Path) -> None:
    import torch
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(1)}, str(path))


@pytest.mark.parametrize("args, fragment", [
    (["--arch", "llama-tni"], ("--arch: unknown architecture 'llama-tni' (did you mean 'llama-tiny'?); "
                               "`infra-bench archs` lists the built-in ones")),
    (["s.yaml", "--arch", "llama-tiny"], "give SPEC files or --arch, not both"),
    (["--arch", "llama-tiny", "--model", "m"], "give --arch NAME or --model PATH, not both"),
    (["--arch", "llama-tiny", "--set", "batch=[1,4]"],
     "--arch llama-tiny with --set: unknown field 'batch' (did you mean 'batch_size'?)"),
    (["--arch", "llama-tiny", "--set", "batch_size"],
     "--set 'batch_size' is not key=value; for example --set batch_size=[1,4]"),
    (["--arch", "llama-tiny", "--set", "batch_size=[1,0]"], "field 'batch_size.1': Input should be greater than"),
    (["--arch", "llama-tiny", "--set", "arch=gpt2-tiny"], "--set arch: name the model with --arch NAME or --model"),
    (["--arch", "llama-tiny", "--set", "dtype=bf16", "--precision", "fp16"],
     "--set dtype and --precision both set dtype; give it once"),
    (["--model", "nowhere"], "--model: model path not found: nowhere"),
    (["--arch", "llama-tiny", "--kind", "llm"], "--kind goes with --model PATH"),
    (["s.yaml", "--set", "prompt_len=[16"], "spec 'llama-tiny': field 'prompt_len': Input should be a valid list"),
    # over the default suite --set reaches every spec: 'unknown field' of one of them did not say so
    (["--set", "prompt_len=16"], ("--set prompt_len: spec 'sd-tiny' (diffusion) has no field 'prompt_len', which "
                                  "only llm specs have; --set applies to the default suite's specs (no SPEC file "
                                  "given): run the one you mean alone, with --arch NAME or a spec file of its own")),
])
def test_bad_flags_give_one_line_and_exit_2(tmp: Path, args, fragment):
    (tmp / "s.yaml").write_text(yaml.safe_dump({"kind": "llm", "arch": "llama-tiny"}))
    assert_one_line_error(run_cli("run", *args, "--out", "res", cwd=tmp), fragment)
    assert not (tmp / "res").exists()


def test_set_overrides_each_spec_of_a_file(tmp: Path):
    """With SPEC files, --set is an override of each spec, validated as the file's fields are."""
    from infra_bench.spec import spec_from_dict
    from infra_bench.spec.loader import (
        apply_overrides,
        check_set_fields,
        load_specs,
        parse_sets,
    )

    path = tmp / "two.yaml"
    path.write_text(yaml.safe_dump_all([{"kind": "llm", "arch": "llama-tiny", "batch_size": [1, 4]},
                                        {"kind": "llm", "name": "g", "arch": "gpt2-tiny"}]))
    fields = parse_sets(["batch_size=[2, 3]", "min_time_s=0.5", "backend=onnxruntime",
                         "options={intra_op_threads: 1}"])
    assert fields == {"batch_size": [2, 3], "min_time_s": 0.5, "backend": "onnxruntime",
                      "options": {"intra_op_threads": 1}}
    specs = [apply_overrides(s, fields) for s in load_specs([path])]
    assert [(s.label, s.batch_size, s.min_time_s, s.backend, s.options) for s in specs] == [
        (label, [2, 3], 0.5, "onnxruntime", {"intra_op_threads": 1}) for label in ("llama-tiny", "g")]
    mixed = load_specs([path]) + [spec_from_dict({"kind": "embedding", "arch": "bert-tiny-embed"})]
    check_set_fields(mixed, fields, suite=False)  # fields every spec has
    with pytest.raises(UserError, match="^--set seq_len: spec 'llama-tiny' \\(llm\\) has no field 'seq_len', which "
                                        "only embedding specs have; --set applies to every spec of the files"):
        check_set_fields(mixed, {"seq_len": 8}, suite=False)
    check_set_fields(mixed, {"seq_lenn": 8}, suite=False)  # no spec has it: each spec's own error says so
