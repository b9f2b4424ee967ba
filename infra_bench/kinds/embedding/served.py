"""An embedding model or reranker behind `serve`: text -> token ids (the checkpoint's tokenizer, or
one id per word for built-in architectures), then the executor's forward pass, one input at a time.
A reranker scores a query-passage pair as the codec's pair encoding: the tokenizer's pair template, with
token type ids where the model has more than one type."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ...serving.codec import Codec, codec_for
from ...serving.models import Served


@dataclass
class ServedEmbedding(Served):
    task: str = "embed"                    # embed: one vector per input; rerank: one score per pair
    codec: Codec | None = None
    max_tokens: int = 512
    vocab_size: int = 0
    run: Callable[..., np.ndarray] | None = None  # (ids [1, L], mask, token types) -> [1, H] vectors or [1] scores
    token_types: bool = False              # the model reads token type ids (a BERT-style cross-encoder)

    def vector(self, ids: list[int]) -> np.ndarray:
        return np.asarray(self.run(np.asarray([ids], dtype=np.int64)), dtype=np.float32)[0]

    def pair(self, query: str, passage: str) -> tuple[list[int], list[int] | None]:
        """The pair's ids and, where the model reads them, its token types (None otherwise)."""
        ids, types = self.codec.encode_pair(query, passage)
        return ids, types if self.token_types else None

    def score(self, ids: list[int], types: list[int] | None = None) -> float:
        """A reranker's relevance score for one encoded query-passage pair (`pair`)."""
        tt = None if types is None else np.asarray([types], dtype=np.int64)
        return float(np.asarray(self.run(np.asarray([ids], dtype=np.int64), None, tt)).reshape(-1)[0])

    def warm_up(self) -> None:
        if self.task == "rerank":
            ids, types = self.pair("warm up", "the model")
            self.score(ids or [1], types if ids else None)
        else:
            self.vector(self.codec.encode("warm up the model") or [1])


def served(spec, p, built, card: dict) -> ServedEmbedding:
    r = p.resolved
    codec = codec_for(r.path, r.vocab_size)  # a local folder's tokenizer; built-in archs have none
    card.update(task=r.arch.task, max_model_len=r.max_tokens, text=codec.reads,
                pooling=r.arch.pooling, normalized=bool(r.arch.normalize))
    return ServedEmbedding(spec.label, "embedding", card, r.arch.task, codec, r.max_tokens, r.vocab_size,
                           built.runner.embed, r.token_types)
