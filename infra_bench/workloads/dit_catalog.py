"""The diffusion-transformer pipelines (workloads/architectures/dit.yaml): read without torch, so the
planner can list them and `run` can say it does not build them yet."""
from __future__ import annotations

from functools import lru_cache

from ..inputs import parse_yaml
from ..paths import data_dir


@lru_cache(maxsize=1)
def catalog() -> dict[str, dict]:
    """id -> entry; keys starting with `_` are shared YAML anchors, not models."""
    raw = parse_yaml((data_dir("workloads") / "architectures" / "dit.yaml").read_text())
    return {k: v for k, v in raw.items() if not k.startswith("_")}
