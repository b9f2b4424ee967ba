"""The HTTP handlers of the built-in kinds' routes, as factories of `api` (serving.app.Api):
text generation (completions and chat, streamed as server-sent events or one JSON answer),
speech (WAV) and images (b64 PNG)."""
from __future__ import annotations

import base64
import sys
import time
import uuid

from . import protocol as P
from .app import WEIGHTS_HEADER, Api, ApiError, json_response
from .media import png, wav_header
from .models import ServedImages, ServedLlm
from .worker import ServerClosing

AUDIO_PIECE = 64 * 1024


def completions(api: Api):
    async def handle(request):
        body, m = await api.parse(request, P.CompletionRequest)
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
        return await _generate(api, request, m, body, ids, chat=False)
    return handle


def chat(api: Api):
    async def handle(request):
        body, m = await api.parse(request, P.ChatRequest)
        ids = m.codec.encode_chat([{"role": x.role, "content": x.text()} for x in body.messages])
        return await _generate(api, request, m, body, ids, chat=True)
    return handle


async def _generate(api: Api, request, m: ServedLlm, body, ids: list[int], chat: bool):
    from aiohttp import web

    n = body.tokens
    if not ids:
        raise ApiError(400, "the prompt is empty")
    if m.max_positions and len(ids) + n > m.max_positions:
        raise ApiError(400, f"prompt ({len(ids)} tokens) + max_tokens ({n}) exceeds the model's "
                            f"{m.max_positions} positions")
    rid = f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex[:24]}"
    fp = P.fingerprint(m.card.get("weights"))
    tokens = api.worker.stream(lambda emit: m.generate(ids, n, emit))
    headers = {WEIGHTS_HEADER: str(m.card.get("weights"))}
    if not body.stream:
        pieces = [m.codec.piece(t) async for t in tokens]
        return json_response(P.completion(rid, m.name, chat, "".join(pieces), len(ids), len(pieces), fp),
                             headers=headers)
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
        except ServerClosing as e:  # cut short by the shutdown: an error event, no [DONE]
            await resp.write(P.sse(P.error(str(e), 503, "server_error")))
            return resp
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


def speech(api: Api):
    from aiohttp import web

    async def handle(request):
        body, m = await api.parse(request, P.SpeechRequest)
        headers = {"Content-Type": "audio/wav", WEIGHTS_HEADER: str(m.card.get("weights"))}
        chunks = api.worker.stream(lambda emit: m.synthesize(body.input, emit))
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
        except Exception as e:
            if not resp.prepared:  # nothing sent yet: the app answers a JSON error
                raise
            # the WAV is under way: its headers are sent, so the connection is cut and the client sees it unfinished
            print(f"serve: {request.path} failed mid-stream: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
            if request.transport is not None:
                request.transport.close()
        return resp
    return handle


def images(api: Api):
    async def handle(request):
        body, m = await api.parse(request, P.ImagesRequest)
        res = _resolution(body.size, m)

        def job() -> list[str]:
            return [base64.b64encode(png(img)).decode() for img in m.make(body.n, res)]
        data = await api.worker.call(job)
        out = {"created": int(time.time()), "model": m.name, "data": [{"b64_json": d} for d in data],
               "infra_bench": {"weights": m.card.get("weights"), "note": m.card.get("note"),
                               "prompt": m.card.get("prompt")}}
        return json_response(out, headers={WEIGHTS_HEADER: str(m.card.get("weights"))})
    return handle


def _resolution(size: str | None, m: ServedImages) -> int:
    if size is None:
        return m.resolution
    try:
        w, h = (int(v) for v in size.lower().split("x"))
    except ValueError:
        raise ApiError(400, f"size '{size}' is not WIDTHxHEIGHT") from None
    if w != h or w % m.pixel_multiple or not 0 < w <= 2048:
        raise ApiError(400, f"size '{size}': square sizes up to 2048 that are multiples of {m.pixel_multiple} only")
    return w
