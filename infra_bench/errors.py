"""User-facing errors: one line that names the problem and the fix."""
from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager


class UserError(Exception):
    """Bad input or environment; the CLI prints the message as one line and exits 2. Line breaks
    inside the message (a YAML parser's, a field name's) are folded so it stays one line."""

    def __init__(self, message: str = ""):
        super().__init__(" ".join(part.strip() for part in str(message).splitlines() if part.strip()))


class Interrupted(Exception):
    """Ctrl-C during a run; the message names the run and the command that finishes it (exit 130)."""


@contextmanager
def interrupted_before_measuring(command: str, resume_id: str | None) -> Iterator[None]:
    """Ctrl-C inside (a run's or sweep's imports and planning) becomes Interrupted, saying that no run was
    made, or that the resumed one is as it was, and to run the same command again: click's own handling of
    it printed 'aborted' and nothing more."""
    kept = (f"{command} {resume_id} is as it was; run the same command again to finish it" if resume_id
            else "no run was made; run the same command again")
    try:
        yield
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted before measuring began: {kept}") from None


class MissingDependency(UserError):
    """An optional dependency is not installed; the message says which extra brings it."""


def _direct_url() -> dict:
    """This installation's PEP 610 record (how pip installed it), or {}."""
    import importlib.metadata as md
    import json

    try:
        return json.loads(md.distribution("infra-bench").read_text("direct_url.json") or "{}")
    except (md.PackageNotFoundError, json.JSONDecodeError):
        return {}


def install_hint(extra: str, direct: dict | None = None) -> str:
    """The command that adds an extra to this installation: `pip install -e "DIR[extra]"` for an
    editable install from a checkout, else `pip install 'infra-bench[extra]'`. `direct` is a PEP 610
    direct_url record (default: this installation's)."""
    from pathlib import Path
    from urllib.parse import unquote, urlparse

    direct = _direct_url() if direct is None else direct
    if direct.get("dir_info", {}).get("editable"):
        folder = Path(unquote(urlparse(direct["url"]).path))
        where = "." if folder == Path.cwd() else str(folder)
        return f'pip install -e "{where}[{extra}]"'
    return f"pip install 'infra-bench[{extra}]'"


def article(word: str) -> str:
    """'a' or 'an' before a lower-case kind or unit word ('an embedding', 'an llm', 'a tts')."""
    return "an" if word[:1] in "aeiou" or word == "llm" else "a"


def first_repeat(values: list | None) -> object | None:
    """The first value a list holds twice (compared with ==, so unhashable values work too), or None."""
    return next((v for i, v in enumerate(values or []) if v in values[:i]), None)


def closest(name: str, choices: Iterable[str]) -> str:
    """A ' (did you mean X?)' suffix for the closest valid name, or ''. A name that begins several valid
    ones ('sdxl' of 'sdxl-base-1.0' and 'sdxl-tiny'), or is part of them ('h100' of 'nv_h100_sxm'), gets up to
    three of them: the closest by spelling alone would be the shortest (often a test model) or another part
    ('hg_z100' for 'h100')."""
    names, low = list(choices), name.lower()
    starts = sorted(c for c in names if low and c.lower().startswith(low) and c.lower() != low)
    inside = sorted(c for c in names if len(low) >= 3 and low in c.lower() and c.lower() != low)  # 'h100': nv_h100_sxm
    match = starts or inside or difflib.get_close_matches(name, names, n=1, cutoff=0.5)
    if not match:
        return ""
    quoted = " or ".join(f"'{m}'" for m in match[:3])
    return f" (did you mean {quoted}{' ...' if len(match) > 3 else ''}?)"


def _fields_at(fields, path: tuple) -> Iterable[str]:
    """The field names of the model nested at `path` under `fields` (a model's `model_fields`), so that an unknown
    key inside `traffic:` is matched against traffic's fields; the top level's where it cannot be followed."""
    import typing

    here = fields
    for key in path:
        info = here.get(key) if isinstance(here, dict) and isinstance(key, str) else None
        if info is None or not hasattr(info, "annotation"):
            return fields if here is fields else here
        todo, found = [info.annotation], None
        while todo and found is None:
            t = todo.pop()
            if isinstance(t, type) and hasattr(t, "model_fields"):
                found = t.model_fields
            else:
                todo += list(typing.get_args(t))
        if found is None:
            return fields
        here = found
    return here


SHOWN_CHARS = 80


def _shown(value: object) -> str:
    """A rejected value as an error quotes it; a long one (a 5,000-character request field) is described by
    its size instead: quoted, it made a 6 KiB error that loadtest could not parse, and one error per request
    where the same fault should count as one."""
    text = repr(value)
    if len(text) <= SHOWN_CHARS:
        return text
    if isinstance(value, str):
        return f"a string of {len(value)} characters"
    return f"a {type(value).__name__} of {len(value)} items" if hasattr(value, "__len__") else \
        f"a {type(value).__name__}"


def explain_validation(err, where: str, fields: Iterable[str] = ()) -> str:
    """One line for the first problem in a pydantic ValidationError: where, which field, what is
    wrong, and the closest known field name for an unknown one."""
    e = err.errors()[0]
    loc = ".".join(str(x) for x in e["loc"])
    msg = e["msg"].removeprefix("Value error, ")
    if e["type"] == "extra_forbidden":
        return f"{where}: unknown field {loc!r}{closest(str(e['loc'][-1]), _fields_at(fields, e['loc'][:-1]))}"
    if e["type"] == "missing":
        return f"{where}: missing required field {loc!r}"
    if e["type"] in ("model_type", "model_attributes_type"):  # not "instance of Length": the fields it takes
        inner = _fields_at(fields, tuple(k for k in e["loc"] if isinstance(k, str)))
        if inner is not fields:
            return (f"{where}: field {loc!r}: expects a mapping of {', '.join(inner)} "
                    f"(got {_shown(e['input'])})")
    got = f" (got {_shown(e['input'])})" if e["type"] != "value_error" and not isinstance(e.get("input"), dict) else ""
    return f"{where}: {'field ' + repr(loc) + ': ' if loc else ''}{msg}{got}"
