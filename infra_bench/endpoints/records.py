"""One store record per load point (kind: endpoint), in the schema `infra-bench run` writes.

The endpoint URL, the API and what the server reports about the model go in `backend` and
`model`; the API key never does (only the name of the variable it was read from).
"""
from __future__ import annotations

import math
import platform
import socket
import time
from dataclasses import dataclass, field

from .. import __version__
from ..results.schema import Record
from ..results.store import now_iso
from .load import LoadPoint, PointResult


@dataclass(frozen=True)
class ServerInfo:
    """What the endpoint said about itself before the load started."""
    cards: dict[str, dict] = field(default_factory=dict)   # id -> its /v1/models entry
    server_header: str | None = None


@dataclass(frozen=True)
class RunContext:
    """Everything a record holds besides the point's own results."""
    run_id: str
    spec: dict
    backend: dict
    model: dict
    device: dict
    settings: dict
    environment: dict
    notes: list[str] = field(default_factory=list)


def level_of(point: LoadPoint) -> float | str:
    if point.rate is None:
        return point.concurrency
    return "inf" if math.isinf(point.rate) else point.rate


def cell_of(point: LoadPoint, spec: dict) -> dict:
    return {"load": "rate" if point.open_loop else "concurrency",
            "rate": level_of(point) if point.open_loop else None,
            "concurrency": point.concurrency,
            "input_len": spec.get("input_len"), "output_len": spec.get("output_len")}


def cell_id(model: str, api: str, point: LoadPoint) -> str:
    if point.open_loop:
        cap = f"-max{point.concurrency}" if point.concurrency else ""
        rate = level_of(point)
        return f"{model}/{api}/rate{rate if isinstance(rate, str) else format(rate, 'g')}{cap}"
    return f"{model}/{api}/concurrency{point.concurrency}"


def environment() -> dict:
    """The load generator's side (the server's hardware is what `--hardware` names)."""
    import importlib.metadata as md
    try:
        aiohttp_version = md.version("aiohttp")
    except md.PackageNotFoundError:
        aiohttp_version = None
    return {"role": "load generator", "hostname": socket.gethostname(), "os": platform.platform(),
            "python": platform.python_version(), "aiohttp": aiohttp_version, "infra_bench": __version__}


def samples(result: PointResult) -> list[dict]:
    keep = ("sent_s", "ttft_s", "ttfb_s", "first_audio_s", "e2e_s", "tpot_s", "output_tokens", "input_tokens",
            "audio_s", "images", "sequences")
    out = []
    for o in result.outcomes:
        s = {k: getattr(o, k) for k in keep if getattr(o, k) is not None}
        if o.itl_s:
            s["itl_s"] = o.itl_s
        s["error"] = o.error
        if not o.ok:
            s["elapsed_s"] = o.elapsed_s
        out.append(s)
    return out


def point_record(ctx: RunContext, point: LoadPoint, result: PointResult, metrics: dict, started: str,
                 t0: float, step: dict, notes: list[str] = ()) -> dict:
    """A validated record dict; `failed` when no request of the point succeeded."""
    error = None
    if metrics["completed"] == 0:
        top = next(iter(metrics["errors"]), None) or "cancelled by the saturation stop"
        error = f"no request succeeded ({metrics['sent']} sent); most common error: {top}"
    model = ctx.model.get("name", "?")
    rec = Record(
        run_id=ctx.run_id, cell_id=cell_id(model, ctx.spec["api"], point), kind="endpoint", workload=model,
        status="failed" if error else "ok", error=error, started_at=started, ended_at=now_iso(),
        duration_s=time.perf_counter() - t0, spec=ctx.spec, model=ctx.model, cell=cell_of(point, ctx.spec),
        backend=ctx.backend, device=ctx.device,
        settings={**ctx.settings, **step, "stop_reason": result.stop_reason, "saturation": result.saturation,
                  "in_flight_trace": [list(x) for x in result.in_flight_trace]},
        environment=ctx.environment, metrics=metrics, samples=samples(result), notes=ctx.notes + _notes(metrics) + list(notes))
    return rec.model_dump(mode="json")


def _notes(m: dict) -> list[str]:
    notes = []
    if m.get("output_tokens_source") in ("chunks", "mixed"):
        notes.append("output tokens: estimated for requests without usage, by counting streamed chunks (one chunk "
                     "is one token on vLLM and SGLang without speculative decoding); --tokenizer PATH counts exactly")
    if m.get("stopped_early"):
        notes.append("saturated: the early stop ended this point; its latencies describe an overloaded server")
    elif m.get("saturated"):
        notes.append("saturated: the queue grew all through this point (the server finished under half of the "
                     "arrivals); its latencies describe an overloaded server")
    return notes
