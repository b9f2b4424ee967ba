"""The `kind: diffusion` workload spec (text-to-image, Stable-Diffusion-style pipelines)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from ..errors import closest
from .common import PositiveInt, RunSpec, as_list

SCHEDULERS = {"euler": "EulerDiscreteScheduler", "euler_a": "EulerAncestralDiscreteScheduler",
              "ddim": "DDIMScheduler", "dpmpp_2m": "DPMSolverMultistepScheduler", "pndm": "PNDMScheduler",
              "ddpm": "DDPMScheduler", "flow_euler": "FlowMatchEulerDiscreteScheduler"}


class DiffusionSpec(RunSpec):
    """Images at square `resolution` pixels, `steps` denoising steps, classifier-free guidance
    when `guidance_scale` > 1 (which doubles the UNet batch; guidance-distilled DiTs such as FLUX.1
    take the scale as an input and run one pass). `scheduler` defaults to euler for a UNet pipeline;
    a DiT pipeline runs its own: flow-matching Euler (flow_euler), or ddpm for HunyuanDiT."""

    kind: Literal["diffusion"] = "diffusion"
    resolution: list[PositiveInt] = Field(default=[512], min_length=1)
    steps: list[PositiveInt] = Field(default=[20], min_length=1)
    guidance_scale: float = Field(default=7.5, ge=0)
    scheduler: str | None = None  # default: euler for a UNet pipeline, the pipeline's own for a DiT

    _grid = field_validator("resolution", "steps", mode="before")(classmethod(lambda cls, v: as_list(v)))

    @model_validator(mode="before")
    @classmethod
    def _arch_defaults(cls, data):
        """A built-in pipeline runs at its own settings where the spec gives none (arch_defaults), not at
        the generic 512 px, 20 steps and guidance 7.5: FLUX.1-dev at 1024 px, 28 steps, guidance 3.5."""
        if isinstance(data, dict) and isinstance(data.get("arch"), str):
            return {**arch_defaults(data["arch"]), **data}
        return data

    @field_validator("scheduler")
    @classmethod
    def _known_scheduler(cls, v: str | None) -> str | None:
        if v is not None and v not in SCHEDULERS:
            raise ValueError(f"unknown scheduler '{v}'{closest(v, SCHEDULERS)}; known: {', '.join(SCHEDULERS)}")
        return v

    @model_validator(mode="after")
    def _no_int8(self):
        if self.dtype == "int8":
            raise ValueError("int8 is not offered for diffusion; use fp32, fp16 or bf16")
        return self

    @property
    def cfg(self) -> bool:
        return self.guidance_scale > 1.0

    def cells(self) -> list[dict[str, int]]:
        """The grid in a stable order: batch size, then resolution, then steps."""
        return [{"batch_size": b, "resolution": r, "steps": s}
                for b in self.batch_size for r in self.resolution for s in self.steps]


def arch_defaults(arch: str) -> dict:
    """The settings a built-in pipeline is published with: a DiT's resolution, steps and guidance from its model
    card (dit.yaml's `default`), a UNet pipeline's native resolution; {} for a name neither catalog has."""
    from ..catalog import architectures

    dits, unets = architectures("dit"), architectures("diffusion")
    if arch in dits:
        d = dits[arch]["default"]
        return {"resolution": [d["resolution"]], "steps": [d["steps"]], "guidance_scale": d["guidance_scale"]}
    return {"resolution": [unets[arch]["default_resolution"]]} if arch in unets else {}
