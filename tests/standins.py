"""Small servers on 127.0.0.1 that speak the engines' documented streaming formats, for testing
our client (the thing under test), and a prefix cache whose hits a Prometheus /metrics shows.

Each stand-in answers `max_tokens` (or `max_new_tokens`) tokens " w0", " w1" ..., every fifth
one with empty text, as a detokenizer holding back part of a character sends it. Formats, from
each engine's source (see docs/endpoints.md):
- vllm: completions and chat; chat opens with a role chunk (`content: ""`); usage in a chunk of
  its own with `choices: []` when `stream_options.include_usage`; `data: [DONE]`.
- sglang: the same framing; the role chunk carries no token.
- mindie: `delta.role` on every chat chunk; usage on the last chunk that has choices, sent
  whatever `stream_options` says; TGI's /generate_stream with `details.prompt_tokens` and a
  last event whose `token.text` is null.
- trtllm: `data:` lines with a trailing space, a role chunk without `content`.
- tgi: /generate_stream, no [DONE], keep-alive comment lines, `details.input_length`.
"""
from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

BLOCK_WORDS = 4   # the stand-in's prefix cache matches whole blocks of this many prompt words
TOKEN_GAP_S = 0.01


def _token_text(i: int) -> str:
    return "" if i % 5 == 4 else f" w{i}"


class PrefixCache:
    """Block-granular prefix cache over prompt words, as vLLM's is over tokens."""

    def __init__(self):
        self.blocks: set[tuple[str, ...]] = set()

    def lookup(self, words: list[str]) -> int:
        """Words served from cache; every full block of the prompt is then cached."""
        hit, full = 0, len(words) // BLOCK_WORDS * BLOCK_WORDS
        for end in range(BLOCK_WORDS, full + 1, BLOCK_WORDS):
            key = tuple(words[:end])
            if key in self.blocks and hit == end - BLOCK_WORDS:
                hit = end
            self.blocks.add(key)
        return hit


class StandIn:
    """One engine's stand-in: its routes, the bodies it received, its metrics."""

    def __init__(self, engine: str):
        self.engine = engine
        self.bodies: list[dict] = []
        self.cache = PrefixCache()
        r = self.registry = CollectorRegistry()
        self.queries = Counter("vllm:prefix_cache_queries", "prompt tokens looked up", ["model_name"], registry=r)
        self.hits = Counter("vllm:prefix_cache_hits", "prompt tokens found", ["model_name"], registry=r)
        self.prompt_tokens = Counter("vllm:prompt_tokens", "prefill tokens", ["model_name"], registry=r)
        self.generation = Counter("vllm:generation_tokens", "generated tokens", ["model_name"], registry=r)
        buckets = (0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1.0, 5.0)
        self.ttft = Histogram("vllm:time_to_first_token_seconds", "TTFT", ["model_name"], buckets=buckets,
                              registry=r)
        self.itl = Histogram("vllm:inter_token_latency_seconds", "ITL", ["model_name"], buckets=buckets, registry=r)
        self.e2e = Histogram("vllm:e2e_request_latency_seconds", "E2E", ["model_name"], buckets=buckets, registry=r)
        self.running = Gauge("vllm:num_requests_running", "running", ["model_name"], registry=r)
        self.waiting = Gauge("vllm:num_requests_waiting", "waiting", ["model_name"], registry=r)
        for metric in (self.queries, self.hits, self.prompt_tokens, self.generation, self.running, self.waiting):
            metric.labels("m")

    def app(self) -> web.Application:
        app = web.Application()
        app.add_routes([web.get("/v1/models", self.models), web.get("/metrics", self.metrics),
                        web.post("/v1/completions", self.openai), web.post("/v1/chat/completions", self.openai),
                        web.post("/generate_stream", self.generate_stream)])
        return app

    async def models(self, request):
        return web.json_response({"object": "list", "data": [{"id": "m", "object": "model"}]})

    async def metrics(self, request):
        return web.Response(body=generate_latest(self.registry), content_type="text/plain")

    def _admit(self, prompt_words: list[str]) -> None:
        hit = self.cache.lookup(prompt_words)
        self.queries.labels("m").inc(len(prompt_words))
        self.hits.labels("m").inc(hit)
        self.prompt_tokens.labels("m").inc(len(prompt_words))

    async def _stream(self, request, events: Iterator[dict | str], n: int, trailer: bytes = b"") -> web.StreamResponse:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        self.running.labels("m").inc()
        last = None
        try:
            for event in events:
                if isinstance(event, str):       # a comment or keep-alive line
                    await resp.write(event.encode() + b"\n\n")
                    continue
                now = loop.time()
                if event.pop("_token", False):
                    if last is None:
                        self.ttft.labels("m").observe(now - t0)
                    else:
                        self.itl.labels("m").observe(now - last)
                    last = now
                    await asyncio.sleep(TOKEN_GAP_S)
                space = b" " if self.engine == "trtllm" else b""
                await resp.write(b"data: " + json.dumps(event).encode() + space + b"\n\n")
            await resp.write(trailer)
        finally:
            self.running.labels("m").dec()
        self.generation.labels("m").inc(n)
        self.e2e.labels("m").observe(loop.time() - t0)
        return resp

    async def openai(self, request):
        body = await request.json()
        self.bodies.append(body)
        chat = "messages" in body
        prompt = " ".join(m["content"] for m in body["messages"]) if chat else body["prompt"]
        words = prompt.split()
        self._admit(words)
        n = body["max_tokens"]
        usage = {"prompt_tokens": len(words), "completion_tokens": n, "total_tokens": len(words) + n}
        want_usage = (body.get("stream_options") or {}).get("include_usage")

        def choice(i: int) -> dict:
            finish = "length" if i == n - 1 else None
            if not chat:
                return {"index": 0, "text": _token_text(i), "finish_reason": finish}
            delta = {"content": _token_text(i)}
            if self.engine == "mindie":
                delta["role"] = "assistant"
            return {"index": 0, "delta": delta, "finish_reason": finish}

        def events():
            if chat:
                role = {"role": "assistant"} if self.engine == "trtllm" else {"role": "assistant", "content": ""}
                yield {"choices": [{"index": 0, "delta": role, "finish_reason": None}]}
            for i in range(n):
                event = {"choices": [choice(i)], "_token": True}
                if self.engine == "mindie" and i == n - 1:
                    event["usage"] = usage
                yield event
            if want_usage and self.engine != "mindie":
                yield {"choices": [], "usage": usage}
        return await self._stream(request, events(), n, b"data: [DONE]\n\n")

    async def generate_stream(self, request):
        body = await request.json()
        self.bodies.append(body)
        words = body["inputs"].split()
        self._admit(words)
        n = body["parameters"]["max_new_tokens"]
        text = "".join(_token_text(i) for i in range(n))
        counts = {"prompt_tokens": len(words)} if self.engine == "mindie" else {"input_length": len(words)}

        def events():
            for i in range(n):
                last = i == n - 1 and self.engine != "mindie"
                token = {"id": i, "text": _token_text(i), "logprob": -0.1, "special": False}
                yield {"index": i, "token": token, "generated_text": text if last else None,
                       "details": {"finish_reason": "length", "generated_tokens": n, **counts} if last else None,
                       "_token": True}
                if self.engine == "tgi":
                    yield ":"
            if self.engine == "mindie":
                yield {"token": {"id": n - 1, "text": None}, "generated_text": text,
                       "details": {"finish_reason": "length", "generated_tokens": n, **counts}}
        return await self._stream(request, events(), n)


@contextmanager
def serving(app: web.Application) -> Iterator[str]:
    """`app` on 127.0.0.1 in a thread of its own; yields its base URL."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    box: dict = {}

    async def start():
        runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        box["runner"], box["port"] = runner, runner.addresses[0][1]
        started.set()

    thread = threading.Thread(target=lambda: (loop.run_until_complete(start()), loop.run_forever()), daemon=True)
    thread.start()
    assert started.wait(10)
    try:
        yield f"http://127.0.0.1:{box['port']}"
    finally:
        asyncio.run_coroutine_threadsafe(box["runner"].cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
