"""Eager PyTorch on any probed device (cpu, cuda, npu, mlu, musa). `TorchLlmRunner` loads on first
use, so reading the backend's options (options.py) does not import torch."""


def __getattr__(name: str):
    if name == "TorchLlmRunner":
        from .llm import TorchLlmRunner
        return TorchLlmRunner
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["TorchLlmRunner"]
