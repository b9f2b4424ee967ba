"""Where requests go: the endpoint URL resolved to one API path, and the auth header.

The API key is read from an environment variable only; it lives in `Target.headers` (kept out
of `repr`) and nowhere else: never in records, logs or error texts (`Target.redact`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from ..errors import UserError, closest

API_PATHS = {"completions": "/v1/completions", "chat": "/v1/chat/completions", "tgi": "/generate_stream",
             "speech": "/v1/audio/speech", "images": "/v1/images/generations", "embeddings": "/v1/embeddings",
             "rerank": "/v1/rerank"}
LLM_APIS = ("completions", "chat", "tgi")  # token streams: TTFT, TPOT, ITL
DEFAULT_API = "completions"  # as vLLM's `bench serve`


@dataclass(frozen=True)
class Target:
    url: str                  # the full request URL, without credentials
    models_url: str           # GET here lists the served models (/v1/models)
    api: str
    metrics_url: str = ""     # the Prometheus metrics vLLM and SGLang serve beside the API (/metrics)
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    secret: str | None = field(default=None, repr=False)

    def redact(self, text: str) -> str:
        """`text` with the API key (should a server echo it) replaced by ***."""
        return text.replace(self.secret, "***") if self.secret else text


def api_key(env_var: str | None) -> str | None:
    """The key from the environment variable `env_var` (never from the command line)."""
    if env_var is None:
        return None
    value = os.environ.get(env_var, "").strip()
    if not value:
        raise UserError(f"--api-key-env {env_var}: that environment variable is not set or empty; "
                        f"export {env_var}=<key> first")
    return value


def resolve(endpoint: str, api: str | None, key_env: str | None) -> Target:
    """Accept a base URL (http://host:8000 or .../v1) or a full API URL (.../v1/chat/completions);
    the API is `api`, else the one the path names, else completions."""
    if api is not None and api not in API_PATHS:
        raise UserError(f"unknown --api '{api}'{closest(api, API_PATHS)}; choose one of {', '.join(API_PATHS)}")
    parts = urlsplit(endpoint.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UserError(f"--endpoint '{endpoint}' is not an http(s) URL; give e.g. http://127.0.0.1:8000/v1")
    if parts.username or parts.password:
        raise UserError("--endpoint carries credentials; remove them from the URL and pass the key with "
                        "--api-key-env VAR")
    try:
        parts.port
    except ValueError:
        raise UserError(f"--endpoint '{endpoint}' has an invalid port; give e.g. http://127.0.0.1:8000/v1") from None
    path = parts.path.rstrip("/")
    named = next((a for a, p in API_PATHS.items() if path.endswith(p) and p != "/generate_stream"), None)
    if named is None and path.endswith("/generate_stream"):
        named = "tgi"
    if named is not None:
        if api is not None and api != named:
            raise UserError(f"--endpoint names the {named} API ({API_PATHS[named]}) but --api is {api}; "
                            f"drop one of them")
        api, base = named, path[: -len(API_PATHS[named])]
    else:
        base = path[:-3] if path.endswith("/v1") else path
        api = api or DEFAULT_API

    def url(p: str) -> str:
        return urlunsplit((parts.scheme, parts.netloc, base + p, parts.query, ""))
    key = api_key(key_env)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return Target(url(API_PATHS[api]), url("/v1/models"), api, url("/metrics"), headers, key)


def not_found(target: Target, answer: str) -> str:
    """The words for an HTTP 404 to every request: the URL asked, which the user could not see (a base URL with
    a stray path, .../v1/chat/completion, gets the API's path put after it), and where the API is likelier."""
    parts = urlsplit(target.url)
    root = urlunsplit((parts.scheme, parts.netloc, "", "", ""))
    other = {"completions": "chat", "chat": "completions"}.get(target.api)
    beside = f", or {root}{API_PATHS[other]} with --api {other}" if other else ""
    return (f"POST {target.url} answered {answer}; point --endpoint at the server's base URL ({root}/v1) or at "
            f"the API's own URL ({root}{API_PATHS[target.api]}{beside}), or fix --model if the server does not "
            f"serve it")
