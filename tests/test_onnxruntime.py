"""The onnxruntime backend: cached export, parity gate, EP errors, user .onnx files, int8."""
import json
import re
import shutil
from pathlib import Path

import pytest
import torch

from infra_bench.backends.onnxruntime import build as ort_build
from infra_bench.backends.onnxruntime.export import cached_export, exporter
from infra_bench.backends.onnxruntime.providers import parse_ep_options
from infra_bench.devices import select_device
from infra_bench.errors import UserError
from infra_bench.spec import spec_from_dict
from infra_bench.spec.loader import parse_options
from infra_bench.workloads import llm
from .conftest import assert_one_line_error, hint, read_records, refused_before_running, run_cli, write_spec

ORT = {"backend": "onnxruntime"}


def _build(spec_fields: dict, monkeypatch, cache: Path):
    monkeypatch.setenv("INFRA_BENCH_CACHE", str(cache))
    spec = spec_from_dict({"arch": "llama-tiny", **ORT, **spec_fields})
    probe = ort_build.check(spec)
    return ort_build.build_llm(spec, llm.resolve(spec), probe, False)


def test_export_is_cached_and_a_truncated_entry_is_rebuilt(tmp_path: Path, monkeypatch):
    first = _build({}, monkeypatch, tmp_path)
    assert first.error is None and first.info["export"]["cache_hit"] is False
    assert first.info["export"]["export_s"] > 0
    second = _build({}, monkeypatch, tmp_path)
    assert second.info["export"]["cache_hit"] is True and second.info["export"]["export_s"] is None
    model = Path(second.info["export"]["path"])
    model.write_bytes(model.read_bytes()[:1000])  # a partial file
    third = _build({}, monkeypatch, tmp_path)
    assert third.info["export"]["cache_hit"] is False
    assert third.info["export"]["rebuilt_reason"] == "model.onnx has the wrong size"
    assert third.error is None  # the rebuilt model passes parity again


def test_a_crashed_export_leaves_no_entry(tmp_path: Path):
    def half_written(path: Path):
        path.write_bytes(b"partial")
        raise RuntimeError("exporter died")
    with pytest.raises(RuntimeError):
        cached_export({"k": 1}, half_written, tmp_path)
    assert list(tmp_path.iterdir()) == []
    entry = cached_export({"k": 1}, lambda p: p.write_bytes(b"ok"), tmp_path)
    assert not entry.cache_hit and entry.path.read_bytes() == b"ok"
    (entry.path.parent / "meta.json").unlink()  # an entry without its meta is incomplete
    again = cached_export({"k": 1}, lambda p: p.write_bytes(b"ok"), tmp_path)
    assert not again.cache_hit and again.rebuilt_reason == "meta.json missing or unreadable"


def test_parity_gate_passes_at_fp32(tmp_path: Path, monkeypatch):
    built = _build({}, monkeypatch, tmp_path)
    p = built.info["parity"]
    assert p["checked"] and p["max_rel_diff"] < p["tolerance"] == 1e-4 and p["top1_agreement"] == 1.0
    assert built.runner is not None and built.info["providers"] == ["cpu"]


def test_the_torch_export_based_exporter_also_passes_the_parity_gate(tmp_path: Path, monkeypatch):
    """The exporter torch is moving to (dynamo=True) exports the KV-cache graph that the legacy one
    does today; the cache keeps their exports apart."""
    monkeypatch.setenv("INFRA_BENCH_ONNX_EXPORTER", "dynamo")
    built = _build({}, monkeypatch, tmp_path)
    assert built.error is None, built.error
    assert built.info["export"]["exporter"] == "torch.onnx.export(dynamo=True)" and built.info["export"]["opset"] == 18
    p = built.info["parity"]
    assert p["max_rel_diff"] < p["tolerance"] and p["top1_agreement"] == 1.0
    monkeypatch.setenv("INFRA_BENCH_ONNX_EXPORTER", "torchscript")
    legacy = _build({}, monkeypatch, tmp_path)
    assert legacy.info["export"]["exporter"] == "torch.onnx.export(dynamo=False)"
    assert legacy.info["export"]["cache_key"] != built.info["export"]["cache_key"]
    monkeypatch.setenv("INFRA_BENCH_ONNX_EXPORTER", "jit")
    with pytest.raises(UserError, match="INFRA_BENCH_ONNX_EXPORTER='jit' is not an exporter"):
        _build({}, monkeypatch, tmp_path)


def test_parity_gate_fails_visibly_with_an_impossible_tolerance(tmp: Path):
    write_spec(tmp, "s.yaml", **ORT, parity_tolerance=0.0)
    p = run_cli("run", "s.yaml", "--out", "res", cwd=tmp)
    assert p.returncode == 1 and "Traceback" not in p.stderr
    (rec,) = read_records(tmp / "res")
    assert rec["status"] == "failed" and rec["metrics"] is None
    assert rec["error"].startswith("parity gate failed: max_rel_diff")
    assert rec["backend"]["parity"]["max_abs_diff"] > 0 and rec["backend"]["parity"]["tolerance"] == 0.0


def test_a_nan_at_any_resolution_fails_the_gate():
    """Per-resolution checks (diffusion UNet, DiT transformer) gate on their worst; a NaN after a good
    resolution was not picked as the worst, so the gate passed."""
    import numpy as np

    from infra_bench.backends.parity import differences, gate, worst

    ref = np.ones((2, 4), np.float32)
    bad = ref.copy()
    bad[0, 0] = np.nan
    checks = [{"resolution": 64, **differences(ref, ref)}, {"resolution": 128, **differences(ref, bad)}]
    w = worst(checks)
    assert w["resolution"] == 128 and gate({**w, "tolerance": 1e-4}).startswith("parity gate failed")
    assert worst(checks[:1])["resolution"] == 64


def test_ort_run_records_providers_and_coherent_timings(tmp: Path):
    write_spec(tmp, "s.yaml", **ORT, batch_size=[2])
    p = run_cli("run", "s.yaml", "--out", "res", "--ep", "cpu", cwd=tmp)
    assert p.returncode == 0, p.stderr
    assert "ort:cpu" in p.stdout
    (rec,) = read_records(tmp / "res")
    b = rec["backend"]
    assert b["name"] == "onnxruntime" and b["providers"] == ["cpu"] and b["version"]
    assert "CPUExecutionProvider" in b["session_options"]["provider_options"]  # as the session reports
    # the CPU EP takes no provider options (ONNX Runtime only logs one it drops): refused before the model is
    # built and exported, where it failed every cell after the export with exit 1
    p = run_cli("run", "s.yaml", "--out", "opt", "--ep", "cpu", "--ep-option", "arena_extend_strategy=kSameAsRequested",
                cwd=tmp)
    assert_one_line_error(p, "the cpu execution provider takes no provider options (given: arena_extend_strategy)")
    assert not (tmp / "opt").exists()
    assert rec["cell_id"].split("/")[1] == "onnxruntime-cpu"
    for s in rec["samples"]:
        assert len(s["itl_s"]) == 7 and 0 < s["ttft_s"] < s["e2e_s"]


def test_int8_is_quantized_flagged_and_within_its_tolerance(tmp: Path):
    write_spec(tmp, "s.yaml", **ORT)
    p = run_cli("run", "s.yaml", "--out", "res", "--precision", "int8", cwd=tmp)
    assert p.returncode == 0, p.stderr
    assert "quantized: dynamic int8" in p.stdout
    (rec,) = read_records(tmp / "res")
    assert rec["spec"]["dtype"] == "int8" and rec["backend"]["quantization"]["method"].startswith("dynamic int8")
    assert any(n.startswith("quantized") for n in rec["notes"])
    assert 1e-4 < rec["backend"]["parity"]["max_rel_diff"] < 0.15  # really quantized, still close


def test_unavailable_and_unknown_execution_providers(tmp: Path):
    import onnxruntime
    write_spec(tmp, "s.yaml", **ORT)
    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        p = run_cli("run", "s.yaml", "--ep", "cuda", cwd=tmp)
        assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1
        assert "execution provider 'cuda' (CUDAExecutionProvider) is not available" in p.stderr
        assert "available: " in p.stderr and "install onnxruntime-gpu" in p.stderr
    p = run_cli("run", "s.yaml", "--ep", "cdua", cwd=tmp)
    assert p.returncode == 2 and "unknown execution provider 'cdua' (did you mean 'cuda'?)" in p.stderr


def test_user_onnx_file_runs_and_a_wrong_one_is_refused(tmp: Path, tmp_path: Path, monkeypatch):
    built = _build({}, monkeypatch, tmp_path / "cache")
    shutil.copy(built.info["export"]["path"], tmp / "mine.onnx")
    write_spec(tmp, "s.yaml", **ORT, arch=None, model="mine.onnx", name="mine")
    p = run_cli("run", "s.yaml", "--out", "res", cwd=tmp)
    assert p.returncode == 0, p.stderr
    (rec,) = read_records(tmp / "res")
    assert rec["model"]["format"] == "onnx" and rec["model"]["weights_hash"].startswith("sha256:")
    assert rec["backend"]["parity"] == {"checked": False, "reason": "no torch reference for a user .onnx file"}
    assert ort_build.UNCHECKED_NOTE in rec["notes"]  # said where results are read, not only in the record
    assert f"note: {ort_build.UNCHECKED_NOTE}" in p.stdout.splitlines()  # under the table too, as quantized is
    assert rec["backend"]["prefill_logits"] == "last position"  # our export's logits axis is fixed at 1

    exporter().export(torch.nn.Linear(4, 2), (torch.zeros(1, 4),), tmp / "wrong.onnx", ["x"], ["y"], {})
    write_spec(tmp, "w.yaml", **ORT, arch=None, model="wrong.onnx")
    p = run_cli("run", "w.yaml", cwd=tmp)
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr
    assert "do not follow the LLM convention: missing input_ids" in p.stderr and "found inputs: x" in p.stderr
    (tmp / "junk.onnx").write_bytes(b"not a model")
    write_spec(tmp, "j.yaml", **ORT, arch=None, model="junk.onnx")
    p = run_cli("run", "j.yaml", cwd=tmp)
    assert p.returncode == 2 and "not a readable ONNX model" in p.stderr


def test_a_user_onnx_file_quantized_to_int8_is_gated_against_the_file_itself(tmp_path: Path, monkeypatch):
    """int8 of a user's .onnx file had no parity check at all, so a quantization that broke the model was
    timed like any other; the quantized session is now compared with the file's own, unquantized."""
    built = _build({}, monkeypatch, tmp_path / "cache")
    mine = tmp_path / "mine.onnx"
    shutil.copy(built.info["export"]["path"], mine)

    def on_file(**fields):
        spec = spec_from_dict({"model": str(mine), **ORT, "dtype": "int8", **fields})
        return ort_build.build_llm(spec, llm.resolve(spec), ort_build.check(spec), False)

    quantized = on_file()
    p = quantized.info["parity"]
    assert p["checked"] and p["reference"] == "the .onnx file unquantized, in ONNX Runtime"
    assert 1e-4 < p["max_rel_diff"] < p["tolerance"] == 0.15 and quantized.error is None  # really quantized
    assert ort_build.UNCHECKED_NOTE not in quantized.notes
    strict = on_file(parity_tolerance=0.0)
    assert strict.runner is None and strict.error.startswith("parity gate failed: max_rel_diff")


def test_a_user_onnx_file_with_logits_for_every_position_is_recorded_so(tmp_path: Path, monkeypatch):
    """A user's export that returns logits for all prompt positions was recorded as `prefill_logits: last
    position` (our export's form); the record now says what the file computes, read from one prefill."""
    from infra_bench.backends.onnxruntime import llm_export

    class AllPositions(llm_export._KvWrapper):
        logits_to_keep = 0  # as a plain export of the model's forward returns them

    spec = spec_from_dict({"arch": "llama-tiny", **ORT})
    resolved = llm.resolve(spec)
    layout = llm_export.layout_from_config(resolved.config, torch.float32)
    args, axes = llm_export.example_inputs(layout, torch.float32)
    mine = tmp_path / "mine.onnx"
    exporter().export(AllPositions(llm.build(spec, resolved, torch.device("cpu")), layout.layers).eval(), args, mine,
                      layout.input_names(), layout.output_names(), {**axes, "logits": {0: "batch", 1: "seq"}})
    on_file = spec_from_dict({"model": str(mine), **ORT})
    built = ort_build.build_llm(on_file, llm.resolve(on_file), ort_build.check(on_file), False)
    assert built.info["prefill_logits"] == "all positions"
    assert len(built.runner.run(built.runner.prepare(torch.zeros(2, 5, dtype=torch.long)), 3).token_ns) == 3


@pytest.mark.parametrize("fields, message", [
    ({"dtype": "int8"}, "int8 is dynamic quantization in ONNX Runtime"),
    ({**ORT, "dtype": "bf16"}, "bf16 is not supported by the onnxruntime backend"),
    ({**ORT, "dtype": "fp16"}, "fp16 on the cpu execution provider lacks kernels"),
    ({**ORT, "device": "cuda"}, "the execution provider picks the device"),
])
def test_precision_and_device_combinations_are_checked(fields, message):
    spec = spec_from_dict({"arch": "llama-tiny", **fields})
    from infra_bench import engine
    with pytest.raises(UserError, match=message):
        engine.backend_module(spec.backend).check(spec)


def test_backend_options_are_the_backends_own_model():
    """`options:` is validated by the spec's backend; the flat keys of older specs land there too."""
    s = spec_from_dict({"arch": "llama-tiny", "backend": "onnxruntime", "options": {"intra_op_threads": 2},
                        "ep": "cpu", "parity_tolerance": 0.5})
    assert s.options == {"intra_op_threads": 2, "ep": "cpu", "parity_tolerance": 0.5}
    assert s.opts.tolerance(1e-4) == 0.5 and s.opts.graph_optimization is None
    assert "ep" not in s.model_dump() and s.model_dump()["options"]["ep"] == "cpu"
    with pytest.raises(UserError, match="'intra_op_threads' applies only to backend onnxruntime"):
        spec_from_dict({"arch": "llama-tiny", "options": {"intra_op_threads": 2}})
    with pytest.raises(UserError, match=r"'thread' is not an option of backend onnxruntime \(its options: ep, "):
        spec_from_dict({"arch": "llama-tiny", "backend": "onnxruntime", "options": {"thread": 2}})
    with pytest.raises(UserError, match="options.graph_optimization: Input should be"):
        spec_from_dict({"arch": "llama-tiny", "backend": "onnxruntime", "options": {"graph_optimization": "max"}})


def test_backend_option_flag_reaches_the_session(tmp: Path):
    write_spec(tmp, "s.yaml", **ORT, batch_size=[1], output_len=[2], min_iters=1, min_time_s=0, warmup=0)
    p = run_cli("run", "s.yaml", "--out", "res", "--backend-option", "intra_op_threads=1",
                "--backend-option", "graph_optimization=basic", cwd=tmp)
    assert p.returncode == 0, p.stderr
    (rec,) = read_records(tmp / "res")
    assert rec["spec"]["options"] == {"intra_op_threads": 1, "graph_optimization": "basic"}
    assert rec["backend"]["session_options"]["intra_op_num_threads"] == 1
    assert rec["backend"]["session_options"]["graph_optimization_level"] == "basic"
    assert_one_line_error(run_cli("run", "s.yaml", "--backend-option", "intra_op_threads=0", cwd=tmp),
                          "options.intra_op_threads: Input should be greater than or equal to 1")


def test_ort_only_fields_and_ep_options_are_validated():
    with pytest.raises(UserError, match="'ep' applies only to backend onnxruntime"):
        spec_from_dict({"arch": "llama-tiny", "ep": "cuda"})
    with pytest.raises(UserError, match="a .onnx model needs backend onnxruntime"):
        spec_from_dict({"model": "x.onnx"})
    assert parse_ep_options(["device_id=1", "a = b"]) == {"device_id": "1", "a": "b"}
    assert parse_options(["intra_op_threads=2", "graph_optimization=basic", "ep=[1"]) == {
        "intra_op_threads": 2, "graph_optimization": "basic", "ep": "[1"}
    with pytest.raises(UserError, match="--backend-option 'oops' is not key=value"):
        parse_options(["oops"])
    with pytest.raises(UserError, match="--ep-option 'oops' is not key=value"):
        parse_ep_options(["oops"])
    assert json.dumps(select_device("cpu").describe())


def _without(modules: list[str], *args: str) -> tuple[str, ...]:
    """python -c arguments that run the CLI as if `modules` were not installed."""
    block = "; ".join(f"sys.modules[{m!r}] = None" for m in modules)
    return ("-c", f"import sys, runpy; {block}; "
                  f"sys.argv = ['infra-bench', *{list(args)!r}]; runpy.run_module('infra_bench', run_name='__main__')")


def test_default_suite_skips_a_backend_that_is_not_installed(tmp: Path):
    fast = ("--min-iters", "1", "--min-time", "0", "--warmup", "0")
    p = run_cli(cwd=tmp, python_args=_without(["onnx", "diffusers"], "run", "--out", "res", *fast))
    assert p.returncode == 0, p.stderr
    assert "note: skipping 'llama-tiny-ort' from the default suite: the onnxruntime backend needs onnx" in p.stderr
    assert "note: skipping 'sd-tiny' from the default suite: diffusion workloads need diffusers" in p.stderr
    records = read_records(tmp / "res")
    assert {r["spec"]["backend"] for r in records} == {"torch"} and {r["kind"] for r in records} == {"llm", "tts", "embedding"}
    write_spec(tmp, "s.yaml", **ORT)
    p = run_cli(cwd=tmp, python_args=_without(["onnx"], "run", "s.yaml"))
    assert p.returncode == 2 and p.stderr.strip() == f"error: the onnxruntime backend needs onnx: {hint('onnx')}"


# tiny configs of the catalog's mixture-of-experts families (llm_reference.csv), as their model types name them
_SMALL = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
          "num_key_value_heads": 2, "head_dim": 16, "vocab_size": 256, "max_position_embeddings": 256}
_MOE = {"mixtral": {"num_local_experts": 4}, "qwen3_moe": {"num_experts": 4, "moe_intermediate_size": 32},
        "gpt_oss": {"num_local_experts": 4, "layer_types": ["sliding_attention", "full_attention"]},
        "minimax_m2": {"num_local_experts": 4},
        "deepseek_v3": {"n_routed_experts": 4, "moe_intermediate_size": 32, "first_k_dense_replace": 0, "n_group": 1,
                        "topk_group": 1, "kv_lora_rank": 16, "q_lora_rank": 32, "qk_rope_head_dim": 16,
                        "qk_nope_head_dim": 8, "v_head_dim": 16},
        "glm_moe_dsa": {"n_routed_experts": 4, "moe_intermediate_size": 32, "first_k_dense_replace": 0, "n_group": 1,
                        "topk_group": 1},
        "qwen3_5_moe_text": {"num_experts": 4, "moe_intermediate_size": 32, "shared_expert_intermediate_size": 32}}


@pytest.mark.parametrize("model_type", list(_MOE))
def test_a_mixture_of_experts_model_is_refused_when_planned_not_after_its_build(model_type):
    """A MoE LLM failed late, in torch.onnx's export (aten::histc has no ONNX conversion), after the model was
    built; each MoE family of the catalog is now refused at planning, in one line naming the family and
    --backend torch, while the torch backend still takes it and a dense model still passes."""
    from transformers import AutoConfig
    config = AutoConfig.for_model(model_type, **_SMALL, num_experts_per_tok=2, **_MOE[model_type])
    resolved = llm.ResolvedModel(config, {"weights": "random"})
    with pytest.raises(UserError, match=rf"'moe': {model_type} is a mixture-of-experts model, .* use --backend torch$"):
        llm.check_cells(spec_from_dict({"arch": "llama-tiny", **ORT, "name": "moe"}), resolved)
    llm.check_cells(spec_from_dict({"arch": "llama-tiny", "name": "moe"}), resolved)
    dense = spec_from_dict({"arch": "llama-tiny", **ORT})
    llm.check_cells(dense, llm.resolve(dense))


def test_a_mixture_of_experts_checkpoint_on_onnxruntime_is_refused_before_anything_is_built(tmp: Path):
    from transformers import AutoConfig, AutoModelForCausalLM
    config = AutoConfig.for_model("mixtral", **_SMALL, num_experts_per_tok=2, **_MOE["mixtral"])
    AutoModelForCausalLM.from_config(config).save_pretrained(tmp / "moe")
    message = refused_before_running({"model": str(tmp / "moe"), **ORT, "name": "mine"},
                                     "spec 'mine': mixtral is a mixture-of-experts model", tmp / "res")
    assert message.endswith("use --backend torch") and "\n" not in message


# dense tiny configs whose cache is not one KV tensor pair of num_key_value_heads x head_dim per layer
_MLA = {"num_key_value_heads": 4, "n_routed_experts": 4, "first_k_dense_replace": 2, "n_group": 1, "topk_group": 1,
        "kv_lora_rank": 16, "q_lora_rank": 32, "qk_rope_head_dim": 16, "qk_nope_head_dim": 8, "v_head_dim": 16}
_GDN = {"layer_types": ["linear_attention", "full_attention"], "linear_num_key_heads": 2, "linear_num_value_heads": 4,
        "linear_key_head_dim": 16, "linear_value_head_dim": 16}
_CACHE = {"deepseek_v3": (_MLA, "deepseek_v3 has multi-head latent attention (MLA)"),
          "qwen3_5_text": (_GDN, "qwen3_5_text has 1 of 2 layers without a KV cache (linear_attention: a recurrent state)"),
          "qwen3_next": ({**_GDN, "mlp_only_layers": [0, 1]},
                         "qwen3_next has 1 of 2 layers without a KV cache (linear_attention: a recurrent state)")}


@pytest.mark.parametrize("model_type", list(_CACHE))
def test_a_dense_model_whose_cache_the_export_cannot_carry_is_refused_when_planned(model_type):
    """A dense MLA model (DeepSeek-style) or one with linear-attention layers (Qwen3.5, Qwen3-Next) failed late, in
    the export's cache wrapper (tensor sizes that do not match; 'LinearAttentionLayer' has no 'update'), after the
    model was built; now refused at planning in one line naming what and --backend torch, which still takes it."""
    from transformers import AutoConfig
    fields, what = _CACHE[model_type]
    config = AutoConfig.for_model(model_type, **{**_SMALL, **fields})
    resolved = llm.ResolvedModel(config, {"weights": "random"})
    with pytest.raises(UserError, match=rf"^spec 'dense': {re.escape(what)}, .* use --backend torch$"):
        llm.check_cells(spec_from_dict({"arch": "llama-tiny", **ORT, "name": "dense"}), resolved)
    llm.check_cells(spec_from_dict({"arch": "llama-tiny", "name": "dense"}), resolved)


def test_a_dense_mla_checkpoint_on_onnxruntime_is_refused_on_the_command_line_before_anything_is_built(tmp: Path):
    from transformers import AutoConfig, AutoModelForCausalLM
    AutoModelForCausalLM.from_config(AutoConfig.for_model("deepseek_v3", **{**_SMALL, **_MLA})).save_pretrained(tmp / "mla")
    p = run_cli("run", "--model", "mla", "--backend", "onnxruntime", "--out", "res", cwd=tmp)
    assert_one_line_error(p, "spec 'mla': deepseek_v3 has multi-head latent attention (MLA)")
    assert p.stderr.strip().endswith("use --backend torch") and not (tmp / "res").exists()
