"""The stopping rule: warm up, then measure until a minimum count and a minimum time are met."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StoppingRule:
    warmup: int = 2
    min_iters: int = 5
    min_time_s: float = 1.0
    max_time_s: float | None = None

    def __post_init__(self) -> None:
        if self.warmup < 0 or self.min_iters < 1 or self.min_time_s < 0:
            raise ValueError("warmup >= 0, min_iters >= 1 and min_time_s >= 0 are required")
        if self.max_time_s is not None and self.max_time_s <= 0:
            raise ValueError("max_time_s must be positive")

    def done(self, iters: int, elapsed_s: float) -> bool:
        """True once both minimums are met, or the optional time cap is reached."""
        if self.max_time_s is not None and elapsed_s >= self.max_time_s and iters >= 1:
            return True
        return iters >= self.min_iters and elapsed_s >= self.min_time_s

    def reason(self, iters: int, elapsed_s: float) -> str:
        """Why measuring stopped, for the record."""
        if iters >= self.min_iters and elapsed_s >= self.min_time_s:
            return "min_iters_and_min_time"
        return "max_time"
