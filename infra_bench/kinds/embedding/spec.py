"""The `kind: embedding` workload spec (text embeddings and cross-encoder rerankers)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from ...spec.common import PositiveInt, RunSpec, as_list


class EmbeddingSpec(RunSpec):
    """Batches of `batch_size` sequences of `seq_len` tokens each, embedded (one vector per
    sequence) or scored (a reranker: one score per query-passage pair, the pair being one
    sequence of `seq_len` tokens)."""

    kind: Literal["embedding"] = "embedding"
    seq_len: list[PositiveInt] = Field(default=[128], min_length=1)

    _grid = field_validator("seq_len", mode="before")(classmethod(lambda cls, v: as_list(v)))

    @model_validator(mode="after")
    def _embedding_rules(self):
        if self.dtype == "int8" and self.backend != "onnxruntime":
            raise ValueError("int8 (dynamic quantization) runs on backend onnxruntime; set backend: onnxruntime "
                             "(--backend onnxruntime), or use fp32, fp16 or bf16 with torch")
        return self

    def cells(self) -> list[dict[str, int]]:
        """The grid in a stable order: batch size, then sequence length."""
        return [{"batch_size": b, "seq_len": s} for b in self.batch_size for s in self.seq_len]
