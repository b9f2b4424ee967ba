"""Text-embedding and reranker workloads: random-weight encoders and decoders built from
transformers configs, or a local embedder or reranker folder (`model: PATH`, kinds/embedding/local.py).

A request is a batch of `B` sequences of `L` token ids, all attended; the model returns one
L2-normalized vector per sequence (an embedder: CLS, mean or last-token pooling) or one relevance
score per sequence (a cross-encoder reranker: the sequence is a query-passage pair). Per
request: latency_s; per cell: sequences_per_s, tokens_per_s and J per sequence.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from ...catalog import architectures
from ...errors import UserError, closest
from ...workloads.files import check_loaded
from .spec import EmbeddingSpec

FAMILIES = ("bert", "xlm-roberta", "qwen3", "xlm-roberta-reranker")
FIRST_ID = 5  # token ids are drawn from [FIRST_ID, vocab): past the pad, CLS/BOS and other special ids


@dataclass(frozen=True)
class EmbeddingArch:
    id: str
    family: str
    task: str          # embed | rerank
    pooling: str       # cls | mean | last_token | none (a reranker's head)
    normalize: bool
    description: str
    source: str
    params: int | None
    config: dict = field(default_factory=dict)


@lru_cache(maxsize=1)
def catalog() -> dict[str, EmbeddingArch]:
    raw = architectures("embedding")
    return {k: EmbeddingArch(id=k, **v) for k, v in raw.items()}


@dataclass
class ResolvedEmbedding:
    arch: EmbeddingArch
    info: dict
    path: Path | None = None         # a local folder's transformers folder (None: a built-in arch, random weights)
    hf_config: object = None         # its transformers config
    trust_remote_code: bool = False
    flops: dict = field(default_factory=dict)  # a local model's FLOPs per sequence, by seq_len

    @property
    def decoder(self) -> bool:
        """A decoder (Qwen3 ...) runs with use_cache=False and is FLOP-counted with an explicit mask."""
        if self.path is None:
            return self.arch.family == "qwen3"
        from transformers.models.auto.modeling_auto import (
            MODEL_FOR_MASKED_LM_MAPPING_NAMES as encoders,
        )
        return self.arch.family not in encoders

    @property
    def family(self) -> str:
        return self.arch.family

    @property
    def vocab_size(self) -> int:
        return self.arch.config["vocab_size"]

    @property
    def max_tokens(self) -> int:
        """The longest sequence the model's position table holds."""
        return max_tokens(self.arch)

    @property
    def token_types(self) -> bool:
        """Whether a served pair marks its second text with token type ids: a reranker whose config has
        type_vocab_size > 1 (BERT-style cross-encoders; XLM-RoBERTa's, such as bge-reranker, have one type)."""
        return self.arch.task == "rerank" and (self.arch.config.get("type_vocab_size") or 0) > 1


ROBERTA_POSITIONS = ("roberta", "camembert", "xlm-roberta-xl")  # model types whose positions start after the pad id


def max_tokens(a: EmbeddingArch) -> int:
    positions = a.config.get("max_position_embeddings") or a.config.get("n_positions") or 512
    if a.family.startswith("xlm-roberta") or a.family in ROBERTA_POSITIONS:  # RoBERTa positions start after the pad id: 8194 -> 8192 tokens
        return positions - a.config.get("pad_token_id", 1) - 1
    return positions


def resolve(spec: EmbeddingSpec, trust_remote_code: bool = False) -> ResolvedEmbedding:
    if spec.model is not None:
        return resolve_local(Path(spec.model), trust_remote_code)
    archs = catalog()
    if spec.arch not in archs:
        raise UserError(f"unknown embedding architecture '{spec.arch}'{closest(spec.arch, archs)}; "
                        f"built-in: {', '.join(archs)}")
    a = archs[spec.arch]
    return ResolvedEmbedding(a, {"arch": a.id, "family": a.family, "task": a.task, "pooling": a.pooling,
                                 "normalize": a.normalize, "weights": "random", "source": a.source,
                                 "params_reference": a.params, "max_tokens": max_tokens(a)})


def resolve_local(folder: Path, trust_remote_code: bool = False) -> ResolvedEmbedding:
    """A local embedder or reranker folder, checked before anything is built (kinds/embedding/local.py)."""
    import json

    from .local import resolve_folder

    hf, cfg, info = resolve_folder(folder, trust_remote_code)
    config = json.loads(cfg.to_json_string(use_diff=False))
    a = EmbeddingArch(id=folder.resolve().name, family=cfg.model_type, task=info["task"], pooling=info["pooling"],
                      normalize=info["normalize"], description=f"local folder {info['path']}", source=info["path"],
                      params=None, config=config)
    if not isinstance(config.get("vocab_size"), int):
        raise UserError(f"{hf / 'config.json'}: no vocab_size; token ids cannot be drawn for this model")
    return ResolvedEmbedding(a, {**info, "max_tokens": max_tokens(a)}, hf, cfg, trust_remote_code)


def check_cells(spec: EmbeddingSpec, resolved: ResolvedEmbedding) -> None:
    longest, limit = max(spec.seq_len), resolved.max_tokens
    if longest > limit:
        raise UserError(f"spec '{spec.label}': seq_len {longest} is longer than {resolved.arch.id} takes "
                        f"({limit} tokens); use seq_len up to {limit}")


# --- the model ---------------------------------------------------------------------------------

class EmbeddingModel(torch.nn.Module):
    """(input_ids [B, L], attention_mask [B, L], optional token_type_ids [B, L]) -> embeddings [B, H]
    (pooled, L2-normalized when `normalize`) or, for a reranker, scores [B]. Without token types the
    model's default (all type 0) applies, as for every timing run."""

    def __init__(self, model: torch.nn.Module, task: str, pooling: str, normalize: bool, decoder: bool):
        super().__init__()
        self.model, self.task, self.pooling, self.normalize, self.decoder = model, task, pooling, normalize, decoder

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        kwargs = {"use_cache": False} if self.decoder else {}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        if self.task == "rerank":
            return out.logits[:, 0]
        hidden = out.last_hidden_state
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        elif self.pooling == "mean":  # over the attended tokens, as sentence-transformers' Pooling does
            weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
        else:  # last attended token, for left or right padding alike (no data-dependent branch)
            positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
            last = (attention_mask.to(positions.dtype) * positions).argmax(dim=1)
            pooled = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
        if self.normalize:
            pooled = torch.nn.functional.normalize(pooled, p=2.0, dim=-1)
        return pooled


def _backbone(a: EmbeddingArch, attention: str = "sdpa"):
    """The transformers model of `a`, on the current default device. `attention` is the attention
    implementation: sdpa to run (exports too), eager to count FLOPs (explicit matmuls)."""
    import transformers as tf

    kw = {**a.config, "attn_implementation": attention}
    if a.family == "bert":
        return tf.BertModel(tf.BertConfig(**kw))
    if a.family == "xlm-roberta":
        return tf.XLMRobertaModel(tf.XLMRobertaConfig(**kw))
    if a.family == "xlm-roberta-reranker":
        return tf.XLMRobertaForSequenceClassification(tf.XLMRobertaConfig(**{"num_labels": 1, **kw}))
    if a.family == "qwen3":  # one forward over the whole sequence: no KV cache
        return tf.Qwen3Model(tf.Qwen3Config(**kw, use_cache=False))
    raise UserError(f"{a.id}: unknown embedding family '{a.family}'; known: {', '.join(FAMILIES)}")


def _local_class(resolved: ResolvedEmbedding):
    import transformers as tf
    return tf.AutoModelForSequenceClassification if resolved.arch.task == "rerank" else tf.AutoModel


def _checkpoint(resolved: ResolvedEmbedding, dtype: torch.dtype) -> torch.nn.Module:
    """A local folder's model with its weights; a checkpoint lacking weights the model needs (a base encoder
    given as a reranker: its head) is refused rather than timed with random ones."""
    model, loading = _local_class(resolved).from_pretrained(
        resolved.path, dtype=dtype, local_files_only=True, use_safetensors=True,
        trust_remote_code=resolved.trust_remote_code, output_loading_info=True)
    missing = [k for k in loading.get("missing_keys", ()) if "pooler" not in k]  # BERT's pooler is not used
    check_loaded(resolved.path, model, missing)
    return model


def build_model(resolved: ResolvedEmbedding, spec: EmbeddingSpec, device: torch.device,
                dtype: torch.dtype) -> EmbeddingModel:
    """Random weights (seeded by spec.seed), or a local folder's checkpoint, eval mode, on `device` in
    `dtype`. On the meta device nothing is allocated (parameter counts only)."""
    a = resolved.arch
    torch.manual_seed(spec.seed)
    if resolved.path is None:
        with device:
            backbone = _backbone(a)
    elif device.type == "meta":
        with device:
            backbone = _local_class(resolved).from_config(resolved.hf_config,
                                                          trust_remote_code=resolved.trust_remote_code)
    else:
        backbone = _checkpoint(resolved, dtype)
    wrapped = EmbeddingModel(backbone, a.task, a.pooling, a.normalize, decoder=resolved.decoder)
    return wrapped.to(device=device, dtype=dtype).eval()


def param_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def token_ids(resolved: ResolvedEmbedding, spec: EmbeddingSpec, cell: dict) -> torch.Tensor:
    """Seeded random ids [B, L] (int64) from the model's regular vocabulary."""
    g = torch.Generator().manual_seed(spec.seed)
    return torch.randint(FIRST_ID, resolved.vocab_size, (cell["batch_size"], cell["seq_len"]), generator=g)


# --- one request -------------------------------------------------------------------------------

@dataclass(frozen=True)
class EmbeddingTiming:
    start_ns: int
    end_ns: int
    batch_size: int
    seq_len: int

    @property
    def latency_s(self) -> float:
        return (self.end_ns - self.start_ns) / 1e9

    @property
    def tokens(self) -> int:
        return self.batch_size * self.seq_len


class EmbeddingExecutor(Protocol):
    """An embedding executor: `run` is what `infra-bench run` times (one batch); `embed` is what
    `serve` answers with (vectors, or a reranker's scores, for int64 ids [B, L], with token type ids
    where a pair has them)."""

    def prepare(self, spec: EmbeddingSpec, resolved: ResolvedEmbedding, cell: dict): ...

    def run(self, inputs, now) -> EmbeddingTiming: ...

    def embed(self, ids: np.ndarray, attention_mask: np.ndarray | None = None,
              token_type_ids: np.ndarray | None = None) -> np.ndarray: ...

    def describe(self) -> dict: ...


def metrics(result, flops_per_sequence: float | None) -> dict:
    from ...measure.stats import summarize
    from ...scenarios.offline import window_metrics

    t: list[EmbeddingTiming] = result.timings
    w = result.window.wall_s
    sequences = sum(x.batch_size for x in t)
    tokens = sum(x.tokens for x in t)
    energy = window_metrics(result.window, sequences, "sequence")
    per_seq = energy["j_per_sequence"]
    return {
        "iterations": len(t),
        "sequences": sequences,
        "tokens": tokens,
        "window_s": w,
        "latency_s": summarize([x.latency_s for x in t]),
        "sequences_per_s": sequences / w,
        "tokens_per_s": tokens / w,
        "flops_per_sequence": flops_per_sequence,
        **energy,
        "j_per_1k_sequences": per_seq * 1000 if per_seq is not None else None,
    }


@lru_cache(maxsize=64)
def flops_per_sequence(arch_id: str, seq_len: int) -> float:
    """FLOPs to embed (or score) one sequence of `seq_len` tokens: torch's FLOP counter over a
    forward of a meta-device copy (no memory, no compute) with eager attention, so the attention
    score and value products count as the matmuls they are; elementwise work is not counted.
    The same for every backend, device, dtype and batch size."""
    from ...measure.flops import counted

    a = catalog()[arch_id]
    with torch.device("meta"):
        model = _backbone(a, attention="eager").eval()
        ids = torch.full((1, seq_len), FIRST_ID, dtype=torch.long)
    # all tokens attended; the encoders get no mask (their all-ones test reads values, which meta tensors
    # lack), the decoder an explicit one (without it, transformers reads positions to find packed sequences)
    mask = {"attention_mask": torch.ones_like(ids)} if a.family == "qwen3" else {}
    return float(counted(lambda: model(input_ids=ids, **mask)))


def sequence_flops(resolved: ResolvedEmbedding, seq_len: int) -> float | None:
    """flops_per_sequence for a built-in arch or a local folder (counted the same way, from its config);
    None for a model of its own code that the meta device cannot run."""
    if resolved.path is None:
        return flops_per_sequence(resolved.arch.id, seq_len)
    if seq_len not in resolved.flops:
        from ...measure.flops import counted
        try:
            with torch.device("meta"):
                model = _local_class(resolved).from_config(resolved.hf_config, attn_implementation="eager",
                                                           trust_remote_code=resolved.trust_remote_code).eval()
                ids = torch.full((1, seq_len), FIRST_ID, dtype=torch.long)
            mask = {"attention_mask": torch.ones_like(ids)} if resolved.decoder else {}
            kwargs = {"use_cache": False} if resolved.decoder else {}
            resolved.flops[seq_len] = float(counted(lambda: model(input_ids=ids, **mask, **kwargs)))
        except (RuntimeError, TypeError, ValueError, NotImplementedError, AttributeError, ImportError):
            resolved.flops[seq_len] = None
    return resolved.flops[seq_len]


def measure(spec: EmbeddingSpec, resolved: ResolvedEmbedding, built, cell: dict, window, rule) -> dict:
    """Run one cell; return the fields of its ok record."""
    from ...scenarios.offline import run_offline

    ex = built.runner
    inputs = ex.prepare(spec, resolved, cell)
    with torch.inference_mode():
        result = run_offline(lambda: ex.run(inputs, window.probe.now_ns), rule, window)
    flops = sequence_flops(resolved, cell["seq_len"])
    return {"metrics": metrics(result, flops), "stop_reason": result.stop_reason,
            "samples": [{"latency_s": x.latency_s} for x in result.timings]}
