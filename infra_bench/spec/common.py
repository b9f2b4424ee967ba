"""Fields every workload kind shares: the model source, precision, backend and device, the
batch sizes, the stopping rule and the seed."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

PositiveInt = Annotated[int, Field(ge=1)]
GRID_HELP = "a list, or one value"


def as_list(v):
    """Grid fields accept one value or a list."""
    return [v] if isinstance(v, (int, float)) and not isinstance(v, bool) else v


class RunSpec(BaseModel):
    """Base of the workload specs. Exactly one of `arch` (a built-in architecture, random
    weights) or `model` (a local folder or file) is given."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = Field(default=None, description="label for the records; defaults to arch or folder name")
    arch: str | None = Field(default=None, description="built-in architecture id (random weights)")
    model: Path | None = Field(default=None, description="local model folder (or .onnx file)")
    dtype: Literal["fp32", "fp16", "bf16", "int8"] = "fp32"
    backend: str = "torch"
    device: str = "auto"
    ep: str | None = Field(default=None, description="onnxruntime: execution provider (cpu, cuda, ...)")
    ep_options: dict[str, str | int | float | bool] = Field(default_factory=dict,
                                                            description="onnxruntime: provider options")
    intra_op_threads: int | None = Field(default=None, ge=1, description="onnxruntime: intra-op threads")
    graph_optimization: Literal["disable", "basic", "extended", "all"] | None = None
    parity_tolerance: float | None = Field(default=None, ge=0, description="onnxruntime: max relative diff")
    batch_size: list[PositiveInt] = Field(default=[1], min_length=1)
    warmup: int = Field(default=2, ge=0)
    min_iters: int = Field(default=5, ge=1)
    min_time_s: float = Field(default=1.0, ge=0)
    max_time_s: float | None = Field(default=None, gt=0, description="cap on one cell's measuring time")
    seed: int = 0

    _batch_grid = field_validator("batch_size", mode="before")(classmethod(lambda cls, v: as_list(v)))

    @model_validator(mode="after")
    def _one_model_source(self):
        sources = self.model_sources()
        if sum(getattr(self, f) is not None for f in sources) != 1:
            names = " or ".join(f"'{f}'" for f in sources)
            raise ValueError(f"give exactly one of {names} ('arch': a built-in architecture, 'model': a local folder)")
        return self

    @classmethod
    def model_sources(cls) -> tuple[str, ...]:
        """The fields that name what to run; exactly one must be set."""
        return ("arch", "model")

    @model_validator(mode="after")
    def _backend_fields(self):
        ort_only = [f for f in ("ep", "intra_op_threads", "graph_optimization", "parity_tolerance")
                    if getattr(self, f) is not None] + (["ep_options"] if self.ep_options else [])
        if self.backend != "onnxruntime" and ort_only:
            raise ValueError(f"'{ort_only[0]}' applies only to backend onnxruntime; "
                             f"set backend: onnxruntime (or --backend onnxruntime)")
        if self.model is not None and Path(self.model).suffix == ".onnx" and self.backend != "onnxruntime":
            raise ValueError("a .onnx model needs backend onnxruntime (--backend onnxruntime)")
        return self

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        return self.arch if self.arch else Path(self.model).name
