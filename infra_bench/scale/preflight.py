"""Checks of `--ray` that need neither torch nor a connection, so a sweep that cannot reach its cluster
says so in a second, before its cells are planned (planning imports torch and resolves every spec)."""
from __future__ import annotations

import os
import socket

from ..errors import MissingDependency, UserError, install_hint


def ray_address(address: str | None) -> str:
    """The address ray.init gets (None: RAY_ADDRESS if set, else a new local cluster of our own), after
    checking that Ray is installed and that a given HOST:PORT answers."""
    try:
        import ray  # noqa: F401  (a second without torch; an installed but broken Ray fails here too)
    except ImportError:
        raise MissingDependency(f"--ray runs cells on a Ray cluster: {install_hint('ray')}") from None
    address = address or os.environ.get("RAY_ADDRESS") or "local"
    if address not in ("auto", "local"):
        reachable(address)
    return address


def reachable(address: str, timeout_s: float = 5.0) -> None:
    """A bounded TCP check first: ray.init retries an unreachable address for minutes."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"--ray {address}: expected HOST:PORT (the head's GCS port, 6379 by default) or ray://HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as e:
        raise UserError(f"cannot reach the Ray cluster at {address} ({e.strerror or e}); start one with "
                        f"`ray start --head` and pass its address, or use --ray alone for a local one") from None
