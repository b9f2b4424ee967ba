"""TTS workloads: exact forced audio length, RTF arithmetic, ORT parity, the real voice, bad input."""
import importlib.util
from pathlib import Path

import pytest
import torch
import yaml

from infra_bench.spec import spec_from_dict
from infra_bench.workloads import tts as tw
from .conftest import assert_one_line_error, read_records, run_cli

TINY = {"kind": "tts", "arch": "vits-tiny", "text_len": [12], "warmup": 0, "min_iters": 2, "min_time_s": 0.0}


def _audio_len(fields: dict, batch: int, text_len: int) -> tuple[int, int]:
    spec = spec_from_dict({**TINY, **fields})
    resolved = tw.resolve(spec)
    model = tw.build_model(resolved, spec, torch.device("cpu"), torch.float32)
    ids = tw.token_ids(resolved, spec, {"batch_size": batch, "text_len": text_len})
    with torch.inference_mode():
        wave = model(ids)
    assert wave.shape[0] == batch
    return wave.shape[-1], tw.expected_samples(resolved, spec, text_len)


@pytest.mark.parametrize("fields, batch, text_len, samples", [
    ({}, 2, 12, 12 * 5 * 256),
    ({"speaking_rate": 2.0}, 1, 10, 10 * 3 * 256),  # ceil(5 / 2) frames per token
    ({"frames_per_token": 3}, 1, 7, 7 * 3 * 256),
    ({"arch": "fastspeech2-conformer", "speaking_rate": 2.0}, 1, 10, 10 * 2 * 256),  # round(5 * 0.5)
    ({"arch": "speecht5"}, 1, 9, int(9 * 5 / 2) * 2 * 256),
])
def test_audio_length_matches_the_forced_durations_exactly(fields, batch, text_len, samples):
    got, expected = _audio_len(fields, batch, text_len)
    assert got == expected == samples


def test_cli_run_rtf_arithmetic_flops_and_ort_parity(tmp: Path):
    (tmp / "t.yaml").write_text(yaml.safe_dump({**TINY, "batch_size": [2]}))
    p = run_cli("run", "t.yaml", "--out", "res", cwd=tmp)
    assert p.returncode == 0, p.stderr
    assert "RTF p50" in p.stdout and "J/audio_s" in p.stdout
    p = run_cli("run", "t.yaml", "--out", "res2", "--backend", "onnxruntime", cwd=tmp)
    assert p.returncode == 0, p.stderr
    for rec in (*read_records(tmp / "res"), *read_records(tmp / "res2")):
        m = rec["metrics"]
        assert m["audio_samples"] == 12 * 5 * 256 and m["sampling_rate_hz"] == 16000
        for s in rec["samples"]:
            assert s["audio_s"] == pytest.approx(12 * 5 * 256 / 16000)
            assert s["first_audio_s"] == s["synth_s"]  # non-streaming
        rtf = [s["synth_s"] / s["audio_s"] for s in rec["samples"]]
        assert m["rtf"]["mean"] == pytest.approx(sum(rtf) / len(rtf))
        assert m["audio_s_per_s"] == pytest.approx(2 * m["audio_s"]["mean"] * m["iterations"] / m["window_s"])
        assert m["flops_per_audio_s"] > 0 and m["j_per_audio_s"] > 0
    (ort,) = read_records(tmp / "res2")
    assert ort["backend"]["parity"]["max_rel_diff"] < ort["backend"]["parity"]["tolerance"]
    # FLOPs per audio second are the batch's FLOPs over the batch's audio: one utterance's figure (batch 2 gave twice it)
    spec = spec_from_dict(TINY)
    resolved = tw.resolve(spec)
    model = tw.build_model(resolved, spec, torch.device("cpu"), torch.float32)
    one = tw.count_flops(lambda: model(tw.token_ids(resolved, spec, {"batch_size": 1, "text_len": 12})), 12 * 5 * 256 / 16000)
    for rec in (*read_records(tmp / "res"), ort):
        assert rec["metrics"]["flops_per_audio_s"] == pytest.approx(one)


@pytest.mark.skipif(importlib.util.find_spec("piper") is None, reason="infra-bench[voice] not installed")
def test_real_voice_streams_real_text(tmp: Path):
    text = "First sentence here. Then a second one follows. And a third."
    (tmp / "v.yaml").write_text(yaml.safe_dump({"kind": "tts", "voice": "joe-us", "backend": "onnxruntime",
                                                "text": text, "text_len": [len(text)], "warmup": 0,
                                                "min_iters": 2, "min_time_s": 0.0}))
    p = run_cli("run", "v.yaml", "--out", "res", cwd=tmp)
    assert p.returncode == 0, p.stderr
    (rec,) = read_records(tmp / "res")
    m = rec["metrics"]
    assert rec["backend"]["engine"] == "piper-tts API" and rec["model"]["weights"] == "real"
    assert m["sampling_rate_hz"] == 22050 and m["audio_s"]["mean"] > 1.0
    assert 0 < m["first_audio_s"]["p50"] < m["synth_s"]["p50"]  # the first sentence arrives early
    assert m["audio_s"]["stdev"] == 0.0  # noise off: the same text gives the same length
    assert m["flops_per_audio_s"] is None
    # the backend's options reach the voice's session (piper's own default session ignored them)
    p = run_cli("run", "v.yaml", "--out", "res2", "--backend-option", "intra_op_threads=1",
                "--backend-option", "graph_optimization=basic", cwd=tmp)
    assert p.returncode == 0, p.stderr
    (rec,) = read_records(tmp / "res2")
    assert rec["backend"]["session_options"]["intra_op_num_threads"] == 1
    assert rec["backend"]["session_options"]["graph_optimization_level"] == "basic"


@pytest.mark.parametrize("fields, message", [
    ({"arch": None, "voice": "joe-us", "backend": "onnxruntime", "text": "  "}, "'text' is empty"),
    ({"speaking_rate": 0}, "field 'speaking_rate': Input should be greater than 0"),
    ({"arch": None, "voice": "jo-us"}, "unknown voice 'jo-us' (did you mean 'joe-us'?)"),
    ({"arch": "speecht5", "batch_size": 2}, "speecht5 synthesizes one utterance at a time"),
    ({"arch": "fastspeech2-conformer", "backend": "onnxruntime"}, "the onnxruntime backend runs vits models"),
    ({"text": "hello"}, "'text' applies to a real voice"),
    ({"arch": None, "voice": "joe-us", "backend": "onnxruntime", "frames_per_token": 20},
     "'frames_per_token' forces the durations of random-weight models; a real voice ('voice') predicts its own"),
    ({"arch": "vits"}, "unknown tts architecture 'vits'"),
    ({"arch": None, "voice": "joe-us", "backend": "onnxruntime", "ep": "cuda", "dtype": "fp16"},
     "a real voice runs in its file's precision, fp32"),
    # piper has no bound of its own: a billion characters failed after the build, as MemoryError
    ({"arch": None, "voice": "joe-us", "backend": "onnxruntime", "text_len": [60, 10**12]},
     ("text_len 1,000,000,000,000: a real voice speaks text_len characters, and one speech request carries at most "
      "4,096 (the /v1/audio/speech limit); lower text_len to 4,096 or less")),
])
def test_bad_tts_input_is_one_line(tmp: Path, fields, message):
    (tmp / "t.yaml").write_text(yaml.safe_dump({**TINY, **fields}))
    assert_one_line_error(run_cli("run", "t.yaml", "--out", "res", cwd=tmp), message)
    assert not (tmp / "res").exists()


def test_a_voice_takes_text_as_long_as_a_speech_request_carries():
    from infra_bench.spec.tts import SPEECH_INPUT_MAX_CHARS, TtsSpec

    assert TtsSpec(voice="joe-us", backend="onnxruntime", text_len=[SPEECH_INPUT_MAX_CHARS]).text_len == [4096]
    assert TtsSpec(arch="vits-tiny", text_len=[10_000]).text_len == [10_000]  # tokens of a random-weight model
