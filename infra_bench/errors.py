"""User-facing errors: one line that names the problem and the fix."""
from __future__ import annotations

import difflib
from collections.abc import Iterable


class UserError(Exception):
    """Bad input or environment; the CLI prints the message as one line and exits 2."""


class MissingDependency(UserError):
    """An optional dependency is not installed; the message says which extra brings it."""


def closest(name: str, choices: Iterable[str]) -> str:
    """A ' (did you mean X?)' suffix for the closest valid name, or ''."""
    match = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return f" (did you mean '{match[0]}'?)" if match else ""
