"""Comparing a backend's outputs (ONNX Runtime, compiled torch) with the eager torch reference,
and the gate that turns a mismatch beyond tolerance into a failed cell instead of a timed result."""
from __future__ import annotations

import numpy as np

# Largest accepted max|backend - torch| / max|torch|, per precision.
PARITY_TOLERANCE = {"fp32": 1e-4, "fp16": 2e-2, "bf16": 5e-2, "int8": 0.15}
DEFINITION = "max_rel_diff = max|backend - torch eager| / max|torch eager|"


def differences(ref: np.ndarray, got: np.ndarray) -> dict:
    max_abs = float(np.abs(got.astype(np.float32) - ref.astype(np.float32)).max())
    return {"max_abs_diff": max_abs, "max_rel_diff": max_abs / (float(np.abs(ref).max()) or 1.0)}


def worst(checks: list[dict]) -> dict:
    """The check with the largest max_rel_diff, a NaN counted largest: max() keeps whichever comes first when
    NaN is compared, so a NaN at the second resolution was passed over and its cell timed."""
    return max(checks, key=lambda c: (np.isnan(c["max_rel_diff"]), c["max_rel_diff"]))


def gate(parity: dict, subject: str = "", detail: str = "") -> str | None:
    """None when within tolerance, else the failure text with the numbers."""
    tol = parity["tolerance"]
    if parity["max_rel_diff"] <= tol:
        return None
    return (f"parity gate failed: {subject}max_rel_diff {parity['max_rel_diff']:.3g} > tolerance {tol:.3g} "
            f"(max_abs_diff {parity['max_abs_diff']:.3g}{detail})")
