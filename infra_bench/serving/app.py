"""The aiohttp application: OpenAI-compatible routes over the served models, and `run_server`.

GET /v1/models and /health are common; every other route is a workload kind's (kinds/<kind>/: the
LLM's /v1/completions and /v1/chat/completions, /v1/audio/speech, /v1/images/generations, ...),
handled in serving/routes.py or the kind's own folder. Errors are OpenAI-style JSON:
{"error": {"message", "type", "code"}}.
"""
from __future__ import annotations

import asyncio
import errno
import hmac
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import BaseModel, ValidationError

from ..errors import UserError, explain_validation
from ..kinds import KINDS
from ..kinds.base import load_ref
from . import protocol as P
from .models import Served, build_all
from .worker import ServerClosing, Worker

WEIGHTS_HEADER = "X-Infra-Bench-Weights"


class ApiError(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request_error"):
        super().__init__(message)
        self.status, self.kind = status, kind


def route_kinds() -> dict[str, str]:
    """Served path -> the kind whose models it serves."""
    return {r.path: k.name for k in KINDS.values() for r in k.routes}


@dataclass
class Api:
    """What a route handler needs: the served models, the one worker that runs them, request parsing."""
    models: dict[str, Served]
    worker: Worker
    kinds: dict[str, str] = field(default_factory=route_kinds)  # path -> the kind served there

    async def parse(self, request, cls: type[BaseModel]) -> tuple[BaseModel, Served]:
        """The validated body and the model it names, which must be of the route's kind."""
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
        m = self.models.get(body.model)
        if m is None:
            raise ApiError(404, f"model '{body.model}' is not served here; served: {', '.join(self.models)}",
                           "not_found_error")
        want = self.kinds[request.path]
        if m.kind != want:
            paths = " or ".join(r.path for r in KINDS[m.kind].routes)
            raise ApiError(400, f"'{m.name}' is served as {m.kind} ({KINDS[m.kind].description}); send it to {paths}")
        return body, m


def make_app(models: list[Served], worker: Worker, api_key: str | None):
    """The application; `api_key` (if any) is required as a Bearer token on /v1 routes."""
    from aiohttp import web

    api = Api({m.name: m for m in models}, worker)

    @web.middleware
    async def errors(request, handler):
        if api_key and request.path.startswith("/v1/"):
            given = request.headers.get("Authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {api_key}".encode()):
                return json_response(P.error("missing or wrong API key (Authorization: Bearer ...)", 401,
                                             "authentication_error"), 401)
        try:
            return await handler(request)
        except ApiError as e:
            return json_response(P.error(str(e), e.status, e.kind), e.status)
        except web.HTTPException:
            raise
        except ServerClosing as e:  # a non-streaming answer the shutdown cut short is not sent as a whole one
            return json_response(P.error(str(e), 503, "server_error"), 503)
        # the model failed on a valid request (out of memory ...): JSON, as the LLM's stream says it
        except Exception as e:  # noqa: BLE001
            print(f"serve: {request.path} failed: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
            return json_response(P.error(f"the model failed on this request: {type(e).__name__}: {e}"[:500], 500,
                                         "server_error"), 500)

    async def list_models(request):
        return json_response({"object": "list", "data": [m.card for m in models]})

    async def health(request):
        return json_response({"status": "ok", "queued": worker.queued})

    app = web.Application(middlewares=[errors], client_max_size=4 * 2**20)
    app.add_routes([web.get("/v1/models", list_models), web.get("/health", health)])
    app.add_routes([web.post(r.path, load_ref(r.handler)(api)) for k in KINDS.values() for r in k.routes])
    return app


def json_response(obj: dict, status: int = 200, headers: dict | None = None):
    from aiohttp import web
    return web.json_response(obj, status=status, headers=headers)


def warm_up(models: list[Served]) -> None:
    """One short request per model, so the first timed request is not the first ever."""
    for m in models:
        m.warm_up()


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, taken before any model is built so a busy port fails at once.
    Connections that arrive while models build wait in its backlog."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((host, port), family=family, backlog=1024)
    except OSError as e:
        fix = "choose another --port (0 picks a free one)" if e.errno in (errno.EADDRINUSE, errno.EACCES) else \
            "give a --host address of this machine (127.0.0.1, or 0.0.0.0 for every interface)"
        raise UserError(f"cannot listen on {host}:{port}: {e.strerror or e}; {fix}") from None


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
