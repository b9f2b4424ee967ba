"""An LLM's planner shape from its own config.json, for a model the catalog does not hold.

`infra-bench predict --model PATH` and a demand's `model: PATH` name a local Hugging Face folder (or
its config.json). transformers builds the model from the config on the meta device: no weights are
read, no memory is taken, nothing is downloaded, and the parameters are counted exactly. Every
figure follows the definitions of the catalog's columns (workloads/architectures/llm_reference.csv):
total counts each unique tensor once (a tied head once) plus the router's persistent buffers, vision
towers and multi-token-prediction layers left out; active is total less the routed experts a token
skips; KV bytes and attention FLOPs count full-attention layers, MLA its latent. What the planner
cannot model from a config (its own Python code, state-space or other linear mixers than Gated
DeltaNet, chunked attention) is refused in one line rather than guessed.
"""
from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

from ..errors import UserError
from ..paths import cached_json
from .shapes import LlmShape

CONFIG = "config.json"
COUNTING = 2  # how the cached counts are derived: raise it when a rule changes (2: the context's rope scaling)
FULL = ("full_attention", "indexed_attention")  # indexed (DeepSeek sparse attention): the cache holds every token
SLIDING = ("sliding_attention",)
LINEAR = ("linear_attention",)
GDN_FIELDS = ("linear_num_key_heads", "linear_num_value_heads", "linear_key_head_dim", "linear_value_head_dim",
              "linear_conv_kernel_dim")
# token mixers other than attention: their state is not a KV cache and is not modelled (Gated DeltaNet aside)
MIXERS = re.compile(r"Mamba|Rwkv|RWKV|Lightning|DeltaNet|ShortConv|Recurrent|Retention|LSTM|Lstm|Hyena|Ssm|SSM")
# what transformers raises on a config it cannot read or build (an unknown field value, sizes that do not divide)
CONFIG_ERRORS = (ValueError, TypeError, KeyError, AttributeError, IndexError, RuntimeError, AssertionError,
                 ZeroDivisionError, OSError)
HEADS_WORDS = ("ForSequenceClassification", "ForTokenClassification", "ForQuestionAnswering", "ForMaskedLM",
               "ForPreTraining", "ForMultipleChoice", "ForNextSentencePrediction")


def as_path(model: str) -> Path:
    """A model string as a path, ~ expanded where it names a home folder."""
    try:
        return Path(model).expanduser()
    except RuntimeError:  # ~name of no user
        return Path(model)


def exists(path: Path) -> bool:
    """Whether the path exists; False for a name no file system takes (too long, a NUL byte)."""
    try:
        return path.exists()
    except (OSError, ValueError):
        return False


def config_file(model: str) -> Path:
    """The config.json a model path names: the file itself, or the one in the folder."""
    path = as_path(model).absolute()
    if not exists(path):
        from .measurements import (
            catalog_model,  # a hub name such as Qwen/Qwen2.5-7B-Instruct: its catalog id
        )

        hub = catalog_model(model)
        raise UserError(f"model path not found: {path}; give an existing local Hugging Face folder with config.json, "
                        f"or a planner catalog model id" + (f" (for '{model}': {hub})" if hub else ""))
    if path.is_dir():
        if not (path / CONFIG).is_file():
            raise UserError(f"{path}: no {CONFIG}; give the Hugging Face folder of a model (config.json is what "
                            f"the planner reads; no weights are needed)")
        return path / CONFIG
    return path


def _load(file: Path):
    """config.json as transformers reads it, and as a dict; one-line errors for what cannot be read."""
    from transformers import AutoConfig

    try:
        raw = json.loads(file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"{file}: not a readable JSON file ({e}); give the model's config.json") from None
    if not isinstance(raw, dict):
        raise UserError(f"{file}: holds JSON {type(raw).__name__}, not a config object; give the model's config.json")
    if raw.get("auto_map"):
        raise UserError(f"{file}: this model needs its own Python code (auto_map in config.json), which predict and "
                        f"plan do not run; give a config.json of a model_type transformers knows (a native port of "
                        f"the model, or the catalog model of its shape)")
    from huggingface_hub.errors import StrictDataclassError
    from transformers import CONFIG_MAPPING

    kind = raw.get("model_type")
    if not isinstance(kind, str) or kind not in CONFIG_MAPPING:
        raise UserError(f"{file}: " + (f"model_type '{kind}' is not one {_version()} knows" if kind else "no model_type")
                        + "; give the config of a model type transformers knows (a newer transformers may know it), or "
                          "predict the catalog model of its shape")
    try:
        cfg = AutoConfig.from_pretrained(str(file), local_files_only=True)
    except (*CONFIG_ERRORS, StrictDataclassError) as e:  # transformers 5 validates config fields with the latter
        if isinstance(e, StrictDataclassError) and e.__cause__ is not None:
            e = e.__cause__  # the field's own complaint ("Class validation error for validator ..." says none)
        said = re.sub(r"[^.;]*https?://\S+", "", str(e).splitlines()[0] if str(e) else "").strip()  # no Hub links
        raise UserError(f"{file}: {_version()} cannot read this config ({type(e).__name__}: {said}); fix the "
                        f"field it names") from None
    return cfg, raw


def _version() -> str:
    import transformers

    return f"transformers {transformers.__version__}"


def _text_config(file: Path, cfg, raw: dict):
    """The decoder the planner serves: the config itself, or a multimodal config's text model. Encoders,
    encoder-decoders and task heads other than a language model are refused."""
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES as causal,
    )

    if getattr(cfg, "is_encoder_decoder", False):
        raise UserError(f"{file}: model_type '{cfg.model_type}' is an encoder-decoder model; the planner models "
                        f"decoder-only LLMs (a *ForCausalLM checkpoint)")
    try:
        text = cfg.get_text_config(decoder=True)
    except ValueError:
        text = cfg
    if text.model_type not in causal and cfg.model_type not in causal:
        raise UserError(f"{file}: model_type '{cfg.model_type}' has no causal language model in transformers, so the "
                        f"planner cannot serve it as an LLM; give the config.json of a *ForCausalLM model")
    saved = [a for a in raw.get("architectures") or [] if isinstance(a, str)]
    if saved and all(a.endswith(HEADS_WORDS) or a.endswith("Model") and not a.endswith("LMHeadModel") for a in saved):
        raise UserError(f"{file}: config.json's architectures {', '.join(saved)} is not a language model (an "
                        f"encoder or a task head); give the config.json of a *ForCausalLM model")
    return text if text.model_type in causal else cfg


def _first(cfg, *names: str):
    return next((v for n in names if (v := getattr(cfg, n, None)) is not None), None)


def _layer_index(name: str) -> int | None:
    """The decoder layer a parameter belongs to: the first whole-number part of its name."""
    return next((int(p) for p in name.split(".") if p.isdigit()), None)


def _count(model, experts: int | None) -> tuple[int, int, set[int]]:
    """(all parameters, the routed experts' parameters, the layers that hold routed experts). A routed
    expert is a tensor of a module called `experts` or of a class named so (shared experts are
    `shared_expert(s)`, of an MLP class)."""
    total = sum(p.numel() for p in model.parameters())  # unique tensors: a tied head counts once
    # persistent buffers are checkpoint tensors too (DeepSeek-V3's router bias, e_score_correction_bias)
    kept = set(model.state_dict())
    total += sum(b.numel() for n, b in model.named_buffers() if n in kept)
    routed, layers, seen = 0, set(), set()
    for name, m in model.named_modules() if experts else ():
        cls = type(m).__name__
        if name.rsplit(".", 1)[-1] != "experts" and not ("Experts" in cls and "Shared" not in cls):
            continue
        for p in m.parameters():
            if id(p) not in seen:
                seen.add(id(p))
                routed += p.numel()
        layers.add(_layer_index(name))
    return total, routed, layers - {None}


def _build(text):
    import torch
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(text)


@lru_cache(maxsize=32)
def from_config_file(file: str, name: str) -> LlmShape:
    """The shape of the model a config.json describes, as `name` (its folder's name, or its path). Building it
    takes seconds (importing transformers; DeepSeek-V3 on the meta device), so the counts are kept in the user's
    cache, keyed by the file's bytes, the transformers version and the shape's fields: predicting the same
    config again starts as fast as a catalog model."""
    import dataclasses
    import hashlib
    import importlib.metadata as md

    path = Path(file)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise UserError(f"{path}: cannot be read ({e.strerror}); give the model's config.json") from None
    version = md.version("transformers")
    fields = [f.name for f in dataclasses.fields(LlmShape)]
    key = hashlib.sha256(data + f"|{version}|{','.join(fields)}|{COUNTING}".encode()).hexdigest()[:24]
    counted = cached_json("shapes", f"{key}.json", lambda: dataclasses.asdict(_count_shape(path)))
    return LlmShape(**{**counted, "id": name, "config_path": str(path),
                       "source": f"{path} (parameters counted on the meta device, transformers {version})"})


def _count_shape(path: Path) -> LlmShape:
    """The shape of the config.json at `path`, built on the meta device (its id and source are set by the caller)."""
    cfg, raw = _load(path)
    text = _text_config(path, cfg, raw)
    missing = [n for n in ("num_hidden_layers", "hidden_size", "num_attention_heads", "vocab_size")
               if not isinstance(getattr(text, n, None), int)]
    if missing:
        raise UserError(f"{path}: the config gives no {', '.join(missing)} as a whole number; the planner needs them")
    layers, hidden, heads = text.num_hidden_layers, text.hidden_size, text.num_attention_heads
    kv_heads = _first(text, "num_key_value_heads") or heads
    experts = _first(text, "num_local_experts", "num_experts", "n_routed_experts")
    experts = experts if isinstance(experts, int) and experts > 1 else None
    try:
        model = _build(text)
    except CONFIG_ERRORS as e:
        raise UserError(f"{path}: transformers cannot build this model from its config ({type(e).__name__}: "
                        f"{str(e).splitlines()[0] if str(e) else ''}); check the config's sizes") from None
    total, routed, moe_layers = _count(model, experts)
    per_token = _first(text, "num_experts_per_tok", "experts_per_token", "moe_topk")
    if experts and not routed:
        raise UserError(f"{path}: the config gives {experts} experts, but no routed-expert weights were found in the "
                        f"built model (no module called 'experts'); the planner cannot split them from the rest")
    if routed and (not per_token or routed % experts):
        raise UserError(f"{path}: {experts} routed experts without " + (
            "num_experts_per_tok in the config" if not per_token else f"equal sizes ({routed:,} parameters)")
                        + "; the planner cannot count the active parameters")
    active = total - routed * (experts - per_token) // experts if routed else total
    inp, out = model.get_input_embeddings(), model.get_output_embeddings()
    tied = out is not None and out.weight is inp.weight
    layout = _layout(path, text, model, layers)
    mla = getattr(text, "kv_lora_rank", None) is not None
    if mla:
        rope, nope, v = text.qk_rope_head_dim, text.qk_nope_head_dim, text.v_head_dim
        head_dim = nope + rope
        kv_bytes = layout["full"] * (text.kv_lora_rank + rope) * 2
        attn_flops = 2.0 * layout["full"] * heads * (head_dim + v)
        attention = "MLA+DSA" if layout["indexed"] else "MLA"
    else:
        head_dim = _first(text, "head_dim") or hidden // heads
        _check_kv_projections(path, model, kv_heads * head_dim)
        kv_bytes = 2 * layout["full"] * kv_heads * head_dim * 2
        attn_flops = 4.0 * layout["full"] * heads * head_dim
        attention = "MHA" if kv_heads == heads else "MQA" if kv_heads == 1 else "GQA"
        attention = f"Hybrid {attention}+GatedDeltaNet" if layout["linear"] else attention
    return LlmShape(
        id="", layers=layers, hidden=hidden, heads=heads, kv_heads=kv_heads, head_dim=head_dim,
        vocab=text.vocab_size, tied_embeddings=tied, total_params=total, active_params=active,
        kv_bytes_per_token_bf16=kv_bytes, experts=experts if routed else None,
        experts_per_token=per_token if routed else None,
        first_dense_layers=layers - len(moe_layers) if routed else 0,  # the layers without routed experts (leading
        #                                                                ones in every catalog model): a count
        attention=attention, full_layers=layout["full"], sliding_layers=layout["sliding"],
        sliding_window=layout["window"], linear_layers=layout["linear"], linear_state_bytes_bf16=layout["state"],
        mla_kv_lora_rank=text.kv_lora_rank if mla else None, mla_rope_dim=text.qk_rope_head_dim if mla else None,
        attn_flops_per_ctx=attn_flops, max_positions=_context(text),
        source="", config_path=str(path))


def _context(text) -> int | None:
    """The longest sequence the config serves: max_position_embeddings, stretched by linear, dynamic or YaRN
    rope scaling as vLLM derives its max_model_len (YaRN from original_max_position_embeddings); Llama 3's and
    LongRoPE's scaling is already in max_position_embeddings. Without it a Qwen3 config extended for 131,072
    tokens would be held to its 40,960."""
    positions = _first(text, "max_position_embeddings")
    rope = _first(text, "rope_parameters", "rope_scaling")
    rope = rope.get("full_attention", rope) if isinstance(rope, dict) else {}  # per layer type (Gemma 3)
    factor, kind = rope.get("factor"), rope.get("rope_type") or rope.get("type")
    if not positions or not isinstance(factor, int | float) or kind not in ("linear", "dynamic", "yarn"):
        return positions
    base = (rope.get("original_max_position_embeddings") or positions) if kind == "yarn" else positions
    return max(positions, int(base * factor))


def _layout(path: Path, text, model, layers: int) -> dict:
    """Full, sliding-window and linear-attention layers, the window, and the linear layers' state per
    sequence (bf16 bytes); layer kinds the planner does not model are refused."""
    types = list(getattr(text, "layer_types", None) or [])
    window = getattr(text, "sliding_window", None)
    positions = _first(text, "max_position_embeddings")
    if not types:  # Mistral-style: one window for every layer, unless the config turns it off
        slides = window and getattr(text, "use_sliding_window", True) is not False
        types = ["sliding_attention" if slides else "full_attention"] * layers
    if window and positions and window >= positions:  # a window as long as the context: full attention
        types = ["full_attention" if t in SLIDING else t for t in types]
    if len(types) != layers:
        raise UserError(f"{path}: layer_types lists {len(types)} layers, num_hidden_layers says {layers}; fix the config")
    other = sorted({t for t in types if t not in FULL + SLIDING + LINEAR})
    if other:
        raise UserError(f"{path}: layer type {', '.join(repr(t) for t in other)} ({sum(t in other for t in types)} of "
                        f"{layers} layers) is not modelled by the planner, which knows full, sliding-window and MLA "
                        f"attention and Gated DeltaNet layers; predict the catalog model nearest to it")
    sliding = sum(t in SLIDING for t in types)
    if sliding and not window:
        raise UserError(f"{path}: {sliding} sliding-window layers but no sliding_window size; fix the config")
    if sliding == layers:  # the KV model prices sliding layers beside full ones, per full layer
        raise UserError(f"{path}: every layer attends over a sliding window of {window} tokens, which the planner "
                        f"models beside full-attention layers only; to predict it as full attention (overstating the "
                        f"KV cache of contexts above {window} tokens), set sliding_window to null in a copy of "
                        f"config.json")
    mixers = sorted({type(m).__name__ for m in model.modules() if MIXERS.search(type(m).__name__)})
    linear = sum(t in LINEAR for t in types)
    gdn = [m for m in mixers if "GatedDeltaNet" in m]
    if (linear or mixers) and not (gdn and gdn == mixers and all(hasattr(text, f) for f in GDN_FIELDS)):
        raise UserError(f"{path}: {linear or 'some'} of {layers} layers are linear-attention or state-space layers "
                        f"({', '.join(mixers) or 'linear_attention'}); the planner models the per-sequence state of "
                        f"Gated DeltaNet (Qwen3-Next, Qwen3.5) only; predict the catalog model nearest to it")
    state = 0
    if linear:
        t = text
        key, value = t.linear_num_key_heads * t.linear_key_head_dim, t.linear_num_value_heads * t.linear_value_head_dim
        recurrent = t.linear_num_value_heads * t.linear_key_head_dim * t.linear_value_head_dim
        conv = (t.linear_conv_kernel_dim - 1) * (2 * key + value)  # the short convolution's last inputs
        state = linear * (recurrent + conv) * 2
    return {"full": sum(t in FULL for t in types), "sliding": sliding, "window": window if sliding else None,
            "linear": linear, "state": state, "indexed": "indexed_attention" in types}


def _check_kv_projections(path: Path, model, width: int) -> None:
    """Every layer's key and value projections are as wide as the config's KV heads x head size; a model
    whose layers differ (other head sizes in some layers) would get a wrong KV cache and is refused."""
    for name, m in model.named_modules():
        if name.rsplit(".", 1)[-1] in ("k_proj", "v_proj") and getattr(m, "out_features", width) != width:
            raise UserError(f"{path}: {name} gives {m.out_features} key/value channels, not the config's "
                            f"num_key_value_heads x head_dim = {width}; layers of different attention shapes are not "
                            f"modelled; predict the catalog model nearest to it")
