"""Execution backends: torch/ (eager PyTorch on any probed device); more to come."""
from .base import BACKENDS, RequestTiming, check_backend

__all__ = ["BACKENDS", "RequestTiming", "check_backend"]
