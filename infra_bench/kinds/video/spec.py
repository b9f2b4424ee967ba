"""The `kind: video` workload spec (text to video with diffusion transformers)."""
from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from ...spec.common import PositiveInt, RunSpec, as_list

SIZE = re.compile(r"([1-9][0-9]*)x([1-9][0-9]*)")


def size(text: str) -> tuple[int, int]:
    """'832x480' -> (width, height)."""
    w, h = SIZE.fullmatch(text).groups()
    return int(w), int(h)


class VideoSpec(RunSpec):
    """Videos of `frames` frames at `resolution` (WIDTHxHEIGHT pixels), `steps` denoising steps,
    classifier-free guidance when `guidance_scale` > 1 (two transformer passes per step). Left out, they are
    a built-in model's own (Wan2.1's below)."""

    kind: Literal["video"] = "video"
    resolution: list[str] = Field(default=["832x480"], min_length=1)
    frames: list[PositiveInt] = Field(default=[81], min_length=1)
    steps: list[PositiveInt] = Field(default=[50], min_length=1)
    guidance_scale: float = Field(default=5.0, ge=0)

    _grid = field_validator("frames", "steps", mode="before")(classmethod(lambda cls, v: as_list(v)))
    @field_validator("resolution", mode="before")
    @classmethod
    def _sizes_grid(cls, v):
        """One size is a string ("832x480"); a number (512, as a diffusion spec writes it) is kept as text for
        `_sizes` to say what a size looks like, not refused as 'not a valid string'."""
        items = [v] if isinstance(v, str) else as_list(v)
        if not isinstance(items, list):
            return items
        return [str(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else x for x in items]

    @model_validator(mode="before")
    @classmethod
    def _arch_defaults(cls, data):
        """A built-in video model runs at its own settings where the spec gives none (video.yaml's `default`),
        not at Wan2.1's: HunyuanVideo at 1280x720, 129 frames, embedded guidance 1.0."""
        if isinstance(data, dict) and isinstance(data.get("arch"), str):
            from ...catalog import architectures

            d = architectures("video").get(data["arch"], {}).get("default")
            if d:
                keys = ("resolution", "frames", "steps", "guidance_scale")
                return {**{k: [d[k]] if k != "guidance_scale" else d[k] for k in keys}, **data}
        return data

    @field_validator("resolution")
    @classmethod
    def _sizes(cls, v: list) -> list[str]:
        out = []
        for item in v:
            text = str(item)
            if not SIZE.fullmatch(text):
                raise ValueError(f"resolution '{text}' is not WIDTHxHEIGHT in pixels; write e.g. 832x480")
            out.append(text)
        return out

    @model_validator(mode="after")
    def _no_int8(self):
        if self.dtype == "int8":
            raise ValueError("int8 is not offered for video; use fp32, fp16 or bf16")
        return self

    @property
    def cfg(self) -> bool:
        return self.guidance_scale > 1.0

    def cells(self) -> list[dict]:
        """The grid in a stable order: batch size, resolution, frames, steps."""
        return [{"batch_size": b, "resolution": r, "frames": f, "steps": s}
                for b in self.batch_size for r in self.resolution for f in self.frames for s in self.steps]
