"""`infra-bench loadtest` against stand-ins for each engine's streaming format (tests/standins.py):
what reaches the server (unique prompts, shared prefixes, seeds), how tokens and chunks are
counted, the server's /metrics read around each point, the failure exit and the saturation check."""
from __future__ import annotations

import asyncio
import json
import math
import socket
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import assert_one_line_error, read_records, run_cli

pytest.importorskip("aiohttp")
pytest.importorskip("prometheus_client")

from aiohttp import web

from infra_bench.endpoints.client import Outcome  # noqa: E402
from infra_bench.endpoints.inputs import Prompts, SharedPrefix, distributions  # noqa: E402
from infra_bench.endpoints.load import Budget, LoadPoint, run_point  # noqa: E402
from infra_bench.endpoints.server_metrics import PointWatch, bucket, parse, quantile  # noqa: E402
from tests.standins import StandIn, serving  # noqa: E402

OUT_LEN = 6


def loadtest(url: str, out: Path, *args: str) -> subprocess.CompletedProcess:
    return run_cli("loadtest", "--endpoint", url, "--model", "m", "--out", str(out), "--warmup", "0", *args,
                   cwd=out.parent, timeout=120)


def prompts_of(bodies: list[dict]) -> list[str]:
    return [b.get("prompt") or b.get("inputs") or " ".join(m["content"] for m in b["messages"]) for b in bodies]


def all_records(out: Path) -> list[dict]:
    return [json.loads(line) for f in sorted(out.glob("*/records.jsonl")) for line in f.read_text().splitlines()]


@pytest.mark.parametrize("engine,api", [("vllm", "completions"), ("vllm", "chat"), ("sglang", "chat"),
                                        ("mindie", "chat"), ("mindie", "completions"), ("mindie", "tgi"),
                                        ("trtllm", "chat"), ("tgi", "tgi")])
def test_each_engine_stream_is_counted_token_for_token(tmp: Path, engine: str, api: str):
    standin = StandIn(engine)
    with serving(standin.app()) as url:
        base = url if api == "tgi" else url + "/v1"
        p = loadtest(base, tmp / "r", "--api", api, "--num-requests", "3", "--input-len", "12",
                     "--output-len", str(OUT_LEN))
    assert p.returncode == 0, p.stderr
    [r] = read_records(tmp / "r")
    m = r["metrics"]
    assert (m["completed"], m["failed"]) == (3, 0)
    # the server's own counts, every token a chunk (empty text too): OUT_LEN - 1 gaps per request
    assert m["output_tokens"] == 3 * OUT_LEN and m["output_tokens_source"] == "usage"
    assert m["input_tokens"] == 3 * 12
    assert [len(s["itl_s"]) for s in r["samples"]] == [OUT_LEN - 1] * 3
    assert all(0 < s["ttft_s"] < s["e2e_s"] for s in r["samples"])
    if api == "tgi":
        assert standin.bodies[0]["parameters"]["max_new_tokens"] == OUT_LEN
        assert r["spec"]["ignore_eos"] is None  # TGI's API has no such field: not recorded as sent
    else:  # what vllm bench serve --ignore-eos sends; min_tokens would slow vLLM's decode steps
        assert standin.bodies[0]["max_tokens"] == OUT_LEN and standin.bodies[0]["ignore_eos"] is True
        assert "min_tokens" not in standin.bodies[0]


def test_requests_never_repeat_across_points_and_runs_and_a_seed_repeats_a_run(tmp: Path):
    standin = StandIn("vllm")
    with serving(standin.app()) as url:
        for i in range(2):   # two runs of two points each, new salt per run
            p = loadtest(url + "/v1", tmp / f"fresh{i}", "--concurrency", "1,2", "--num-requests", "5",
                         "--input-len", "20", "--output-len", "2")
            assert p.returncode == 0, p.stderr
            assert "warning" not in p.stderr
        fresh = prompts_of(standin.bodies)
        assert len(fresh) == 20 and len({" ".join(t.split()[:16]) for t in fresh}) == 20
        seeds = [json.loads((f / "run.json").read_text())["seed"] for f in (tmp / "fresh0", tmp / "fresh1")
                 for f in f.iterdir()]
        assert seeds[0] != seeds[1]
        [rec0] = [r for r in all_records(tmp / "fresh0") if r["cell"]["concurrency"] == 1]
        assert rec0["metrics"]["server"]["prefix_cache_hit_rate"] == 0.0

        standin.bodies.clear()
        for name in ("seeded", "again"):
            p = loadtest(url + "/v1", tmp / name, "--concurrency", "1,2", "--num-requests", "5", "--input-len", "20",
                         "--output-len", "2", "--seed", "7")
            assert p.returncode == 0, p.stderr
        first, second = prompts_of(standin.bodies[:10]), prompts_of(standin.bodies[10:])
        assert sorted(first) == sorted(second) and len(set(first)) == 10
    # the rerun met a warm prefix cache: the server says so, and so do we
    assert "warning: the server's prefix cache served 100% of prompt tokens" in p.stderr
    again = all_records(tmp / "again")
    assert all(r["metrics"]["server"]["prefix_cache_hit_rate"] == 1.0 for r in again)
    assert any("warning: the server's prefix cache" in n for n in again[0]["notes"])


def test_shared_prefixes_are_the_groups_asked_for():
    p = Prompts("completions", salt=11, input_len=24, output_len=4, prefix=SharedPrefix(8, 3))
    texts = [p.request(step, i).text.split() for step in (1, 2) for i in range(40)]
    assert all(len(t) == 24 for t in texts)
    heads = {" ".join(t[:8]) for t in texts}
    assert len(heads) == 3
    assert len({" ".join(t[8:]) for t in texts}) == 80    # the rest of each prompt is its own
    chat = Prompts("chat", salt=11, input_len=24, output_len=4, prefix=SharedPrefix(8, 3))
    assert {" ".join(chat.request(1, i).messages[0]["content"].split()[:8]) for i in range(40)} == heads


def test_shared_prefix_hits_are_expected_and_not_warned_about(tmp: Path):
    standin = StandIn("vllm")
    with serving(standin.app()) as url:
        p = loadtest(url + "/v1", tmp / "r", "--num-requests", "12", "--input-len", "24", "--output-len", "2",
                     "--shared-prefix-len", "8", "--prefix-groups", "2", "--seed", "5")
    assert p.returncode == 0, p.stderr
    [r] = read_records(tmp / "r")
    heads = {" ".join(t.split()[:8]) for t in prompts_of(standin.bodies)}
    assert len(heads) == 2
    rate = r["metrics"]["server"]["prefix_cache_hit_rate"]
    assert 0 < rate <= 8 / 24 and "warning" not in p.stderr
    assert r["spec"]["prompts"] == {"kind": "random", "words": 24, "salt": 5, "shared_prefix_len": 8,
                                    "prefix_groups": 2}


def test_length_distributions_and_files(tmp: Path):
    for name, source in (("azure-conv-2023", "AzurePublicDataset"), ("sharegpt-opt-2023", "sosp-ae-astra")):
        d = distributions()[name]
        p = Prompts("completions", salt=1, distribution=d)
        drawn = np.array([(len(r.text.split()), r.output_len) for r in (p.request(1, i) for i in range(2000))])
        assert abs(np.median(drawn[:, 0]) / d.input_median - 1) < 0.1
        assert abs(np.median(drawn[:, 1]) / d.output_median - 1) < 0.1
        assert drawn[:, 0].max() <= d.input_max and drawn[:, 1].max() <= d.output_max
        assert source in d.source

    (tmp / "lens.csv").write_text("input_len,output_len\n7,3\n9,4\n")
    standin = StandIn("vllm")
    with serving(standin.app()) as url:
        p = loadtest(url + "/v1", tmp / "r", "--num-requests", "6", "--dataset", str(tmp / "lens.csv"))
        assert p.returncode == 0, p.stderr
        bad = tmp / "bad.csv"
        bad.write_text("input_len,outputlen\n7,3\n")
        assert_one_line_error(loadtest(url + "/v1", tmp / "r2", "--dataset", str(bad)),
                              "unknown CSV column 'outputlen' (did you mean 'output_len'?)")
        assert_one_line_error(loadtest(url + "/v1", tmp / "r2", "--lengths", "sharegpt"),
                              "--lengths sharegpt: no such distribution (did you mean 'sharegpt-opt-2023'?)")
        lens_bodies = list(standin.bodies)
        # seed 196 draws a short answer (62 or 66 tokens) for the first request: a quick run
        p = loadtest(url + "/v1", tmp / "s", "--num-requests", "1", "--lengths", "sharegpt-opt-2023", "--seed", "196")
        assert p.returncode == 0, p.stderr
        assert standin.bodies[-1]["max_tokens"] in (62, 66)
    [r] = read_records(tmp / "r")
    assert {len(t.split()) for t in prompts_of(lens_bodies)} <= {7, 9}
    assert {b["max_tokens"] for b in lens_bodies} <= {3, 4}
    src = r["spec"]["prompts"]
    assert src["kind"] == "lengths file" and src["lines"] == 2 and len(src["sha256"]) == 64
    [s] = read_records(tmp / "s")
    assert s["spec"]["prompts"]["name"] == "sharegpt-opt-2023" and s["spec"]["prompts"]["kind"] == "lengths"


def test_varying_lengths_are_recorded_as_varying(tmp: Path):
    """A lengths file asks each request for its line's lengths, yet the record said output_len 128
    (the unused --output-len default); a prompts file whose lines carry their own output_len too."""
    (tmp / "lens.csv").write_text("input_len,output_len\n7,3\n9,4\n")
    (tmp / "p.jsonl").write_text('{"prompt": "a b c", "output_len": 2}\n{"prompt": "d e"}\n')
    standin = StandIn("vllm")
    with serving(standin.app()) as url:
        for data, out in (("lens.csv", "r"), ("p.jsonl", "p")):
            p = loadtest(url + "/v1", tmp / out, "--num-requests", "6", "--dataset", str(tmp / data))
            assert p.returncode == 0, p.stderr
    lens, prompts = read_records(tmp / "r")[0], read_records(tmp / "p")[0]
    assert lens["cell"]["output_len"] is None and lens["spec"]["output_len"] is None
    assert prompts["cell"]["output_len"] is None  # 2 for one line, the default 128 for the other


def test_calibrate_takes_the_lengths_the_server_counted(tmp: Path):
    """calibrate took a point without fixed lengths (a lengths file, --lengths) as 1024 tokens in and
    256 out, silently, though the server counted every prompt and output token of it."""
    from infra_bench.planner.measurements import endpoint_measurements
    from infra_bench.planner.profiles import load_hardware

    (tmp / "lens.csv").write_text("input_len,output_len\n7,3\n9,4\n")
    standin = StandIn("vllm")
    with serving(standin.app()) as url:
        p = run_cli("loadtest", "--endpoint", url + "/v1", "--model", "llama-3.1-8b", "--warmup", "0",
                    "--num-requests", "6", "--dataset", str(tmp / "lens.csv"), "--hardware", "nv_h100_sxm",
                    "--engine", "vllm 0.8.5", "--out", str(tmp / "r"), cwd=tmp, timeout=120)
    assert p.returncode == 0, p.stderr
    asked = [(len(b["prompt"].split()), b["max_tokens"]) for b in standin.bodies]
    [m], skipped = endpoint_measurements(read_records(tmp / "r"), load_hardware())
    assert not skipped and "tokens assumed" not in m.note
    assert m.input_len == pytest.approx(np.mean([i for i, _ in asked]))
    assert m.output_len == pytest.approx(np.mean([o for _, o in asked]))


def test_one_failed_scrape_loses_one_point_of_server_metrics_not_the_rest(tmp: Path):
    """A /metrics that failed once (a busy server's scrape timing out) was taken for a server with no
    metrics: every later point of the run recorded none, and said 'none read'."""
    standin, calls = StandIn("vllm"), {"n": 0}

    async def blip(request):
        calls["n"] += 1
        if calls["n"] == 2:  # the scrape after the first point (each point is too short to be polled)
            return web.Response(status=503, text="busy")
        return await standin.metrics(request)
    app = web.Application()
    app.add_routes([web.get("/v1/models", standin.models), web.get("/metrics", blip),
                    web.post("/v1/completions", standin.openai)])
    with serving(app) as url:
        p = loadtest(url + "/v1", tmp / "r", "--concurrency", "1,1", "--num-requests", "2", "--output-len", "2")
    assert p.returncode == 0, p.stderr
    first, second = sorted(all_records(tmp / "r"), key=lambda r: r["settings"]["step"])
    assert first["metrics"]["server"] is None
    assert any("lost for this point, a scrape around it failed" in n and "HTTP 503" in n for n in first["notes"])
    assert second["metrics"]["server"]["generation_tokens"] == 4
    assert not any("server metrics" in n for n in second["notes"]) and "none read" not in p.stdout


def test_dataset_prompts_continue_across_points_and_say_when_they_repeat(tmp: Path):
    data = tmp / "d.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"line {i} text"}) + "\n" for i in range(6)))
    standin = StandIn("vllm")
    with serving(standin.app()) as url:
        p = loadtest(url + "/v1", tmp / "r", "--concurrency", "1,1", "--num-requests", "4", "--dataset", str(data),
                     "--output-len", "2")
    assert p.returncode == 0, p.stderr
    got = prompts_of(standin.bodies)
    assert got == [f"line {i} text" for i in (0, 1, 2, 3, 4, 5, 0, 1)]
    first, second = sorted(all_records(tmp / "r"), key=lambda r: r["settings"]["step"])
    assert not any("reused" in n for n in first["notes"])
    assert any("dataset prompts reused: 8 requests so far from 6 lines" in n for n in second["notes"])


def test_the_first_warm_up_has_the_longest_shape_repeats_no_request_and_is_in_no_metric(tmp: Path):
    """The first warm-up request is as long as the test's longest (so a server refusing that length stops the run),
    the others short; none shares a prefix-cache block with a request of the points, and none is counted in a
    point, the server's counters included. A dataset's longest prompt is sent with its first word moved to the end."""
    data = tmp / "d.jsonl"
    data.write_text("".join(json.dumps(d) + "\n" for d in [
        {"prompt": "alpha beta gamma delta"}, {"prompt": "eta theta iota kappa lambda mu nu xi", "output_len": 5},
        {"prompt": "omicron pi rho sigma tau"}]))
    standin = StandIn("vllm")
    with serving(standin.app()) as url:
        p = loadtest(url + "/v1", tmp / "r", "--warmup", "2", "--num-requests", "3", "--input-len", "40",
                     "--output-len", "3", "--seed", "3")
        assert p.returncode == 0, p.stderr
        warm, sent = standin.bodies[:2], standin.bodies[2:]
        standin.bodies.clear()
        d = loadtest(url + "/v1", tmp / "d", "--num-requests", "3", "--dataset", str(data), "--output-len", "2",
                     "--warmup", "1")
        assert d.returncode == 0, d.stderr
    assert [len(t.split()) for t in prompts_of(warm)] == [40, 32] and [b["max_tokens"] for b in warm] == [3, 3]
    block = {" ".join(t.split()[:4]) for t in prompts_of(sent)}   # the stand-in caches blocks of 4 words
    assert len(sent) == 3 and not block & {" ".join(t.split()[:4]) for t in prompts_of(warm)}
    for out, tokens in ((tmp / "r", 3 * 40), (tmp / "d", 4 + 8 + 5)):
        [r] = all_records(out)
        m, server = r["metrics"], r["metrics"]["server"]
        assert m["sent"] == 3 and m["input_tokens"] == server["prompt_tokens"] == tokens
        assert server["prefix_cache_hit_rate"] == 0.0
    assert standin.bodies[0]["prompt"] == "theta iota kappa lambda mu nu xi eta" and standin.bodies[0]["max_tokens"] == 5
    assert prompts_of(standin.bodies[1:]) == ["alpha beta gamma delta", "eta theta iota kappa lambda mu nu xi",
                                              "omicron pi rho sigma tau"]


def test_server_metrics_are_the_deltas_of_each_point(tmp: Path):
    standin = StandIn("vllm")
    with serving(standin.app()) as url:
        p = loadtest(url + "/v1", tmp / "r", "--concurrency", "1,2", "--num-requests", "6", "--input-len", "10",
                     "--output-len", "4")
    assert p.returncode == 0, p.stderr
    for r in all_records(tmp / "r"):
        s, m = r["metrics"]["server"], r["metrics"]
        assert s["prefix_cache_queries"] == s["prompt_tokens"] == m["input_tokens"] == 60
        assert s["generation_tokens"] == m["output_tokens"] == 24
        assert s["ttft_s"]["count"] == s["e2e_s"]["count"] == 6 and s["itl_s"]["count"] == 18
        assert 0 < s["ttft_s"]["mean"] <= s["e2e_s"]["mean"]
        assert s["names"]["itl_s"] == "vllm:inter_token_latency_seconds"
        assert r["settings"]["metrics_url"] == url + "/metrics"


def test_without_metrics_the_record_says_none_were_read(tmp: Path):
    from aiohttp import web

    standin = StandIn("vllm")
    app = web.Application()
    app.add_routes([web.post("/v1/completions", standin.openai)])
    with serving(app) as url:
        p = loadtest(url + "/v1", tmp / "r", "--num-requests", "2", "--output-len", "2")
        assert p.returncode == 0, p.stderr
        off = loadtest(url + "/v1", tmp / "off", "--num-requests", "2", "--output-len", "2", "--metrics-url", "none")
    [r] = read_records(tmp / "r")
    assert r["metrics"]["server"] is None
    assert f"server metrics: none read (GET {url}/metrics: HTTP 404)" in r["notes"]
    [r] = read_records(tmp / "off")
    assert "server metrics: not read (--metrics-url none)" in r["notes"] and off.returncode == 0


def test_prometheus_parsing_and_histogram_quantiles():
    from prometheus_client import CollectorRegistry, Histogram, generate_latest

    reg = CollectorRegistry()
    h = Histogram("vllm:time_to_first_token_seconds", "t", ["model_name", "engine"], buckets=(0.1, 0.2, 0.4),
                  registry=reg)
    before = parse(generate_latest(reg).decode())
    for v, engine in ((0.05, "0"), (0.15, "1"), (0.15, "0"), (0.3, "1")):
        h.labels("m", engine).observe(v)
    after = parse(generate_latest(reg).decode())
    s = PointWatch(before).summary(after)["ttft_s"]
    assert s["count"] == 4 and math.isclose(s["mean"], 0.1625)
    assert math.isclose(s["p50"], 0.15)      # 2nd of 4 falls half way into (0.1, 0.2]
    assert s["p50_bucket"] == [0.1, 0.2] and s["p99_bucket"] == [0.2, 0.4]
    assert bucket(1.0, {0.1: 1, math.inf: 2}) == [0.1, None]
    assert math.isclose(quantile(1.0, {0.1: 1, 0.2: 3, 0.4: 4, math.inf: 4}), 0.4)
    assert quantile(0.5, {0.1: 0, math.inf: 0}) is None
    with pytest.raises(Exception, match="not a Prometheus"):
        parse("<html>not metrics</html>")


def test_tokenizer_counts_output_the_server_did_not(tmp: Path):
    """A server without usage whose chunks carry two words each: chunks under-count, the local
    tokenizer (a word-level one saved offline) counts exactly."""
    from aiohttp import web
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]").save_pretrained(tmp / "tok")

    async def two_words(request):
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for i, finish in ((0, None), (1, None), (2, "length")):
            chunk = {"choices": [{"index": 0, "text": f" a{i} b{i}", "finish_reason": finish}]}
            await resp.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
        await resp.write(b"data: [DONE]\n\n")
        return resp
    app = web.Application()
    app.add_routes([web.post("/v1/completions", two_words)])
    with serving(app) as url:
        plain = loadtest(url + "/v1", tmp / "plain", "--num-requests", "2", "--metrics-url", "none")
        exact = loadtest(url + "/v1", tmp / "exact", "--num-requests", "2", "--metrics-url", "none",
                         "--tokenizer", str(tmp / "tok"))
        assert_one_line_error(loadtest(url + "/v1", tmp / "x", "--tokenizer", str(tmp / "nope")),
                              f"--tokenizer {tmp / 'nope'}: not a folder")
    assert plain.returncode == 0 and exact.returncode == 0, plain.stderr + exact.stderr
    [p], [e] = read_records(tmp / "plain"), read_records(tmp / "exact")
    assert (p["metrics"]["output_tokens"], p["metrics"]["output_tokens_source"]) == (6, "chunks")
    assert any("estimated" in n for n in p["notes"])
    assert (e["metrics"]["output_tokens"], e["metrics"]["output_tokens_source"]) == (12, "tokenizer")
    # under the table too: its out tok/s and TPOT rest on the estimate (the note was in the record only)
    said = "note: output tokens: estimated for requests without usage, by counting streamed chunks"
    assert said in plain.stdout and said not in exact.stdout


def test_a_connection_reset_mid_stream_is_a_disconnect_and_fails_the_run(tmp: Path):
    from aiohttp import web

    async def reset(request):
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for i in range(2):
            chunk = {"choices": [{"index": 0, "text": f" t{i}", "finish_reason": None}]}
            await resp.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
        await asyncio.sleep(0.05)
        sock = request.transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        request.transport.abort()   # RST, as a killed server's kernel sends
        return resp
    app = web.Application()
    app.add_routes([web.post("/v1/completions", reset)])
    with serving(app) as url:
        p = loadtest(url + "/v1", tmp / "r", "--num-requests", "3", "--metrics-url", "none")
    assert_one_line_error(p, "every request failed (3 sent at conc 1); most common error: server disconnected "
                             "after 2 chunks", code=1)
    [r] = read_records(tmp / "r")
    assert all(s["error"].startswith("server disconnected after 2 chunks") for s in r["samples"])


async def _overloaded(stop: bool):
    """An open-loop point against a server that answers its first 10 requests at once and then
    nothing until t = 6 s: the queue grows all through the first 5 s."""
    t0 = asyncio.get_running_loop().time()

    async def send(index: int, out: Outcome) -> Outcome:
        await asyncio.sleep(0.001 if index < 10 else max(0.0, 6.0 - (asyncio.get_running_loop().time() - t0)))
        out.ok, out.elapsed_s = True, 0.0
        return out
    return await run_point(LoadPoint(rate=30.0), Budget(180), send, seed=1, stop_when_saturated=stop)


def test_the_saturation_check_stops_a_point_only_when_asked():
    kept = asyncio.run(_overloaded(stop=False))
    assert kept.saturated and not kept.stopped_early and len(kept.outcomes) == 180
    assert all(o.ok for o in kept.outcomes) and "finished" in kept.saturation
    stopped = asyncio.run(_overloaded(stop=True))
    assert stopped.saturated and stopped.stopped_early and len(stopped.outcomes) < 180
    assert any(o.cancelled for o in stopped.outcomes)


def test_fixed_points_keep_sending_and_sweeps_stop_by_default(tmp: Path):
    standin = StandIn("vllm")
    with serving(standin.app()) as url:
        fixed = loadtest(url + "/v1", tmp / "f", "--rate", "50", "--num-requests", "3", "--output-len", "2")
        sweep = loadtest(url + "/v1", tmp / "s", "--rate", "50", "--sweep", "--max-points", "1", "--num-requests",
                         "3", "--output-len", "2")
        forced = loadtest(url + "/v1", tmp / "n", "--rate", "50", "--sweep", "--max-points", "1", "--num-requests",
                          "3", "--output-len", "2", "--no-saturation-stop")
    assert fixed.returncode == sweep.returncode == forced.returncode == 0
    assert [read_records(tmp / d)[0]["settings"]["saturation_stop"] for d in "fsn"] == [False, True, False]
    assert "seed:" in fixed.stdout


def test_bad_prompt_options_are_one_line(tmp: Path):
    cases = [
        (("--input-len", "8", "--lengths", "azure-conv-2023"), "--input-len and --lengths both set"),
        (("--prefix-groups", "2"), "--prefix-groups counts shared prefixes; add --shared-prefix-len N"),
        (("--shared-prefix-len", "8", "--input-len", "8"), "--shared-prefix-len 8 must be below --input-len 8"),
        (("--lengths", "azure-conv-2023", "--output-len", "4"), "--lengths draws output lengths too"),
        (("--api", "speech", "--shared-prefix-len", "4"), "--shared-prefix-len applies to the chat and completions"),
        (("--max-failure-rate", "2"), "--max-failure-rate"),
        # a file of prompts: neither option applies, so the hint must not send the user to the other one
        (("--dataset", "prompts.jsonl", "--prefix-groups", "2"),
         "a --dataset of prompts brings its own text, so drop --prefix-groups"),
        (("--dataset", "lengths.jsonl", "--prefix-groups", "2"),
         "--prefix-groups counts shared prefixes; add --shared-prefix-len N"),
    ]
    (tmp / "prompts.jsonl").write_text('{"prompt": "hello there"}\n')
    (tmp / "lengths.jsonl").write_text('{"input_len": 16, "output_len": 4}\n')
    for args, fragment in cases:
        p = run_cli("loadtest", "--endpoint", "http://127.0.0.1:1/v1", "--model", "m", *args, cwd=tmp)
        assert_one_line_error(p, fragment)


def test_calibrate_assumes_the_precision_a_model_is_published_in(tmp: Path):
    """A vLLM server does not report its precision, and one serving gpt-oss-120b runs its MXFP4 checkpoint as
    published: an unlabelled point of it is read as int4 on an H100, not bf16 (the assumption until 2026-12-07,
    which calibrated a 16-bit category from a 4-bit run), and the note says what was assumed."""
    from infra_bench.planner.measurements import endpoint_measurements
    from infra_bench.planner.profiles import load_hardware

    with serving(StandIn("vllm").app()) as url:
        p = run_cli("loadtest", "--endpoint", url + "/v1", "--model", "gpt-oss-120b", "--warmup", "0",
                    "--num-requests", "4", "--hardware", "nv_h100_sxm", "--engine", "vllm", "--out", str(tmp / "r"),
                    cwd=tmp, timeout=120)
    assert p.returncode == 0, p.stderr
    [m], skipped = endpoint_measurements(read_records(tmp / "r"), load_hardware())
    assert not skipped and m.precision == "int4" and m.note.startswith("int4 and TP 1 assumed")
