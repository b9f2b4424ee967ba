"""A finite benchmark run, stepped iteration by iteration: what `vllm bench serve --num-prompts N` measures.

`vllm bench serve` at its default request rate (inf) sends all N prompts at once, `--max-concurrency C` caps
the requests in flight (the next is sent when one finishes), and `trtllm-bench throughput` queues every
request at once too. Such a run starts with a wall of prefill and ends with a drain tail at a small batch,
neither of which a steady state (steady.py) has. Here the engine's scheduler is stepped: each iteration
carries the running decodes plus prefill up to the token budget, the waiting requests admitted in order while
the running-sequence limit and the KV room allow, and takes `iteration_s` with the fit's efficiencies:

    mixed engines (vLLM, TensorRT-LLM)   decodes, then prefill in max(budget - decodes, budget / 8) tokens (as
                                         steady.py); chunked engines cut prompts to it, the others take a prompt
                                         whole when it fits, or alone in the iteration's prefill when it never does
    prefill-first engines (SGLang, MindIE)  an iteration of prefill alone (up to the budget) whenever a prompt
                                         can be admitted or is part-way prefilled, else a decode iteration
    static runners                       a batch is admitted when none runs, prefilled together, then decoded
    KV room                              the memory gate's (steady.kv_room), each sequence holding KV for its
                                         mean context (prompt + output / 2), or prompt + output where the engine
                                         reserves the whole request; no preemption
    the engine's per-request cost        a request reaches the scheduler `t_request` after it is sent, so its
                                         TTFT and end-to-end time carry it, as in the steady state

TTFT of a request: the end of the iteration that finishes its prompt, less its send time; TPOT, as vLLM bench
defines it: (end-to-end - TTFT) / (output - 1), averaged over the requests with more than one output token;
throughput: tokens over the run's duration (first send to last token). Decode stretches in which nothing can
be admitted are priced in one vectorised call up to the next finish or admissible arrival, so a run of
1,000 requests is a few thousand scalar iterations at most. Each attention-DP rank runs its own requests
(round robin) and clients; the run lasts as long as its slowest rank.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from ..errors import UserError
from .engines import Engine
from .iteration import Efficiency, Terms, iteration_s
from .steady import EngineTerms, kv_room


@dataclass(frozen=True)
class RankRun:
    """Per-request times of one DP rank's share of a run (seconds from the run's start)."""
    sent: np.ndarray
    first: np.ndarray
    done: np.ndarray
    iterations: int
    peak_running: int


@dataclass(frozen=True)
class FiniteRun:
    """A whole run's figures, as `vllm bench serve` prints them."""
    requests: int
    duration_s: float
    input_tokens: int
    output_tokens: int
    mean_ttft_s: float
    mean_tpot_s: float | None
    iterations: int              # on the busiest rank
    peak_running: int            # sequences running at once on one rank, at most

    def __post_init__(self):
        if self.requests < 1 or self.duration_s <= 0:
            raise ValueError("a run has at least one request and a positive duration")

    @property
    def total_tokens_per_s(self) -> float:
        return (self.input_tokens + self.output_tokens) / self.duration_s

    @property
    def output_tokens_per_s(self) -> float:
        return self.output_tokens / self.duration_s

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.duration_s


def simulate_rank(t: Terms, e: Efficiency, engine: Engine, isl: np.ndarray, osl: np.ndarray,
                  clients: int) -> RankRun:
    """One DP rank's requests (`isl`, `osl` per request, sent in order) under at most `clients` in flight."""
    n = len(isl)
    g = EngineTerms.of(engine)
    room = float(kv_room(t, g))
    kv_need = np.asarray(t.kv_seq(np.where(engine.reserve_whole_request, isl + osl, isl + osl / 2)), dtype=float)
    if (too := np.flatnonzero(kv_need > room)).size:
        i = int(too[0])
        raise UserError(f"a request of {int(isl[i])} prompt and {int(osl[i])} output tokens needs more KV cache than "
                        f"one rank's room ({room / 1e9:.1f} GB); use shorter lengths, more TP or a larger part")
    t_req = float(e.t_request)
    budget = float(engine.token_budget)
    sent, first, done = np.zeros(n), np.full(n, np.nan), np.full(n, np.nan)
    prefilled, produced = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
    arrivals: deque[int] = deque(range(min(clients, n)))  # sent, not yet at the scheduler; in arrival order
    next_send = len(arrivals)
    waiting: deque[int] = deque()
    running: list[int] = []
    used, now, iters, peak = 0.0, 0.0, 0, 0

    def admissible(i: int) -> bool:
        return len(running) < engine.max_seqs and used + kv_need[i] <= room * (1 + 1e-12)

    def finish(i: int) -> None:
        nonlocal used, next_send
        done[i] = now
        running.remove(i)
        used -= kv_need[i]
        if next_send < n:  # the client sends its next request at once
            sent[next_send] = now
            arrivals.append(next_send)
            next_send += 1

    while arrivals or waiting or running:
        while arrivals and sent[arrivals[0]] + t_req <= now:
            waiting.append(arrivals.popleft())
        if not running and not waiting:
            now = sent[arrivals[0]] + t_req
            continue
        decoding = [i for i in running if prefilled[i] == isl[i]]
        partial = [i for i in running if prefilled[i] < isl[i]]
        can_admit = bool(waiting) and admissible(waiting[0]) and (not engine.static or not running)
        prefill_now = bool(partial) or can_admit
        if not engine.mixed and prefill_now:
            decoding = []  # a prefill iteration stalls decoding
        if not prefill_now:
            # decode only: the running set holds until a request finishes or an admissible one arrives
            steps = int(min(osl[i] - produced[i] for i in decoding))
            ctx0 = float(np.mean([isl[i] + produced[i] for i in decoding]))
            dts = np.cumsum(iteration_s(t, e, len(decoding), ctx0 + np.arange(steps), 0.0, 0.0, 0.0))
            if arrivals and admissible(arrivals[0]) and not engine.static:
                steps = min(steps, int(np.searchsorted(dts, sent[arrivals[0]] + t_req - now)) + 1)
            now += float(dts[steps - 1])
            iters += steps
            for i in decoding:
                produced[i] += steps
            for i in decoding:
                if produced[i] == osl[i]:
                    finish(i)
            continue
        left = np.inf if engine.static else (max(budget - len(decoding), budget / 8) if engine.mixed else budget)
        chunks: list[tuple[int, int]] = []
        for i in partial:
            take = int(min(isl[i] - prefilled[i], left))
            if take <= 0:
                break
            chunks.append((i, take))
            left -= take
        while waiting and admissible(waiting[0]) and (not engine.static or not partial and not decoding):
            i = waiting[0]
            if engine.chunked and left >= 1:
                take = int(min(isl[i], left))
            elif isl[i] <= left or not chunks:  # whole; a prompt beyond the budget goes alone
                take = int(isl[i])
            else:
                break
            waiting.popleft()
            running.append(i)
            used += kv_need[i]
            chunks.append((i, take))
            left -= take
        peak = max(peak, len(running))
        n_pf = sum(c for _, c in chunks)
        ctx_pf = sum(c * (prefilled[i] + c / 2) for i, c in chunks) / max(n_pf, 1)
        ends = [i for i, c in chunks if prefilled[i] + c == isl[i]]
        ctx_dec = float(np.mean([isl[i] + produced[i] for i in decoding])) if decoding else 0.0
        now += float(iteration_s(t, e, len(decoding), ctx_dec, n_pf, ctx_pf, len(ends)))
        iters += 1
        for i, c in chunks:
            prefilled[i] += c
        for i in decoding:
            produced[i] += 1
        for i in ends:
            first[i], produced[i] = now, 1
        for i in decoding + ends:
            if produced[i] == osl[i]:
                finish(i)
    return RankRun(sent, first, done, iters, peak)


def finite_run(t: Terms, e: Efficiency, engine: Engine, isl, osl, clients: int, dp: int = 1) -> FiniteRun:
    """A run of len(isl) requests with at most `clients` in flight, over `dp` attention-DP ranks."""
    isl, osl = np.asarray(isl, dtype=np.int64), np.asarray(osl, dtype=np.int64)
    n = len(isl)
    if n < dp or clients < dp:
        raise UserError(f"{n} prompts and {clients} in flight cannot feed {dp} attention-DP ranks; give at least {dp} of each")
    runs, seen = [], {}
    for r in range(dp):
        a, b = isl[r::dp], osl[r::dp]
        c = clients // dp + (r < clients % dp)
        key = (a.tobytes(), b.tobytes(), c)
        if key not in seen:
            seen[key] = simulate_rank(t, e, engine, a, b, c)
        runs.append(seen[key])
    first = np.concatenate([x.first - x.sent for x in runs])
    e2e = np.concatenate([x.done - x.sent for x in runs])
    out = np.concatenate([osl[r::dp] for r in range(dp)])
    many = out > 1
    tpot = (e2e[many] - first[many]) / (out[many] - 1)
    return FiniteRun(requests=n, duration_s=max(float(x.done.max()) for x in runs), input_tokens=int(isl.sum()),
                     output_tokens=int(osl.sum()), mean_ttft_s=float(first.mean()),
                     mean_tpot_s=float(tpot.mean()) if many.any() else None,
                     iterations=max(x.iterations for x in runs), peak_running=max(x.peak_running for x in runs))
