"""Reading the user's input files: every way a file can be wrong is one line that names it.

Specs, demands, matrices, assumption files and profiles are YAML; calibration files are JSON.
A missing file, a folder, an unreadable or binary file and a syntax error each become a
UserError with the path and what to give instead, never a traceback.
"""
from __future__ import annotations

import json
from pathlib import Path

import yaml

from .errors import UserError

# libyaml's parser when PyYAML was built with it (the wheels are): the same safe constructor, about
# 10x faster, which `plan` feels (the profiles are 1 MB of YAML read on every call)
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_yaml_all(text: str) -> list:
    """Every document of `text`, built by a safe loader only (plain data, never Python objects)."""
    loader = SAFE_LOADER(text)
    try:
        docs = []
        while loader.check_data():
            docs.append(loader.get_data())
        return docs
    finally:
        loader.dispose()


def parse_yaml(text: str):
    """The single document of `text` (None if empty), built by a safe loader only."""
    loader = SAFE_LOADER(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def read_text(path: str | Path, what: str, hint: str) -> str:
    """The file's text; `what` names the file's role ("demand file"), `hint` says what to give."""
    p = Path(path)
    if p.is_dir():
        raise UserError(f"{p} is a folder, not a {what}; {hint}")
    if not p.exists():
        raise UserError(f"{what} not found: {p}; {hint}")
    if not p.is_file():
        raise UserError(f"{p} exists but is not a regular file ({_file_type(p)}), so not a {what}; {hint}")
    try:
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{p}: not a text file (binary or not UTF-8), so not a {what}; {hint}") from None
    except OSError as e:
        raise UserError(f"{p}: cannot be read ({e.strerror or e}); check its permissions") from None


def _file_type(p: Path) -> str:
    """What a path that is neither a folder nor a regular file is, in words."""
    import stat

    mode = p.stat().st_mode
    for test, name in ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISFIFO, "a named pipe"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a file"


def load_yaml(path: str | Path, what: str, hint: str, documents: bool = False):
    """The parsed YAML (all non-empty documents as a list with `documents`)."""
    text = read_text(path, what, hint)
    try:
        if documents:
            return [d for d in parse_yaml_all(text) if d is not None]
        return parse_yaml(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise UserError(f"{path}: invalid YAML{at}: {problem}; fix the syntax and retry") from None


def load_json(path: str | Path, what: str, hint: str):
    text = read_text(path, what, hint)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}; {hint}") from None


def key_values(pairs: tuple[str, ...] | list[str], flag: str, example: str) -> dict[str, str]:
    """Repeated `KEY=VALUE` command-line options as a mapping of stripped strings; a pair without
    `=` or a key is a one-line error naming the flag and an example."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UserError(f"{flag} '{pair}' is not key=value; for example {flag} {example}")
        out[key.strip()] = value.strip()
    return out
