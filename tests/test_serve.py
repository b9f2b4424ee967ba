"""`infra-bench serve`: the OpenAI-compatible server over our runners, in a real process, checked
by raw HTTP (stream format, errors, auth, cancellation) and by loadtests of speech and images."""
from __future__ import annotations

import base64
import json
import socket
import struct
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.conftest import assert_one_line_error, read_records, run_cli
from tests.test_endpoints import loadtest, start_server, stop_server

pytest.importorskip("aiohttp")
pytest.importorskip("diffusers")

KEY = "serve-test-key"
SPECS = [{"kind": "llm", "name": "tiny-chat", "arch": "llama-tiny"},
         {"kind": "diffusion", "arch": "sd-tiny", "resolution": [32], "steps": [2], "guidance_scale": 1.0,
          "scheduler": "pndm"},
         {"kind": "tts", "arch": "vits-tiny"}]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("serve")
    spec = folder / "serve.yaml"
    spec.write_text(yaml.safe_dump_all(SPECS))
    proc, url = start_server("--spec", str(spec), "--api-key-env", "SERVE_KEY", cwd=folder, env={"SERVE_KEY": KEY})
    yield url
    stop_server(proc)


def call(url: str, body: dict | None = None, key: str | None = KEY, timeout: float = 60):
    """(status, content type, body bytes) of a GET (no body) or POST."""
    req = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json",
                                          **({"Authorization": f"Bearer {key}"} if key else {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read()


def test_model_cards_say_random_weights_and_auth_is_required(server):
    status, _, raw = call(f"{server}/models", key=None)
    assert status == 401 and json.loads(raw)["error"]["type"] == "authentication_error"
    assert call(f"{server}/models", key="wrong")[0] == 401
    status, _, raw = call(f"{server}/models")
    cards = {c["id"]: c for c in json.loads(raw)["data"]}
    assert set(cards) == {"tiny-chat", "sd-tiny", "vits-tiny"}
    assert all(c["weights"] == "random" and "random weights" in c["note"] for c in cards.values())
    assert cards["tiny-chat"]["max_model_len"] == 2048 and "one request at a time" in cards["tiny-chat"]["batching"]
    assert cards["sd-tiny"]["size"] == "32x32" and cards["sd-tiny"]["steps"] == 2  # what a request without size gets
    assert cards["sd-tiny"]["steps_run"] == 3  # PNDM's extra warm-up step, which each image costs
    assert cards["vits-tiny"]["voice"].startswith("ignored")  # loadtest --voice changes nothing here; the card says so


def test_chat_stream_is_openai_sse_with_exact_length_and_usage(server):
    body = {"model": "tiny-chat", "messages": [{"role": "user", "content": "five words in this prompt"}],
            "max_tokens": 6, "stream": True, "stream_options": {"include_usage": True}}
    status, ctype, raw = call(f"{server}/chat/completions", body)
    assert status == 200 and ctype.startswith("text/event-stream")
    events = [line[len("data: "):] for line in raw.decode().split("\n\n") if line]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    content = [c for c in chunks if c["choices"]]
    assert len(content) == 6 and content[0]["choices"][0]["delta"]["role"] == "assistant"
    assert [c["choices"][0]["finish_reason"] for c in content] == [None] * 5 + ["length"]
    assert all(c["object"] == "chat.completion.chunk" and "random" in c["system_fingerprint"] for c in chunks)
    assert chunks[-1]["usage"] == {"prompt_tokens": 5, "completion_tokens": 6, "total_tokens": 11}
    status, _, raw = call(f"{server}/completions", {"model": "tiny-chat", "prompt": "a b c", "max_tokens": 4})
    answer = json.loads(raw)
    assert status == 200 and answer["usage"]["completion_tokens"] == 4
    assert len(answer["choices"][0]["text"].split()) == 4  # token ids as text pieces, one per token


@pytest.mark.parametrize("path,body,status,fragment", [
    ("completions", {"model": "nope", "prompt": "x"}, 404, "model 'nope' is not served here"),
    ("completions", {"model": "tiny-chat"}, 400, "missing required field 'prompt'"),
    ("completions", {"model": "tiny-chat", "prompt": "x", "max_tokens": 3000}, 400, "exceeds the model's 2048"),
    ("completions", {"model": "tiny-chat", "prompt": "   "}, 400, "the prompt is empty"),
    ("completions", {"model": "tiny-chat", "prompt": "x", "n": 2}, 400, "n must be 1"),
    ("audio/speech", {"model": "tiny-chat", "input": "hi"}, 400, "'tiny-chat' is served as llm"),
    ("audio/speech", {"model": "vits-tiny", "input": "hi", "response_format": "mp3"}, 400, "response_format"),
    ("images/generations", {"model": "sd-tiny", "size": "31x31"}, 400, "multiples of 2"),
    ("audio/speech", {"model": "vits-tiny", "input": "ab " * 2000}, 400,
     "at most 4096 characters (got a string of 6000 characters)"),
], ids=["unknown-model", "no-prompt", "too-long", "empty", "n", "wrong-route", "mp3", "size", "long-input"])
def test_bad_requests_get_openai_errors(server, path, body, status, fragment):
    got, ctype, raw = call(f"{server}/{path}", body)
    assert got == status and ctype.startswith("application/json")
    assert len(raw) < 1024  # never the request echoed back: loadtest reads the first 4 KiB of an error
    assert fragment in json.loads(raw)["error"]["message"]


def test_speech_and_images_under_load(server, tmp: Path):
    env = {"SERVE_KEY": KEY}
    p = run_cli("loadtest", "--endpoint", server, "--model", "vits-tiny", "--api", "speech", "--concurrency", "2",
                "--num-requests", "4", "--input-len", "40", "--api-key-env", "SERVE_KEY",
                "--slo", "rtf_p50=100,first_audio_p90=30", "--out", str(tmp / "s"), cwd=tmp, env=env)
    assert p.returncode == 0, p.stderr
    [r] = read_records(tmp / "s")
    m = r["metrics"]
    assert m["completed"] == 4 and m["slo_met"] and "RTF p50" in p.stdout
    assert "note: weights: random" in p.stdout  # beside the numbers, not only in the records
    for s in r["samples"]:  # 40 characters x 5 frames x 256 samples at 16 kHz, exactly
        assert s["audio_s"] == pytest.approx(40 * 5 * 256 / 16000)
        assert 0 < s["ttfb_s"] <= s["first_audio_s"] <= s["e2e_s"]
    assert m["rtf"]["p50"] == pytest.approx(m["e2e_s"]["p50"] / 3.2)
    assert m["audio_s_per_s"] == pytest.approx(4 * 3.2 / m["duration_s"])
    p = run_cli("loadtest", "--endpoint", server, "--model", "sd-tiny", "--api", "images", "--num-requests", "2",
                "--size", "32x32", "--api-key-env", "SERVE_KEY", "--out", str(tmp / "i"), cwd=tmp, env=env)
    assert p.returncode == 0, p.stderr
    [r] = read_records(tmp / "i")
    m = r["metrics"]
    assert m["images"] == 2 and m["images_per_s"] == pytest.approx(2 / m["duration_s"])
    p = run_cli("calibrate", str(tmp / "i" / r["run_id"]), "--out", str(tmp / "cal.json"), cwd=tmp)
    assert_one_line_error(p, "images load points do not calibrate")  # and what does: a `run` of a diffusion spec
    assert "`infra-bench run` of a diffusion spec" in p.stderr
    status, _, raw = call(f"{server}/images/generations", {"model": "sd-tiny", "n": 2, "size": "32x32"})
    data = json.loads(raw)["data"]
    assert status == 200 and len(data) == 2
    png = base64.b64decode(data[0]["b64_json"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", png[16:24]) == (32, 32)


def test_one_fault_is_one_recorded_error(server, tmp: Path):
    """Every speech input over the limit is refused for the same reason: one error, counted, not one per request
    (the server quoted each request's own text back, and loadtest could not read the cut-off JSON). With the
    warm-up on, its first request has that length and the run stops there, before anything is recorded."""
    said = "HTTP 400: request: field 'input': String should have at most 4096 characters (got a string of 5000 characters)"
    args = ("loadtest", "--endpoint", server, "--model", "vits-tiny", "--api", "speech", "--num-requests", "3",
            "--input-len", "5000", "--api-key-env", "SERVE_KEY", "--metrics-url", "none")
    p = run_cli(*args, "--warmup", "0", "--out", str(tmp / "s"), cwd=tmp, env={"SERVE_KEY": KEY})
    assert p.returncode == 1
    [r] = read_records(tmp / "s")
    assert r["metrics"]["errors"] == {said: 3}
    p = run_cli(*args, "--out", str(tmp / "w"), cwd=tmp, env={"SERVE_KEY": KEY})
    assert_one_line_error(p, f"(5000 input characters), but not a short one: {said}; lower --input-len, or raise")
    assert not (tmp / "w").exists()


def test_a_client_that_leaves_stops_its_generation(server):
    body = {"model": "tiny-chat", "prompt": "go", "max_tokens": 2000, "stream": True}
    req = urllib.request.Request(f"{server}/completions", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json", "Authorization": f"Bearer {KEY}"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.readline().startswith(b"data: ")  # generation is under way; now hang up
    time.sleep(0.2)
    t0 = time.monotonic()
    status, _, _ = call(f"{server}/completions", {"model": "tiny-chat", "prompt": "quick", "max_tokens": 2})
    # 2000 tokens take about 10 s here; the worker must have dropped them for the next request
    assert status == 200 and time.monotonic() - t0 < 5


def test_onnxruntime_backend_serves_and_stops_on_sigterm(tmp: Path):
    pytest.importorskip("onnxruntime")
    proc, url = start_server("--arch", "llama-tiny", "--backend", "onnxruntime", cwd=tmp)
    try:
        p = loadtest(url, tmp / "r", "--model", "llama-tiny", "--num-requests", "3", "--input-len", "8",
                     "--output-len", "5")
        assert p.returncode == 0, p.stderr
        [r] = read_records(tmp / "r")
        assert r["model"]["served"]["backend"] == "onnxruntime"
        assert [s["output_tokens"] for s in r["samples"]] == [5, 5, 5]
    finally:
        proc.terminate()
        assert proc.wait(15) == 0
    assert "stopped" in proc.stdout.read()


def test_sigterm_with_streams_still_queued_stops_promptly(tmp: Path):
    """Streaming requests waiting behind a long one when SIGTERM comes: their streams end and the
    server exits, instead of waiting forever for jobs the shutdown cancelled. None ends as a whole
    answer: a [DONE] after 0 of 5 tokens (queued) or a few of 2000 (running) read as served to a
    client (loadtest counted the cut one as ok), so each ends with an error event instead."""
    import threading

    proc, url = start_server("--arch", "llama-tiny", cwd=tmp)
    started = threading.Event()
    bodies: dict[int, bytes] = {}

    def stream(i: int, tokens: int) -> None:
        body = {"model": "llama-tiny", "prompt": "go", "max_tokens": tokens, "stream": True}
        req = urllib.request.Request(f"{url}/completions", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                started.set()
                bodies[i] = resp.read()
        except (OSError, urllib.error.URLError):
            pass
    threads = [threading.Thread(target=stream, args=(i, n), daemon=True) for i, n in enumerate((2000, 5, 5, 5))]
    threads[0].start()
    assert started.wait(30)
    for t in threads[1:]:
        t.start()
    time.sleep(0.5)                       # the three short ones are queued behind the long one
    proc.terminate()
    try:
        assert proc.wait(20) == 0
    finally:
        proc.kill()
    assert "stopped" in proc.stdout.read()
    for t in threads:
        t.join(10)
    assert 0 in bodies, "the running stream's body was not read"
    for i, body in bodies.items():
        assert b"[DONE]" not in body, (i, body[-300:])
        assert b"the server is shutting down; this request was not finished" in body, (i, body[-300:])


def test_serve_refuses_bad_input_in_one_line(tmp: Path):
    assert_one_line_error(run_cli("serve", "--arch", "llama-tni", cwd=tmp), "unknown architecture 'llama-tni' "
                                                                            "(did you mean 'llama-tiny'?)")
    # the built-in list offers only what serve serves; a video model is refused before it is built
    assert "wan-tiny" not in run_cli("serve", "--arch", "nope", cwd=tmp).stderr
    p = run_cli("serve", "--arch", "wan-tiny", cwd=tmp)
    assert_one_line_error(p, "--arch wan-tiny: video models are not served yet")
    assert "built" not in p.stdout
    assert_one_line_error(run_cli("serve", "--api-key-env", "NO_SUCH_VAR_X", cwd=tmp), "NO_SUCH_VAR_X")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        p = run_cli("serve", "--port", str(port), cwd=tmp, timeout=120)
    assert_one_line_error(p, f"cannot listen on 127.0.0.1:{port}")  # before any model is built
    assert "choose another --port" in p.stderr and "built" not in p.stdout
    # an address this machine does not have: the fix is the host, not the port (TEST-NET-1, never assigned)
    assert_one_line_error(run_cli("serve", "--host", "192.0.2.1", "--port", "0", cwd=tmp), "give a --host address")
    p = run_cli("serve", "--host", "0.0.0.0", "--port", "0", "--arch", "nope", cwd=tmp)
    warning, error = p.stderr.strip().splitlines()
    assert warning.startswith("warning: binding 0.0.0.0 exposes") and "without authentication" in warning
    assert error.startswith("error: --arch: unknown architecture 'nope'") and p.returncode == 2


def test_a_model_named_twice_is_refused_with_the_fix_for_how_it_was_named(tmp: Path):
    """`--arch llama-tiny --arch llama-tiny` was told to 'give each spec a distinct name', which no --arch has."""
    from infra_bench.errors import UserError
    from infra_bench.serving.models import load_specs_for_serving

    with pytest.raises(UserError, match="^--arch llama-tiny is given twice; give it once"):
        load_specs_for_serving([], ["llama-tiny", "llama-tiny"], None, None)
    (tmp / "s.yaml").write_text(yaml.safe_dump({"kind": "llm", "arch": "llama-tiny"}))
    with pytest.raises(UserError, match="^two served models are named 'llama-tiny'; give each spec a distinct 'name'"):
        load_specs_for_serving([tmp / "s.yaml"], ["llama-tiny"], None, None)


def test_a_video_spec_is_refused_before_any_model_is_built(tmp: Path):
    spec = tmp / "mixed.yaml"  # a real Wan2.1 pipeline takes minutes to load: refuse before building anything
    spec.write_text(yaml.safe_dump_all([{"kind": "llm", "arch": "llama-tiny"},
                                        {"kind": "video", "name": "clips", "arch": "wan-tiny"}]))
    p = run_cli("serve", "--spec", str(spec), "--port", "0", cwd=tmp, timeout=120)
    assert_one_line_error(p, "model 'clips': video models are not served yet")
    assert "built" not in p.stdout


def test_a_model_failing_on_a_valid_request_answers_json_500_and_a_cut_stream():
    """The model is a stand-in that runs out of memory (what a real one does on a request too large for the
    device); the server under test must answer as an API does, not with aiohttp's plain-text 500."""
    import asyncio

    from aiohttp.test_utils import TestClient, TestServer

    from infra_bench.kinds.embedding.served import ServedEmbedding
    from infra_bench.serving.app import make_app
    from infra_bench.serving.codec import WordCodec
    from infra_bench.serving.models import ServedSpeech
    from infra_bench.serving.worker import Worker

    def oom(*_):
        raise MemoryError("out of memory allocating 8 GiB")

    def half_then_oom(text, emit):
        emit(b"\0\0" * 160)
        oom()

    models = [ServedEmbedding("emb", "embedding", {"id": "emb"}, "embed", WordCodec(100), 64, 100, oom),
              ServedSpeech("voice", "tts", {"id": "voice"}, 16000, half_then_oom, streams=True)]

    async def go():
        async with TestClient(TestServer(make_app(models, Worker(), None), host="127.0.0.1")) as client:
            r = await client.post("/v1/embeddings", json={"model": "emb", "input": "a b"})
            body = await r.json()
            assert r.status == 500 and body["error"]["type"] == "server_error"
            assert body["error"]["message"] == "the model failed on this request: MemoryError: out of memory " \
                                               "allocating 8 GiB"
            r = await client.post("/v1/audio/speech", json={"model": "voice", "input": "hello"})
            assert r.status == 200  # the WAV header went out before the model failed ...
            with pytest.raises(Exception, match="(?i)payload|connection|transfer"):
                await r.read()  # ... so the stream is cut, not ended as if the audio were whole
    asyncio.run(go())
