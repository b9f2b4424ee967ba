"""LLM-based speech (CSM): the catalog's full shape builds at its official parameter count, a tiny
CSM-style model streams its first decoded chunk before the whole utterance is ready and makes exactly
the forced number of codec frames, and predict says it does not model speech LMs yet."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.conftest import assert_one_line_error, read_records, run_cli


def test_csm_1b_builds_at_its_official_parameter_count():
    import torch
    import transformers as tf

    from infra_bench.workloads import tts as tw

    a = tw.catalog()["csm-1b"]
    with torch.device("meta"):
        m = tf.CsmForConditionalGeneration(tf.CsmConfig(**a.config))
    assert sum(p.numel() for p in m.parameters()) == a.params == 1_632_100_161  # 1,552,791,552 + Mimi 79,308,609
    assert m.config.codec_config.sampling_rate == a.sampling_rate and m.config.codec_config.frame_size == a.hop


def test_a_speech_lm_streams_its_first_chunk_before_the_utterance(tmp: Path):
    (tmp / "c.yaml").write_text(yaml.safe_dump({"kind": "tts", "arch": "csm-tiny", "text_len": [8], "frames_per_token": 2,
                                                "warmup": 1, "min_iters": 2, "min_time_s": 0.0}))
    run = run_cli("run", "c.yaml", "--out", "res", cwd=tmp)
    assert run.returncode == 0, run.stderr
    (r,) = read_records(tmp / "res")
    m = r["metrics"]
    assert r["status"] == "ok" and r["backend"]["streaming"] is True
    assert m["audio_samples"] == 8 * 2 * 64 and m["sampling_rate_hz"] == 24000  # 16 frames of 64 samples
    assert m["first_audio_s"]["max"] < m["synth_s"]["min"]
    assert m["lm_frames_per_s"]["mean"] > 0 and m["flops_per_audio_s"] > 0
    assert_one_line_error(run_cli("predict", "--model", "csm-1b", "--hardware", "nv_h100_sxm", cwd=tmp),
                          "csm-1b is a speech LM")


def test_served_speech_from_a_speech_lm_arrives_in_chunks(tmp: Path):
    import numpy as np
    import torch

    from infra_bench.backends.torch.tts_lm import CHUNK_FRAMES, LmTtsExecutor, build_model
    from infra_bench.spec.loader import spec_from_dict
    from infra_bench.workloads import tts as tw

    spec = spec_from_dict({"kind": "tts", "arch": "csm-tiny", "frames_per_token": 1}, "test")
    resolved = tw.resolve(spec)
    ex = LmTtsExecutor(build_model(resolved, spec, torch.device("cpu"), torch.float32), torch.device("cpu"),
                       resolved, 1)
    chunks: list[bytes] = []
    ex.speak("hello there", lambda b: chunks.append(b) or True)  # 11 characters: 11 frames
    sizes = [len(c) // 2 for c in chunks]  # int16 samples
    assert sizes == [CHUNK_FRAMES * 64, CHUNK_FRAMES * 64, (11 - 2 * CHUNK_FRAMES) * 64]
    assert np.frombuffer(b"".join(chunks), dtype="<i2").size == 11 * 64
