"""Execution backends: torch/ (eager PyTorch on any probed device) and onnxruntime/ (exported models
on any execution provider), each with its options model; kinds register their executors per backend."""
from .base import BACKENDS, RequestTiming, check_backend

__all__ = ["BACKENDS", "RequestTiming", "check_backend"]
