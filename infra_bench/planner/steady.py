"""A replica's steady state under C closed-loop clients, from the iteration model.

This is how `vllm bench serve --max-concurrency C`, GenAI-Perf/AIPerf and AIConfigurator's silicon
runs measure: C clients each send a request of ISL prompt tokens and wait for OSL output tokens
before sending the next. Per attention-DP rank, with b of the C clients:

    running   n = min(b, engine max sequences, sequences whose KV fits)  (the rest wait for a slot)
    decoding  n_d = n x D x TPOT / (D x TPOT + TTFT_s),  D = OSL - 1
    TTFT_s    prompts arrive in clusters (clients that finished together): k = min(n, max(1, scale x n ** cluster))
              of them pass the budget in m = k x ISL / budget iterations, of which a prompt waits for
              max(1, (m + 1) / 2); plus the engine's per-request cost, and (r - 1) / 2 decode iterations where the
              scheduler reads new requests once per r forward passes (SGLang's --scheduler-recv-interval r); those
              iterations' experts serve, from each other attention-DP rank, its n_d decodes and p prompt tokens
    prefill   each cycle every running request brings one prompt; those not in a request's own TTFT
              window (n - its cluster share) fall in its decode window: p = that x ISL / D per iteration
    mixed engines: iterations carry the decode batch plus prefill up to the token budget; a share
        f = p / chunk of them carry a chunk, so TPOT = f x T(n_d, chunk) + (1 - f) x T(n_d, 0); at f = 1 the
        prompts beyond one chunk per iteration wait for one, so a cycle lasts at least
        n x ISL / chunk x T(n_d, chunk) and the wait is in TTFT_s
    prefill-first engines: prefill iterations stall decoding, TPOT = T(n_d, 0) + p / chunk x T(0, chunk)
    static batches (infra-bench's runners): TTFT = T(0, n x ISL), TPOT = T(n, 0)
    TTFT      TTFT_s + (b - n) / X when clients wait for a slot (closed loop: C = X x (TTFT + D x TPOT))
    benchmarks a measured run of N requests starts with all C at once (AIConfigurator's design notes call
              it the transient window): prompt j of that burst waits for the j before it, so the run's mean
              TTFT is (1 - C / N) x TTFT_s + C / N x T_burst, T_burst = max(1, (n x ISL / budget + 1) / 2)
              iterations of min(n x ISL, budget) prompt tokens (mixed engines: beside n / 2 decoding, the
              burst's average). C counts the clients that run (n per rank); those waiting for a slot are
              charged their wait. N is fitted to the measurements; a prediction for a service uses N = 0
    output tokens/s = X x OSL x DP ranks,  X = n / (TTFT_s + D x TPOT)

solved by fixed-point iteration on n_d. Offline throughput is the best of this over concurrency, under
the engine's limits and memory, prefill charged.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .engines import Engine
from .iteration import Efficiency, Terms, iteration, iteration_s


@dataclass(frozen=True)
class EngineTerms:
    """An engine's limits as numbers or arrays (one per case)."""
    mixed: object
    chunked: object
    max_seqs: object
    budget: object
    memory_fraction: object
    of_free: object
    reserve_whole: object
    static: object
    recv_interval: object = 1.0

    @classmethod
    def of(cls, engines: list[Engine] | Engine) -> EngineTerms:
        if isinstance(engines, Engine):
            return cls(engines.mixed, engines.chunked, engines.max_seqs, engines.token_budget,
                       engines.memory_fraction, engines.of_free_memory, engines.reserve_whole_request, engines.static,
                       engines.recv_interval)
        a = lambda k: np.array([getattr(e, k) for e in engines], dtype=float)  # noqa: E731
        return cls(a("mixed") > 0, a("chunked") > 0, a("max_seqs"), a("token_budget"), a("memory_fraction"),
                   a("of_free_memory") > 0, a("reserve_whole_request") > 0, a("static") > 0, a("recv_interval"))


RUNTIME_RESERVE = 3.5e9  # activations, CUDA graphs, NCCL buffers (AIConfigurator reserves ~3.5 GB + collectives)


def kv_room(t: Terms, g: EngineTerms):
    """Bytes of KV cache one dp rank holds, after weights and reserve (0 where none is left)."""
    return np.maximum(np.where(g.of_free, (t.memory - t.weights_device - RUNTIME_RESERVE) * g.memory_fraction,
                               t.memory * g.memory_fraction - t.weights_device - RUNTIME_RESERVE), 0)


def kv_capacity(t: Terms, g: EngineTerms, isl, osl):
    """Sequences of this length whose KV cache fits on one dp rank, after weights and reserve."""
    context = np.where(g.reserve_whole, isl + osl, isl + osl / 2)
    return np.floor(kv_room(t, g) / t.kv_seq(context))


@dataclass(frozen=True)
class SteadyState:
    ttft_s: object
    tpot_s: object
    output_tokens_per_s: object     # the replica (all DP ranks)
    requests_per_s: object
    running: object                 # sequences running per DP rank
    decoding: object                # of which decoding, on average
    waiting: object                 # clients waiting for a slot per DP rank
    kv_capacity: object
    feasible: object                # at least one sequence fits
    bound: object                   # per op class: share of a decode iteration's time


def closed_loop(t: Terms, e: Efficiency, g: EngineTerms, concurrency, isl, osl, rounds: int = 12) -> SteadyState:
    """Steady state of `concurrency` clients per DP rank (numbers or arrays)."""
    b = np.asarray(concurrency, dtype=float)
    isl, osl = np.asarray(isl, dtype=float), np.asarray(osl, dtype=float)
    cap = kv_capacity(t, g, isl, osl)
    n = np.maximum(np.minimum(np.minimum(b, g.max_seqs), cap), 1.0)
    d = np.maximum(osl - 1, 0.0)
    ctx_dec = isl + osl / 2
    ctx_pf = isl / 2
    budget = np.asarray(g.budget, dtype=float)
    k = np.minimum(n, np.maximum(1.0, e.cluster_scale * n ** e.cluster))  # a prompt is prefilled whole
    queued = k * isl
    n_d = n.copy()
    polls = (np.asarray(g.recv_interval, dtype=float) - 1) / 2  # iterations a new request waits to be read
    t_poll = 0.0
    p = np.zeros_like(n)
    for _ in range(rounds):
        avail = np.where(g.mixed, np.maximum(budget - n_d, budget / 8), budget)
        room = np.maximum(avail, isl)  # a prompt that does not fit the budget goes alone (engines allow one)
        waves = queued / room
        per_wave = np.minimum(queued, room)
        # the other attention-DP ranks go on decoding and prefilling their own share while this prompt is prefilled
        t_first = np.maximum(1.0, (waves + 1) / 2) * iteration_s(
            t, e, np.where(g.mixed, n_d, 0.0), ctx_dec, per_wave, ctx_pf, per_wave / isl, n_d + p)
        ttft_s = t_first + e.t_request + t_poll
        # the other requests' prompts that fall in one request's decode window, per decode iteration
        in_ttft = np.minimum(k, np.maximum(1.0, (queued + room) / (2 * isl)))
        p = np.maximum(n - in_ttft, 0.0) * isl / np.maximum(d, 1.0)
        chunk = np.where(g.chunked, np.minimum(isl, avail), isl)
        chunk = np.minimum(np.maximum(chunk, np.minimum(p, avail)), room)
        share = np.minimum(1.0, p / chunk)
        t_dec = iteration_s(t, e, n_d, ctx_dec, 0.0, ctx_pf, 0.0)
        t_poll = polls * t_dec
        t_mix = iteration_s(t, e, np.where(g.mixed, n_d, 0.0), ctx_dec, chunk, ctx_pf, chunk / isl)
        tpot = np.where(g.mixed, share * t_mix + (1 - share) * t_dec, t_dec + p / chunk * t_mix)
        # a mixed iteration carries one chunk at most: prompts beyond what the iterations can take wait
        # for them, so the loop runs no faster than chunk / (ISL x T(n_d, chunk)) requests per second
        # and the wait is in TTFT (prefill-first engines charge every chunk to TPOT above)
        cycle = np.where(g.mixed, np.maximum(ttft_s + d * tpot, n * isl * t_mix / chunk), ttft_s + d * tpot)
        ttft_s = cycle - d * tpot
        n_d = np.where(d > 0, n * d * tpot / (d * tpot + ttft_s), 0.0)
        n_d = np.maximum(n_d, np.minimum(n, 1.0))
    # static batching (our runners): the whole batch is prefilled, then decoded, together
    t_static_pf = iteration_s(t, e, 0.0, ctx_dec, n * isl, ctx_pf, n) + e.t_request
    t_static_dec = iteration_s(t, e, n, ctx_dec, 0.0, ctx_pf, 0.0)
    ttft_s = np.where(g.static, t_static_pf, ttft_s)
    tpot = np.where(g.static, t_static_dec, tpot)
    n_d = np.where(g.static, n, n_d)
    x = n / (ttft_s + d * tpot)
    waiting = np.maximum(b - n, 0.0)
    # a benchmark's first C requests arrive together: its mean TTFT blends that burst (each prompt waits
    # for those ahead of it) with the steady state, by the burst's share of the run's requests
    burst_room = np.maximum(np.where(g.mixed, np.maximum(budget - n / 2, budget / 8), budget), isl)
    burst_wave = np.minimum(n * isl, burst_room)  # prompts of one wave of the burst, in tokens
    t_burst = np.maximum(1.0, (n * isl / burst_room + 1) / 2) * iteration_s(
        t, e, np.where(g.mixed, n / 2, 0.0), ctx_dec, burst_wave, ctx_pf, burst_wave / isl) + e.t_request + t_poll
    runs = np.asarray(e.bench_requests, dtype=float)
    share = np.where(g.static | (runs <= 0), 0.0, np.minimum(1.0, n * t.dp / np.maximum(runs, 1.0)))
    ttft = (1 - share) * ttft_s + share * t_burst + waiting / x
    parts = iteration(t, e, n_d, ctx_dec, 0.0, ctx_pf, 0.0)
    total = sum(parts.values())
    bound = {k: v / total for k, v in parts.items()}
    return SteadyState(ttft, np.where(d > 0, tpot, np.nan), x * osl * t.dp, x * t.dp, n, n_d, waiting, cap,
                       cap >= 1, bound)
