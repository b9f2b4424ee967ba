"""Request-size buckets of an LLM service: short and long prompts, split at the median.

A variable (exponential) prompt length splits at its median into a short and a long half; a
fixed one stays whole. Prompts are what set prefill time (TTFT) and KV memory per request, so
they are what can make a part unable to serve the tail; the output length keeps its full
distribution in each bucket. A bucket's mean prompt is the conditional mean of the capped
distribution over its range, and its sampler draws inside that range, so a bucket's pool can be
sized and simulated on its own and placed on the type that serves it cheapest.
"""
from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .demand import Length, LlmService

GRID = 2000  # quantile midpoints for a bucket's conditional mean and its share of outputs with a TPOT
MIDPOINTS = (np.arange(GRID) + 0.5) / GRID


@dataclass(frozen=True)
class Range:
    """Lengths of one distribution between two quantiles, drawn as the planner draws them."""
    length: Length
    q_lo: float = 0.0
    q_hi: float = 1.0

    def _value(self, q: float) -> int:
        if self.length.distribution == "fixed":
            return self.length.mean
        x = -self.length.mean * math.log(max(1.0 - q, 1e-300))
        return max(1, min(self.length.cap, round(x)))

    @property
    def mean(self) -> float:
        """The conditional mean of the drawn (rounded, capped) lengths over the range, from a quantile grid."""
        return _range_mean(self)

    def draw(self, rng: random.Random) -> int:
        return self._value(rng.uniform(self.q_lo, self.q_hi))

    def at(self, u: np.ndarray) -> np.ndarray:
        """The lengths at uniforms `u` on [0, 1) mapped onto the range: `draw`, vectorised."""
        return _at(self.length, self.q_lo + (self.q_hi - self.q_lo) * u)

    def label(self, what: str) -> str:
        if self.length.distribution == "fixed" or (self.q_lo, self.q_hi) == (0.0, 1.0):
            return ""
        edge = self._value(0.5)
        return f"{what}<={edge}" if self.q_hi <= 0.5 else f"{what}>{edge}"


def _at(length: Length, q: np.ndarray) -> np.ndarray:
    """`Range._value` over an array of quantiles: whole tokens, at least 1, at most the cap."""
    if length.distribution == "fixed":
        return np.full(np.shape(q), length.mean, dtype=float)
    return np.clip(np.round(-length.mean * np.log1p(-q)), 1, length.cap)


@lru_cache(maxsize=256)
def _range_mean(r: Range) -> float:
    return float(r.at(MIDPOINTS).mean())


def _halves(length: Length) -> list[Range]:
    """Below and above the median; a fixed length whole."""
    if length.distribution == "fixed":
        return [Range(length)]
    return [Range(length, 0.0, 0.5), Range(length, 0.5, 1.0)]


@dataclass(frozen=True)
class Bucket:
    service: int
    input: Range
    output: Range
    share: float  # of the service's requests

    @property
    def label(self) -> str:
        return ", ".join(x for x in (self.input.label("in"), self.output.label("out")) if x) or "all"

    def sampler(self) -> Callable[[random.Random], tuple[int, int]]:
        return lambda rng: (self.input.draw(rng), self.output.draw(rng))

    @property
    def variable(self) -> bool:
        return "exponential" in (self.input.length.distribution, self.output.length.distribution)

    def lengths(self, seed: int = 0) -> Lengths:
        """The bucket's requests for the approximation's percentiles (queueing.Tails), drawn once (per seed: plan
        uses 0; benchmarks/llm_capacity.py compares draws)."""
        return _lengths(self.input, self.output, seed)

    def service_for(self, svc: LlmService) -> LlmService:
        """The service as this bucket alone sees it: its share of the rate, its mean lengths (fixed)."""
        traffic = svc.traffic.model_copy(update={
            "requests_per_s": svc.traffic.rate * self.share, "output_tokens_per_s": None,
            "input_len": Length(mean=max(1, round(self.input.mean))),
            "output_len": Length(mean=max(1, round(self.output.mean)))})
        return svc.model_copy(update={"traffic": traffic})


TAIL_REQUESTS, TAIL_ARRIVALS = 1000, 16  # requests with a TPOT drawn, and the arrivals followed through each one's decoding


@dataclass(frozen=True)
class Lengths:
    """Drawn requests: each one's prompt and output tokens, its wait shapes, and the prompts arriving while
    it decodes with their unit-rate Poisson epochs."""
    own: np.ndarray
    outputs: np.ndarray
    waits: np.ndarray
    epochs: np.ndarray
    others: np.ndarray
    prompts: np.ndarray  # the distinct prompt lengths among own and others ...
    where: np.ndarray    # ... and where each of own, then others (flattened), is in them
    slots: np.ndarray    # a second wait shape, for the wait for a free batch slot


def decoding_share(out: Range) -> float:
    """The share of drawn outputs longer than one token: the requests that have a TPOT."""
    return float((out.at(MIDPOINTS) > 1).mean())


def _strata(gen: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Uniforms on [0, 1) stratified down the first axis (a Latin hypercube): each column holds one draw in each of
    its equal slices, in random order. The rare short outputs and long prompts a TPOT p99 rests on then appear as
    often as their probability says; drawn independently, the capacity moved 0.47-1.44x between draws (docs)."""
    return (np.argsort(gen.random(shape), axis=0) + gen.random(shape)) / shape[0]


@lru_cache(maxsize=64)
def _lengths(inp: Range, out: Range, seed: int = 0) -> Lengths:
    """About TAIL_REQUESTS requests with a TPOT among those drawn: outputs of mean 1 leave it to 22% of them, and
    a TPOT p99 over the 219 of 1,000 draws was their third slowest, moving in steps with the load (docs/planner.md)."""
    gen = np.random.default_rng(seed)
    share, m = decoding_share(out), TAIL_ARRIVALS
    k = min(math.ceil(TAIL_REQUESTS / share), 20 * TAIL_REQUESTS) if share > 0 else TAIL_REQUESTS
    own, outputs, waits = inp.at(_strata(gen, (k,))), out.at(_strata(gen, (k,))), -np.log1p(-_strata(gen, (k,)))
    epochs, others = np.cumsum(-np.log1p(-_strata(gen, (k, m))), axis=1), inp.at(_strata(gen, (k, m)))
    prompts, where = np.unique(np.concatenate([own, others.ravel()]), return_inverse=True)
    slots = -np.log1p(-_strata(gen, (k,)))  # drawn last, so the draws above are those of before it
    arrays = Lengths(own, outputs, waits, epochs, others, prompts, where, slots)
    for a in vars(arrays).values():
        a.flags.writeable = False
    return arrays


def whole(svc: LlmService, index: int = 0) -> Bucket:
    """The service undivided: its full length distributions."""
    return Bucket(index, Range(svc.traffic.input_len), Range(svc.traffic.output_len), 1.0)


def split(index: int, svc: LlmService) -> list[Bucket]:
    """The service's buckets; one (the whole service) when the prompt length is fixed."""
    ins = _halves(svc.traffic.input_len)
    return [Bucket(index, i, Range(svc.traffic.output_len), 1.0 / len(ins)) for i in ins]
