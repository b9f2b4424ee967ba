"""infra-bench: measure inference on your own hardware; predict and size clusters from it."""
from __future__ import annotations

__version__ = "0.1.0"


def load_results(path_or_run_id, root="results"):
    """One row per cell of a run, metrics as columns (see infra_bench.results.frame)."""
    from .results.frame import load_results as _load
    return _load(path_or_run_id, root)


__all__ = ["__version__", "load_results"]
