"""The registry of workload kinds. A new kind is a folder here and one line in `_REGISTERED`."""
from __future__ import annotations

from ..errors import UserError, closest
from .base import Kind

_REGISTERED = ("llm", "diffusion", "tts", "embedding", "video")


def _load() -> dict[str, Kind]:
    import importlib

    kinds = {}
    for name in _REGISTERED:
        k: Kind = importlib.import_module(f"{__name__}.{name}").KIND
        kinds[k.name] = k
    return kinds


KINDS: dict[str, Kind] = _load()


def get(name: object, where: str = "") -> Kind:
    """The kind named `name`, or a one-line error listing the known kinds."""
    if not isinstance(name, str) or name not in KINDS:
        prefix = f"{where}: " if where else ""
        raise UserError(f"{prefix}unknown kind '{name}'{closest(str(name), KINDS)}; known kinds: {', '.join(KINDS)}")
    return KINDS[name]
