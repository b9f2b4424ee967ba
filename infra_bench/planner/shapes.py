"""LLM architecture facts for the planner, and what the serving model derives from them.

One row per model in workloads/architectures/llm_reference.csv (official configs, exact parameter
counts, sources). From the totals the model splits the parameters into what every token uses
(attention projections, dense MLPs, shared experts, lm_head: "dense") and the routed experts, and
counts the KV cache by attention layout: full layers grow with the context, sliding-window layers
stop at their window, linear-attention layers keep a fixed state per sequence, and MLA keeps one
latent vector per token and layer.

A model outside the catalog is planned from its own config.json (a local folder, `predict --model PATH`):
local_shape.py builds the same shape from it, with the same definitions.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import lru_cache

from ..catalog import llm_rows
from ..errors import UserError, closest


@dataclass(frozen=True)
class LlmShape:
    id: str
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    tied_embeddings: bool
    total_params: int
    active_params: int
    kv_bytes_per_token_bf16: int          # full-attention layers only
    experts: int | None
    experts_per_token: int | None
    first_dense_layers: int
    attention: str
    full_layers: int
    sliding_layers: int
    sliding_window: int | None
    linear_layers: int
    linear_state_bytes_bf16: int          # per sequence, all linear-attention layers together
    mla_kv_lora_rank: int | None          # MLA only: the latent cached per token and layer ...
    mla_rope_dim: int | None              # ... next to the decoupled rope key
    attn_flops_per_ctx: float             # per query token per context token, all full-attention layers
    max_positions: int | None
    source: str
    config_path: str | None = None        # a local config.json the shape was built from (local_shape.py); None: catalog

    @property
    def moe(self) -> bool:
        return bool(self.experts and self.experts_per_token)

    @property
    def mla(self) -> bool:
        return self.mla_kv_lora_rank is not None

    @property
    def decode_attn_flops_per_ctx(self) -> float:
        """Per decode token and context token. MLA engines decode with the up-projections absorbed:
        scores over the latent + rope dims and values over the latent, per head."""
        if self.mla:
            return self.full_layers * self.heads * 2 * (2 * self.mla_kv_lora_rank + self.mla_rope_dim)
        return self.attn_flops_per_ctx

    @property
    def embedding_params(self) -> int:
        """The input embedding table: looked up, never multiplied (the lm_head is counted as dense)."""
        return self.vocab * self.hidden

    @property
    def expert_params(self) -> float:
        """All routed experts together: total - active = experts a token skips = (1 - k/E) x experts."""
        if not self.moe:
            return 0.0
        return (self.total_params - self.active_params) / (1 - self.experts_per_token / self.experts)

    @property
    def dense_params(self) -> float:
        """Weights every token multiplies through (lm_head included, input embedding not)."""
        return self.total_params - self.expert_params - self.embedding_params

    @property
    def routed_active_params(self) -> float:
        return self.expert_params * self.experts_per_token / self.experts if self.moe else 0.0

    @property
    def kv_per_layer_bytes_bf16(self) -> float:
        return self.kv_bytes_per_token_bf16 / max(self.full_layers, 1)

    def kv_bytes(self, context, kv_bytes_per_elem: float):
        """KV cache of one sequence of `context` tokens (all layers, bytes), plus linear-attention
        state (works on numbers and numpy arrays)."""
        return self.attended(context) * self.kv_bytes_per_token_bf16 * kv_bytes_per_elem / 2.0 \
            + self.linear_state_bytes_bf16

    def attended(self, context):
        """Context tokens one query attends to, in full-layer units: sliding-window layers stop at
        their window (works on numbers and numpy arrays)."""
        import numpy as np

        window = np.minimum(context, self.sliding_window or 0) * self.sliding_layers / max(self.full_layers, 1)
        return context + window


def _int(r: dict, key: str, default: int | None = None) -> int | None:
    v = (r.get(key) or "").strip()
    return int(float(v)) if v else default


@lru_cache(maxsize=1)
def shapes() -> dict[str, LlmShape]:
    """The catalog (infra_bench/catalog.py, shared with the runner) as the planner's shapes."""
    out = {}
    for r in llm_rows().values():
        layers = _int(r, "num_layers")
        mla = r["attention_type"].startswith("MLA")
        out[r["id"]] = LlmShape(
            id=r["id"], layers=layers, hidden=_int(r, "hidden_size"), heads=_int(r, "num_attention_heads"),
            kv_heads=_int(r, "num_kv_heads"), head_dim=_int(r, "head_dim"), vocab=_int(r, "vocab_size"),
            tied_embeddings=r["tie_word_embeddings"].strip().lower() == "true",
            total_params=_int(r, "total_params_exact"), active_params=_int(r, "active_params_exact"),
            kv_bytes_per_token_bf16=_int(r, "kv_cache_bytes_per_token_bf16"),
            experts=_int(r, "moe_num_experts"), experts_per_token=_int(r, "moe_experts_per_token"),
            first_dense_layers=_int(r, "first_k_dense_layers", 0), attention=r["attention_type"],
            full_layers=_int(r, "full_attention_layers", layers), sliding_layers=_int(r, "sliding_window_layers", 0),
            sliding_window=_int(r, "sliding_window"), linear_layers=_int(r, "linear_attention_layers", 0),
            linear_state_bytes_bf16=_int(r, "linear_state_bytes_per_seq_bf16", 0),
            mla_kv_lora_rank=_int(r, "mla_kv_lora_rank") if mla else None,
            mla_rope_dim=_int(r, "mla_qk_rope_head_dim") if mla else None,
            attn_flops_per_ctx=float(r["attn_flops_per_token_per_ctx_token"] or 0),
            max_positions=_int(r, "max_position_embeddings"), source=r["source"])
    return out


# How a catalog row's native_dtype (the checkpoint's own weights, from its config's quantization_config) reads as a
# planner precision, where it is narrower than 16 bits: fp8 block-scaled weights; MXFP4 or INT4 routed experts with the
# other layers in 16-bit, which is what the planner's int4 prices for a MoE model.
RELEASED = (("float8", "fp8"), ("mxfp4", "int4"), ("int4", "int4"))


def released_precision(model_id: str) -> tuple[str, str] | None:
    """(the planner precision a catalog model is published in, the catalog's words for its weights) where the
    published checkpoint is narrower than 16 bits (DeepSeek-V3/R1 and MiniMax-M2.5 in fp8, gpt-oss and Kimi-K2.5
    with 4-bit experts); None for a 16-bit checkpoint, a local model, or a row that does not say."""
    words = (llm_rows().get(model_id) or {}).get("native_dtype", "").strip()
    short = words.split(" (")[0].split(";")[0]  # the weights, without the row's detail
    return next(((precision, short) for prefix, precision in RELEASED if words.lower().startswith(prefix)), None)


def _facts(shape: LlmShape) -> str:
    """A shape's architecture facts as one string: everything but its names and where it came from."""
    return json.dumps({k: v for k, v in asdict(shape).items() if k not in ("id", "source", "config_path")},
                      sort_keys=True, default=str)


@lru_cache(maxsize=1)
def _by_facts() -> dict[str, str]:
    """Architecture facts -> the catalog ids of that shape joined with " + "."""
    ids: dict[str, list[str]] = {}
    for mid, shape in shapes().items():
        ids.setdefault(_facts(shape), []).append(mid)
    return {facts: " + ".join(sorted(v)) for facts, v in ids.items()}


def architectures() -> dict[str, str]:
    """Catalog id -> the architecture it shares with other ids: the ids of identical shapes joined with " + "
    (DeepSeek-R1 and DeepSeek-V3, one architecture whose measured rows repeat each other figure for figure). What the
    fit knows about one of them it knows about the other."""
    return {mid: _by_facts()[_facts(shape)] for mid, shape in shapes().items()}


def architecture(model_id: str) -> str:
    """The architecture a model shares with catalog ids of the same shape (architectures): a local copy of a catalog
    model is that model; another local model is its own."""
    shape = get_shape(model_id)
    return _by_facts().get(_facts(shape), shape.id)


def model_ids(kind: str = "llm") -> list[str]:
    """The LLM ids the planner knows (the registry's planner_models hook; `kind` is always llm)."""
    return list(shapes())


def is_local(model: str) -> bool:
    """Whether `model` names a local model (a folder with config.json, or the file) rather than a catalog id: a
    path that exists, or one written as a path (with a slash, ~ or .json), so that a missing one says so. The
    registry's planner_paths hook."""
    from .local_shape import as_path, exists

    if model in shapes() or not model.strip():
        return False
    return "/" in model or "\\" in model or model.startswith("~") or model.endswith(".json") or exists(as_path(model))


_local: dict[str, LlmShape] = {}  # the local shapes built in this process, by id


def local_shape(model: str) -> LlmShape:
    """The shape of a local model's config.json (local_shape.py), built once per file in a process. Its id is
    the folder's name, or the config's full path where the name is a catalog id or another local model's."""
    from .local_shape import config_file, from_config_file

    file = config_file(model).resolve()
    name = file.parent.name if file.name == "config.json" else file.stem
    taken = _local.get(name)
    if name in shapes() or (taken is not None and taken.config_path != str(file)):
        name = str(file)
    shape = from_config_file(str(file), name)
    _local[shape.id] = shape
    return shape


def get_shape(model_id: str) -> LlmShape:
    """A catalog id's shape, a local model's (a path), or one built earlier in this process (by its id)."""
    s = shapes()
    if model_id in s:
        return s[model_id]
    if model_id in _local:
        return _local[model_id]
    if is_local(model_id):
        return local_shape(model_id)
    raise UserError(f"unknown model '{model_id}'{closest(model_id, s)}; known: {', '.join(s)}; or give the path of "
                    f"a local Hugging Face folder with config.json")
