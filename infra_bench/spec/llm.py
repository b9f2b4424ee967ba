"""The `kind: llm` workload spec."""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from .common import PositiveInt, RunSpec, as_list


class LlmSpec(RunSpec):
    """One LLM workload: a model, a dtype, a grid of request shapes and a stopping rule."""

    kind: Literal["llm"] = "llm"
    prompt_len: list[PositiveInt] = Field(default=[128], min_length=1)
    output_len: list[Annotated[int, Field(ge=2)]] = Field(default=[32], min_length=1)
    compile: Literal["none", "default", "max-autotune", "reduce-overhead"] = Field(
        default="none", description="torch: torch.compile mode of the decode step, on a static KV cache")

    _grid = field_validator("prompt_len", "output_len", mode="before")(classmethod(lambda cls, v: as_list(v)))

    @model_validator(mode="after")
    def _compile_needs_torch(self):
        if self.compile != "none" and self.backend != "torch":
            raise ValueError(f"'compile' applies to backend torch, not {self.backend}; drop compile or use "
                             f"--backend torch")
        return self

    def cells(self) -> list[dict[str, int]]:
        """The grid in a stable order: batch size, then prompt length, then output length."""
        return [{"batch_size": b, "prompt_len": p, "output_len": o}
                for b in self.batch_size for p in self.prompt_len for o in self.output_len]
