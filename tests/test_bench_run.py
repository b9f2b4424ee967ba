"""predict --num-prompts: a finite benchmark run stepped iteration by iteration (planner/bench_run.py)."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from infra_bench.cli import main
from infra_bench.endpoints.inputs import distributions
from infra_bench.planner import fit as F
from infra_bench.planner import llm_model as m
from infra_bench.planner import profiles as pr
from infra_bench.planner.bench_run import finite_run
from infra_bench.planner.iteration import iteration_s

HW = pr.load_hardware()
FIT = F.shipped()


def _replica(engine: str = "vllm", **limits) -> m.Replica:
    return m.replica("llama-3.1-8b", HW["nv_h100_sxm"], "bf16", engine=engine, **limits)


def _eff(rep: m.Replica):
    return replace(FIT.efficiency([rep.case])[0], bench_requests=0.0)


@pytest.mark.parametrize("engine", ["vllm", "sglang", "trt-llm"])
@pytest.mark.parametrize(("clients", "isl", "osl"), [(4, 512, 128), (16, 128, 64)])
def test_a_long_run_at_fixed_concurrency_meets_the_steady_state(engine: str, clients: int, isl: int, osl: int):
    """Forty requests per client at --concurrency C: the run's output tokens/s and mean TPOT are those of
    `predict --concurrency C` within 10% (a run of clients that start together repeats its first cycle, so
    its start and its drain cost no more than a steady cycle)."""
    rep = _replica(engine)
    steady = m.predict(rep, FIT, clients, isl, osl)
    run = m.predict_run(rep, FIT, 40 * clients, clients, isl, osl)
    assert run.mode == "finite run" and run.run["max_concurrency"] == clients
    assert run.output_tokens_per_s == pytest.approx(steady.output_tokens_per_s, rel=0.10)
    assert run.tpot_s == pytest.approx(steady.tpot_s, rel=0.10)


def test_two_prompts_at_once_by_hand():
    """Two 100-token prompts sent together, 3 output tokens each, under vLLM: one iteration prefills both (200
    tokens, well inside the 8,192-token budget), then two decode iterations of both at contexts 101 and 102.
    Each request reaches the scheduler the engine's per-request cost after it is sent."""
    rep = _replica("vllm")
    t, e = rep.terms, _eff(rep)
    t_req = float(e.t_request)
    t1 = float(iteration_s(t, e, 0, 0.0, 200, 50.0, 2))  # both prompts whole: mean context 50
    t2, t3 = (float(iteration_s(t, e, 2, c, 0, 0.0, 0)) for c in (101.0, 102.0))
    p = m.predict_run(rep, FIT, 2, None, 100, 3)
    assert p.run["max_concurrency"] is None and p.run["peak_running_per_rank"] == 2
    assert p.ttft_s == pytest.approx(t_req + t1, rel=1e-9)
    assert p.tpot_s == pytest.approx((t2 + t3) / 2, rel=1e-9)
    assert p.run["duration_s"] == pytest.approx(t_req + t1 + t2 + t3, rel=1e-9)
    assert p.run["total_tokens_per_s"] == pytest.approx(206 / (t_req + t1 + t2 + t3), rel=1e-9)
    assert p.output_tokens_per_s == pytest.approx(6 / (t_req + t1 + t2 + t3), rel=1e-9)


def test_a_slot_limit_makes_the_second_prompt_wait_for_the_first():
    """At --max-seqs 1 two prompts sent together run one after the other: the second is admitted when the first
    finishes, its TTFT that whole wait plus its own prefill."""
    rep = _replica("vllm", max_seqs=1)
    t, e = rep.terms, _eff(rep)
    t_req = float(e.t_request)
    pf = float(iteration_s(t, e, 0, 0.0, 100, 50.0, 1))
    dec = sum(float(iteration_s(t, e, 1, c, 0, 0.0, 0)) for c in (101.0, 102.0))
    run = finite_run(t, e, rep.engine, [100, 100], [3, 3], clients=2)
    assert run.peak_running == 1
    assert run.mean_ttft_s == pytest.approx(t_req + (pf + (pf + dec + pf)) / 2, rel=1e-9)
    assert run.duration_s == pytest.approx(t_req + 2 * (pf + dec), rel=1e-9)


def test_chunked_prefill_cuts_prompts_to_the_budget():
    """vLLM at --token-budget 64: a 100-token prompt takes two iterations (64, then 36 beside the next prompt's
    first 28 tokens), and a prompt is not prefilled faster than its budget allows."""
    rep = _replica("vllm", token_budget=64)
    t, e = rep.terms, _eff(rep)
    t1 = float(iteration_s(t, e, 0, 0.0, 64, 32.0, 0))
    t2 = float(iteration_s(t, e, 0, 0.0, 64, (36 * (64 + 18) + 28 * 14) / 64, 1))
    run = finite_run(t, e, rep.engine, [100, 100], [1, 1], clients=2)
    t3 = float(iteration_s(t, e, 0, 0.0, 64, 28 + 32.0, 0))
    t4 = float(iteration_s(t, e, 0, 0.0, 8, 92 + 4.0, 1))
    t_req = float(e.t_request)
    assert run.mean_tpot_s is None  # one output token each: no TPOT, as vllm bench leaves it out
    assert run.mean_ttft_s == pytest.approx(t_req + (t1 + t2 + (t1 + t2 + t3 + t4)) / 2, rel=1e-9)


def test_drawn_lengths_are_fixed_by_the_seed_and_the_run_is_quick():
    """--lengths draws each request's lengths as loadtest does, with seed 0: the same run twice, its mean lengths
    reported."""
    rep = _replica("vllm")
    a = m.predict_run(rep, FIT, 300, None, lengths="azure-conv-2023")
    b = m.predict_run(rep, FIT, 300, None, lengths="azure-conv-2023")
    assert a.run == b.run and a.run["lengths"] == "azure-conv-2023" and a.input_len != 1024
    assert a.run["input_tokens"] == pytest.approx(300 * a.input_len, rel=0.01)
    # the distribution itself (gpustack_check.py passes a rescaled one) runs what its name runs
    d = distributions()["azure-conv-2023"]
    assert m.predict_run(rep, FIT, 300, None, lengths=d).run == a.run
    isl, osl = d.sample(300, 0)
    assert (isl.sum(), osl.sum()) == (a.run["input_tokens"], a.run["output_tokens"])
    assert [d.draw(np.random.default_rng([0, i])) for i in range(3)] == list(zip(isl[:3], osl[:3]))
    # rescaled: the same deviates, the lengths twice and half as long (to the rounding)
    isl2, osl2 = d.scaled(2.0, 0.5).sample(300, 0)
    assert np.abs(isl2 - 2 * isl).max() <= 1 and np.abs(osl2 - osl / 2).max() <= 1
    with pytest.raises(ValueError, match="median <= p90"):
        replace(d, output_p90=d.output_median / 2)


def test_num_prompts_on_the_command_line(capsys):
    """The JSON names the mode and carries the run's figures; bad input is one line and exit 2."""
    main(["predict", "--model", "llama-3.1-8b", "--hardware", "nv_h100_sxm", "--num-prompts", "50",
          "--input-len", "256", "--output-len", "32", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert out["mode"] == "finite run" and out["run"]["num_prompts"] == 50 and out["run"]["max_concurrency"] is None
    assert np.isfinite(out["run"]["total_tokens_per_s"]) and out["intervals"]["output_tokens_per_s"]
    main(["predict", "--model", "llama-3.1-8b", "--hardware", "nv_h100_sxm", "--num-prompts", "50",
          "--lengths", "sharegpt-opt-2023", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert out["run"]["lengths"] == "sharegpt-opt-2023" and out["run"]["input_tokens"] < out["run"]["output_tokens"]
    for args, fragment in (
            (["--num-prompts", "10", "--max-throughput"], "--num-prompts and --max-throughput contradict"),
            (["--num-prompts", "0"], "'--num-prompts': 0 is not in the range"),
            (["--lengths", "azure-conv-2023"], "--lengths applies to a finite run"),
            (["--num-prompts", "5", "--lengths", "azure-conv-2023", "--input-len", "8"], "leave out --input-len"),
            (["--num-prompts", "5", "--lengths", "azure-conv"], "unknown --lengths 'azure-conv'"),
            (["--num-prompts", "5", "--count", "2"], "leave out --count")):
        with pytest.raises(SystemExit) as stop:
            main(["predict", "--model", "llama-3.1-8b", "--hardware", "nv_h100_sxm", *args])
        err = capsys.readouterr().err.strip()
        assert stop.value.code == 2 and len(err.splitlines()) == 1 and fragment in err, err
    with pytest.raises(SystemExit) as stop:
        main(["predict", "--model", "sd-1.5", "--hardware", "nv_h100_sxm", "--num-prompts", "5"])
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and "--num-prompts does not apply to sd-1.5" in err
