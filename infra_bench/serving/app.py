"""The aiohttp application: OpenAI-compatible routes over the served models, and `run_server`.

Routes: GET /v1/models, GET /health, POST /v1/completions, /v1/chat/completions (streaming as
server-sent events, or one JSON answer), /v1/audio/speech (WAV) and /v1/images/generations
(b64 PNG). Errors are OpenAI-style JSON: {"error": {"message", "type", "code"}}.
"""
from __future__ import annotations

import asyncio
import base64
import hmac
import signal
import socket
import sys
import time
import uuid
from collections.abc import Callable

from pydantic import BaseModel, ValidationError

from ..errors import UserError, explain_validation
from . import protocol as P
from .media import png, wav_header
from .models import Served, ServedImages, ServedLlm, ServedSpeech, build_all
from .worker import Worker

WEIGHTS_HEADER = "X-Infra-Bench-Weights"
AUDIO_PIECE = 64 * 1024
ROUTE_KIND = {"/v1/completions": "llm", "/v1/chat/completions": "llm", "/v1/audio/speech": "tts",
              "/v1/images/generations": "diffusion"}
KIND_ROUTE = {"llm": "/v1/chat/completions or /v1/completions", "tts": "/v1/audio/speech",
              "diffusion": "/v1/images/generations"}


class ApiError(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request_error"):
        super().__init__(message)
        self.status, self.kind = status, kind


def make_app(models: list[Served], worker: Worker, api_key: str | None):
    """The application; `api_key` (if any) is required as a Bearer token on /v1 routes."""
    from aiohttp import web

    by_name = {m.name: m for m in models}

    @web.middleware
    async def errors(request, handler):
        if api_key and request.path.startswith("/v1/"):
            given = request.headers.get("Authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {api_key}".encode()):
                return _json(P.error("missing or wrong API key (Authorization: Bearer ...)", 401,
                                     "authentication_error"), 401)
        try:
            return await handler(request)
        except ApiError as e:
            return _json(P.error(str(e), e.status, e.kind), e.status)

    async def parse(request, cls: type[BaseModel]) -> tuple[BaseModel, Served]:
        try:
            raw = await request.json()
        except ValueError:
            raise ApiError(400, "the request body is not JSON") from None
        if not isinstance(raw, dict):
            raise ApiError(400, "the request body must be a JSON object")
        try:
            body = cls(**raw)
        except ValidationError as e:
            raise ApiError(400, explain_validation(e, "request", cls.model_fields)) from None
        m = by_name.get(body.model)
        if m is None:
            raise ApiError(404, f"model '{body.model}' is not served here; served: {', '.join(by_name)}",
                           "not_found_error")
        want = ROUTE_KIND[request.path]
        if m.kind != want:
            raise ApiError(400, f"'{m.name}' is a {m.kind} model; send it to {KIND_ROUTE[m.kind]}")
        return body, m

    async def list_models(request):
        return _json({"object": "list", "data": [m.card for m in models]})

    async def health(request):
        return _json({"status": "ok", "queued": worker.queued})

    async def completions(request):
        body, m = await parse(request, P.CompletionRequest)
        p = body.prompt
        if isinstance(p, list) and p and all(isinstance(t, int) for t in p):
            bad = [t for t in p if not 0 <= t < m.vocab_size]
            if bad:
                raise ApiError(400, f"token id {bad[0]} is outside the vocabulary")
            ids = list(p)
        elif isinstance(p, list):
            if len(p) != 1:
                raise ApiError(400, "one prompt per request (a list of one string, or a string)")
            ids = m.codec.encode(p[0])
        else:
            ids = m.codec.encode(p)
        return await _generate(request, m, body, ids, chat=False)

    async def chat(request):
        body, m = await parse(request, P.ChatRequest)
        ids = m.codec.encode_chat([{"role": x.role, "content": x.text()} for x in body.messages])
        return await _generate(request, m, body, ids, chat=True)

    async def _generate(request, m: ServedLlm, body, ids: list[int], chat: bool):
        n = body.tokens
        if not ids:
            raise ApiError(400, "the prompt is empty")
        if m.max_positions and len(ids) + n > m.max_positions:
            raise ApiError(400, f"prompt ({len(ids)} tokens) + max_tokens ({n}) exceeds the model's "
                                f"{m.max_positions} positions")
        rid = f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex[:24]}"
        fp = P.fingerprint(m.card.get("weights"))
        tokens = worker.stream(lambda emit: m.generate(ids, n, emit))
        headers = {WEIGHTS_HEADER: str(m.card.get("weights"))}
        if not body.stream:
            pieces = [m.codec.piece(t) async for t in tokens]
            return _json(P.completion(rid, m.name, chat, "".join(pieces), len(ids), len(pieces), fp), headers=headers)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                           **headers})
        await resp.prepare(request)
        count = 0
        try:
            try:
                async for token in tokens:
                    count += 1
                    await resp.write(P.sse(P.chunk(rid, m.name, chat, m.codec.piece(token), count == 1,
                                                   "length" if count == n else None, fp)))
            except ConnectionError:
                raise
            except Exception as e:  # the model failed mid-stream: say so in the stream, no [DONE]
                await resp.write(P.sse(P.error(f"generation failed: {type(e).__name__}", 500, "server_error")))
                return resp
            if body.include_usage:
                await resp.write(P.sse(P.usage_chunk(rid, m.name, chat, len(ids), count, fp)))
            await resp.write(P.sse("[DONE]"))
            await resp.write_eof()
        except ConnectionError:  # the client went away; the worker stops at its next token
            await tokens.aclose()
        return resp

    async def speech(request):
        body, m = await parse(request, P.SpeechRequest)
        headers = {"Content-Type": "audio/wav", WEIGHTS_HEADER: str(m.card.get("weights"))}
        chunks = worker.stream(lambda emit: m.synthesize(body.input, emit))
        resp = web.StreamResponse(headers=headers)
        try:
            if not m.streams:
                pcm = b"".join([c async for c in chunks])
                await resp.prepare(request)
                await resp.write(wav_header(m.sample_rate, len(pcm)))
                for i in range(0, len(pcm), AUDIO_PIECE):
                    await resp.write(pcm[i:i + AUDIO_PIECE])
            else:
                await resp.prepare(request)
                await resp.write(wav_header(m.sample_rate, None))
                async for c in chunks:
                    await resp.write(c)
            await resp.write_eof()
        except ConnectionError:
            await chunks.aclose()
        return resp

    async def images(request):
        body, m = await parse(request, P.ImagesRequest)
        res = _resolution(body.size, m)

        def job() -> list[str]:
            return [base64.b64encode(png(img)).decode() for img in m.make(body.n, res)]
        data = await worker.call(job)
        out = {"created": int(time.time()), "model": m.name, "data": [{"b64_json": d} for d in data],
               "infra_bench": {"weights": m.card.get("weights"), "note": m.card.get("note"),
                               "prompt": m.card.get("prompt")}}
        return _json(out, headers={WEIGHTS_HEADER: str(m.card.get("weights"))})

    app = web.Application(middlewares=[errors], client_max_size=4 * 2**20)
    app.add_routes([web.get("/v1/models", list_models), web.get("/health", health),
                    web.post("/v1/completions", completions), web.post("/v1/chat/completions", chat),
                    web.post("/v1/audio/speech", speech), web.post("/v1/images/generations", images)])
    return app


def _json(obj: dict, status: int = 200, headers: dict | None = None):
    from aiohttp import web
    return web.json_response(obj, status=status, headers=headers)


def _resolution(size: str | None, m: ServedImages) -> int:
    if size is None:
        return m.resolution
    try:
        w, h = (int(v) for v in size.lower().split("x"))
    except ValueError:
        raise ApiError(400, f"size '{size}' is not WIDTHxHEIGHT") from None
    if w != h or w % m.vae_factor or not 0 < w <= 2048:
        raise ApiError(400, f"size '{size}': square sizes up to 2048 that are multiples of {m.vae_factor} only")
    return w


def warm_up(models: list[Served]) -> None:
    """One short request per model, so the first timed request is not the first ever."""
    for m in models:
        if isinstance(m, ServedLlm):
            m.generate(m.codec.encode("warm up the model") or [1], 2, lambda _: True)
        elif isinstance(m, ServedImages):
            m.make(1, m.resolution)
        elif isinstance(m, ServedSpeech):
            m.synthesize("warm up", lambda _: True)


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, taken before any model is built so a busy port fails at once.
    Connections that arrive while models build wait in its backlog."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((host, port), family=family, backlog=1024)
    except OSError as e:
        raise UserError(f"cannot listen on {host}:{port}: {e.strerror or e}; choose another --port "
                        f"(0 picks a free one)") from None


def run_server(specs: list, sock: socket.socket, api_key: str | None, trust_remote_code: bool,
               echo: Callable[[str], None]) -> None:
    """Build every model, warm it up, print the URL, and serve on `sock` until SIGINT or SIGTERM."""
    from ..endpoints.bench import require_aiohttp

    require_aiohttp()
    models = build_all(specs, trust_remote_code, echo)
    warm_up(models)
    asyncio.run(_serve(models, sock, api_key, echo))


async def _serve(models: list[Served], sock: socket.socket, api_key: str | None,
                 echo: Callable[[str], None]) -> None:
    from aiohttp import web

    worker = Worker()
    runner = web.AppRunner(make_app(models, worker, api_key), access_log=None)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    echo(f"serving {', '.join(m.name for m in models)} at http://{shown}:{port}/v1 (Ctrl-C to stop)")
    sys.stdout.flush()
    try:
        await stop.wait()
    finally:
        worker.close()
        await runner.cleanup()
    echo("stopped")
