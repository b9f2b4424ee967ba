"""Server-sent events as the OpenAI streaming APIs send them: one JSON object per `data:` line,
ended by `data: [DONE]`.

Strict on purpose: a benchmark must not time garbage. A line that is not an SSE field
(`data`, `event`, `id`, `retry`), a comment (`:...`) or blank is malformed; so is a `data:`
payload that is not a JSON object.
"""
from __future__ import annotations

import json

DONE = "[DONE]"
_IGNORED_FIELDS = (b"event:", b"id:", b"retry:", b":")


class SseError(Exception):
    """The stream broke the event-stream format; the message is the error text recorded."""


def data_of(line: bytes) -> str | None:
    """The payload of a `data:` line, or None for a line that carries none (blank, comment,
    event/id/retry); raise SseError for anything else."""
    line = line.rstrip(b"\r\n")
    if not line or line.startswith(_IGNORED_FIELDS):
        return None
    if not line.startswith(b"data:"):
        raise SseError(f"malformed SSE line: {_show(line)}")
    try:
        return line[5:].decode("utf-8").strip()
    except UnicodeDecodeError:
        raise SseError(f"malformed SSE line: not UTF-8: {_show(line)}") from None


def event_json(payload: str) -> dict:
    """A `data:` payload parsed as the JSON object it must be."""
    try:
        obj = json.loads(payload)
    except json.JSONDecodeError:
        raise SseError(f"malformed SSE data: not JSON: {_show(payload.encode())}") from None
    if not isinstance(obj, dict):
        raise SseError(f"malformed SSE data: a JSON {type(obj).__name__}, not an object")
    return obj


def _show(raw: bytes, limit: int = 60) -> str:
    text = raw.decode("utf-8", errors="replace")
    return repr(text if len(text) <= limit else text[:limit] + "...")
