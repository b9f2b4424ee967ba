"""A model outside the catalog, planned from its own config.json: the shape built on the meta device equals
the catalog's for catalog models, and every input that cannot be planned is a one-line error."""
from __future__ import annotations

import json
import re
from dataclasses import fields
from pathlib import Path

import pytest
import transformers

from infra_bench.catalog import _value, hf_config, llm_rows
from infra_bench.errors import UserError
from infra_bench.planner import llm_model, profiles, sizing
from infra_bench.planner.calibration import fit_from
from infra_bench.planner.demand import load_demand
from infra_bench.planner.fit import Case
from infra_bench.planner.media_model import kind_of
from infra_bench.planner.shapes import LlmShape, architecture, get_shape, shapes

from .conftest import assert_one_line_error, run_cli

# Catalog rows counted with a remote-code model's native twin: the CSV gives Kimi K2.5's text_config as DeepSeek-V3's
REMOTE_AS = {"kimi-k2.5": "deepseek_v3"}
# Qwen3.5's Gated DeltaNet sizes are no catalog columns: its config.json (ai-dynamo/aiconfigurator@87fe4b0c,
# src/aiconfigurator/model_configs/Qwen--Qwen3.5-397B-A17B_config.json, the row's source)
QWEN35_LINEAR = {"linear_num_key_heads": 16, "linear_num_value_heads": 64, "linear_key_head_dim": 128,
                 "linear_value_head_dim": 128, "linear_conv_kernel_dim": 4}
PARAMS = ("total_params", "active_params")
SKIP = ("id", "source", "config_path")


def catalog_config(model_id: str) -> dict | None:
    """A config.json for a catalog row, from its columns (the run path's catalog.hf_config plus the MoE, MLA
    and attention-layout columns), or None where no native transformers class builds it (remote code only)."""
    row = llm_rows()[model_id]
    cls = row["hf_instantiated_as"].split()[0]
    native = getattr(transformers, cls, None)
    model_type = native.config_class.model_type if native else REMOTE_AS.get(model_id)
    if model_type is None:
        return None
    col = {k: _value(v) for k, v in row.items() if isinstance(v, str) and v.strip() and _number(v)}
    cfg = {**hf_config(model_id, model_type), "sliding_window": col.get("sliding_window")}
    experts = {"num_experts_per_tok": col.get("moe_experts_per_token")}
    if model_type in ("mixtral", "gpt_oss", "minimax_m2"):  # intermediate_size is the expert's
        cfg |= {"num_local_experts": col["moe_num_experts"], **experts}
    elif model_type == "qwen3_moe":
        cfg |= {"num_experts": col["moe_num_experts"], "moe_intermediate_size": col["moe_intermediate_size"], **experts}
    elif model_type in ("deepseek_v3", "glm_moe_dsa"):
        cfg.pop("head_dim")  # the catalog's is nope + rope; the config's own follows from them
        cfg |= {"n_routed_experts": col["moe_num_experts"], "n_shared_experts": col["moe_shared_experts"],
                "moe_intermediate_size": col["moe_intermediate_size"], "first_k_dense_replace": col["first_k_dense_layers"],
                "kv_lora_rank": col["mla_kv_lora_rank"], "q_lora_rank": col["mla_q_lora_rank"],
                "qk_rope_head_dim": col["mla_qk_rope_head_dim"], "qk_nope_head_dim": col["qk_nope_head_dim"],
                "v_head_dim": col["mla_v_head_dim"], **experts}
    elif model_type == "qwen3_5_moe":  # a multimodal config: the text model is what the catalog counts
        every = col["num_layers"] // col["full_attention_layers"]
        text = {**cfg, **QWEN35_LINEAR, "model_type": "qwen3_5_moe_text", "num_experts": col["moe_num_experts"],
                "moe_intermediate_size": col["moe_intermediate_size"], **experts,
                "shared_expert_intermediate_size": col["moe_shared_experts"] * col["moe_intermediate_size"],
                "layer_types": ["full_attention" if (i + 1) % every == 0 else "linear_attention"
                                for i in range(col["num_layers"])]}
        return {"model_type": model_type, "architectures": [cls], "text_config": text,
                "tie_word_embeddings": cfg["tie_word_embeddings"]}
    return {"model_type": model_type, "architectures": [native.__name__ if native else "DeepseekV3ForCausalLM"], **cfg}


def _number(v: str) -> bool:
    try:
        _value(v)
        return True
    except ValueError:
        return False


def compare(got: LlmShape, want: LlmShape, tolerance: float = 1e-3) -> list[str]:
    """Field by field: parameter counts within `tolerance` (relative), everything else exactly."""
    out = []
    for f in fields(LlmShape):
        a, b = getattr(got, f.name), getattr(want, f.name)
        if f.name in SKIP:
            continue
        if f.name in PARAMS:
            if abs(a - b) > tolerance * b:
                out.append(f"{f.name} {a:,} vs catalog {b:,} ({a / b - 1:+.3%})")
        elif a != b:
            out.append(f"{f.name} {a!r} vs catalog {b!r}")
    return out


def write_config(folder: Path, config: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.mark.parametrize("model_id", ["llama-3.1-8b", "qwen3-30b-a3b", "deepseek-v3", "gpt-oss-120b",
                                      "qwen3.5-397b-a17b"])
def test_a_catalog_models_config_gives_the_catalogs_shape(model_id: str, tmp: Path):
    """Dense GQA, MoE, MLA MoE with dense first layers, sliding-window MoE, and a multimodal config whose text
    model has Gated DeltaNet layers: built from config.json on the meta device, the shape is the catalog row's."""
    from infra_bench.planner.local_shape import from_config_file

    folder = write_config(tmp / model_id, catalog_config(model_id))
    got = from_config_file(str(folder / "config.json"), model_id)
    assert compare(got, shapes()[model_id], tolerance=0) == []  # exact: the catalog counted the same way


TINY = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 256, "intermediate_size": 688,
        "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 32000,
        "max_position_embeddings": 2048}


def test_a_variant_gets_its_own_shape(tmp: Path):
    """Half of Llama 3.1 8B's layers, tied: 16 layers of 218,112,000 and one V x d table fewer (the per-layer
    count of model_architectures.md's worked check), not the catalog's figures."""
    row = catalog_config("llama-3.1-8b")
    folder = write_config(tmp / "half-llama", {**row, "num_hidden_layers": 16, "tie_word_embeddings": True})
    got, full = get_shape(str(folder)), get_shape("llama-3.1-8b")
    assert got.id == "half-llama" and got.config_path == str((folder / "config.json").resolve())
    assert got.total_params == full.total_params - 16 * 218_112_000 - 128256 * 4096
    assert got.tied_embeddings and got.layers == 16 and got.full_layers == 16
    assert got.kv_bytes_per_token_bf16 == full.kv_bytes_per_token_bf16 // 2
    assert got.attn_flops_per_ctx == full.attn_flops_per_ctx / 2


def test_a_local_copy_of_a_catalog_model_predicts_as_the_catalog_model(tmp: Path):
    """The id's prediction and the copy's agree figure for figure: the copy uses the dense class's factors,
    as the catalog model does; only its name and the note on where its shape came from differ."""
    from infra_bench.planner.calibration import fit_from

    folder = write_config(tmp / "my-llama", catalog_config("llama-3.1-8b"))
    h100, fit = profiles.load_hardware()["nv_h100_sxm"], fit_from(None)
    ours = llm_model.predict(llm_model.replica(str(folder), h100, engine="vllm"), fit, 8, 1024, 256).to_dict()
    theirs = llm_model.predict(llm_model.replica("llama-3.1-8b", h100, engine="vllm"), fit, 8, 1024, 256).to_dict()
    assert ours.pop("model") == "my-llama" and theirs.pop("model") == "llama-3.1-8b"
    note = ours["notes"].pop(0)
    assert note.startswith(f"shape from {folder.resolve()}/config.json, parameters counted on the meta device (8.03B)")
    assert ours == theirs
    assert Case("my-llama", "nv_h100_sxm", "vllm", "bf16").key("cls") == "dense"  # found again by its id
    # the fit knows it as the catalog model: a category that measured llama-3.1-8b measured this copy too
    assert architecture("my-llama") == "llama-3.1-8b"
    assert architecture(str(write_config(tmp / "own-tiny", TINY))) == "own-tiny"  # a shape no catalog model has


def test_local_ids_never_take_a_catalog_id_or_another_folders_name(tmp: Path):
    a = get_shape(str(write_config(tmp / "llama-3.1-8b", TINY)))
    b = get_shape(str(write_config(tmp / "one" / "tiny", TINY)))
    c = get_shape(str(write_config(tmp / "two" / "tiny", {**TINY, "num_hidden_layers": 2})))
    assert a.id == str((tmp / "llama-3.1-8b" / "config.json").resolve()) and a.layers == 4
    assert get_shape("llama-3.1-8b").layers == 32  # the catalog's, still
    assert b.id == "tiny" and c.id == str((tmp / "two" / "tiny" / "config.json").resolve()) and c.layers == 2
    assert get_shape(str(tmp / "one" / "tiny" / "config.json")) is b  # the file or its folder: one shape
    assert kind_of(str(tmp / "one" / "tiny")) == "llm" and kind_of("./no-such-folder") == "llm"


@pytest.mark.parametrize("config,fragment", [
    (None, "model path not found: "),
    ({}, ": no config.json; give the Hugging Face folder of a model"),
    ('{"model_type": "llama",', "config.json: not a readable JSON file (Expecting property name"),
    ({"model_type": "t5", "architectures": ["T5ForConditionalGeneration"], "d_model": 64, "num_layers": 2},
     "model_type 't5' is an encoder-decoder model; the planner models decoder-only LLMs"),
    ({"model_type": "bert", "architectures": ["BertForMaskedLM"], "hidden_size": 64, "num_hidden_layers": 2,
      "num_attention_heads": 2, "intermediate_size": 128}, "architectures BertForMaskedLM is not a language model"),
    ({"model_type": "chatglm", "auto_map": {"AutoConfig": "configuration_chatglm.ChatGLMConfig"}},
     "this model needs its own Python code (auto_map in config.json), which predict and plan do not run"),
    ({"model_type": "my_secret_arch"}, "model_type 'my_secret_arch' is not one transformers"),
    ({"model_type": "jamba", "hidden_size": 64, "num_hidden_layers": 4, "num_attention_heads": 4,
      "num_key_value_heads": 2, "intermediate_size": 128, "vocab_size": 1000, "num_experts": 4,
      "attn_layer_period": 2, "attn_layer_offset": 1, "mamba_d_state": 8, "mamba_expand": 2, "mamba_dt_rank": 8},
     "2 of 4 layers are linear-attention or state-space layers (JambaMambaDecoderLayer, JambaMambaMixer)"),
    ({**TINY, "model_type": "mistral", "architectures": ["MistralForCausalLM"], "sliding_window": 512},
     "every layer attends over a sliding window of 512 tokens"),
    # transformers 5 validates fields with huggingface_hub's strict dataclasses: this was an internal error, exit 1
    ({**TINY, "layer_types": ["full_attention"]},
     "cannot read this config (ValueError: `num_hidden_layers` (4) must be equal to the number of `layer_types` (1))"),
], ids=["missing", "no-config", "not-json", "encoder-decoder", "masked-lm", "remote-code", "unknown-type",
        "state-space", "all-sliding", "field-validation"])
def test_what_cannot_be_planned_is_a_one_line_error(config, fragment: str, tmp: Path):
    folder = tmp / "model"
    if config is not None:
        folder.mkdir()
    if isinstance(config, str):
        (folder / "config.json").write_text(config)
    elif config:
        write_config(folder, config)
    with pytest.raises(UserError, match=re.escape(fragment)) as e:
        get_shape(str(folder))
    assert "\n" not in str(e.value)


def test_predict_and_plan_a_local_folder_end_to_end(tmp: Path):
    """The command line names the folder and says where its shape came from; a demand's relative `model:` is
    relative to the demand file; a missing path is a one-line error (exit 2)."""
    write_config(tmp / "models" / "tiny-llama", TINY)
    p = run_cli("predict", "--model", str(tmp / "models" / "tiny-llama"), "--hardware", "nv_h100_sxm", cwd=tmp)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("tiny-llama on 1 x NVIDIA H100")
    assert f"note: shape from {(tmp / 'models' / 'tiny-llama' / 'config.json').resolve()}, parameters counted on " \
           f"the meta device (0.02B); not a catalog model: efficiencies are the fit's for dense models" in p.stdout
    assert_one_line_error(run_cli("predict", "--model", "models/nothing", "--hardware", "nv_h100_sxm", cwd=tmp),
                          f"model path not found: {tmp.resolve() / 'models' / 'nothing'}")
    (tmp / "plans").mkdir()
    (tmp / "plans" / "d.yaml").write_text(json.dumps({"services": [{
        "name": "chat", "model": "../models/tiny-llama", "traffic": {"requests_per_s": 5, "input_len": 512,
                                                                     "output_len": 128},
        "slo": {"ttft_p95_s": 2.0, "tpot_p99_s": 0.2}}]}))
    demand = load_demand(tmp / "plans" / "d.yaml")
    assert demand.services[0].model == str((tmp / "models" / "tiny-llama").resolve())
    (tmp / "plans" / "bad.yaml").write_text(
        (tmp / "plans" / "d.yaml").read_text().replace("../models/tiny-llama", "../models/tiny-lama"))
    with pytest.raises(UserError, match=re.escape(f"bad.yaml: services[0]: model path not found: {tmp.resolve()}")):
        load_demand(tmp / "plans" / "bad.yaml")  # at load, naming the service: not as every part's reason
    plan = sizing.plan(demand, profiles.load_hardware(), ["nv_h100_sxm"], confirm_top=1)
    assert plan.candidates[0].feasible
    assert any(n.startswith("chat: shape from ") for n in plan.notes)


def test_a_config_stretched_by_rope_scaling_has_the_longer_context(tmp: Path):
    """Qwen3's recipe for 131,072 tokens: YaRN factor 4 over its 32,768 original positions, max_position_embeddings
    left at 40,960. The context is vLLM's max_model_len for it (131,072), so a request of 100,256 tokens is
    predicted; past that it is refused, as on the catalog's Qwen3 (40,960)."""
    tiny = {**TINY, "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "head_dim": 64,
            "max_position_embeddings": 40960}
    yarn = {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}
    assert get_shape(str(write_config(tmp / "plain", tiny))).max_positions == 40960
    assert get_shape(str(write_config(tmp / "long", {**tiny, "rope_scaling": yarn}))).max_positions == 131072
    stretched = {**tiny, "rope_scaling": {"rope_type": "linear", "factor": 2.0}}
    assert get_shape(str(write_config(tmp / "linear", stretched))).max_positions == 81920
    h100 = profiles.load_hardware()["nv_h100_sxm"]
    fit = fit_from(None)
    assert llm_model.predict(llm_model.replica(str(tmp / "long"), h100, engine="vllm"), fit, 1, 100_000, 256).fits
    for model, context in ((str(tmp / "long"), "131,072"), ("qwen3-8b", "40,960")):
        with pytest.raises(UserError, match=f"context is {context} tokens and --input-len 140000 \\+ --output-len 256"):
            llm_model.predict(llm_model.replica(model, h100, engine="vllm"), fit, 1, 140_000, 256)


def test_a_hub_name_that_is_no_folder_names_its_catalog_id(tmp: Path, monkeypatch):
    monkeypatch.chdir(tmp)
    with pytest.raises(UserError, match=re.escape("model id (for 'Qwen/Qwen2.5-7B-Instruct': qwen2.5-7b)")):
        get_shape("Qwen/Qwen2.5-7B-Instruct")
    with pytest.raises(UserError, match=r"model path not found: .*foo/bar; .* model id$"):
        get_shape("foo/bar")


def test_counts_are_kept_in_the_cache_by_the_files_bytes(tmp: Path, monkeypatch):
    """Counting a config takes seconds (transformers, the meta device); the counts are kept in the user's cache,
    read back for the same bytes, and counted again when the file changes."""
    from infra_bench.paths import cache_dir
    from infra_bench.planner.local_shape import from_config_file

    monkeypatch.setenv("INFRA_BENCH_CACHE", str(tmp / "cache"))
    file = str(write_config(tmp / "m", TINY) / "config.json")
    first = from_config_file(file, "m")
    (kept,) = (cache_dir("shapes")).glob("*.json")
    stored = json.loads(kept.read_text())
    assert stored["total_params"] == first.total_params and stored["layers"] == 4
    kept.write_text(json.dumps({**stored, "total_params": 7}))  # marked, to see that it is what is read
    from_config_file.cache_clear()
    again = from_config_file(file, "other-name")
    assert again.total_params == 7 and again.id == "other-name" and again.config_path == file
    write_config(tmp / "m", {**TINY, "num_hidden_layers": 2})
    from_config_file.cache_clear()
    assert from_config_file(file, "m").layers == 2 and len(list(cache_dir("shapes").glob("*.json"))) == 2
    kept.write_text("{not json")  # a damaged entry is counted again
    write_config(tmp / "m", TINY)
    from_config_file.cache_clear()
    assert from_config_file(file, "m") == first
