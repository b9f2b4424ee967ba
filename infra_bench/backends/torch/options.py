"""The torch backend's options in a spec (`options:` with `backend: torch`): none yet. The compiled
decode step is an LLM spec's `compile`, since only the LLM kind has one."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class TorchOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
