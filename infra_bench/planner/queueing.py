"""A discrete-event simulation of one LLM replica under load, and the SLO capacity search.

The replica runs iterations as continuous-batching engines do: waiting requests are admitted
(up to `max_batch` running) and prefilled first, which delays the running requests' next token
(no chunked prefill); then one decode step gives every running request a token. Requests
arrive by a Poisson process. Each request's TTFT is its first token's time minus its arrival,
TPOT is (last token - first token) / (output tokens - 1), as the metrics docs define.

`capacity_under_slo` finds, by bisection on the arrival rate, the highest rate whose p95 TTFT
and p99 TPOT meet the targets with the queue stable: below the rate at which prefill plus decode
at full-batch amortisation would keep the replica busy all the time, and with TTFT not drifting
upwards through the run (which a finite run would otherwise hide). The simulator is checked against the M/M/1 closed form
(batch 1, exponential service, one-token outputs: mean sojourn 1 / (mu - lambda)).
"""
from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Request:
    arrival: float
    prefill_s: float
    output_len: int
    first_token: float | None = None
    done: float | None = None
    produced: int = 0

    @property
    def ttft(self) -> float:
        return self.first_token - self.arrival

    @property
    def tpot(self) -> float | None:
        return (self.done - self.first_token) / (self.output_len - 1) if self.output_len > 1 else None

    @property
    def e2e(self) -> float:
        return self.done - self.arrival


def poisson_arrivals(rate: float, n: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    t, out = 0.0, []
    for _ in range(n):
        t += rng.expovariate(rate)
        out.append(t)
    return out


def simulate(requests: list[Request], step_s: Callable[[int], float], max_batch: int) -> list[Request]:
    """Run the replica until every request is done; fills first_token and done in place."""
    pending = deque(sorted(requests, key=lambda r: r.arrival))
    running: list[Request] = []
    now = 0.0
    while pending or running:
        if not running and pending and pending[0].arrival > now:
            now = pending[0].arrival  # idle until the next arrival
        while pending and pending[0].arrival <= now and len(running) < max_batch:
            r = pending.popleft()
            now += r.prefill_s  # prefill produces the first token
            r.first_token, r.produced = now, 1
            if r.output_len == 1:
                r.done = now
            else:
                running.append(r)
        if running:
            now += step_s(len(running))
            for r in running:
                r.produced += 1
                if r.produced == r.output_len:
                    r.done = now
            running = [r for r in running if r.done is None]
    return requests


def percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    k = (len(s) - 1) * q / 100
    lo, hi = math.floor(k), math.ceil(k)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


@dataclass(frozen=True)
class LoadResult:
    rate: float
    ttft_p95_s: float
    tpot_p99_s: float | None
    e2e_mean_s: float
    throughput_rps: float
    ttft_drift: float  # mean TTFT of the last third of requests / that of the middle third

    @property
    def stable(self) -> bool:
        """A queue that keeps growing shows as TTFT drifting upwards through the run."""
        return self.ttft_drift <= 1.25


def run_load(rate: float, prefill_s: float, output_len: int, step_s: Callable[[int], float], max_batch: int,
             n: int = 1500, seed: int = 0) -> LoadResult:
    reqs = [Request(t, prefill_s, output_len) for t in poisson_arrivals(rate, n, seed)]
    simulate(reqs, step_s, max_batch)
    measured = reqs[n // 10:]  # drop the warm-up tenth
    tpots = [r.tpot for r in measured if r.tpot is not None]
    span = max(r.done for r in measured) - min(r.arrival for r in measured)
    third = len(measured) // 3
    mean = lambda rs: sum(r.ttft for r in rs) / len(rs)  # noqa: E731
    drift = mean(measured[2 * third:]) / mean(measured[third:2 * third])
    return LoadResult(rate, percentile([r.ttft for r in measured], 95), percentile(tpots, 99) if tpots else None,
                      sum(r.e2e for r in measured) / len(measured), len(measured) / span, drift)


def capacity_under_slo(prefill_s: float, output_len: int, step_s: Callable[[int], float], max_batch: int,
                       ttft_p95_s: float, tpot_p99_s: float, n: int = 1500, seed: int = 0) -> LoadResult | None:
    """The highest Poisson rate (requests/s) whose p95 TTFT and p99 TPOT meet the targets, or None
    when even a lone request misses them."""
    def ok(res: LoadResult) -> bool:
        return res.stable and res.ttft_p95_s <= ttft_p95_s and (res.tpot_p99_s is None or res.tpot_p99_s <= tpot_p99_s)

    single = prefill_s + (output_len - 1) * step_s(1)
    lo_res = run_load(0.01 / single, prefill_s, output_len, step_s, max_batch, n, seed)
    if not ok(lo_res):
        return None
    # Stability needs the offered work below 1 even at the best batching amortisation:
    # rate x (prefill + (O-1) x step(max_batch) / max_batch) < 1. Search below that rate.
    lo, hi = lo_res.rate, 1.0 / (prefill_s + (output_len - 1) * step_s(max_batch) / max_batch)
    best = lo_res
    for _ in range(14):  # bisection on the rate; 14 halvings is ~1e-4 of the bracket
        mid = (lo + hi) / 2
        res = run_load(mid, prefill_s, output_len, step_s, max_batch, n, seed)
        if ok(res):
            lo, best = mid, res
        else:
            hi = mid
    return best
