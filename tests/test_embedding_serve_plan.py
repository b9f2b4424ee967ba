"""Embeddings and rerankers beyond `run`: served over /v1/embeddings and /v1/rerank in a real
process and load-tested there; predicted and planned from the catalog's shapes; calibrated from a
real run on this CPU."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import assert_one_line_error, read_records, run_cli, write_cpu_profile
from tests.test_endpoints import loadtest, start_server, stop_server
from tests.test_serve import call

pytest.importorskip("aiohttp")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    proc, url = start_server("--arch", "bert-tiny-embed", "--arch", "xlmr-tiny-rerank",
                             cwd=tmp_path_factory.mktemp("serve"))
    yield url
    stop_server(proc)


def test_embeddings_and_rerank_answer_in_the_common_shapes(server):
    status, _, raw = call(f"{server}/embeddings", {"model": "bert-tiny-embed", "input": ["one two three", "four"]},
                          key=None)
    body = json.loads(raw)
    assert status == 200 and body["object"] == "list" and body["model"] == "bert-tiny-embed"
    assert [d["index"] for d in body["data"]] == [0, 1]
    assert body["usage"] == {"prompt_tokens": 4, "total_tokens": 4}  # one token per word without a tokenizer
    for d in body["data"]:
        assert len(d["embedding"]) == 64 and math.isclose(math.hypot(*d["embedding"]), 1.0, rel_tol=1e-4)
    status, _, raw = call(f"{server}/embeddings", {"model": "bert-tiny-embed", "input": "a b", "dimensions": 8},
                          key=None)
    cut = json.loads(raw)["data"][0]["embedding"]
    assert status == 200 and len(cut) == 8 and math.isclose(math.hypot(*cut), 1.0, rel_tol=1e-4)  # unit length again
    cards = {c["id"]: c for c in json.loads(call(f"{server}/models", key=None)[2])["data"]}
    assert cards["bert-tiny-embed"]["text"] == "no tokenizer: one token per whitespace-separated word"  # no output

    docs = ["alpha beta", {"text": "gamma"}, "delta epsilon zeta"]
    status, _, raw = call(f"{server}/rerank", {"model": "xlmr-tiny-rerank", "query": "which one", "documents": docs,
                                               "top_n": 2, "return_documents": True}, key=None)
    body = json.loads(raw)
    scores = [r["relevance_score"] for r in body["results"]]
    assert status == 200 and len(scores) == 2 and scores == sorted(scores, reverse=True)
    assert all(r["document"]["text"] in ("alpha beta", "gamma", "delta epsilon zeta") for r in body["results"])
    assert body["usage"]["total_tokens"] == 3 * 2 + 2 + 1 + 3  # the query joins each passage


@pytest.mark.parametrize("route, body, fragment", [
    ("rerank", {"model": "bert-tiny-embed", "query": "q", "documents": ["d"]}, "send it to /v1/embeddings"),
    ("embeddings", {"model": "xlmr-tiny-rerank", "input": "x"}, "send it to /v1/rerank"),
    ("embeddings", {"model": "bert-tiny-embed", "input": " ".join(["w"] * 600)}, "more than the model's 512"),
    ("embeddings", {"model": "bert-tiny-embed", "input": [[5, 99999]]}, "outside the vocabulary"),
    ("chat/completions", {"model": "bert-tiny-embed", "messages": [{"role": "user", "content": "x"}]},
     "served as embedding"),
])
def test_wrong_requests_get_one_clear_error(server, route, body, fragment):
    status, _, raw = call(f"{server}/{route}", body, key=None)
    assert status == 400 and fragment in json.loads(raw)["error"]["message"]


def test_loadtest_measures_embeddings_and_rerank(server, tmp: Path):
    p = loadtest(server, tmp / "e", "--model", "bert-tiny-embed", "--api", "embeddings", "--concurrency", "2",
                 "--num-requests", "10", "--input-len", "20")
    assert p.returncode == 0, p.stderr
    assert "seq/s" in p.stdout
    [r] = read_records(tmp / "e")
    m = r["metrics"]
    assert m["completed"] == 10 and m["sequences"] == 10 and m["sequences_per_s"] > 0
    assert m["input_tokens_per_s"] == pytest.approx(20 * m["sequences_per_s"], rel=1e-6)
    p = loadtest(f"{server}/rerank", tmp / "r", "--model", "xlmr-tiny-rerank", "--concurrency", "2",
                 "--num-requests", "6", "--slo", "e2e_p99=30")
    assert p.returncode == 0, p.stderr
    [r] = read_records(tmp / "r")
    assert r["metrics"]["sequences"] == 6 and r["metrics"]["slo_met"] is True


def test_an_input_longer_than_the_model_takes_stops_at_the_warm_up(server, tmp: Path):
    """600 words to a 512-token encoder: the first warm-up request has that length, so the server's refusal
    stops the run in one line before any point is recorded (the short warm-up let it through to fail them all)."""
    p = loadtest(server, tmp / "e", "--model", "bert-tiny-embed", "--api", "embeddings", "--num-requests", "2",
                 "--input-len", "600")
    assert_one_line_error(p, "(600 input words), but not a short one: HTTP 400: input[0] has 600 tokens, more than the "
                             "model's 512; shorten it; lower --input-len, or raise the server's limit")
    assert not (tmp / "e").exists()


def test_predict_counts_an_encoder_by_hand(tmp: Path):
    """bge-m3 at 512 tokens: 24 layers of 4 x 1024^2 (attention) + 2 x 1024 x 4096 (MLP) weights,
    and 4 x 512 x 1024 per token and layer for the attention products."""
    p = run_cli("predict", "--model", "bge-m3", "--hardware", "nv_h100_sxm", "--input-len", "512", "--batch", "32",
                "--json", cwd=tmp)
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout)
    per_layer = 4 * 1024**2 + 2 * 1024 * 4096
    flops = 512 * (2 * 24 * per_layer + 4 * 512 * 1024 * 24)
    assert got["flops_per_unit"] == flops == 335_007_449_088
    peak = 989.4e12 * 0.3  # H100 SXM dense fp16, the prior MFU
    assert got["latency_s"] == pytest.approx(32 * flops / peak + 3e-3, rel=1e-3)
    assert got["kind"] == "embedding" and got["fits"] and "assumed priors" in got["notes"][0]
    # 32 sequences' activations: one layer's hidden states, MLP intermediate and score matrices, 16-bit
    assert got["memory"]["activations_gb"] == pytest.approx(2 * 32 * 512 * (2 * 1024 + 4096 + 16 * 512) / 1e9)
    assert_one_line_error(run_cli("predict", "--model", "bge-m3", "--hardware", "nv_l4", "--batch", "100000", cwd=tmp),
                          "does not fit")  # it read 2.1 GB of weights alone as fitting
    assert_one_line_error(run_cli("predict", "--model", "bge-m3", "--hardware", "nv_h100_sxm", "--input-len", "9000",
                                  cwd=tmp), "at most 8192 tokens")


def test_plan_sizes_a_rag_stack_and_says_why_a_part_misses(tmp: Path):
    rag = ("name: rag\nservices:\n"
           "  - {name: retrieve, model: bge-m3, traffic: {requests_per_s: 300, seq_len: 512}, slo: {latency_p95_s: 0.2}}\n"
           "  - {name: rerank, model: bge-reranker-v2-m3, traffic: {requests_per_s: 10, seq_len: 512, batch: 20},\n"
           "     slo: {latency_p95_s: SLO}}\n")
    (tmp / "rag.yaml").write_text(rag.replace("SLO", "0.5"))
    p = run_cli("plan", "rag.yaml", "--hardware", "nv_h100_sxm", "--json", cwd=tmp)
    assert p.returncode == 0, p.stderr
    [c] = json.loads(p.stdout)["candidates"]
    for o, load in zip(c["options"], (300, 10)):
        assert o["kind"] == "embedding" and o["feasible"] and o["method"] == "simulation"  # the top rows, confirmed
        assert o["capacity"] * (o["replicas"] - 1) * 0.8 >= load - 1e-6  # 20% headroom and one spare replica
        assert o["latency"]["latency_p95_s"] <= {300: 0.2, 10: 0.5}[load]
        # explained as the other kinds are: a lone request, the load over saturation, what caps it, a +-50% range
        assert o["alone"]["request_s"] < o["latency"]["latency_p95_s"] and o["binds"] and o["fit"] == "priors"
        assert o["utilization"] and o["capacity_range"][0] < o["capacity"] < o["capacity_range"][1]
    (tmp / "tight.yaml").write_text(rag.replace("SLO", "0.004"))
    p = run_cli("plan", "tight.yaml", "--hardware", "nv_h100_sxm", cwd=tmp)
    assert p.returncode == 2 and "rerank: latency p95 0.004 s missed: one request alone takes" in p.stdout
    (tmp / "bad.yaml").write_text("services:\n  - {model: bge-m3, traffic: {requests_per_s: 1, batch: 0}, "
                                  "slo: {latency_p95_s: 1}}\n")
    assert_one_line_error(run_cli("plan", "bad.yaml", cwd=tmp), "batch")


def test_an_embedding_capacity_is_confirmed_by_the_simulation():
    """A reranker on an L4: a request of 20 x 512 tokens takes 188 ms, more than half the 0.5 s SLO. The simulation
    that confirms LLM and image rows finds 1.45 req/s; the plan sizes on that, and it holds in a run at that load.
    Ranked, the capacity was a merge heuristic's 1 / 188 ms = 5.3 req/s (the load that keeps the device busy all
    the time, where the queue grows without bound); the merging queue's approximation reads 1.40, just below."""
    from infra_bench.kinds.embedding.planner import option, pass_times
    from infra_bench.planner import sizing
    from infra_bench.planner.demand import demand_from_dict
    from infra_bench.planner.profiles import load_hardware
    from infra_bench.planner.queueing import run_load

    d = demand_from_dict({"name": "rag", "services": [{
        "name": "rerank", "model": "bge-reranker-v2-m3", "traffic": {"requests_per_s": 10, "seq_len": 512, "batch": 20},
        "slo": {"latency_p95_s": 0.5}}]})
    svc, hw = d.services[0], load_hardware()
    rough = option(svc, "rerank", hw["nv_l4"], "fp16", 0.2, 1, None)
    sim = svc.simulate(hw["nv_l4"], "fp16", None)
    passes = pass_times(svc.model, hw["nv_l4"], "fp16", 512, 20, None)

    def at(rate: float):
        return run_load(rate, 0.0, 2, lambda k: passes[k - 1], len(passes), n=1500)
    assert at(1 / passes[0]).e2e_p95_s > 2  # the heuristic's figure: the queue runs away
    assert sim.rate == pytest.approx(1.45, rel=0.05) and at(sim.rate).e2e_p95_s <= 0.5
    assert 0.9 * sim.rate <= rough.capacity <= sim.rate and at(rough.capacity).e2e_p95_s <= 0.5
    assert rough.latency["latency_p95_s"] <= 0.5 and "waits for the running pass" in rough.binds
    [o] = sizing.plan(d, hw, ["nv_l4"], confirm_top=1).candidates[0].options
    assert o.method == "simulation" and o.capacity == sim.rate and o.replicas == math.ceil(10 / (sim.rate * 0.8)) + 1
    assert o.latency["latency_p95_s"] == sim.e2e_p95_s and o.batch is None and "waits for the running pass" in o.binds
    assert not any("embedding: a ~ capacity" in n for n in sizing.plan(d, hw, ["nv_l4"], confirm_top=1).notes)
    rough_plan = sizing.plan(d, hw, ["nv_l4"], confirm_top=0)  # --confirm 0 simulates none, and says how rough
    [o] = rough_plan.candidates[0].options
    assert o.method == "approximation" and o.capacity == rough.capacity
    assert any("analytic approximation" in n and "0.86-1.00 of the simulated one" in n for n in rough_plan.notes)
    # --mixed simulates the columns its answer uses: it listed the heuristic as "capacity (simulated)"
    from infra_bench.planner.cost import Assumptions
    from infra_bench.planner.fleet import optimise
    from infra_bench.planner.profiles import load_sites

    fleet = optimise(rough_plan, d, hw, load_sites()["us-average"], Assumptions())
    assert fleet.feasible and [a["capacity"] for a in fleet.assignments] == [sim.rate]


# (model, part, precision, seq_len, batch, SLO): saturated, knife-edge (a lone request half the SLO), memory
# capping a pass at 10 requests, and the lowest ratio of benchmarks/embedding_capacity.py
CASES = [("bge-m3", "nv_h100_sxm", "fp16", 512, 1, 0.2), ("qwen3-embedding-0.6b", "cb_mlu370_s4", "fp16", 2048, 1, 1.0),
         ("bge-m3", "hw_910b2", "fp16", 2048, 32, 1.0), ("bge-reranker-v2-m3", "nv_a10", "fp32", 128, 8, 0.05)]


@pytest.mark.parametrize("model, part, precision, seq_len, batch, slo", CASES, ids=lambda v: str(v))
def test_the_ranked_embedding_capacity_is_a_little_below_the_simulated_one(model, part, precision, seq_len, batch,
                                                                         slo):
    """plan ranks every part on the approximation and simulates the top ones, assuming (sizing.REACH) that the
    approximation reads 0.77-1 of the simulation. The merge heuristic read 1.0-5.8x it; the merging queue's
    approximation reads 0.75-1.01 over 1,226 configurations (docs/planner.md), here too."""
    from infra_bench.kinds.embedding.planner import EmbeddingService, option
    from infra_bench.planner.profiles import load_hardware

    hw = load_hardware()[part]
    svc = EmbeddingService(model=model, precision=[precision], slo={"latency_p95_s": slo},
                           traffic={"requests_per_s": 100, "seq_len": seq_len, "batch": batch})
    o, sim = option(svc, "s", hw, precision, 0.2, 1, None), svc.simulate(hw, precision, None)
    assert o.feasible and o.method == "approximation" and sim is not None
    assert 0.74 <= o.capacity / sim.rate <= 1.02, (o.capacity, sim.rate)
    assert o.latency["latency_p95_s"] <= slo and o.capacity <= o.saturation and o.batch >= 1
    lo, hi = o.capacity_range  # the prior's +-50% on a pass's time, carried through the queue
    assert lo < o.capacity < hi


def test_the_merging_queue_is_the_simulated_one_in_the_long_run():
    """Its share of requests within a latency, against 36,000 simulated requests: where merging matters (a pass
    of one request takes 188 ms), where memory caps a pass at 10 requests and passes grow, and at 90% of
    saturation (requests past 64 in one pass wait for the next)."""
    from infra_bench.kinds.embedding.planner import pass_times
    from infra_bench.planner.merge_queue import MergeQueue
    from infra_bench.planner.profiles import load_hardware
    from infra_bench.planner.queueing import Request, poisson_arrivals, simulate

    hw = load_hardware()
    for model, part, seq_len, batch, rate, limits in (
            ("bge-reranker-v2-m3", "nv_l4", 512, 20, 1.7, (0.3, 0.5)), ("bge-m3", "hw_910b2", 2048, 32, 1.5, (2.0, 4.0)),
            ("bge-m3", "nv_h100_sxm", 512, 1, None, (0.06, 0.08))):
        passes = pass_times(model, hw[part], "fp16", seq_len, batch, None)
        queue = MergeQueue(tuple(passes))
        rate = rate or 0.9 * queue.saturation
        reqs = [Request(t, 0.0, 2) for t in poisson_arrivals(rate, 40_000, seed=3)]
        simulate(reqs, lambda k, p=passes: p[k - 1], len(passes))
        latency = np.array([r.done - r.arrival for r in reqs[4_000:]])
        steady = queue.steady(rate)
        for limit in limits:
            assert steady.within(limit) == pytest.approx(np.mean(latency <= limit), abs=0.006), (part, limit)


def test_a_demand_longer_than_the_model_takes_names_the_demand_field(tmp: Path):
    """plan stopped with predict's "use --input-len 8192 or less", an option plan has no such thing as."""
    (tmp / "long.yaml").write_text("services:\n  - {model: bge-m3, traffic: {requests_per_s: 1, seq_len: 9000}, "
                                   "slo: {latency_p95_s: 1}}\n")
    p = run_cli("plan", "long.yaml", "--hardware", "nv_h100_sxm", cwd=tmp)
    assert_one_line_error(p, "bge-m3 takes at most 8192 tokens per sequence; set traffic.seq_len to 8192 or less")
    assert "--input-len" not in p.stderr


def test_calibrate_from_an_embedding_run_and_predict_it_back(tmp: Path):
    """A real bert-tiny-embed run on this CPU, a profile for this CPU, calibrate: the MFU is fitted for
    (embedding, this CPU, torch, fp32) and predict uses it and names it."""
    (tmp / "spec.yaml").write_text("kind: embedding\narch: bert-tiny-embed\nbatch_size: 8\nseq_len: 128\n"
                                   "warmup: 1\nmin_iters: 5\nmin_time_s: 0.2\n")
    mine = write_cpu_profile(tmp)
    assert run_cli("run", "spec.yaml", "--out", "res", cwd=tmp).returncode == 0
    [rec] = read_records(tmp / "res")
    p = run_cli("calibrate", rec["run_id"], "--results", "res", "--out", "cal.json", "--profiles", str(mine), cwd=tmp)
    assert p.returncode == 0, p.stderr
    fits = json.loads((tmp / "cal.json").read_text())["media_fits"]
    assert list(fits) == ["embedding|this_cpu|torch|fp32"] and fits["embedding|this_cpu|torch|fp32"]["n"] == 1
    p = run_cli("predict", "--model", "bert-tiny-embed", "--hardware", "this_cpu", "--precision", "fp32",
                "--input-len", "128", "--batch", "8", "--calibration", "cal.json", "--profiles", str(mine), "--json",
                cwd=tmp)
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout)
    assert got["calibrated"] and "calibrated MFU" in got["notes"][0]
