"""`infra-bench loadtest`: against `infra-bench serve` (real processes), against a deliberately
misbehaving local server (one route per fault), and the arithmetic behind the numbers."""
from __future__ import annotations

import asyncio
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import assert_one_line_error, read_records, run_cli

web = pytest.importorskip("aiohttp.web")

ROOT = Path(__file__).resolve().parents[1]


# --- a server that misbehaves on purpose: http://127.0.0.1:PORT/<fault>/v1/... -------------------

def _chunk(text: str, finish: str | None = None) -> bytes:
    return b"data: " + json.dumps({"choices": [{"index": 0, "text": text, "finish_reason": finish}]}).encode() + b"\n\n"


async def _sse(request, chunks: list[bytes], tail: str = "done", gap: float = 0.0):
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    for c in chunks:
        await resp.write(c)
        if gap:
            await asyncio.sleep(gap)
    if tail == "done":
        await resp.write(b"data: [DONE]\n\n")
    elif tail == "stall":
        await asyncio.sleep(3600)
    elif tail == "drip":
        while True:
            await resp.write(_chunk("x"))
            await asyncio.sleep(0.2)
    return resp


def _fault_app():
    flaky = {"n": 0}

    async def handle(request):
        fault = request.match_info["fault"]
        if fault == "ok":
            return await _sse(request, [_chunk(" a"), _chunk(" b"), _chunk(" c", "length")])
        if fault == "e500":
            return web.json_response({"error": {"message": "boom: engine crashed"}}, status=500)
        if fault == "e404":
            return web.json_response({"object": "error", "message": "The model `m` does not exist."}, status=404)
        if fault == "e401":
            if request.headers.get("Authorization") == "Bearer sekret-key-123":
                return await _sse(request, [_chunk(" a"), _chunk(" b", "length")])
            return web.json_response({"error": {"message": "invalid api key"}}, status=401)
        if fault == "json":
            return web.json_response({"choices": [{"text": "whole answer", "finish_reason": "length"}]})
        if fault == "malformed":
            return await _sse(request, [_chunk(" a"), b"this is not an SSE line\n\n"])
        if fault == "notjson":
            return await _sse(request, [_chunk(" a"), b"data: {not json\n\n"])
        if fault == "stall":
            return await _sse(request, [_chunk(" a"), _chunk(" b")], tail="stall")
        if fault == "silent":
            await asyncio.sleep(3600)
        if fault == "queued":  # headers at once, then nothing: an engine holding the request in its queue
            return await _sse(request, [], tail="stall")
        if fault == "drip":
            return await _sse(request, [], tail="drip")
        if fault == "truncated":
            return await _sse(request, [_chunk(" a"), _chunk(" b")], tail="eof")
        if fault == "e429":  # a rate limiter: every other request, from the first
            flaky["limited"] = flaky.get("limited", 0) + 1
            if flaky["limited"] % 2:
                return web.json_response({"error": {"message": "rate limited"}}, status=429,
                                         headers={"Retry-After": "1"})
            return await _sse(request, [_chunk(" a"), _chunk(" b", "length")])
        if fault == "context":  # SGLang's way: a prompt over its context length is refused in a stream begun
            words = len((await request.json())["prompt"].split())
            if words > 64:
                error = {"object": "error", "message": f"The input ({words} tokens) is longer than the model's "
                                                       f"context length (64 tokens).", "type": "BadRequestError",
                         "param": None, "code": 400}
                return await _sse(request, [b"data: " + json.dumps({"error": error}).encode() + b"\n\n"])
            return await _sse(request, [_chunk(" a"), _chunk(" b", "length")])
        if fault == "cold":  # the first long prompt takes longer than the client waits (compiling its shape)
            if len((await request.json())["prompt"].split()) > 64 and not flaky.get("warm"):
                flaky["warm"] = True
                await asyncio.sleep(3600)
            return await _sse(request, [_chunk(" a"), _chunk(" b", "length")])
        if fault == "flaky":
            flaky["n"] += 1
            if flaky["n"] % 2:
                return web.json_response({"error": {"message": "overloaded"}}, status=503)
            return await _sse(request, [_chunk(" a"), _chunk(" b", "length")])
        raise web.HTTPNotFound()

    async def models(request):
        card = {"id": "m", "object": "model"} | ({"max_model_len": 4096} if request.match_info["fault"] == "ok" else {})
        return web.json_response({"object": "list", "data": [card]})

    app = web.Application()
    app.add_routes([web.get("/{fault}/v1/models", models), web.post("/{fault}/v1/completions", handle)])
    return app


@pytest.fixture(scope="module")
def faults():
    """The misbehaving server on a thread of its own; yields its base URL."""
    from tests.standins import serving

    with serving(_fault_app()) as url:
        yield url


# --- infra-bench serve, started once for this module ---------------------------------------------

def start_server(*args: str, cwd: Path, env: dict | None = None) -> tuple[subprocess.Popen, str]:
    """`infra-bench serve ... --port 0` in its own process; returns it and its /v1 URL."""
    proc = subprocess.Popen([sys.executable, "-m", "infra_bench", "serve", "--port", "0", *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})
    deadline = time.monotonic() + 120
    for line in proc.stdout:
        m = re.search(r"at (http://\S+/v1)", line)
        if m:
            return proc, m.group(1)
        if time.monotonic() > deadline:
            break
    proc.kill()
    raise AssertionError(f"serve did not start: {proc.stderr.read()}")


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    proc, url = start_server("--arch", "llama-tiny", cwd=tmp_path_factory.mktemp("serve"))
    yield url
    stop_server(proc)


def loadtest(url: str, out: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return run_cli("loadtest", "--endpoint", url, "--out", str(out), *args, cwd=out.parent, timeout=timeout)


# --- end to end against infra-bench serve -------------------------------------------------------

def test_chat_at_a_rate_against_serve(llama, tmp: Path):
    p = loadtest(llama, tmp / "r", "--model", "llama-tiny", "--api", "chat", "--rate", "20", "--num-requests", "12",
                 "--input-len", "24", "--output-len", "8")
    assert p.returncode == 0, p.stderr
    assert "TTFT p50 ms" in p.stdout and "rate 20" in p.stdout
    [r] = read_records(tmp / "r")
    m = r["metrics"]
    assert r["kind"] == "endpoint" and r["status"] == "ok" and r["cell"]["load"] == "rate"
    assert m["sent"] == m["completed"] == 12 and m["failed"] == 0
    assert m["output_tokens"] == 12 * 8 and m["output_tokens_source"] == "usage"
    assert m["input_tokens"] == 12 * 24  # serve counts one token per word, the prompts are 24 words
    assert r["model"]["weights"] == "random" and any("random" in n for n in r["notes"])
    assert r["backend"]["url"].endswith("/v1/chat/completions")
    for s in r["samples"]:
        assert s["error"] is None and s["output_tokens"] == 8 and len(s["itl_s"]) == 7
        assert 0 < s["ttft_s"] <= s["e2e_s"]
        assert s["tpot_s"] == pytest.approx((s["e2e_s"] - s["ttft_s"]) / 7)
    assert m["requests_per_s"] == pytest.approx(12 / m["duration_s"])
    assert m["output_tokens_per_s"] == pytest.approx(96 / m["duration_s"])
    assert m["ttft_s"]["n"] == 12 and m["itl_s"]["n"] == 12 * 7


def test_closed_loop_concurrency_list_with_a_dataset(llama, tmp: Path):
    data = tmp / "prompts.jsonl"
    data.write_text("\n".join(json.dumps(d) for d in [
        {"prompt": "one two three", "output_len": 3}, {"prompt": "four five six seven", "output_len": 5},
        {"prompt": "eight nine", "output_len": 2}]) + "\n")
    p = loadtest(llama, tmp / "r", "--model", "llama-tiny", "--concurrency", "1,3", "--num-requests", "6",
                 "--dataset", str(data), "--json")
    assert p.returncode == 0, p.stderr
    recs = json.loads(p.stdout)
    assert [r["cell"]["concurrency"] for r in recs] == [1, 3] and len(read_records(tmp / "r")) == 2
    assert recs[0]["metrics"]["max_in_flight"] == 1 and recs[1]["metrics"]["max_in_flight"] <= 3
    for r in recs:
        assert r["settings"]["scenario"] == "closed-loop" and r["spec"]["api"] == "completions"
        # requests cycle through the file in order; serve honours max_tokens exactly
        assert sorted(s["output_tokens"] for s in r["samples"]) == [2, 2, 3, 3, 5, 5]
        assert sorted(s["input_tokens"] for s in r["samples"]) == [2, 2, 3, 3, 4, 4]


def test_slo_search_and_sweep_against_serve(llama, tmp: Path):
    common = ("--model", "llama-tiny", "--num-requests", "4", "--input-len", "8", "--output-len", "4")
    p = loadtest(llama, tmp / "a", *common, "--search", "--slo", "ttft_p99=30,e2e_p99=30", "--max-points", "3")
    assert p.returncode == 0, p.stderr
    assert "highest concurrency meeting the SLO: 4 in flight" in p.stdout
    recs = read_records(tmp / "a")
    assert [r["cell"]["concurrency"] for r in recs] == [1, 2, 4]
    assert all(r["metrics"]["slo_met"] and r["metrics"]["good_requests"] == 4 for r in recs)
    assert all(r["metrics"]["goodput"] == pytest.approx(4 / r["metrics"]["duration_s"]) for r in recs)
    p = loadtest(llama, tmp / "b", *common, "--search", "--slo", "ttft_p50=0.01ms")
    assert p.returncode == 0 and "meeting the SLO: none of the points tried" in p.stdout, p.stdout + p.stderr
    [r] = read_records(tmp / "b")
    assert r["metrics"]["slo_met"] is False and r["metrics"]["goodput"] == 0
    p = loadtest(llama, tmp / "c", *common, "--sweep", "--max-points", "3")
    assert p.returncode == 0, p.stderr
    assert "sweep: stopped:" in p.stdout and 1 <= len(read_records(tmp / "c")) <= 3


# --- faults: bounded time, a clear error, counted ------------------------------------------------

FAULTS = [
    ("e500", "HTTP 500: boom: engine crashed"),
    ("e404", "HTTP 404: The model `m` does not exist."),
    ("e401", "HTTP 401: invalid api key"),
    ("json", "not an event stream: the server answered application/json"),
    ("malformed", "malformed SSE line: 'this is not an SSE line'"),
    ("notjson", "malformed SSE data: not JSON"),
    ("stall", "stalled: no data for 1 s after 2 chunks (--stall-timeout)"),
    ("silent", "stalled: no data for 1 s before any response (--stall-timeout)"),
    ("queued", "stalled: no data for 1 s after the response headers, before any data (--stall-timeout)"),
    ("truncated", "stream ended before its end marker"),
]


@pytest.mark.parametrize("fault,fragment", FAULTS, ids=[f for f, _ in FAULTS])
def test_each_fault_is_counted_with_its_error_in_bounded_time(faults, tmp: Path, fault: str, fragment: str):
    t0 = time.monotonic()
    p = loadtest(f"{faults}/{fault}/v1", tmp / "r", "--model", "m", "--concurrency", "3", "--num-requests", "3",
                 "--warmup", "0", "--timeout", "5", "--stall-timeout", "1", "--output-len", "4", timeout=60)
    assert time.monotonic() - t0 < 15
    assert_one_line_error(p, "every request failed (3 sent at conc 3)", code=1)
    assert fragment in p.stderr
    [r] = read_records(tmp / "r")
    assert r["status"] == "failed" and fragment in r["error"]
    assert r["metrics"]["failed"] == 3 and r["metrics"]["errors"] == {r["samples"][0]["error"]: 3}
    assert fragment in r["samples"][0]["error"]


def test_a_refused_warm_up_stops_before_anything_is_recorded(faults, tmp: Path):
    """A server that refuses every warm-up request (HTTP 4xx: wrong model, API or sizes) would refuse the load too:
    one line naming the error, exit 2, and no run folder (it recorded a point of failures)."""
    p = loadtest(f"{faults}/e404/v1", tmp / "r", "--model", "m", "--num-requests", "3", "--warmup", "2")
    assert_one_line_error(p, f"every warm-up request was refused: POST {faults}/e404/v1/completions answered HTTP "
                             f"404: The model `m` does not exist.;")
    assert not (tmp / "r").exists() or not any((tmp / "r").iterdir())
    assert_one_line_error(loadtest(f"{faults}/ok/v1", tmp / "s", "--api", "images", "--model", "m", "--size", "abc"),
                          "--size abc: expected WIDTHxHEIGHT")
    long = loadtest(f"{faults}/ok/v1", tmp / "t", "--model", "m", "--num-requests", "1", "--warmup", "1",
                    "--input-len", "4000", "--output-len", "200")  # a warm-up of that shape went through: taken
    assert long.returncode == 0 and "max_model_len" not in long.stderr, long.stderr


def test_a_404_names_the_url_it_asked_and_where_the_api_is(llama, tmp: Path):
    """`--endpoint .../v1/chat/completion` (one letter short) is taken as a base URL and the completions path put
    after it: every request got a 404, and the error said 'HTTP 404: 404: Not Found; fix the request (model name,
    API, lengths or sizes)', the URL asked nowhere. Now it names that URL and the base and API URLs to give
    instead, with warm-up requests (exit 2, nothing recorded) or without (exit 1, the failed point kept); a model
    the server does not list is still named as the thing to fix."""
    root = llama.removesuffix("/v1")
    asked = f"POST {llama}/chat/completion/v1/completions answered HTTP 404: 404: Not Found; point --endpoint at "
    fix = (f"the server's base URL ({llama}) or at the API's own URL ({root}/v1/completions, or "
           f"{root}/v1/chat/completions with --api chat), or fix --model if the server does not serve it")
    p = loadtest(f"{llama}/chat/completion", tmp / "r", "--model", "llama-tiny", "--num-requests", "2")
    assert_one_line_error(p, f"every warm-up request was refused: {asked}{fix}; nothing was recorded")
    assert not (tmp / "r").exists()
    p = loadtest(f"{llama}/chat/completion", tmp / "w", "--model", "llama-tiny", "--num-requests", "2",
                 "--warmup", "0", "--metrics-url", "none")
    assert_one_line_error(p, f"every request failed (2 sent at conc 1): {asked}{fix}; records kept in ", code=1)
    p = loadtest(llama, tmp / "m", "--model", "nosuch", "--num-requests", "2")
    assert p.returncode == 2 and p.stderr.startswith("warning: the server lists llama-tiny; 'nosuch' is not among")
    assert p.stderr.strip().splitlines()[-1].startswith("error: every warm-up request was refused (HTTP 404: model "
                                                        "'nosuch' is not served here; served: llama-tiny); fix the")


def test_a_prompt_longer_than_the_server_takes_stops_at_the_warm_up(llama, faults, tmp: Path):
    """The warm-up was up to 32 words, so a prompt over the server's limit passed it and every request of the
    points failed (exit 1, a folder of failed points). The first warm-up request now has the test's shape: the
    server's own refusal, what to change, exit 2 and no run folder. SGLang refuses in a stream already begun
    (an error event with code 400), which counts as a refusal too."""
    p = loadtest(llama, tmp / "r", "--model", "llama-tiny", "--input-len", "2100", "--output-len", "4",
                 "--num-requests", "2")
    assert_one_line_error(p, "the server refused the first warm-up request, which has the test's longest shape "
                             "(2100 input words, 4 output tokens), but not a short one: HTTP 400: prompt (2100 "
                             "tokens) + max_tokens (4) exceeds the model's 2048 positions; lower --input-len or "
                             "--output-len, or raise the server's limit; nothing was recorded")
    assert not (tmp / "r").exists()
    # with no warm-up the server's card (max_model_len) tells it: the same refusal before any request, where every
    # request was sent to fail after a warning (exit 1, a folder of failed points)
    p = loadtest(llama, tmp / "w", "--model", "llama-tiny", "--input-len", "2100", "--output-len", "4",
                 "--num-requests", "2", "--warmup", "0")
    assert_one_line_error(p, "the test's longest shape (2100 input words, 4 output tokens) exceeds the server's "
                             "max_model_len 2048 for llama-tiny (a word is at least one token), so the server would "
                             "refuse it; lower --input-len or --output-len, or raise the server's limit; nothing was sent")
    assert not (tmp / "w").exists()
    p = loadtest(f"{faults}/context/v1", tmp / "s", "--model", "m", "--input-len", "100", "--output-len", "2",
                 "--num-requests", "2", "--warmup", "2")
    assert_one_line_error(p, "(100 input words, 2 output tokens), but not a short one: error event in stream: The "
                             "input (100 tokens) is longer than the model's context length (64 tokens).; lower")
    assert not (tmp / "s").exists()


def test_a_slow_first_warm_up_is_not_a_refusal(faults, tmp: Path):
    """A server that takes longer than --timeout over the long first warm-up request (compiling, loading) has
    refused nothing: the failure is noted and the points are measured."""
    p = loadtest(f"{faults}/cold/v1", tmp / "r", "--model", "m", "--input-len", "100", "--output-len", "2",
                 "--num-requests", "2", "--timeout", "3", "--metrics-url", "none")
    assert p.returncode == 0, p.stderr
    assert re.search(r"note: 1 warm-up request\(s\) failed: (timed out|stalled)", p.stdout), p.stdout
    [r] = read_records(tmp / "r")
    assert r["metrics"]["completed"] == 2 and r["settings"]["warmup"] == 1


def test_a_rate_limited_warm_up_is_load_to_measure_not_a_request_to_fix(faults, tmp: Path):
    """HTTP 429 to the one warm-up request stopped the run with exit 2 and 'fix the request (model name,
    API, lengths or sizes)'; the server was only rate-limiting, which is what the load test measures."""
    p = loadtest(f"{faults}/e429/v1", tmp / "r", "--model", "m", "--num-requests", "4", "--warmup", "1",
                 "--output-len", "2")
    assert_one_line_error(p, "2 of 4 requests failed at conc 1 (50%, above --max-failure-rate 0.05); most common "
                             "error: HTTP 429: rate limited", code=1)
    assert "warm-up request(s) failed: HTTP 429: rate limited" in p.stdout
    [r] = read_records(tmp / "r")
    assert r["metrics"]["completed"] == 2 and r["metrics"]["errors"] == {"HTTP 429: rate limited": 2}


def test_total_timeout_bounds_a_server_that_never_finishes(faults, tmp: Path):
    p = loadtest(f"{faults}/drip/v1", tmp / "r", "--model", "m", "--num-requests", "1", "--warmup", "0",
                 "--timeout", "1.5", "--stall-timeout", "1", timeout=60)
    assert_one_line_error(p, "timed out: request took longer than 1.5 s", code=1)


def test_partial_failures_are_counted_and_the_exit_status_follows_the_failure_limit(faults, tmp: Path):
    p = loadtest(f"{faults}/flaky/v1", tmp / "r", "--model", "m", "--num-requests", "8", "--warmup", "0",
                 "--output-len", "2", "--slo", "ttft_p50=5", "--seed", "3")
    assert_one_line_error(p, "4 of 8 requests failed at conc 1 (50%, above --max-failure-rate 0.05); most common "
                             "error: HTTP 503: overloaded", code=1)
    assert "4 x HTTP 503: overloaded" in p.stdout   # the table was printed, and the record kept
    p = loadtest(f"{faults}/flaky/v1", tmp / "r2", "--model", "m", "--num-requests", "8", "--warmup", "0",
                 "--output-len", "2", "--slo", "ttft_p50=5", "--max-failure-rate", "0.5")
    assert p.returncode == 0, p.stderr
    [r] = read_records(tmp / "r2")
    m = r["metrics"]
    assert r["status"] == "ok" and m["completed"] == 4 and m["failed"] == 4
    assert m["errors"] == {"HTTP 503: overloaded": 4} and "4 x HTTP 503: overloaded" in p.stdout
    assert m["output_tokens_source"] == "chunks" and m["output_tokens"] == 8
    assert (m["sent"], m["planned"], m["not_sent"], m["failure_rate"]) == (8, 8, 0, 0.5)
    # the run list says so: its one point is an ok measurement, of a server that failed half the requests
    listed = run_cli("results", "list", "--results", str(tmp / "r2"), cwd=tmp).stdout
    assert "1 ok, 0 failed of 1; 4 of 8 requests failed" in listed
    # a failed request is infinitely slow for the SLO: half failed, so the p50 cannot be met
    assert m["slo_met"] is False and m["good_requests"] == 4
    # a server whose model list does not say what weights it serves (vLLM, SGLang): reported as unknown
    assert r["model"]["weights"] is None
    for name in ("rep.html", "rep.md"):
        p = run_cli("report", r["run_id"], "--results", str(tmp / "r2"), "-o", str(tmp / name), cwd=tmp)
        assert p.returncode == 0, p.stderr
    md = (tmp / "rep.md").read_text()
    assert "| unknown | m | 1 |" in md and "load test: timer time.perf_counter, 0 warm-up request(s), per point 8 requests" in md


def test_api_key_comes_from_the_environment_and_is_never_stored(faults, tmp: Path):
    env = {"MY_KEY": "sekret-key-123"}
    p = run_cli("loadtest", "--endpoint", f"{faults}/e401/v1", "--model", "m", "--num-requests", "2",
                "--api-key-env", "MY_KEY", "--out", str(tmp / "r"), cwd=tmp, env=env)
    assert p.returncode == 0, p.stderr
    [r] = read_records(tmp / "r")
    assert r["metrics"]["completed"] == 2 and r["spec"]["api_key_env"] == "MY_KEY"
    assert "sekret" not in (tmp / "r").joinpath(r["run_id"], "records.jsonl").read_text() + p.stdout + p.stderr
    p = run_cli("loadtest", "--endpoint", f"{faults}/e401/v1", "--model", "m", "--api-key-env", "UNSET_KEY_VAR",
                "--out", str(tmp / "r2"), cwd=tmp)
    assert_one_line_error(p, "--api-key-env UNSET_KEY_VAR: that environment variable is not set")


def test_unreachable_endpoint_is_one_line_and_quick(tmp: Path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.monotonic()
    p = run_cli("loadtest", "--endpoint", f"http://127.0.0.1:{port}/v1", "--model", "m", "--out", str(tmp / "r"),
                cwd=tmp)
    assert time.monotonic() - t0 < 10
    assert_one_line_error(p, f"cannot reach http://127.0.0.1:{port}/v1/models: connection refused")
    assert not (tmp / "r").exists()  # nothing is recorded before the server answered


@pytest.mark.parametrize("args,fragment", [
    (("--endpoint", "ftp://host/v1"), "is not an http(s) URL"),
    (("--endpoint", "http://user:pw@127.0.0.1:1/v1"), "--endpoint carries credentials"),
    (("--search",), "--search looks for the highest load that meets an SLO; add --slo"),
    (("--slo", "ttft_p99"), "--slo: cannot read 'ttft_p99'"),
    (("--slo", "rtf_p99=1"), "'rtf' is not a metric of --api completions; use ttft, tpot, e2e"),
    (("--api", "speech", "--output-len", "5"), "--output-len applies to the chat, completions and tgi APIs"),
    (("--api", "images", "--tokenizer", "."), "--tokenizer counts the output tokens of the chat, completions and tgi"),
    (("--api", "embeddings", "--no-ignore-eos"), "--no-ignore-eos applies to the chat and completions APIs"),
    (("--api", "speech", "--ignore-eos"), "--ignore-eos applies to the chat and completions APIs"),
    (("--api", "tgi", "--ignore-eos"), "(their output length; TGI's API has no such field), not tgi; drop it"),
    (("--rate", "1,2", "--sweep"), "--sweep starts from one --rate"),
    (("--concurrency", "0"), "--concurrency: 0 is not > 0"),
    (("--dataset", "missing.jsonl"), "dataset file not found: missing.jsonl"),
    (("--precision", "bf61"), "unknown precision 'bf61'"),
    (("--metrics-url", "notaurl"), "--metrics-url 'notaurl' is not an http(s) URL"),
], ids=["scheme", "credentials", "search-needs-slo", "slo-syntax", "slo-metric", "output-len", "tokenizer",
        "no-ignore-eos", "ignore-eos", "ignore-eos-tgi",
        "sweep-list", "zero", "dataset", "precision", "metrics-url"])
def test_bad_input_is_one_line(tmp: Path, args: tuple, fragment: str):
    endpoint = () if "--endpoint" in args else ("--endpoint", "http://127.0.0.1:1/v1")
    assert_one_line_error(run_cli("loadtest", *endpoint, "--model", "m", *args, cwd=tmp), fragment)


def test_a_dataset_that_exists_but_is_not_a_regular_file_says_so(tmp: Path):
    """/dev/null, a named pipe and a folder exist: "dataset file not found" pointed the wrong way."""
    os.mkfifo(tmp / "pipe")
    (tmp / "folder").mkdir()
    device = "/dev/null exists but is not a regular file (a character device), so not a dataset file; give --dataset"
    for path, fragment in (("/dev/null", device),
                           ("pipe", "pipe exists but is not a regular file (a named pipe), so not a dataset file"),
                           ("folder", "folder is a folder, not a dataset file")):
        p = run_cli("loadtest", "--endpoint", "http://127.0.0.1:1/v1", "--model", "m", "--dataset", path, cwd=tmp)
        assert_one_line_error(p, fragment)
        assert "not found" not in p.stderr


def test_the_lengths_help_names_the_built_in_distributions(tmp: Path):
    from infra_bench.endpoints.inputs import distributions

    text = " ".join(run_cli("loadtest", "--help", cwd=tmp).stdout.split())
    assert all(name in text for name in distributions())
    # --slo's help names each API's metrics as parse_slo takes them (speech's first_audio was left out)
    from infra_bench.endpoints.metrics import SLO_METRICS

    assert f"speech: {', '.join(SLO_METRICS['speech'])};" in text
    others = text.split("images, embeddings, rerank: ", 1)[1].split(")", 1)[0]
    assert {frozenset(SLO_METRICS[a]) for a in ("images", "embeddings", "rerank")} == {frozenset(others.split(", "))}


def test_a_bad_dataset_line_names_file_and_line(tmp: Path):
    data = tmp / "d.jsonl"
    data.write_text('{"prompt": "fine"}\n{"prompt": "x", "messages": []}\n')
    p = run_cli("loadtest", "--endpoint", "http://127.0.0.1:1/v1", "--model", "m", "--dataset", str(data), cwd=tmp)
    assert_one_line_error(p, f"{data}:2: give exactly one of 'prompt', 'messages'")


@pytest.mark.parametrize("line, field", [('{"prompt": ""}', "prompt"), ('{"prompt": "  "}', "prompt"),
                                         ('{"messages": []}', "messages"), ('{"input": ""}', "input"),
                                         ('{"messages": [{"role": "system", "content": ""}]}', "messages")])
def test_a_dataset_line_with_no_text_is_refused_naming_it(tmp: Path, line: str, field: str):
    """An empty prompt was sent, and every request of it failed at the server (HTTP 400: the prompt is empty);
    empty messages were an internal error (AttributeError) when the longest warm-up was made."""
    from infra_bench.endpoints.inputs import load_dataset
    from infra_bench.errors import UserError

    data = tmp / "d.jsonl"
    data.write_text('{"prompt": "fine"}\n' + line + "\n")
    with pytest.raises(UserError, match=f"^{re.escape(str(data))}:2: '{field}' has no text; give the text to send, "
                                        f"or remove the line$"):
        load_dataset(data, "chat")


def test_commands_import_no_aiohttp():
    code = "import sys, infra_bench.cli, infra_bench.endpoints.commands; assert 'aiohttp' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


# --- the arrival process --------------------------------------------------------------------------

@pytest.mark.parametrize("burstiness", [0.5, 1.0, 4.0])
def test_gamma_gaps_keep_the_rate_at_any_burstiness(burstiness: float):
    from infra_bench.endpoints.arrivals import gaps

    it = gaps(8.0, burstiness, seed=3)
    x = np.array([next(it) for _ in range(40_000)])
    assert x.mean() == pytest.approx(1 / 8.0, rel=0.02)
    assert x.std() / x.mean() == pytest.approx(1 / math.sqrt(burstiness), rel=0.05)  # gamma CV


def test_the_load_runner_sends_on_schedule(faults, tmp: Path):
    """Requests leave when the seeded schedule says (rate kept), not when earlier ones finish."""
    from infra_bench.endpoints.arrivals import arrival_times

    p = loadtest(f"{faults}/ok/v1", tmp / "r", "--model", "m", "--rate", "25", "--num-requests", "50",
                 "--warmup", "0", "--seed", "7")
    assert p.returncode == 0, p.stderr
    [r] = read_records(tmp / "r")
    sent = np.array([s["sent_s"] for s in r["samples"]])
    it = arrival_times(25.0, 1.0, seed=7 + 1)  # point k uses seed + k
    planned = np.array([next(it) for _ in range(50)])
    late = sent - planned
    assert late.min() > -0.002 and np.median(late) < 0.02
    assert np.diff(sent).mean() == pytest.approx(np.diff(planned).mean(), rel=0.05)


def test_a_duration_bounded_point_divides_by_its_duration(faults, tmp: Path):
    """--rate 2 --duration 1.5 sends the few requests whose arrival falls inside 1.5 s; the rates are over
    the 1.5 s the point offered load, not the span of those requests (2 requests read as 11.8 req/s)."""
    p = loadtest(f"{faults}/ok/v1", tmp / "r", "--model", "m", "--rate", "2", "--duration", "1.5", "--warmup", "0",
                 "--seed", "7")
    assert p.returncode == 0, p.stderr
    [r] = read_records(tmp / "r")
    m = r["metrics"]
    assert m["duration_s"] >= 1.5 and r["settings"]["stop_reason"].startswith("duration 1.5 s")
    assert m["requests_per_s"] == pytest.approx(m["completed"] / m["duration_s"]) and m["requests_per_s"] < 4


def test_ctrl_c_keeps_the_point_in_progress_and_names_its_folder(faults, tmp: Path):
    """SIGINT 1.5 s into a 30 s point: exit 130, one line naming the run folder, and the point recorded
    with the requests that had finished (nothing measured is lost); `report` reads it, `run --resume` says
    it is a loadtest."""
    # Ctrl-C reaches it as from a terminal, even where the suite runs as a background job, whose children a
    # non-interactive shell starts with SIGINT ignored: the child installs Python's own handler first
    start = ("import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
             "sys.argv[0] = 'infra-bench'; runpy.run_module('infra_bench', run_name='__main__')")
    proc = subprocess.Popen([sys.executable, "-c", start, "loadtest", "--endpoint", f"{faults}/ok/v1",
                             "--model", "m", "--rate", "5", "--duration", "30", "--warmup", "0", "--seed", "1",
                             "--out", "r"], cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60  # once the run folder exists the point is under way (a cold start can take
    while not list((tmp / "r").glob("*/run.json")) and time.monotonic() < deadline:  # seconds, and a SIGINT
        time.sleep(0.1)  # sent during its imports was lost, so the run went its full 30 s)
    time.sleep(1.5)
    proc.send_signal(signal.SIGINT)
    err = proc.stderr.read()
    assert proc.wait(30) == 130, err
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("error: interrupted; 1 load point(s) kept in ")
    [r] = read_records(tmp / "r")
    assert r["status"] == "ok" and r["settings"]["stop_reason"] == "interrupted (Ctrl-C)"
    assert r["metrics"]["completed"] >= 3 and any(n.startswith("interrupted (Ctrl-C)") for n in r["notes"])
    assert f"kept in r/{r['run_id']}," in err
    assert run_cli("report", r["run_id"], "--results", "r", "-o", "rep.md", cwd=tmp).returncode == 0
    assert_one_line_error(run_cli("run", "--resume", r["run_id"], "--out", "r", cwd=tmp), "is a loadtest run")


@pytest.mark.parametrize("sig, sigint", [(signal.SIGTERM, "default_int_handler"), (signal.SIGINT, "SIG_IGN")])
def test_sigterm_and_a_sigint_started_ignored_stop_it_as_ctrl_c_does(faults, tmp: Path, sig, sigint):
    """SIGTERM killed loadtest (143, the point in progress lost); and started with SIGINT ignored, as
    `infra-bench loadtest ... &` from a script starts it, Ctrl-C did nothing: the 60 s point ran on."""
    start = (f"import runpy, signal, sys; signal.signal(signal.SIGINT, signal.{sigint}); "
             "sys.argv[0] = 'infra-bench'; runpy.run_module('infra_bench', run_name='__main__')")
    proc = subprocess.Popen([sys.executable, "-c", start, "loadtest", "--endpoint", f"{faults}/ok/v1", "--model", "m",
                             "--rate", "5", "--duration", "60", "--warmup", "0", "--metrics-url", "none", "--out", "r"],
                            cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not list((tmp / "r").glob("*/run.json")) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)  # into the point (it would run 60 s)
    proc.send_signal(sig)
    try:
        assert proc.wait(30) == 130
    finally:
        proc.kill()
    err = proc.stderr.read()
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("error: interrupted; 1 load point(s) kept")
    [r] = read_records(tmp / "r")
    assert r["status"] == "ok" and r["settings"]["stop_reason"].startswith("interrupted")


# --- metric arithmetic -----------------------------------------------------------------------------

def _outcome(ttft: float, e2e: float, tokens: int, ok: bool = True, error: str | None = None):
    from infra_bench.endpoints.client import Outcome
    return Outcome(sent_s=0.0, ok=ok, error=error, ttft_s=ttft if ok else None, e2e_s=e2e if ok else None,
                   output_tokens=tokens if ok else None, elapsed_s=e2e)


def test_goodput_counts_requests_meeting_every_slo():
    from infra_bench.endpoints.load import LoadPoint, PointResult
    from infra_bench.endpoints.metrics import parse_slo, point_metrics

    outs = [_outcome(0.1, 1.1, 11),                 # tpot 0.1: meets both
            _outcome(0.6, 1.6, 11),                 # ttft too slow
            _outcome(0.1, 3.1, 11),                 # tpot 0.3: too slow
            _outcome(0.2, 0.2, 1),                  # one token: tpot counts as 0 (vLLM)
            _outcome(0, 0.4, 0, ok=False, error="HTTP 500: x")]
    result = PointResult(LoadPoint(rate=2.0), outs, duration_s=4.0, stop_reason="all requests sent")
    m = point_metrics(result, "chat", parse_slo("ttft_p50=0.5,tpot_p90=150ms", "chat"))
    assert m["good_requests"] == 2 and m["goodput"] == pytest.approx(2 / 4.0)
    assert m["completed"] == 4 and m["failed"] == 1 and m["errors"] == {"HTTP 500: x": 1}
    assert m["requests_per_s"] == pytest.approx(1.0) and m["output_tokens_per_s"] == pytest.approx(34 / 4)
    assert m["tpot_s"]["n"] == 3  # the one-token request has no TPOT
    ttft, tpot = m["slo"]
    assert ttft["value"] == pytest.approx(0.2) and ttft["met"]  # p50 over 5 with the failure as +inf
    assert tpot["value"] is None and not tpot["met"]  # p90 lands on the failed request
    assert m["slo_met"] is False


def test_slo_search_doubles_then_bisects_to_the_highest_passing_level():
    from infra_bench.endpoints.search import DoublingSweep, PointSummary, SloSearch

    def drive(strategy, passes, tput=lambda x: x):
        tried = []
        while (x := strategy.next_level()) is not None:
            tried.append(x)
            strategy.tell(PointSummary(x, tput(x), slo_met=passes(x)))
        return tried
    s = SloSearch(1, max_points=20, integer=True)
    assert drive(s, lambda c: c <= 11) == [1, 2, 4, 8, 16, 12, 10, 11] and s.best == 11
    s = SloSearch(8.0, max_points=20, integer=False)
    tried = drive(s, lambda r: r <= 3.3)
    assert tried[:3] == [8.0, 4.0, 2.0] and 3.3 * 0.95 <= s.best <= 3.3 and len(tried) < 12
    s = SloSearch(1, max_points=5, integer=True)
    assert drive(s, lambda c: False) == [1] and s.best is None
    s = SloSearch(1, max_points=3, integer=True)
    assert drive(s, lambda c: True) == [1, 2, 4] and s.best == 4 and "max-points" in s.stop_reason
    sweep = DoublingSweep(1, max_points=10)
    assert drive(sweep, lambda c: None, tput=lambda c: min(c, 5)) == [1, 2, 4, 8, 16]
    assert "stopped growing" in sweep.stop_reason


def test_saturation_rule_fires_on_a_growing_queue_only():
    from infra_bench.endpoints.load import saturation

    rate = 10.0
    sent = [i / rate for i in range(100)]                       # 10 s of arrivals
    # healthy: each request takes 0.3 s
    ended = [(s, s + 0.3) for s in sent if s + 0.3 <= 10]
    trace = [(float(t), 3) for t in range(1, 11)]
    assert saturation(sent, ended, trace, rate, 10.0) is None
    # overloaded: served one per 0.4 s in arrival order, so the queue grows
    ends = np.cumsum([0.4] * 100)
    ended = [(s, e) for s, e in zip(sent, ends) if e <= 10]
    trace = [(float(t), int(t * rate) - sum(e <= t for e in ends)) for t in range(1, 11)]
    reason = saturation(sent, ended, trace, rate, 10.0)
    assert reason and reason.startswith("saturated at 10.0 s")
    # a long but steady latency (8 s) is not saturation: the window stretches to 3 x 8 s
    ended = [(s, s + 8) for s in sent if s + 8 <= 10]
    trace = [(float(t), min(int(t * rate), 80)) for t in range(1, 11)]
    assert saturation(sent, ended, trace, rate, 10.0) is None


def test_wav_and_sse_parsing_edges():
    from infra_bench.endpoints.client import RequestFailed, wav_data_offset, wav_seconds
    from infra_bench.endpoints.sse import SseError, data_of, event_json
    from infra_bench.serving.media import wav_header

    assert wav_seconds(wav_header(16000, 3200) + b"\0" * 3200) == pytest.approx(0.1)
    assert wav_seconds(wav_header(8000, None) + b"\0" * 1600) == pytest.approx(0.1)  # streamed sizes
    with pytest.raises(RequestFailed):
        wav_seconds(b"ID3 an mp3")
    assert wav_data_offset(wav_header(16000, 10)[:30]) is None and wav_data_offset(wav_header(16000, 10)) == 44
    assert data_of(b": keep-alive\n") is None and data_of(b"event: x\n") is None and data_of(b"\r\n") is None
    assert data_of(b"data: [DONE]\n") == "[DONE]"
    with pytest.raises(SseError):
        data_of(b"<html>\n")
    with pytest.raises(SseError):
        event_json("[1, 2]")


def test_report_of_a_loadtest_without_hardware_says_so_and_charts_its_points(faults, tmp: Path):
    """The environment table read "devices measured: endpoint (None)" for a run recorded without
    --hardware; it names the endpoint, says its hardware was not given and how to give it."""
    p = loadtest(f"{faults}/ok/v1", tmp / "r", "--model", "m", "--num-requests", "4", "--warmup", "0",
                 "--concurrency", "1,2")
    assert p.returncode == 0, p.stderr
    r = read_records(tmp / "r")[0]
    for name in ("rep.html", "rep.md"):
        p = run_cli("report", r["run_id"], "--results", str(tmp / "r"), "-o", str(tmp / name), cwd=tmp)
        assert p.returncode == 0, p.stderr
    md = (tmp / "rep.md").read_text()
    assert "(None)" not in md
    assert f"endpoint {faults}/ok/v1/completions (hardware not given: loadtest --hardware ID names it)" in md
    # two load points of one series: the report charts them, as it charts the other kinds' cells
    html = (tmp / "rep.html").read_text()
    assert "Latency vs throughput" in html and 'alt="load test latency against throughput"' in html
