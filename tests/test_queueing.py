"""The replica simulator against the M/M/1 closed form, and the SLO capacity search."""
import random

import pytest

from infra_bench.planner import llm_model as m
from infra_bench.planner import profiles as pr
from infra_bench.planner.queueing import Request, capacity_under_slo, poisson_arrivals, run_load, simulate


def test_mm1_mean_sojourn_matches_the_closed_form():
    """Batch 1, exponential service (rate mu), one-token outputs: W = 1 / (mu - lambda)."""
    lam, mu, n = 0.7, 1.0, 60000
    rng = random.Random(1)
    reqs = [Request(t, rng.expovariate(mu), 1) for t in poisson_arrivals(lam, n, seed=2)]
    simulate(reqs, step_s=lambda b: 0.0, max_batch=1)
    w = sum(r.e2e for r in reqs[n // 10:]) / len(reqs[n // 10:])
    assert w == pytest.approx(1 / (mu - lam), rel=0.05)


def test_arrivals_keep_their_rate():
    t = poisson_arrivals(5.0, 20000, seed=3)
    assert (len(t) - 1) / (t[-1] - t[0]) == pytest.approx(5.0, rel=0.03)


def test_batching_timings_are_exact_for_a_lone_request():
    (r,) = simulate([Request(0.0, 0.2, 5)], step_s=lambda b: 0.01 * b, max_batch=8)
    assert r.ttft == pytest.approx(0.2) and r.tpot == pytest.approx(0.01) and r.e2e == pytest.approx(0.24)


def test_capacity_under_slo_with_the_performance_model():
    """llama-3.1-8b on one H100 under vLLM, priced by the iteration model with the shipped fit."""
    from infra_bench.planner import fit as F
    from infra_bench.planner.sizing import ServiceModel

    rep = m.replica("llama-3.1-8b", pr.load_hardware()["nv_h100_sxm"], "bf16", engine="vllm")
    eff, _ = F.shipped().efficiency([rep.case])
    sm = ServiceModel(rep, eff, 1024, 128)
    prefill, max_batch = sm.prefill_s(), min(64, sm.max_batch)
    step = {b: sm.step_s(b) for b in range(1, max_batch + 1)}
    loose = capacity_under_slo(prefill, 128, step.__getitem__, max_batch, ttft_p95_s=2.0, tpot_p99_s=0.05, n=600)
    tight = capacity_under_slo(prefill, 128, step.__getitem__, max_batch, ttft_p95_s=0.3, tpot_p99_s=0.02, n=600)
    assert loose and tight and loose.rate > tight.rate > 0  # a tighter SLO admits less load
    assert loose.ttft_p95_s <= 2.0 and loose.tpot_p99_s <= 0.05 and loose.stable
    assert loose.throughput_rps == pytest.approx(loose.rate, rel=0.1)  # served keeps up with offered
    busy = loose.rate * (prefill + 127 * step[max_batch] / max_batch)
    assert busy < 1  # below the stability bound
    over = run_load(loose.rate * 1.5, prefill, 128, step.__getitem__, max_batch, n=600)
    assert over.ttft_p95_s > 2.0 or over.tpot_p99_s > 0.05  # beyond capacity the SLO breaks
    assert capacity_under_slo(prefill, 128, step.__getitem__, max_batch, ttft_p95_s=1e-4, tpot_p99_s=1.0) is None


def test_a_server_that_merges_requests_into_passes_is_simulated_end_to_end():
    """Requests of no prefill and one step, the pass, with the target on submit-to-done (`whole_request`): one
    request per pass is the one-image-at-a-time M/D/1 queue the diffusion path simulates, rate for rate; passes
    whose time does not grow with the requests merged serve near the stability bound (64 per pass), a request
    waiting for at most the running pass."""
    mdl = capacity_under_slo(0.1, 1, lambda b: 0.0, 1, 0.3, 1.0, n=1500)
    one = capacity_under_slo(0.0, 2, lambda k: 0.1, 1, 0.3, float("inf"), n=1500, whole_request=True)
    assert one is not None and one.rate == mdl.rate and one.e2e_p95_s == mdl.ttft_p95_s
    free = capacity_under_slo(0.0, 2, lambda k: 0.1, 64, 0.2, float("inf"), n=1500, whole_request=True)
    assert 0.9 * 64 / 0.1 < free.rate < 64 / 0.1 and free.e2e_p95_s <= 0.2
    # the same requests against a p95 that one pass alone misses: refused, not an empty queue read as capacity
    assert capacity_under_slo(0.0, 2, lambda k: 0.1, 64, 0.09, float("inf"), whole_request=True) is None


def test_the_approximation_counts_the_prompts_that_run_before_a_requests_next_tokens():
    """Tails.tpot_p99 against the simulator on a hand-built case: a request decoding at 1 s a step, its own prompt
    taking no time, and a 1 s prompt arriving 0.5 s into its first step. That prompt runs at the next step boundary,
    so a request that has more tokens to make waits for it (101 tokens: TPOT 1 s + 1 s / 100), and a 2-token one,
    done at that boundary, does not (TPOT 1 s; the approximation counted its last step's arrivals as well and said
    2 s, which for outputs of mean 1 halved plan's capacity)."""
    import numpy as np

    from infra_bench.planner.queueing import Tails

    for tokens, expected in ((2, 1.0), (101, 1.0 + 1.0 / 100)):
        r, _ = simulate([Request(0.0, 0.0, tokens), Request(0.5, 1.0, 1)], lambda b: 1.0, max_batch=8)
        epochs = np.array([[0.5] + [1e9] * 15])  # unit-rate epochs at 1 request/s: the one arrival, then none
        tails = Tails(np.zeros(1), np.array([tokens]), np.zeros(1), epochs, np.ones((1, 16)), np.zeros(1))
        assert r.tpot == pytest.approx(expected)
        approx = tails.tpot_p99(rate=1.0, iteration_s=1.0, step_s=1.0, wait_s=0.0, rho=0.0, busy=1.0)
        assert approx == pytest.approx(expected)
