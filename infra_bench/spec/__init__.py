"""Workload specs: validated on construction; the same objects serve YAML, CLI and Python."""
from .common import RunSpec
from .diffusion import DiffusionSpec
from .llm import LlmSpec
from .tts import TtsSpec
from .loader import load_spec_file, load_specs, spec_from_dict

__all__ = ["DiffusionSpec", "LlmSpec", "RunSpec", "TtsSpec", "load_spec_file", "load_specs", "spec_from_dict"]
