"""A server that merges every waiting request into its next forward pass (embedding and reranker servers
batch so, as TEI and vLLM do), under Poisson arrivals: its latency distribution and its capacity under a
latency SLO, analytically, fast enough to rank every profile (the top candidates are then confirmed by
the discrete-event simulation, queueing.capacity_under_slo with whole_request).

A pass of k merged requests takes T(k), k up to K (64, or fewer where memory caps a pass). A request
that arrives while a pass of k runs waits out the rest of it (uniform on [0, T(k)]), then runs in the
next pass with the others that arrived during this one, N ~ Poisson(rate x T(k)): its latency is
U x T(k) + T(1 + N). One that finds the server idle runs alone, in T(1). The pass sizes form a Markov
chain (a pass merges the arrivals during the one before, or 1 after an idle spell, at most K); its
stationary law, weighted by the time each pass and each idle spell (1 / rate) lasts, is the share of
arrivals that meet each (Poisson arrivals see time averages). A request beyond the K of one pass is
taken to wait one more full pass of K. In the long run this is the simulated queue itself (the share
within a latency agrees with 36,000 simulated requests to 0.3 points: tests/test_embedding_serve_plan.py).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

WITHIN = 0.97   # share of requests within the SLO the capacity asks for, not 0.95: the simulation that
                # confirms it reads a p95 over 1,350 requests, whose capacity moves +-25% with the seed,
                # and at 0.95 this read up to 1.3x it (docs/planner.md, benchmarks/embedding_capacity.py)
TOL = 5e-3      # the rate is found to 0.5%, as the simulation's bisection
_LGAMMA = np.array([math.lgamma(n + 1) for n in range(1025)])  # log n!, for Poisson probabilities


@dataclass(frozen=True)
class MergeEstimate:
    rate: float            # requests/s
    latency_p95_s: float   # submit to done, at that rate
    merged: float          # mean requests per pass at that rate
    saturation: float      # K / T(K): the rate that keeps full passes running back to back


@dataclass(frozen=True)
class Steady:
    """The queue at one arrival rate, in the long run."""
    passes: np.ndarray  # T(k), k = 1 .. the largest pass the chain reaches
    idle: float         # share of arrivals that find the server idle
    busy: np.ndarray    # share of arrivals during a pass of k
    arrivals: np.ndarray  # P(n others arrive during a pass of k), n = 0 .. len(passes) - 1
    beyond: np.ndarray  # P(more than fit in the next pass)
    merged: float       # mean requests per pass

    def within(self, latency_s: float) -> float:
        """The share of requests done within `latency_s` of their arrival."""
        t = self.passes
        waited = np.clip((latency_s - t) / t[:, None], 0.0, 1.0)  # [k, n]: P(U x T(k) <= latency - T(1 + n))
        later = np.clip((latency_s - 2 * t[-1]) / t, 0.0, 1.0)
        return float(self.idle * (t[0] <= latency_s) + self.busy @ ((self.arrivals * waited).sum(axis=1)
                                                                    + self.beyond * later))

    def percentile(self, q: float) -> float:
        """The latency that `q` percent of requests meet (bisection to 0.1%)."""
        lo, hi = 0.0, 3 * float(self.passes[-1])
        while hi - lo > 1e-3 * hi:
            mid = (lo + hi) / 2
            lo, hi = (lo, mid) if self.within(mid) >= q / 100 else (mid, hi)
        return hi


@dataclass(frozen=True)
class MergeQueue:
    """One replica: `passes[k - 1]` is the time of a pass of k merged requests."""
    passes: tuple[float, ...]

    def __post_init__(self):
        if not self.passes or not all(0 < t < math.inf for t in self.passes):
            raise ValueError(f"pass times must be positive and finite, one per merged count: {self.passes}")

    @cached_property
    def _t(self) -> np.ndarray:
        return np.asarray(self.passes, dtype=float)

    @property
    def saturation(self) -> float:
        return len(self.passes) / self.passes[-1]

    def steady(self, rate: float) -> Steady:
        """The chain's stationary law at `rate` (below saturation), on the pass sizes it practically reaches:
        up to the first k whose arrivals stay below k (mean + 6 sd + 6), which keeps the matrices small."""
        t = self._t
        m = rate * t
        reach = np.nonzero(m + 6 * np.sqrt(m) + 6 <= np.arange(1, len(t) + 1))[0]
        if len(reach):
            t, m = t[:reach[0] + 1], m[:reach[0] + 1]
        k = len(t)
        n = np.arange(k + 1)
        pmf = np.exp(n * np.log(m)[:, None] - m[:, None] - _LGAMMA[:k + 1])  # [size, arrivals 0 .. k]
        tail = np.maximum(1.0 - pmf.sum(axis=1), 0.0)
        step = pmf[:, 1:].copy()  # the next pass merges the arrivals: 1 after an idle spell, at most k
        step[:, 0] += pmf[:, 0]
        step[:, -1] += tail
        a = step.T - np.eye(k)
        a[-1, :] = 1.0  # the probabilities sum to 1, in place of one redundant balance equation
        pi = np.maximum(np.linalg.solve(a, np.eye(k)[-1]), 0.0)
        time = pi * t
        idle = float(pi @ pmf[:, 0]) / rate
        total = float(time.sum()) + idle
        return Steady(t, idle / total, time / total, pmf[:, :k], pmf[:, k] + tail,
                      float(pi @ np.arange(1, k + 1) / pi.sum()))

    def capacity(self, slo_s: float, within: float = WITHIN, lo: float | None = None, hi: float | None = None
                 ) -> float | None:
        """The highest rate whose share of requests within `slo_s` is `within`, or None where even a request
        alone misses it. Regula falsi (Illinois) on the log rate, between a rate known to meet it (`lo`, else
        a lone request's: 1% busy) and one at or above the answer (`hi`, else saturation)."""
        if self.passes[0] > slo_s:
            return None
        lo = lo or 0.01 / self.passes[0]
        hi = min(hi or math.inf, self.saturation * (1 - TOL))  # the queue grows without bound at saturation
        def g(rate: float) -> float:  # log of the share that misses, nearer a line in the log rate than the share
            return math.log(1 - within) - math.log(max(1 - self.steady(rate).within(slo_s), 1e-6))
        g_lo, g_hi = g(lo), g(hi)
        if g_lo < 0:
            return None
        if g_hi >= 0:
            return hi
        x0, x1, side = math.log(lo), math.log(hi), 0
        while x1 - x0 > TOL:
            x = min(max((x0 * g_hi - x1 * g_lo) / (g_hi - g_lo), x0 + TOL / 4), x1 - TOL / 4)
            gx = g(math.exp(x))
            if gx >= 0:
                x0, g_lo = x, gx
                g_hi = g_hi / 2 if side > 0 else g_hi  # Illinois: an end kept twice has its value halved
                side = 1
            else:
                x1, g_hi = x, gx
                g_lo = g_lo / 2 if side < 0 else g_lo
                side = -1
        return math.exp(x0)

    def estimate(self, rate: float) -> MergeEstimate:
        s = self.steady(rate)
        return MergeEstimate(rate, s.percentile(95.0), s.merged, self.saturation)

    def scaled(self, factor: float) -> MergeQueue:
        """Every pass `factor` times as long."""
        return MergeQueue(tuple(factor * t for t in self.passes))


def binds(rate: float, saturation: float) -> str:
    """What caps a merging replica's capacity, approximated or simulated."""
    if rate >= 0.95 * saturation:
        return "saturation: passes run back to back, each merging what waits"
    return "latency p95 SLO: a request waits for the running pass, then runs merged in the next"
