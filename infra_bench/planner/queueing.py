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

import heapq
import math
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np


@dataclass(slots=True)
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
    """n Poisson arrival times at `rate`: the unit-rate times of this seed, scaled (drawn once per seed)."""
    return [t / rate for t in _unit_arrivals(n, seed)]


@lru_cache(maxsize=16)
def _unit_arrivals(n: int, seed: int) -> tuple[float, ...]:
    rng = random.Random(seed)
    t, out = 0.0, []
    for _ in range(n):
        t += rng.expovariate(1.0)
        out.append(t)
    return tuple(out)


def simulate(requests: list[Request], step_s: Callable[[int], float], max_batch: int) -> list[Request]:
    """Run the replica until every request is done; fills first_token and done in place.

    Event-driven: while the running set is unchanged every decode step takes the same time, so
    the clock jumps to the next iteration boundary at which something happens (a request
    finishes, or one has arrived and a slot is free). A request admitted when the global step
    count is g finishes at step g + output_len - 1, kept in a heap. The step times are looked up in a table
    of every batch size, priced once (a call per event was a quarter of the run's time)."""
    pending = deque(sorted(requests, key=lambda r: r.arrival))
    running: list[tuple[int, int, Request]] = []  # (finish step, tie-break, request)
    now, steps = 0.0, 0
    table = [0.0] + [step_s(b) for b in range(1, max_batch + 1)]
    while pending or running:
        if not running and pending[0].arrival > now:
            now = pending[0].arrival  # idle until the next arrival
        while pending and pending[0].arrival <= now and len(running) < max_batch:
            r = pending.popleft()
            now += r.prefill_s  # prefill produces the first token
            r.first_token, r.produced = now, 1
            if r.output_len == 1:
                r.done = now
            else:
                heapq.heappush(running, (steps + r.output_len - 1, id(r), r))
        if not running:
            continue
        step = table[len(running)]
        k = running[0][0] - steps  # steps until the next finish
        if pending and len(running) < max_batch and step > 0:
            k = min(k, max(1, math.ceil((pending[0].arrival - now) / step)))  # boundary after the next arrival
        now += k * step
        steps += k
        while running and running[0][0] == steps:
            r = heapq.heappop(running)[2]
            r.produced, r.done = r.output_len, now
    return requests


def simulate_closed(clients: int, requests_per_client: int, prefill_s: float, output_len: int,
                    step_s: Callable[[int], float], max_batch: int) -> list[Request]:
    """Closed loop: `clients` clients start together and each sends its next request the moment the
    last one finishes (as `vllm bench serve --max-concurrency` does). The same iteration rules as
    `simulate`: waiting prompts are admitted up to `max_batch` running and prefilled before the next
    decode step. Returns every request, in the order they were sent."""
    sent = [Request(0.0, prefill_s, output_len) for _ in range(clients)]
    left = {id(r): requests_per_client - 1 for r in sent}
    pending = deque(sent)
    running: list[tuple[int, int, Request]] = []
    now, steps = 0.0, 0

    def finish(r: Request) -> None:
        if left[id(r)] > 0:
            nxt = Request(r.done, prefill_s, output_len)
            left[id(nxt)] = left[id(r)] - 1
            sent.append(nxt)
            pending.append(nxt)
    while pending or running:
        if not running and pending[0].arrival > now:
            now = pending[0].arrival
        while pending and pending[0].arrival <= now and len(running) < max_batch:
            r = pending.popleft()
            now += r.prefill_s
            r.first_token, r.produced = now, 1
            if r.output_len == 1:
                r.done = now
                finish(r)
            else:
                heapq.heappush(running, (steps + r.output_len - 1, id(r), r))
        if not running:
            continue
        steps += 1
        now += step_s(len(running))
        while running and running[0][0] == steps:
            r = heapq.heappop(running)[2]
            r.produced, r.done = r.output_len, now
            finish(r)
    return sent


DRIFT = 1.25  # a latency whose mean grows by more than this from the middle to the last third: a growing queue


def _drift(x) -> float:
    """Mean of the last third of `x` over that of the middle third (1 where both are 0: TTFTs of requests that
    each found the server idle and had no prefill)."""
    third = len(x) // 3
    last, middle = float(x[2 * third:].mean()), float(x[third:2 * third].mean())
    return last / middle if middle > 0 else 1.0 if last == 0 else math.inf


@dataclass(frozen=True)
class LoadResult:
    rate: float
    ttft_p95_s: float
    ttft_p99_s: float
    tpot_p99_s: float | None
    e2e_mean_s: float
    throughput_rps: float
    ttft_drift: float  # mean TTFT of the last third of requests / that of the middle third
    e2e_p95_s: float   # submit to done: the latency of a request that is one pass (a merged embedding batch)
    e2e_p99_s: float
    e2e_drift: float   # as ttft_drift, of the end-to-end times

    @property
    def stable(self) -> bool:
        """A queue that keeps growing shows as TTFT drifting upwards through the run."""
        return self.ttft_drift <= DRIFT


Sampler = Callable[[random.Random], tuple[float, int]]  # -> (prefill seconds, output tokens) of one request


def drawn(sample: Sampler | list, n: int, seed: int) -> list[tuple[float, int]]:
    """The n requests `sample` draws for this seed; a list is taken as already drawn. The bisection
    reuses one draw for every rate it tries: the same requests each time, drawn once."""
    if isinstance(sample, list):
        return sample
    rng = random.Random(seed + 1)
    if hasattr(sample, "many"):
        return sample.many(rng, n)
    return [sample(rng) for _ in range(n)]


def run_load(rate: float, prefill_s: float, output_len: int, step_s: Callable[[int], float], max_batch: int,
             n: int = 1500, seed: int = 0, sample: Sampler | list | None = None, overhead_s: float = 0.0) -> LoadResult:
    """Simulate `n` Poisson arrivals; every request alike, or each drawn by `sample` (or given drawn).
    `overhead_s` is a per-request latency that occupies no device (the API server's tokenising and
    first-token send, which run beside the engine): it adds to every TTFT and end-to-end time."""
    arrivals = poisson_arrivals(rate, n, seed)
    if sample:
        reqs = [Request(t, *d) for t, d in zip(arrivals, drawn(sample, n, seed))]
    else:
        reqs = [Request(t, prefill_s, output_len) for t in arrivals]
    simulate(reqs, step_s, max_batch)
    import numpy as np

    measured = reqs[n // 10:]  # drop the warm-up tenth
    arrival, first, done, out = np.array([(r.arrival, r.first_token, r.done, r.output_len) for r in measured]).T
    ttfts, e2es, many = first - arrival, done - arrival, out > 1
    tpots = (done[many] - first[many]) / (out[many] - 1)
    p95, p99 = np.percentile(ttfts, [95, 99]) + overhead_s
    e95, e99 = np.percentile(e2es, [95, 99]) + overhead_s
    return LoadResult(rate, float(p95), float(p99), float(np.percentile(tpots, 99)) if tpots.size else None,
                      float(e2es.mean()) + overhead_s, len(measured) / float(done.max() - arrival.min()),
                      _drift(ttfts), float(e95), float(e99), _drift(e2es))


def saturation(prefill_s: float, output_len: float, step_s: Callable[[int], float], max_batch: int) -> float:
    """The arrival rate at which prefill plus decode at full-batch amortisation keep the replica busy all the time:
    1 / (prefill + (O - 1) x step(max_batch) / max_batch). No stable queue runs at or above it."""
    return 1.0 / (prefill_s + (output_len - 1) * step_s(max_batch) / max_batch)


def capacity_under_slo(prefill_s: float, output_len: int, step_s: Callable[[int], float], max_batch: int,
                       ttft_p95_s: float, tpot_p99_s: float, n: int = 1500, seed: int = 0,
                       sample: Sampler | None = None, ttft_q: float = 95.0, overhead_s: float = 0.0,
                       whole_request: bool = False) -> LoadResult | None:
    """The highest Poisson rate (requests/s) whose TTFT (p95, or `ttft_q`) and p99 TPOT meet the
    targets, or None when even a lone request misses them. With `sample`, prefill_s and
    output_len are the means of the drawn requests; `overhead_s` as in run_load. With `whole_request`
    the latency target is on the end-to-end time (submit to done) and so is the stability check: a
    server that merges waiting requests into passes is simulated as requests of no prefill and one decode
    step, the pass (an idle server's arrival then has a TTFT of 0, so TTFT says nothing there)."""
    def ok(res: LoadResult) -> bool:
        if whole_request:
            latency, drift = (res.e2e_p95_s if ttft_q == 95.0 else res.e2e_p99_s), res.e2e_drift
        else:
            latency, drift = (res.ttft_p95_s if ttft_q == 95.0 else res.ttft_p99_s), res.ttft_drift
        return drift <= DRIFT and latency <= ttft_p95_s and (res.tpot_p99_s is None or res.tpot_p99_s <= tpot_p99_s)

    if sample:
        sample = drawn(sample, n, seed)
    single = prefill_s + (output_len - 1) * step_s(1)
    lo_res = run_load(0.01 / single, prefill_s, output_len, step_s, max_batch, n, seed, sample, overhead_s)
    if not ok(lo_res):
        return None
    # Stability needs the offered work below 1 even at the best batching amortisation:
    # rate x (prefill + (O-1) x step(max_batch) / max_batch) < 1. Search below that rate.
    lo, hi = lo_res.rate, saturation(prefill_s, output_len, step_s, max_batch)
    best = lo_res
    for _ in range(16):  # bisection on the rate to a 1% bracket (the runs of two seeds differ by 5-10%)
        if hi - lo <= 1e-2 * hi:
            break
        mid = (lo + hi) / 2
        res = run_load(mid, prefill_s, output_len, step_s, max_batch, n, seed, sample, overhead_s)
        if ok(res):
            lo, best = mid, res
        else:
            hi = mid
    return best


@dataclass(frozen=True)
class Tails:
    """Requests drawn from a service's length distributions and priced, for the approximation's
    percentiles: each request's own prompt time and output tokens, two M/M/1 wait shapes (behind prompts, and for
    a free batch slot), and the prompts arriving while it decodes (unit-rate Poisson epochs after its first token,
    with their prefill seconds). Drawn once; every rate the bisection tries scales the same epochs, so the search is
    deterministic. With the means alone, a request with a short output that sits through a long
    prompt's prefill, which sets the simulated TPOT p99, was missed."""
    own: np.ndarray       # (K,) prefill seconds of the request's prompt
    outputs: np.ndarray   # (K,) its output tokens
    waits: np.ndarray     # (K,) unit-mean exponential draws scaling the queueing wait
    epochs: np.ndarray    # (K, M) unit-rate arrival epochs while it decodes
    others: np.ndarray    # (K, M) prefill seconds of those arrivals
    slots: np.ndarray     # (K,) unit-mean exponential draws scaling the wait for a free batch slot

    @property
    def prefill_s(self) -> float:
        return float(self.own.mean())

    @cached_property
    def spread(self) -> float:
        """E[P^2] / (2 E[P]^2) of the prompts' device time: 1 for exponential, as the M/M/1 wait assumes; a
        heavier tail makes prompts wait longer behind long ones (Pollaczek-Khinchine)."""
        return float((self.own ** 2).mean() / (2 * self.own.mean() ** 2))

    def ttft(self, base_s: float, wait_s: float, q: float, busy: float,
             slot: tuple[float, float] = (0.0, 0.0)) -> float:
        """The q-th percentile of own prefill + `base_s` + a wait of mean `wait_s` (`waited`) + a wait for a free
        batch slot (`slot`: the chance every slot is taken, the mean wait then)."""
        x = self.own + waited(self.waits, wait_s, busy)
        if slot[0] > 0:
            x = x + waited(self.slots, slot[0] * slot[1], slot[0])
        return _percentile(x, q) + base_s

    def tpot_p99(self, rate: float, iteration_s: float, step_s: float, wait_s: float, rho: float,
                 busy: float) -> float | None:
        """p99 over requests of step + the prefills that run between its first and last token / (output - 1):
        the prompts that arrive while it waits and prefills, and those arriving while they prefill in turn (a
        busy period, 1 / (1 - rho) of the first arrivals: all are admitted before its next step), and the
        prompts arriving while it decodes, up to its last step (the iteration time already counts theirs; one
        arriving during its last step runs after it is done). Arrivals beyond the drawn epochs count at the mean
        prompt time (a long window averages)."""
        d = self._decoding
        if d is None:
            return None
        steps, own, waits, epochs, others, mean_other = d
        window = rate * ((steps - 1) * iteration_s + (own + waited(waits, wait_s, busy)) / (1 - rho))
        inside = (others * (epochs < window[:, None])).sum(axis=1)
        beyond = np.maximum(window - epochs[:, -1], 0.0) * mean_other
        return step_s + _percentile((inside + beyond) / steps, 99.0)

    @cached_property
    def _decoding(self) -> tuple | None:
        """The requests with more than one output token (the ones with a TPOT), taken out once."""
        many = self.outputs > 1
        if not many.any():
            return None
        return (self.outputs[many] - 1, self.own[many], self.waits[many], self.epochs[many], self.others[many],
                float(self.others.mean()))


def waited(unit: np.ndarray, wait_s: float, busy: float) -> np.ndarray:
    """Waits of mean `wait_s`, one per unit exponential draw, for arrivals that find work ahead of them with
    probability `busy`: none with probability 1 - busy, else exponential with mean wait_s / busy, as an M/M/1 queue
    waits. Every request waiting `wait_s` x a unit exponential put a prompt-only replica's TTFT p95 at 3 mean waits,
    where that queue's is 4.3 at rho = 0.57, and the capacity under a 0.5 s TTFT p95 on an L4 at 1.3x the
    simulation's."""
    if busy <= 0:
        return np.zeros_like(unit)
    return wait_s / busy * np.maximum(unit + math.log(busy), 0.0)


def slot_wait(running: float, slots: int, decode_s: float) -> tuple[float, float]:
    """(the chance an arrival finds every batch slot taken, its mean wait for one then), with `running` requests
    decoding on average over `slots`, each holding its slot `decode_s`: an M/M/c queue, Erlang C by Halfin and
    Whitt's approximation (closed form, so the bisection can call it; fine where the slots are many)."""
    free = slots - running
    if running <= 0 or free <= 0 or decode_s <= 0:
        return (0.0, 0.0) if free > 0 else (1.0, math.inf)
    beta = free / math.sqrt(running)
    if beta > 8:
        return 0.0, 0.0
    density = math.exp(-beta * beta / 2) / math.sqrt(2 * math.pi)
    below = 0.5 * (1 + math.erf(beta / math.sqrt(2)))
    return 1.0 / (1.0 + beta * below / density), decode_s / free


def _percentile(x: np.ndarray, q: float) -> float:
    """np.percentile's linear interpolation, by partition: the bisection calls it thousands of times."""
    pos = q / 100.0 * (len(x) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(x) - 1)
    part = np.partition(x, (lo, hi))
    return float(part[lo] + (pos - lo) * (part[hi] - part[lo]))


@dataclass(frozen=True)
class Estimate:
    rate: float
    ttft_s: float          # at the requested percentile
    tpot_p99_s: float | None
    batch: float           # mean running requests


def approx_load(rate: float, prefill_s: float, output_len: float, step_s: Callable[[int], float], max_batch: int,
                ttft_q: float = 95.0, overhead_s: float = 0.0, tails: Tails | None = None) -> Estimate | None:
    """A mean-value approximation of the simulated replica, for ranking many configurations fast.

    Prefill takes rho = rate x prefill_s of the time, so an iteration lasts T = step(b) / (1 - rho);
    Little's law on the decoding requests gives b = rate x (O - 1) x T, solved by fixed point.
    TPOT p99 adds the prefills a request sits through, n = rate x (O - 1) x T on average, taken at
    n + 2.33 sqrt(n) / (1 - rho) + 2.5: each prefill it sits through lengthens its decoding and lets more
    prompts arrive, so the count spreads as a branching process's total does (Poisson alone put the TPOT p99
    of a long simulated run at the capacity found up to 39% above the SLO). TTFT adds to prefill + T, plus
    `overhead_s` (a per-request latency that occupies no device, as in run_load), the wait of a prompt: the
    engine runs prompts before its next decode step, so it waits behind other prompts, with probability rho, for
    a mean prefill x the prompts' spread / (1 - rho) (E[P^2] / (2 E[P]^2): 0.5 for one length), and, near a full
    batch, for a free slot (slot_wait), each as an M/M/1 queue waits (`waited`). With `tails` (variable lengths),
    both percentiles are taken over the drawn requests: each with its own prompt, output length and the prompts
    arriving while it decodes. With one length, z T u / (1 - u) is added (u the load over the saturation rate, z =
    ln(100 / (100 - q))): without it the capacity under loose SLOs reached 0.999 of saturation, above the closed
    loop's offline maximum, where the simulated queue stops draining at 0.95; with lengths drawn the TPOT window holds
    it there. Until the evening of 2026-12-06 every prompt waited z (prefill + T) u / (1 - u), which grows with the
    decoding load that prompts skip ahead of: with the idle TTFT p99 4% under its SLO the capacity read 15x the
    simulation's, and TTFT-bound capacities 0.34-0.85 of it (docs/planner.md, "How exact the two are").
    None when the replica saturates (b above max_batch or u >= 1)."""
    u = rate / saturation(prefill_s, output_len, step_s, max_batch)
    rho = rate * prefill_s
    if u >= 1 or rho >= 1:
        return None
    b = 0.0
    if output_len > 1:
        b = 1.0
        for _ in range(50):
            nb = rate * (output_len - 1) * step_s(min(max_batch, max(1, math.ceil(b)))) / (1 - rho)
            if abs(nb - b) < 1e-3 * max(1.0, b):
                b = nb
                break
            b = nb
        if b > max_batch:
            return None
    step = step_s(min(max_batch, max(1, math.ceil(b)))) if output_len > 1 else 0.0
    iteration = step / (1 - rho)
    # TTFT: the engine runs prompts before its next decode step, so a prompt waits behind the prompts ahead of it (an
    # M/G/1 queue of the prompts' own load rho; the decode step it lands in is the iteration in the base) and, with
    # every batch slot taken, for one to free (slot_wait)
    spread = tails.spread if tails is not None else 0.5  # E[P^2] / (2 E[P]^2): 0.5 for one prompt length
    prompts = prefill_s * spread * rho / (1 - rho)
    slot = slot_wait(b, max_batch, (output_len - 1) * iteration)
    if tails is not None:
        # the TPOT window keeps the wait it was checked against: grown with u, nearly every arrival waiting
        wait = (prefill_s * tails.spread + iteration) * u / (1 - u)
        busy = 1.0 - (1.0 - rho) * math.exp(-b)
        return Estimate(rate, tails.ttft(overhead_s + iteration, prompts, ttft_q, rho, slot),
                        tails.tpot_p99(rate, iteration, step, wait, rho, busy), b)
    tpot = None
    if output_len > 1:
        n = rate * (output_len - 1) * iteration
        tpot = step + (n + 2.33 * math.sqrt(n) / (1 - rho) + 2.5) * prefill_s / (output_len - 1)
    z = math.log(100.0 / (100.0 - ttft_q))
    # each wait's percentile as `waited` would draw it, added (an upper bound), and the iteration's part of the wait
    # grown with u: with lengths drawn the TPOT window keeps the capacity below saturation, here this does
    waits = _waited_at(prompts, rho, z) + _waited_at(slot[0] * slot[1], slot[0], z) + z * iteration * u / (1 - u)
    return Estimate(rate, overhead_s + prefill_s + iteration + waits, tpot, b)


def _waited_at(wait_s: float, busy: float, z: float) -> float:
    """The percentile of `waited`'s waits at z = ln(100 / (100 - q)): none below 1 - busy, then exponential of mean
    wait_s / busy."""
    if busy <= 0 or wait_s <= 0:
        return 0.0
    return wait_s / busy * max(z + math.log(busy), 0.0)


# The approximation's capacity search stops at a bracket of this share of the rate found: the model is good to 15-30%,
# and a 0.1% bracket took 12 evaluations a capacity, a fifth more than this, where `plan` prices thousands of them
APPROX_BRACKET = 5e-3


def approx_capacity(prefill_s: float, output_len: float, step_s: Callable[[int], float], max_batch: int,
                    ttft_s: float, tpot_p99_s: float | None, ttft_q: float = 95.0,
                    overhead_s: float = 0.0, tails: Tails | None = None) -> Estimate | None:
    """The highest rate whose approximate TTFT and TPOT p99 meet the targets (bisection), or None."""
    def ok(e: Estimate | None) -> bool:
        return e is not None and e.ttft_s <= ttft_s and (tpot_p99_s is None or e.tpot_p99_s is None
                                                         or e.tpot_p99_s <= tpot_p99_s)
    top = saturation(prefill_s, output_len, step_s, max_batch)
    lo, hi = top * 1e-6, top
    best = approx_load(lo, prefill_s, output_len, step_s, max_batch, ttft_q, overhead_s, tails)
    if not ok(best):
        return None
    for _ in range(24):
        if hi - lo <= APPROX_BRACKET * lo:
            break
        mid = (lo + hi) / 2
        e = approx_load(mid, prefill_s, output_len, step_s, max_batch, ttft_q, overhead_s, tails)
        if ok(e):
            lo, best = mid, e
        else:
            hi = mid
    return best
