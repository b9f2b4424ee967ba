"""A model outside the catalog, planned from its own config.json: the shape built on the meta device equals
the catalog's for catalog models."""
from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import pytest
import transformers

from infra_bench.catalog import _value, hf_config, llm_rows
from infra_bench.planner.shapes import LlmShape, shapes

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

