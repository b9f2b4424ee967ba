"""The onnxruntime backend's options in a spec (`options:` with `backend: onnxruntime`, or the same
keys at the top level of the spec, as written before options existed)."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class OrtOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    ep: str | None = Field(default=None, description="execution provider (cpu, cuda, tensorrt, openvino, cann, ...)")
    ep_options: dict[str, str | int | float | bool] = Field(default_factory=dict, description="provider options")
    intra_op_threads: int | None = Field(default=None, ge=1, description="intra-op threads")
    graph_optimization: Literal["disable", "basic", "extended", "all"] | None = None
    parity_tolerance: float | None = Field(default=None, ge=0, description="max relative diff against torch")

    def tolerance(self, default: float) -> float:
        """The parity gate's tolerance: the spec's, else the kind's default for the precision."""
        return default if self.parity_tolerance is None else self.parity_tolerance
