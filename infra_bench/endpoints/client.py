"""One request to an OpenAI-compatible endpoint, timed as the client sees it.

LLM APIs stream (`stream: true`, usage requested with `stream_options.include_usage`). The
accounting follows vLLM's own client (`vllm bench serve`), with one exception for TTFT:
- TTFT: from just before the request is sent to the arrival of the first chunk carrying text
  (`text`, or chat `delta.content` / `delta.reasoning_content`); a role-only chunk sent before
  prefill ends would otherwise stop the clock early;
- ITL: the gaps between successive chunks with `choices` after that one, empty text included
  (a detokenizer holding back half a character still sent a token);
- E2E: to the arrival of the last chunk with `choices` (a usage-only chunk after it is not
  counted, as in vLLM 0.32);
- output tokens: `usage.completion_tokens` when the server reports it, else the generated text
  counted with `--tokenizer`, else the chunks counted from the first text chunk (an estimate).
Speech, images, embeddings and rerank do not stream tokens: TTFB is the first body byte, E2E the
end of the body; speech also times the first byte of audio data after the WAV header
(`first_audio_s`); embeddings and rerank count the vectors or scores returned (`sequences`) and
the input tokens the server reports in `usage`.
Every failure becomes `Outcome.error`, one line that groups well (no request ids in it).
"""
from __future__ import annotations

import asyncio
import json
import struct
import time
from dataclasses import dataclass, field

from .inputs import RequestInput
from .sse import DONE, SseError, data_of, event_json
from .target import Target

ERROR_BODY_LIMIT = 4096
RERANK_QUERY_WORDS = 8
WAV_HEADER_LIMIT = 4096


@dataclass(frozen=True)
class RequestOptions:
    model: str
    timeout_s: float = 120.0        # the whole request
    stall_timeout_s: float = 30.0   # no bytes for this long fails the request as stalled
    connect_timeout_s: float = 10.0
    ignore_eos: bool = True         # ask for exactly output_len tokens (ignore_eos, as vLLM's client sends)
    voice: str = "alloy"
    size: str | None = None


@dataclass
class Outcome:
    """One request's result; times in seconds, `sent_s` from the start of its load point."""
    sent_s: float
    ok: bool = False
    error: str | None = None
    cancelled: bool = False
    elapsed_s: float | None = None      # until success, failure or cancellation
    ttft_s: float | None = None
    ttfb_s: float | None = None
    first_audio_s: float | None = None
    e2e_s: float | None = None
    itl_s: list[float] = field(default_factory=list)
    output_tokens: int | None = None
    input_tokens: int | None = None
    tokens_source: str | None = None    # usage | tokenizer | chunks
    chunks: int = 0                     # chunks with choices, from the first with text
    text: list[str] = field(default_factory=list, repr=False)   # generated text, for --tokenizer
    audio_s: float | None = None
    images: int | None = None
    sequences: int | None = None        # embeddings: vectors returned; rerank: passages scored
    status: int | None = None           # a failure's HTTP status, or the code of an error event in the stream

    @property
    def tpot_s(self) -> float | None:
        """(e2e - ttft) / (output tokens - 1); undefined for fewer than two tokens."""
        if not self.ok or self.ttft_s is None or not self.output_tokens or self.output_tokens < 2:
            return None
        return (self.e2e_s - self.ttft_s) / (self.output_tokens - 1)

    @property
    def rtf(self) -> float | None:
        return self.e2e_s / self.audio_s if self.ok and self.audio_s else None


class RequestFailed(Exception):
    """A failure whose message is the error text to record, with the HTTP status (or the error
    event's code: vLLM and SGLang refuse some requests in a stream already begun) when it has one."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


def body(api: str, inp: RequestInput, opts: RequestOptions) -> dict:
    """The JSON body for one request."""
    if api == "speech":
        return {"model": opts.model, "input": inp.text, "voice": opts.voice, "response_format": "wav"}
    if api == "images":
        b = {"model": opts.model, "prompt": inp.text, "n": 1, "response_format": "b64_json"}
        return {**b, "size": opts.size} if opts.size else b
    if api == "embeddings":
        return {"model": opts.model, "input": inp.text, "encoding_format": "float"}
    if api == "rerank":  # the prompt's first words are the query, the whole prompt the passage
        return {"model": opts.model, "query": " ".join(inp.text.split()[:RERANK_QUERY_WORDS]),
                "documents": [inp.text]}
    if api == "tgi":  # greedy; TGI has no ignore_eos, so the length is a maximum there
        return {"inputs": inp.text, "parameters": {"max_new_tokens": inp.output_len, "details": True,
                                                   "do_sample": False}}
    b: dict = {"model": opts.model, "max_tokens": inp.output_len, "temperature": 0.0, "stream": True,
               "stream_options": {"include_usage": True}}
    if opts.ignore_eos:
        b["ignore_eos"] = True
    if api == "chat":
        return {**b, "messages": list(inp.messages)}
    return {**b, "prompt": inp.text}


async def send(session, target: Target, payload: dict, opts: RequestOptions, out: Outcome) -> Outcome:
    """Send `payload`, fill `out` with timings or the error; never raises (except cancellation)."""
    import aiohttp

    timeout = aiohttp.ClientTimeout(total=opts.timeout_s, sock_connect=opts.connect_timeout_s,
                                    sock_read=opts.stall_timeout_s)
    start, answered = time.perf_counter(), False
    try:
        async with session.post(target.url, json=payload, headers=target.headers, timeout=timeout) as resp:
            answered = True  # the status and headers are in: an engine queueing the request sends them first
            if resp.status >= 400:
                raise RequestFailed(await http_error(resp), resp.status)
            if target.api in ("chat", "completions"):
                await _read_stream(resp, start, out)
            elif target.api == "tgi":
                await _read_tgi(resp, start, out)
            elif target.api == "speech":
                await _read_audio(resp, start, out)
            elif target.api in ("embeddings", "rerank"):
                await _read_vectors(resp, start, out, "data" if target.api == "embeddings" else "results")
            else:
                await _read_images(resp, start, out)
        out.ok = True
    except RequestFailed as e:
        out.error, out.status = str(e), e.status
    except SseError as e:
        out.error = str(e)
    except aiohttp.ConnectionTimeoutError:
        out.error = f"connect timeout: no connection within {opts.connect_timeout_s:g} s"
    except aiohttp.ServerTimeoutError:
        out.error = f"stalled: no data for {opts.stall_timeout_s:g} s {_reached(out, answered)} (--stall-timeout)"
    except asyncio.TimeoutError:
        out.error = f"timed out: request took longer than {opts.timeout_s:g} s (--timeout)"
    except aiohttp.ClientConnectorError as e:
        out.error = f"connection failed: {connect_reason(e)}"
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError, aiohttp.ClientOSError) as e:
        out.error = f"server disconnected {_reached(out, answered)}{_why(e)}"
    except aiohttp.ClientError as e:
        out.error = f"{type(e).__name__}: {_first_line(e)}"
    except ValueError as e:  # a line longer than aiohttp's limit
        out.error = f"malformed response: {_first_line(e)}"
    out.elapsed_s = time.perf_counter() - start
    if out.error:
        out.ok = False
        out.error = target.redact(out.error)
    return out


async def _read_stream(resp, start: float, out: Outcome) -> None:
    _require_event_stream(resp)
    last = start
    finished, done = False, False
    async for now, event in _events(resp):
        if event is None:
            done = True
            break
        choices = event.get("choices") or []
        if choices:
            choice = choices[0]  # one completion per request (n = 1)
            delta = choice.get("delta") or {}
            text = choice.get("text") if "text" in choice else delta.get("content") or delta.get("reasoning_content")
            finished = finished or bool(choice.get("finish_reason"))
            last = _token_chunk(out, text, start, last, now)
        usage = event.get("usage")
        if isinstance(usage, dict) and usage.get("completion_tokens") is not None:
            out.output_tokens, out.tokens_source = int(usage["completion_tokens"]), "usage"
            if usage.get("prompt_tokens") is not None:
                out.input_tokens = int(usage["prompt_tokens"])
    _finish(out, done or finished, last - start)


def _token_chunk(out: Outcome, text: str | None, start: float, last: float, now: float) -> float:
    """Account one token-bearing chunk that arrived at `now`: the first with text sets TTFT, every
    one after it (empty text too) is a chunk and an ITL gap; returns the new `last` arrival."""
    if out.ttft_s is None:
        if not text:
            return last
        out.ttft_s = now - start
    else:
        out.itl_s.append(now - last)
    out.chunks += 1
    if text:
        out.text.append(text)
    return now


async def _events(resp):
    """(arrival time, JSON object) of each `data:` event of the stream; (time, None) for [DONE];
    an error event raises RequestFailed."""
    async for line in resp.content:
        payload = data_of(line)
        if payload is None:
            continue
        now = time.perf_counter()
        if payload == DONE:
            yield now, None
            return
        event = event_json(payload)
        if "error" in event:
            raise RequestFailed(f"error event in stream: {_message(event)}", _code(event))
        yield now, event


def _require_event_stream(resp) -> None:
    ctype = resp.headers.get("Content-Type", "")
    if not ctype.startswith("text/event-stream"):
        raise RequestFailed(f"not an event stream: the server answered {ctype.split(';')[0] or 'no content type'} "
                            f"to a streaming request")


def _finish(out: Outcome, ended: bool, e2e_s: float) -> None:
    """A token stream's end: it must have ended properly and carried text; without a server
    count, the chunks are the output tokens (an estimate)."""
    if not ended:
        raise RequestFailed("stream ended before its end marker ([DONE], a finish_reason or generated_text)" +
                            (f" (after {out.chunks} chunks)" if out.chunks else ""))
    if out.ttft_s is None:
        raise RequestFailed("stream carried no text (no chunk with content)")
    out.e2e_s = e2e_s
    if out.tokens_source is None:
        out.output_tokens, out.tokens_source = out.chunks, "chunks"


async def _read_tgi(resp, start: float, out: Outcome) -> None:
    """TGI's /generate_stream (MindIE serves the same): one `token` per event, no [DONE]; the last
    event carries `generated_text` and, asked with `details`, the token counts (MindIE's last event
    repeats the last token id with text null, which is not a token)."""
    _require_event_stream(resp)
    last, finished = start, False
    async for now, event in _events(resp):
        if event is None:
            break
        token = event.get("token")
        text = token.get("text") if isinstance(token, dict) else None
        if text is not None:
            last = _token_chunk(out, text, start, last, now)
        if event.get("generated_text") is not None:
            finished = True
            details = event.get("details") or {}
            if details.get("generated_tokens") is not None:
                out.output_tokens, out.tokens_source = int(details["generated_tokens"]), "usage"
            prompt = details.get("input_length", details.get("prompt_tokens"))
            out.input_tokens = int(prompt) if prompt is not None else None
    _finish(out, finished, last - start)


async def _read_body(resp, start: float, out: Outcome) -> bytes:
    parts: list[bytes] = []
    async for chunk in resp.content.iter_any():
        if out.ttfb_s is None:
            out.ttfb_s = time.perf_counter() - start
        parts.append(chunk)
    out.e2e_s = time.perf_counter() - start
    return b"".join(parts)


async def _read_audio(resp, start: float, out: Outcome) -> None:
    """Like `_read_body`, also timing the first byte of audio data after the WAV header."""
    ctype = resp.headers.get("Content-Type", "")
    if "json" in ctype or ctype.startswith("text/"):
        raise RequestFailed(f"not audio: the server answered {ctype.split(';')[0]}")
    parts: list[bytes] = []
    size, data_at = 0, None
    async for chunk in resp.content.iter_any():
        now = time.perf_counter()
        if out.ttfb_s is None:
            out.ttfb_s = now - start
        parts.append(chunk)
        size += len(chunk)
        if data_at is None and size >= 12:
            data_at = wav_data_offset(b"".join(parts)[:WAV_HEADER_LIMIT])
        if out.first_audio_s is None and data_at is not None and size > data_at:
            out.first_audio_s = now - start
    out.e2e_s = time.perf_counter() - start
    out.audio_s = wav_seconds(b"".join(parts))


async def _read_images(resp, start: float, out: Outcome) -> None:
    raw = await _read_body(resp, start, out)
    try:
        data = json.loads(raw).get("data")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        raise RequestFailed("malformed images response: not a JSON object") from None
    if not isinstance(data, list) or not data or not all(isinstance(d, dict) and (d.get("b64_json") or d.get("url"))
                                                          for d in data):
        raise RequestFailed("malformed images response: no data[].b64_json or data[].url")
    out.images = len(data)


async def _read_vectors(resp, start: float, out: Outcome, field: str) -> None:
    """An embeddings (`data`) or rerank (`results`) answer: how many it holds, and the input tokens."""
    raw = await _read_body(resp, start, out)
    try:
        doc = json.loads(raw)
        items, usage = doc.get(field), doc.get("usage") or {}
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        raise RequestFailed(f"malformed {field} response: not a JSON object") from None
    if not isinstance(items, list) or not items:
        raise RequestFailed(f"malformed response: no {field}[]")
    out.sequences = len(items)
    tokens = usage.get("prompt_tokens", usage.get("total_tokens")) if isinstance(usage, dict) else None
    out.input_tokens = int(tokens) if isinstance(tokens, (int, float)) else None


def wav_data_offset(raw: bytes) -> int | None:
    """Where the audio data of a WAV body starts, once the header has arrived (else None)."""
    if len(raw) < 12 or raw[:4] != b"RIFF" or raw[8:12] != b"WAVE":
        return None
    pos = 12
    while pos + 8 <= len(raw):
        tag, size = raw[pos:pos + 4], struct.unpack("<I", raw[pos + 4:pos + 8])[0]
        if tag == b"data":
            return pos + 8
        pos += 8 + size + (size & 1)
    return None


def wav_seconds(raw: bytes) -> float:
    """Seconds of audio in a WAV body; a streamed WAV may carry placeholder sizes, so the data
    length is what arrived after the `data` chunk header."""
    if len(raw) < 12 or raw[:4] != b"RIFF" or raw[8:12] != b"WAVE":
        raise RequestFailed("not WAV audio (asked for response_format wav)")
    pos, fmt = 12, None
    while pos + 8 <= len(raw):
        tag, size = raw[pos:pos + 4], struct.unpack("<I", raw[pos + 4:pos + 8])[0]
        if tag == b"fmt " and pos + 24 <= len(raw):
            channels, rate = struct.unpack("<HI", raw[pos + 10:pos + 16])
            bits = struct.unpack("<H", raw[pos + 22:pos + 24])[0]
            fmt = (channels, rate, bits)
        if tag == b"data":
            if not fmt or not all(fmt):
                break
            return (len(raw) - pos - 8) / (fmt[0] * fmt[1] * fmt[2] // 8)
        pos += 8 + size + (size & 1)
    raise RequestFailed("malformed WAV: no fmt/data chunk")


async def http_error(resp) -> str:
    """`HTTP 404: <the server's message>`, the message taken from an OpenAI/vLLM error body."""
    try:
        raw = await resp.content.read(ERROR_BODY_LIMIT)
    except Exception:  # the status alone is the error then
        raw = b""
    text = raw.decode("utf-8", errors="replace").strip()
    try:
        message = _message(json.loads(text))
    except (json.JSONDecodeError, AttributeError, TypeError):
        message = text.splitlines()[0] if text else (resp.reason or "")
    return f"HTTP {resp.status}: {message[:160]}".rstrip(": ")


def connect_reason(e) -> str:
    """Why a connection failed, in words (refused, unknown host ...), from aiohttp's error."""
    import socket

    os_error = getattr(e, "os_error", None)
    if isinstance(os_error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(os_error, socket.gaierror):
        return f"unknown host ({os_error.strerror or os_error})"
    return str(getattr(os_error, "strerror", None) or os_error or e).lower()


def _message(obj) -> str:
    err = obj.get("error", obj)
    if isinstance(err, dict):
        return str(err.get("message") or err.get("detail") or json.dumps(err)[:160])
    return str(err if "error" in obj else obj.get("message") or obj.get("detail") or json.dumps(obj)[:160])


def _code(event: dict) -> int | None:
    """The HTTP-like status an error event gives (`{"error": {"code": 400, ...}}`), if any."""
    err = event.get("error")
    code = err.get("code") if isinstance(err, dict) else event.get("code")
    return int(code) if isinstance(code, int) or (isinstance(code, str) and code.isdigit()) else None


def _reached(out: Outcome, answered: bool) -> str:
    """How far a request got before it failed: after its first data, after only the response headers (an
    engine holding it in its queue sends those first), or before any response."""
    if out.ttft_s is not None or out.ttfb_s is not None:
        return f"after {_chunks(out)}"
    return "after the response headers, before any data" if answered else "before any response"


def _chunks(out: Outcome) -> str:
    if out.ttft_s is not None:
        return f"{out.chunks} chunks"
    return "the first bytes"


def _why(e: BaseException) -> str:
    """` (connection reset by peer)` and the like, from the OS error under aiohttp's."""
    errno_error = next((x for x in (e, e.__cause__, e.__context__) if isinstance(x, OSError) and x.strerror), None)
    return f" ({errno_error.strerror.lower()})" if errno_error else ""


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__
