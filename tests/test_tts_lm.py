"""LLM-based speech (CSM, Dia): the catalog's full shapes build at their official parameter counts,
tiny CSM- and Dia-style models stream their first decoded chunk before the whole utterance is ready
and make exactly the forced number of codec frames, and Dia's delayed codebooks are realigned (the
planner's side is tests/test_speech_lm.py)."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.conftest import read_records, run_cli


@pytest.mark.parametrize("arch, params", [("csm-1b", 1_632_100_161),   # 1,552,791,552 + Mimi 79,308,609
                                          ("dia-1.6b", 1_687_781_353)])  # 1,611,160,576 + DAC 76,620,777
def test_speech_lms_build_at_their_official_parameter_counts(arch: str, params: int):
    import torch

    from infra_bench.backends.torch.tts_lm import build
    from infra_bench.spec.loader import spec_from_dict
    from infra_bench.workloads import tts as tw

    spec = spec_from_dict({"kind": "tts", "arch": arch}, "test")
    resolved = tw.resolve(spec)
    model, codec = build(resolved, spec, torch.device("meta"), torch.float32)
    assert sum(p.numel() for m in (model, codec) if m is not None for p in m.parameters()) == resolved.arch.params == params
    cc = model.config.codec_config if codec is None else codec.config
    hop = cc.frame_size if codec is None else cc.hop_length  # samples per codec frame: Mimi, DAC
    assert cc.sampling_rate == resolved.arch.sampling_rate and hop == resolved.arch.hop


def test_dia_delayed_codebooks_are_realigned():
    import torch

    from infra_bench.backends.torch.tts_lm import LmTtsExecutor

    ex = LmTtsExecutor.__new__(LmTtsExecutor)
    ex.delays = [0, 8, 9, 10, 11, 12, 13, 14, 15]
    codes = torch.arange(20)[:, None] * 100 + torch.arange(9)  # frame f, codebook c -> 100 f + c
    steps = torch.full((35, 9), -1)
    for c, d in enumerate(ex.delays):
        steps[d:d + 20, c] = codes[:, c]  # codebook c is written d steps late
    assert torch.equal(ex.undelay(steps[None], 0, 20)[0], codes)
    assert torch.equal(ex.undelay(steps[None], 4, 8)[0], codes[4:8])


def test_speech_lms_stream_their_first_chunk_before_the_utterance_and_calibrate(tmp: Path):
    """csm-tiny and dia-tiny stream; the csm record then fits the per-layer-step overhead on this CPU (apart
    from the TTS MFU fit), and predict with that file gives its measured RTF back, where the public fit
    does not."""
    import json

    from tests.conftest import write_cpu_profile

    write_cpu_profile(tmp)
    common = {"kind": "tts", "text_len": [8], "frames_per_token": 2, "warmup": 1, "min_iters": 2, "min_time_s": 0.0}
    (tmp / "c.yaml").write_text(yaml.safe_dump_all([{**common, "arch": "csm-tiny"}, {**common, "arch": "dia-tiny"}]))
    run = run_cli("run", "c.yaml", "--out", "res", "--device", "cpu", cwd=tmp)
    assert run.returncode == 0, run.stderr
    recs = {r["spec"]["arch"]: r for r in read_records(tmp / "res")}
    for arch, hop, rate in (("csm-tiny", 64, 24000), ("dia-tiny", 512, 44100)):
        r = recs[arch]
        m = r["metrics"]
        assert r["status"] == "ok" and r["backend"]["streaming"] is True, r.get("error")
        assert m["audio_samples"] == 8 * 2 * hop and m["sampling_rate_hz"] == rate  # 16 codec frames
        assert all(x["first_audio_s"] < x["synth_s"] for x in r["samples"])  # within each utterance
        assert m["lm_frames_per_s"]["mean"] > 0 and m["flops_per_audio_s"] > 0
    csm = recs["csm-tiny"]
    (tmp / "csm").mkdir()
    (tmp / "csm" / "records.jsonl").write_text(json.dumps(csm) + "\n")
    (tmp / "csm" / "run.json").write_bytes(next((tmp / "res").glob("*/run.json")).read_bytes())
    p = run_cli("calibrate", str(tmp / "csm"), "--out", "cal.json", "--profiles", "mine", cwd=tmp)
    assert p.returncode == 0, p.stderr
    assert "overhead ms per layer-step" in p.stdout
    data = json.loads((tmp / "cal.json").read_text())
    assert list(data["speech_lm_fits"]) == ["this_cpu|eager|fp32"] and data["media_fits"] == {}
    args = ("predict", "--model", "csm-tiny", "--hardware", "this_cpu", "--precision", "fp32", "--text-len", "8",
            "--json", "--profiles", "mine")
    mine = json.loads(run_cli(*args, "--calibration", "cal.json", cwd=tmp).stdout)
    public = json.loads(run_cli(*args, cwd=tmp).stdout)
    assert "calibrated on 1 run(s) of your own (this_cpu|eager|fp32)" in mine["notes"][0]
    assert mine["rtf_alone"] == pytest.approx(csm["metrics"]["rtf"]["mean"], rel=0.05)
    assert mine["overhead_per_layer_step_s"] != public["overhead_per_layer_step_s"]


def test_served_speech_from_a_speech_lm_arrives_in_chunks(tmp: Path):
    import numpy as np
    import torch

    from infra_bench.backends.torch.tts_lm import CHUNK_FRAMES, LmTtsExecutor, build
    from infra_bench.spec.loader import spec_from_dict
    from infra_bench.workloads import tts as tw

    spec = spec_from_dict({"kind": "tts", "arch": "csm-tiny", "frames_per_token": 1}, "test")
    resolved = tw.resolve(spec)
    ex = LmTtsExecutor(*build(resolved, spec, torch.device("cpu"), torch.float32), torch.device("cpu"), resolved, 1)
    chunks: list[bytes] = []
    ex.speak("hello there", lambda b: chunks.append(b) or True)  # 11 characters: 11 frames
    sizes = [len(c) // 2 for c in chunks]  # int16 samples
    assert sizes == [CHUNK_FRAMES * 64, CHUNK_FRAMES * 64, (11 - 2 * CHUNK_FRAMES) * 64]
    assert np.frombuffer(b"".join(chunks), dtype="<i2").size == 11 * 64


def test_cosyvoice2_streams_chunks_of_25_tokens_after_their_lookahead(tmp: Path):
    """60 forced speech tokens: chunks once 28 and 53 are out (25 voiced each), then the last 10; the
    first chunk comes before the utterance ends, and `run` builds the network the planner counts."""
    import numpy as np
    import torch

    from infra_bench.backends.torch.cosyvoice2 import CosyVoice2Executor, build
    from infra_bench.planner import speech_lm as sl
    from infra_bench.spec.loader import spec_from_dict
    from infra_bench.workloads import tts as tw

    (tmp / "c.yaml").write_text(yaml.safe_dump({"kind": "tts", "arch": "cosyvoice2-tiny", "text_len": [20],
                                                "frames_per_token": 3, "batch_size": [2], "warmup": 1,
                                                "min_iters": 2, "min_time_s": 0.0}))
    run = run_cli("run", "c.yaml", "--out", "res", cwd=tmp)
    assert run.returncode == 0, run.stderr
    (r,) = read_records(tmp / "res")
    m = r["metrics"]
    assert r["status"] == "ok" and r["backend"]["streaming"] is True and r["model"]["family"] == "cosyvoice2"
    assert m["audio_samples"] == 60 * 960 and m["sampling_rate_hz"] == 24000  # 25 tokens per audio second
    assert all(x["first_audio_s"] < x["synth_s"] for x in r["samples"])  # within each utterance
    assert m["lm_frames_per_s"]["mean"] > 0 and m["flops_per_audio_s"] > 0
    assert r["model"]["params"] == sl.count("cosyvoice2-tiny")["params"]

    spec = spec_from_dict({"kind": "tts", "arch": "cosyvoice2-tiny", "frames_per_token": 3}, "test")
    resolved = tw.resolve(spec)
    ex = CosyVoice2Executor(build(resolved, spec, torch.device("cpu"), torch.float32), torch.device("cpu"), resolved, 3)
    chunks: list[bytes] = []
    ex.speak("twenty characters...", lambda b: chunks.append(b) or True)  # 20 characters: 60 tokens
    assert [len(c) // 2 for c in chunks] == [25 * 960, 25 * 960, 10 * 960]
    assert np.frombuffer(b"".join(chunks), dtype="<i2").size == 60 * 960
