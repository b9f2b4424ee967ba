"""Fields every workload kind shares: the model source, precision, backend and device, the
batch sizes, the stopping rule and the seed."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..backends.base import OPTIONS, check_backend, options_model
from ..errors import UserError, first_repeat

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
    options: dict[str, Any] = Field(default_factory=dict, description=(
        "the backend's options, validated by its model (backends/<backend>/options.py); onnxruntime: ep, "
        "ep_options, intra_op_threads, graph_optimization, parity_tolerance"))
    device: str = "auto"
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

    @model_validator(mode="after")
    def _time_cap_above_minimum(self):
        """A cap below the minimum time would end every cell before min_time_s is reached (the stopping
        rule stops at max_time_s once one iteration is in), so the minimum would silently not hold."""
        if self.max_time_s is not None and self.max_time_s < self.min_time_s:
            raise ValueError(f"max_time_s {self.max_time_s:g} is below min_time_s {self.min_time_s:g}: the cap would "
                             f"end each cell at {self.max_time_s:g} s, before min_time_s is reached; raise max_time_s "
                             f"(--max-time) to at least {self.min_time_s:g} or lower min_time_s (--min-time)")
        return self

    @model_validator(mode="after")
    def _grid_values_once(self):
        """A value listed twice in a grid field would measure one cell twice under one cell id, which --resume
        and the reports take as one cell."""
        for key in self.cells()[0]:
            if (twice := first_repeat(getattr(self, key))) is not None:
                raise ValueError(f"{key} lists {twice} more than once; list each value once")
        return self

    def cells(self) -> list[dict]:
        """The grid, one dict of grid fields per cell (each kind's spec defines it)."""
        raise NotImplementedError

    @classmethod
    def model_sources(cls) -> tuple[str, ...]:
        """The fields that name what to run; exactly one must be set."""
        return ("arch", "model")

    @model_validator(mode="before")
    @classmethod
    def _options_at_top_level(cls, data):
        """A backend option written at the top level (ep: cuda, as specs were written before
        `options:`) joins `options`, where it wins over the same key."""
        if not isinstance(data, dict):
            return data
        top = [k for k in data if k not in cls.model_fields and any(k in _option_names(b) for b in OPTIONS)]
        if not top:
            return data
        moved = {k: data[k] for k in top if data[k] not in (None, {})}
        return {**{k: v for k, v in data.items() if k not in top}, "options": {**(data.get("options") or {}), **moved}}

    @model_validator(mode="after")
    def _backend_fields(self):
        try:
            check_backend(self.backend)
        except UserError as e:
            raise ValueError(str(e)) from None
        mine = _option_names(self.backend)
        for key in self.options:
            if key not in mine:
                owner = next((b for b in OPTIONS if key in _option_names(b)), None)
                if owner:
                    raise ValueError(f"'{key}' applies only to backend {owner}; set backend: {owner} "
                                     f"(or --backend {owner})")
                known = ", ".join(mine) or "none"
                raise ValueError(f"'{key}' is not an option of backend {self.backend} (its options: {known})")
        try:
            opts = options_model(self.backend)(**self.options)
        except ValidationError as e:
            err = e.errors()[0]
            raise ValueError(f"options.{'.'.join(str(x) for x in err['loc'])}: "
                             f"{err['msg']} (got {err['input']!r})") from None
        object.__setattr__(self, "options", opts.model_dump(exclude_none=True, exclude_defaults=True))
        if self.model is not None and Path(self.model).suffix == ".onnx" and self.backend != "onnxruntime":
            raise ValueError("a .onnx model needs backend onnxruntime (--backend onnxruntime)")
        return self

    @property
    def opts(self):
        """The backend's options as its validated model (OrtOptions, TorchOptions)."""
        return options_model(self.backend)(**self.options)

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        return self.arch if self.arch else Path(self.model).name


def _option_names(backend: str) -> tuple[str, ...]:
    return tuple(options_model(backend).model_fields)
