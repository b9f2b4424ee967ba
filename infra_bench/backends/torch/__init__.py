"""Eager PyTorch on any probed device (cpu, cuda, npu, mlu, musa)."""
from .llm import TorchLlmRunner

__all__ = ["TorchLlmRunner"]
