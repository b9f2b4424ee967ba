"""An embedding model or reranker behind `serve`: text -> token ids (the checkpoint's tokenizer, or
one id per word for built-in architectures), then the executor's forward pass, one input at a time."""
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
    run: Callable[[np.ndarray], np.ndarray] | None = None  # ids [1, L] -> [1, H] vectors or [1] scores

    def vector(self, ids: list[int]) -> np.ndarray:
        return np.asarray(self.run(np.asarray([ids], dtype=np.int64)), dtype=np.float32)[0]

    def score(self, query: list[int], passage: list[int]) -> float:
        """A reranker's relevance of the passage to the query: the pair as one sequence."""
        return float(np.asarray(self.run(np.asarray([query + passage], dtype=np.int64))).reshape(-1)[0])

    def warm_up(self) -> None:
        ids = self.codec.encode("warm up the model") or [1]
        self.score(ids, ids) if self.task == "rerank" else self.vector(ids)


def served(spec, p, built, card: dict) -> ServedEmbedding:
    r = p.resolved
    codec = codec_for(r.path, r.vocab_size)  # a local folder's tokenizer; built-in archs have none
    card.update(task=r.arch.task, max_model_len=r.max_tokens, text=codec.description,
                pooling=r.arch.pooling, normalized=bool(r.arch.normalize))
    return ServedEmbedding(spec.label, "embedding", card, r.arch.task, codec, r.max_tokens, r.vocab_size,
                           built.runner.embed)
