"""A load test from start to end: check the endpoint is reachable, warm up, run the load points
the strategy asks for, read the server's /metrics around each, and append each point's record
as soon as it finishes."""
from __future__ import annotations

import asyncio
import importlib.util
import signal
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import MissingDependency, UserError, install_hint
from ..results.schema import Manifest
from ..results.store import RunStore, new_run_id, now_iso
from . import client, records
from .client import Outcome, RequestOptions
from .inputs import Prompts, RequestInput
from .load import Budget, Interrupted, LoadPoint, run_point
from .metrics import Slo, point_metrics
from .search import DoublingSweep, FixedLevels, PointSummary, SloSearch
from .server_metrics import PointWatch, Scraper
from .target import Target, not_found

PREFLIGHT_TIMEOUT_S = 10.0
CACHE_HIT_MARGIN = 0.10   # a hit rate this far above what shared prefixes explain gets a warning


@dataclass(frozen=True)
class Strategy:
    """Which points: `levels` on the `axis` (fixed), or a sweep / SLO search from `levels[0]`.
    With axis rate, `cap` bounds the requests in flight."""
    axis: str                 # rate | concurrency
    mode: str                 # fixed | sweep | search
    levels: tuple[float, ...]
    cap: int | None = None
    max_points: int = 8

    def make(self):
        integer = self.axis == "concurrency"
        if self.mode == "sweep":
            return DoublingSweep(self.levels[0], self.max_points)
        if self.mode == "search":
            return SloSearch(self.levels[0], self.max_points, integer=integer)
        return FixedLevels(list(self.levels))

    def point(self, level: float) -> LoadPoint:
        if self.axis == "rate":
            return LoadPoint(rate=level, concurrency=self.cap)
        return LoadPoint(concurrency=int(level))


@dataclass(frozen=True)
class LoadTest:
    target: Target
    request: RequestOptions
    strategy: Strategy
    budget: Budget
    prompts: Prompts
    warmup: int = 1
    slos: tuple[Slo, ...] = ()
    burstiness: float = 1.0
    stop_when_saturated: bool = True
    metrics_url: str | None = None                # the server's Prometheus /metrics; None: not read
    tokenizer: object | None = None               # counts output text without usage (tokens.Tokenizer)
    spec: dict = field(default_factory=dict)      # the options as recorded
    labels: dict = field(default_factory=dict)    # hardware, engine

    @property
    def seed(self) -> int:
        return self.prompts.salt

    @property
    def expected_hit_rate(self) -> float:
        """The prefix-cache hit rate shared prefixes explain (tokens of prefix over tokens of prompt)."""
        p = self.prompts
        return p.prefix.length / p.input_len if p.prefix and p.input_len else 0.0


@dataclass
class LoadTestResult:
    store: RunStore
    records: list[dict]
    strategy: FixedLevels | DoublingSweep | SloSearch
    warmup_errors: list[str]
    metrics_note: str | None = None     # why the server's metrics were not read, when they were not


def require_aiohttp() -> None:
    if importlib.util.find_spec("aiohttp") is None:
        raise MissingDependency(f"loadtest and serve need aiohttp: {install_hint('serve')}")


def require_loadtest(metrics: bool) -> None:
    """aiohttp, and prometheus_client when the server's metrics are read (both in the serve extra)."""
    require_aiohttp()
    if metrics and importlib.util.find_spec("prometheus_client") is None:
        raise MissingDependency(f"loadtest reads the server's Prometheus metrics with prometheus_client: "
                                f"{install_hint('serve')} (or pass --metrics-url none)")


class Stopped(Exception):
    """Ctrl-C or SIGTERM: the run's folder (None before it was made) and the points recorded, the one in progress included."""

    def __init__(self, folder: Path | None, points: int):
        super().__init__("interrupted")
        self.folder, self.points = folder, points


def run(test: LoadTest, out: Path, progress: Callable[[str], None], warn: Callable[[str], None]) -> LoadTestResult:
    """Run the load test; `progress` gets a line per finished point, `warn` what the user should know."""
    require_loadtest(test.metrics_url is not None)
    return asyncio.run(_stoppable(_run(test, out, progress, warn)))


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


async def _stoppable(work: Coroutine[Any, Any, LoadTestResult]) -> LoadTestResult:
    """`work` with Ctrl-C and SIGTERM (a scheduler's stop, `kill`) cancelling it, which records the point in
    progress and raises Stopped, as `run` treats both. Installed here, not left to asyncio.run: it handles no
    SIGTERM (the process died with nothing of the point kept), and leaves SIGINT alone where the process
    started with it ignored (`infra-bench loadtest ... &` from a script), so Ctrl-C did nothing."""
    loop, task = asyncio.get_running_loop(), asyncio.current_task()
    if task is None or threading.current_thread() is not threading.main_thread():
        return await work
    saved = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, task.cancel)
    try:
        return await work
    finally:
        for sig, handler in saved.items():
            loop.remove_signal_handler(sig)
            signal.signal(sig, handler)


async def _run(test: LoadTest, out: Path, progress: Callable[[str], None],
               warn: Callable[[str], None]) -> LoadTestResult:
    import aiohttp

    store, written = None, []
    connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
    try:
        async with aiohttp.ClientSession(connector=connector, trust_env=False) as session:
            server = await preflight(session, test.target)
            unlisted = bool(server.cards) and test.request.model not in server.cards
            if unlisted:
                warn(f"warning: the server lists {', '.join(server.cards)}; '{test.request.model}' is not among them")
            limit = (server.cards.get(test.request.model) or {}).get("max_model_len")
            longest = (test.prompts.input_len or 0) + (test.prompts.output_len or 0)
            over = isinstance(limit, int) and longest > limit
            if over and not test.warmup:  # no warm-up to ask the server: its card says it, as the warm-up's refusal would
                _, shape, fix = test.prompts.longest()
                raise UserError(f"the test's longest shape ({shape}) exceeds the server's max_model_len {limit} for "
                                f"{test.request.model} (a word is at least one token), so the server would refuse "
                                f"it; {fix}, or raise the server's limit; nothing was sent")
            warm = await warm_up(session, test, unlisted)
            warm_errors = [o.error for o in warm if o.error]
            if over and not warm[0].ok:  # a warm-up of that shape went through: the server takes it
                warn(f"warning: prompts of {test.prompts.input_len} + {test.prompts.output_len} output tokens exceed the "
                     f"server's max_model_len {limit} for {test.request.model}; it may refuse them")
            run_id = new_run_id()
            store = RunStore.create(out, run_id, _manifest(run_id, test))
            ctx = _context(run_id, test, server)
            scraper = Scraper(session, test.metrics_url, test.target.headers) if test.metrics_url else None
            strategy = test.strategy.make()
            step = issued = 0
            while (level := strategy.next_level()) is not None:
                step += 1
                point = test.strategy.point(level)
                started, t0 = now_iso(), time.perf_counter()
                if scraper:
                    scraper.missed = None
                before = await scraper.scrape() if scraper else None
                watch = PointWatch(before) if before is not None else None
                poller = asyncio.create_task(scraper.poll(watch)) if watch else None

                async def send(index: int, o: Outcome, step=step, first=issued) -> Outcome:
                    p = test.prompts
                    return await _send(session, test, p.request(0, first + index) if p.fixed_texts else
                                       p.request(step, index), o)
                interrupted = False
                try:
                    result = await run_point(point, test.budget, send, test.burstiness, test.seed + step,
                                             test.stop_when_saturated)
                except Interrupted as cut:
                    result, interrupted = cut.result, True
                finally:
                    if poller:
                        poller.cancel()
                after = await scraper.scrape() if watch and not interrupted else None
                issued += len(result.outcomes)
                metrics = point_metrics(result, test.target.api, list(test.slos), test.budget.num_requests)
                metrics["server"] = watch.summary(after) if after is not None else None
                said = "interrupted (Ctrl-C): the requests that finished before it; those cut off are counted as cancelled"
                notes = _server_notes(test, metrics["server"], scraper, issued) + ([said] if interrupted else [])
                rec = records.point_record(ctx, point, result, metrics, started, t0,
                                           {"mode": test.strategy.mode, "step": step}, notes)
                store.append(rec)
                written.append(rec)
                if interrupted:
                    raise asyncio.CancelledError
                strategy.tell(PointSummary(level, metrics["requests_per_s"] or 0.0, metrics["saturated"],
                                           metrics["completed"] == 0, metrics.get("slo_met")))
                progress(_line(point, metrics))
                for note in notes:
                    if note.startswith("warning"):
                        warn(note)
    except asyncio.CancelledError:
        raise Stopped(store.folder if store else None, len(written)) from None
    note = "not read (--metrics-url none)" if scraper is None else f"none read ({scraper.why})" if scraper.why \
        else None
    return LoadTestResult(store, written, strategy, warm_errors, note)


async def warm_up(session, test: LoadTest, unlisted: bool) -> list[Outcome]:
    """The warm-up requests, one by one, before anything is recorded (so they are in no point's metrics,
    and the server's counters are read after them). A refusal is a one-line error: of every one, a
    request to fix (model, API), and a 404 with the URL asked unless the server's list lacks the model
    (`unlisted`, warned of already); of only the first, which has the test's longest shape, the length.
    With one warm-up, a refused first is told apart by one short request more. A failure that is not a
    refusal (a timeout of a slow server, a 5xx) is noted and the run goes on."""
    sent = [await _send(session, test, test.prompts.warmup(i), Outcome(sent_s=0.0)) for i in range(test.warmup)]
    if not sent or not _refused(sent[0]):
        return sent
    rest = sent[1:] or [await _send(session, test, test.prompts.warmup(1), Outcome(sent_s=0.0))]
    error = " ".join((sent[0].error or "").split())
    if not unlisted and all(o.status == 404 for o in sent + rest):
        raise UserError(f"every warm-up request was refused: {not_found(test.target, error)}; nothing was recorded")
    if all(_refused(o) for o in rest):
        raise UserError(f"every warm-up request was refused ({error}); fix the request (model name, API, lengths or "
                        f"sizes) before loading the server; nothing was recorded")
    _, shape, fix = test.prompts.longest()
    raise UserError(f"the server refused the first warm-up request, which has the test's longest shape ({shape}), "
                    f"but not a short one: {error}; {fix}, or raise the server's limit; nothing was recorded")


def _refused(o: Outcome) -> bool:
    """An HTTP 4xx (or an error event's 4xx code) that the request itself earned (model, API, lengths);
    not 408 or 429, which say the server is busy or rate-limiting (Retry-After): load to measure, not
    a request to fix."""
    return o.status is not None and 400 <= o.status < 500 and o.status not in (408, 429)


def _server_notes(test: LoadTest, server: dict | None, scraper: Scraper | None, issued: int) -> list[str]:
    """What the record says about the server's own view, and the warnings among it."""
    notes = []
    if scraper is None:
        notes.append("server metrics: not read (--metrics-url none)")
    elif server is None and scraper.why:
        notes.append(f"server metrics: none read ({scraper.why})")
    elif server is None:
        notes.append(f"server metrics: lost for this point, a scrape around it failed ({scraper.missed})"
                     if scraper.missed else "server metrics: not read after this point (interrupted)")
    else:
        rate = server.get("prefix_cache_hit_rate")
        if rate is not None and rate > test.expected_hit_rate + CACHE_HIT_MARGIN:
            notes.append(f"warning: the server's prefix cache served {rate:.0%} of prompt tokens at this point "
                         f"(shared prefixes explain {test.expected_hit_rate:.0%}); its TTFT is optimistic for "
                         f"traffic without that sharing")
    p = test.prompts
    if p.fixed_texts and issued > len(p.lines):
        notes.append(f"dataset prompts reused: {issued} requests so far from {len(p.lines)} lines; a prefix cache "
                     f"may serve the repeats")
    return notes


async def _send(session, test: LoadTest, inp: RequestInput, out: Outcome) -> Outcome:
    await client.send(session, test.target, client.body(test.target.api, inp, test.request), test.request, out)
    if out.ok and out.tokens_source == "chunks" and test.tokenizer is not None:
        out.output_tokens, out.tokens_source = test.tokenizer.count("".join(out.text)), "tokenizer"
    out.text.clear()
    return out


async def preflight(session, target: Target) -> records.ServerInfo:
    """GET /v1/models: any HTTP answer proves the server is reachable (its model list is kept when
    it gives one); no answer is a one-line error before anything is recorded."""
    import aiohttp

    try:
        async with session.get(target.models_url, headers=target.headers,
                               timeout=aiohttp.ClientTimeout(total=PREFLIGHT_TIMEOUT_S)) as resp:
            listing = await resp.json(content_type=None) if resp.status == 200 else None
            header = resp.headers.get("Server")
    except aiohttp.ClientConnectorError as e:
        why = target.redact(client.connect_reason(e))
        raise UserError(f"cannot reach {target.models_url}: {why}; check --endpoint and that the server is running"
                        ) from None
    except asyncio.TimeoutError:
        raise UserError(f"no answer from {target.models_url} within {PREFLIGHT_TIMEOUT_S:g} s; check --endpoint "
                        f"and that the server is running") from None
    except (aiohttp.ClientError, ValueError):
        return records.ServerInfo()
    data = listing.get("data") if isinstance(listing, dict) else None
    cards = [d for d in data if isinstance(d, dict) and isinstance(d.get("id"), str)] if isinstance(data, list) else []
    return records.ServerInfo({d["id"]: d for d in cards}, header)


def _manifest(run_id: str, test: LoadTest) -> Manifest:
    return Manifest(run_id=run_id, created_at=now_iso(), infra_bench=__version__, kind="endpoint", seed=test.seed,
                    specs=[{"name": test.request.model, **test.spec}],
                    cells_planned=len(test.strategy.levels) if test.strategy.mode == "fixed" else None)


def _context(run_id: str, test: LoadTest, server: records.ServerInfo) -> records.RunContext:
    card = server.cards.get(test.request.model)
    weights = card.get("weights") if card else None
    notes = []
    if weights == "random":
        notes.append("weights: random (the server says so); timing only, outputs meaningless")
    r = test.request
    return records.RunContext(
        run_id=run_id, spec=test.spec,
        backend={"name": "endpoint", "engine": test.labels.get("engine"), "precision": test.labels.get("precision"),
                 "tp": test.labels.get("tp"), "memory_fraction": test.labels.get("memory_fraction"),
                 "url": test.target.url,
                 "api": test.target.api, "server_header": server.server_header},
        model={"name": r.model, "weights": weights, "served": card, "models_listed": list(server.cards)},
        device={"name": "endpoint", "type": "remote", "model": test.labels.get("hardware")},
        settings={"scenario": "open-loop" if test.strategy.axis == "rate" else "closed-loop",
                  "burstiness": test.burstiness, "seed": test.seed, "num_requests": test.budget.num_requests,
                  "duration_s": test.budget.duration_s, "timeout_s": r.timeout_s,
                  "stall_timeout_s": r.stall_timeout_s, "connect_timeout_s": r.connect_timeout_s,
                  "warmup": test.warmup, "timer": "time.perf_counter",
                  "saturation_stop": test.stop_when_saturated, "metrics_url": test.metrics_url,
                  "tokenizer": getattr(test.tokenizer, "path", None),
                  "infra_bench": __version__},
        environment=records.environment(), notes=notes)


def _line(point: LoadPoint, m: dict) -> str:
    key = next(k for k in ("ttft_s", "first_audio_s", "ttfb_s") if k in m)
    lat, name = m[key], {"ttft_s": "TTFT", "first_audio_s": "first audio", "ttfb_s": "TTFB"}[key]
    text = (f"{point.label()}: {m['completed']}/{m['sent']} ok, {m['requests_per_s'] or 0:.2f} req/s"
            + (f", {name} p50 {lat['p50'] * 1e3:.1f} ms" if lat else ""))
    if "slo_met" in m:
        text += f", goodput {m['goodput']:.2f} req/s, SLO {'met' if m['slo_met'] else 'missed'}"
    if m["stopped_early"]:
        text += ", saturated (stopped early" + (f"; {m['not_sent']} never sent)" if m["not_sent"] else ")")
    elif m["saturated"]:
        text += ", saturated (the queue grew all through the point)"
    rate = (m.get("server") or {}).get("prefix_cache_hit_rate")
    if rate is not None:
        text += f", server cache hits {rate:.0%}"
    return text

