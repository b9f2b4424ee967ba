"""Running one load point: open loop (arrivals at a rate, optionally capped in flight) or closed
loop (a fixed number of requests in flight), with the saturation check.

Saturation check (open loop at a finite rate): once a second, over the trailing window
W = max(5 s, 20 / rate, 3 x the median latency of the point's first 10 requests; no check
before those have finished), the point stops issuing and cancels what is in flight when fewer
than half of the requests that arrived in W finished in W, and the in-flight count grew over W
by at least max(5, a quarter of those arrivals). The server then finishes work at well under
half the offered rate and its queue keeps growing, so every further request would only
measure the queue. The first requests meet a nearly idle server, so their latency sizes the
window without being inflated by the queue it is meant to detect. When the check fires, the
point is marked saturated; with `stop_when_saturated` (sweeps and searches by default) it also
stops issuing and cancels what is in flight, otherwise every request is still sent.
"""
from __future__ import annotations

import asyncio
import itertools
import math
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from .arrivals import arrival_times
from .client import Outcome

CHECK_EVERY_S = 1.0
SATURATION_FINISHED_FRACTION = 0.5
FIRST_REQUESTS = 10


@dataclass(frozen=True)
class LoadPoint:
    """An open loop at `rate` requests/s (`math.inf`: all at once), with at most `concurrency`
    in flight when both are given; or a closed loop of `concurrency` requests in flight."""
    rate: float | None = None
    concurrency: int | None = None

    def __post_init__(self):
        if self.rate is None and self.concurrency is None:
            raise ValueError("a load point needs a rate or a concurrency")
        if self.rate is not None and not self.rate > 0:
            raise ValueError("rate must be > 0")
        if self.concurrency is not None and self.concurrency < 1:
            raise ValueError("concurrency must be >= 1")

    @property
    def open_loop(self) -> bool:
        return self.rate is not None

    def label(self) -> str:
        if self.rate is None:
            return f"concurrency {self.concurrency}"
        rate = "inf" if math.isinf(self.rate) else f"{self.rate:g}"
        return f"rate {rate}/s" + (f" (max {self.concurrency} in flight)" if self.concurrency else "")


@dataclass(frozen=True)
class Budget:
    """When a point stops issuing: after `num_requests`, after `duration_s`, whichever first."""
    num_requests: int | None = 100
    duration_s: float | None = None

    def __post_init__(self):
        if self.num_requests is None and self.duration_s is None:
            raise ValueError("give a number of requests or a duration")


@dataclass
class PointResult:
    point: LoadPoint
    outcomes: list[Outcome]
    duration_s: float               # the point's start to its last request's end, at least --duration when that ended it
    stop_reason: str
    saturated: bool = False         # the saturation check fired
    stopped_early: bool = False     # ... and ended the point
    saturation: str | None = None   # what the check saw
    max_in_flight: int = 0
    in_flight_trace: list[tuple[float, int]] = field(default_factory=list)  # (s, in flight), once a second


Send = Callable[[int, Outcome], Awaitable[Outcome]]


class Interrupted(Exception):
    """Ctrl-C during a point: the point as far as it got (finished requests, those cut off cancelled)."""

    def __init__(self, result: PointResult):
        super().__init__("interrupted")
        self.result = result


class _Point:
    """The bookkeeping of one running point."""

    def __init__(self, point: LoadPoint, budget: Budget, send: Send):
        self.point, self.budget, self.send = point, budget, send
        self.t0 = time.perf_counter()
        self.outcomes: list[Outcome] = []
        self.tasks: set[asyncio.Task] = set()
        self.in_flight = self.max_in_flight = 0
        self.stop_reason = "all requests sent"
        self.out_of_time = False
        self.cancel_reason = "saturation stop"
        self.saturated = self.stopped_early = False
        self.saturation: str | None = None
        self.trace: list[tuple[float, int]] = []
        self.sent: list[float] = []
        self.ended: list[tuple[float, float]] = []

    def now(self) -> float:
        return time.perf_counter() - self.t0

    def issue_more(self, index: int, at: float) -> bool:
        b = self.budget
        if b.num_requests is not None and index >= b.num_requests:
            return False
        if b.duration_s is not None and at >= b.duration_s:
            self.stop_reason, self.out_of_time = f"duration {b.duration_s:g} s reached", True
            return False
        return True

    async def one(self, index: int) -> None:
        out = Outcome(sent_s=self.now())
        self.sent.append(out.sent_s)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await self.send(index, out)
        except asyncio.CancelledError:
            out.cancelled, out.ok, out.error = True, False, f"cancelled: {self.cancel_reason}"
            out.elapsed_s = self.now() - out.sent_s
        finally:
            self.in_flight -= 1
            self.outcomes.append(out)
            self.ended.append((out.sent_s, self.now()))

    def start(self, index: int) -> asyncio.Task:
        task = asyncio.create_task(self.one(index))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task


async def run_point(point: LoadPoint, budget: Budget, send: Send, burstiness: float = 1.0,
                    seed: int = 0, stop_when_saturated: bool = True) -> PointResult:
    """Issue requests by `point` until `budget` is spent (or, with `stop_when_saturated`, the
    server saturates), wait for them all."""
    p = _Point(point, budget, send)
    monitor = None
    try:
        if point.open_loop:
            issuer = asyncio.create_task(_open_loop(p, burstiness, seed))
            monitor = asyncio.create_task(_watch(p, issuer, stop_when_saturated))
            try:
                await issuer
            except asyncio.CancelledError:
                if not p.stopped_early:
                    raise
            monitor.cancel()
            if p.stopped_early:
                for t in list(p.tasks):
                    t.cancel()
        else:
            await _closed_loop(p)
        while p.tasks:
            await asyncio.gather(*list(p.tasks))
    except asyncio.CancelledError:  # Ctrl-C: keep what finished, cut off the rest
        if monitor is not None:
            monitor.cancel()
        p.cancel_reason, p.stop_reason = "interrupted (Ctrl-C)", "interrupted (Ctrl-C)"
        for t in list(p.tasks):
            t.cancel()
        await asyncio.gather(*list(p.tasks), return_exceptions=True)
        raise Interrupted(_result(p)) from None
    return _result(p)


def _result(p: _Point) -> PointResult:
    end = max((o.sent_s + (o.elapsed_s or 0.0) for o in p.outcomes), default=0.0)
    if p.out_of_time:  # the point offered load for its whole duration, though its last request ended sooner
        end = max(end, p.budget.duration_s)
    return PointResult(p.point, sorted(p.outcomes, key=lambda o: o.sent_s), end, p.stop_reason, p.saturated,
                       p.stopped_early, p.saturation, p.max_in_flight, p.trace)


async def _open_loop(p: _Point, burstiness: float, seed: int) -> None:
    cap = asyncio.Semaphore(p.point.concurrency) if p.point.concurrency else None
    for index, at in enumerate(arrival_times(p.point.rate, burstiness, seed)):
        if not p.issue_more(index, at):
            return
        delay = at - p.now()
        if delay > 0:
            await asyncio.sleep(delay)
        if cap is None:
            p.start(index)
        else:
            await cap.acquire()
            p.start(index).add_done_callback(lambda _: cap.release())


async def _closed_loop(p: _Point) -> None:
    counter = itertools.count()

    async def worker() -> None:
        while True:
            index = next(counter)
            if not p.issue_more(index, p.now()):
                return
            await p.start(index)
    await asyncio.gather(*(worker() for _ in range(p.point.concurrency)))


async def _watch(p: _Point, issuer: asyncio.Task, stop: bool) -> None:
    """The saturation check (module docstring), and the in-flight trace; the check is a no-op at
    an infinite rate."""
    while True:
        await asyncio.sleep(CHECK_EVERY_S)
        t = p.now()
        p.trace.append((round(t, 3), p.in_flight))
        reason = None if p.saturated or math.isinf(p.point.rate) else \
            saturation(p.sent, p.ended, p.trace, p.point.rate, t)
        if reason:
            p.saturated, p.saturation = True, reason
            if stop:
                p.stopped_early, p.stop_reason = True, reason
                issuer.cancel()
                return


def saturation(sent: list[float], ended: list[tuple[float, float]], trace: list[tuple[float, int]],
               rate: float, t: float) -> str | None:
    """The stop reason if the rule fires at time `t`, else None. `sent`: send times of every
    request so far, in order; `ended`: (send time, end time) of those finished; `trace`:
    (time, in flight) samples up to `t`."""
    first = sent[:FIRST_REQUESTS]
    early = [e - s for s, e in ended if first and s <= first[-1]]
    if not first or len(early) < len(first):
        return None  # the unloaded latency is not known yet
    window = max(5.0, 20.0 / rate, 3.0 * statistics.median(early))
    if t < window or not trace:
        return None
    since = t - window
    then = next((n for s, n in reversed(trace) if s <= since), 0)
    now = trace[-1][1]
    arrived = sum(1 for s in sent if s > since)
    done = sum(1 for _, e in ended if e > since)
    if arrived and done < SATURATION_FINISHED_FRACTION * arrived and now - then >= max(5, arrived / 4):
        return (f"saturated at {t:.1f} s: {done} of {arrived} arrivals in the last {window:.1f} s finished, "
                f"{now} in flight (was {then})")
    return None
