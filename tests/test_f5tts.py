"""F5-TTS: the composition builds at the model's parameter counts, its FLOPs per step are F5's own
(the published formula), a tiny shape runs end to end, and predict answers for the full model."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.conftest import read_records, run_cli, write_cpu_profile

pytest.importorskip("diffusers")


def test_f5_builds_at_its_parameter_counts_and_flops_per_step():
    import torch

    from infra_bench.measure.flops import counted
    from infra_bench.workloads import f5tts
    from infra_bench.workloads import tts as tw

    e = tw.catalog()["f5-tts-v1-base"]
    m = f5tts.build(e.config, "meta")
    assert sum(p.numel() for p in m.dit.parameters()) == 337_096_804  # counted on f5-tts 1.1.22's DiT
    assert sum(p.numel() for p in m.vocos.parameters()) == 13_531_650  # Vocos README: 13.5M
    assert e.params == 337_096_804 + 13_531_650
    n = 1024  # one step at N mel frames, conditional and text-dropped: 774.6e6 N + 180,224 N^2 + 0.57e9
    x = torch.zeros(1, n, 100, device="meta")
    step = counted(lambda: m.dit(x, x, torch.zeros(1, 40, dtype=torch.long, device="meta"),
                                 torch.zeros((), device="meta")))
    assert step == pytest.approx(774.6e6 * n + 180_224 * n * n + 0.57e9, rel=0.01)
    tiny = f5tts.build(tw.catalog()["f5-tts-tiny"].config, "meta")  # the planner's count: one step x NFE + Vocos
    ids = torch.zeros(1, 10, dtype=torch.long, device="meta")
    assert f5tts.flops(tiny, ids, 40) == counted(lambda: tiny(ids, 40))


def test_f5_tiny_runs_and_predict_answers_for_the_full_model(tmp: Path):
    (tmp / "f.yaml").write_text(yaml.safe_dump({"kind": "tts", "arch": "f5-tts-tiny", "text_len": [10],
                                                "frames_per_token": 4, "warmup": 0, "min_iters": 1, "min_time_s": 0.0}))
    run = run_cli("run", "f.yaml", "--out", "res", "--device", "cpu", cwd=tmp)
    assert run.returncode == 0, run.stderr
    (r,) = read_records(tmp / "res")
    m = r["metrics"]
    assert r["status"] == "ok" and r["model"]["family"] == "f5tts" and r["backend"]["streaming"] is False
    assert m["audio_samples"] == 10 * 4 * 256 and m["first_audio_s"]["mean"] == m["synth_s"]["mean"]
    assert m["flops_per_audio_s"] > 0
    from infra_bench.planner import calibration as cal
    from infra_bench.planner import media_model as mm
    from infra_bench.planner.profiles import load_hardware

    # calibrating on this record takes off the fixed time predict adds (4 steps x 2 ms), so it predicts it back
    profiles = load_hardware([write_cpu_profile(tmp)])
    points, _ = cal.media_points([r], profiles)
    assert [p.fixed_s for p in points] == [pytest.approx(4 * 2e-3)]
    fitted = cal.for_media({"media_fits": cal.fit_media(points)}, "tts", "this_cpu", None, "fp32")
    back = mm.predict_tts("f5-tts-tiny", profiles["this_cpu"], "fp32", 10, 4, calibration=fitted)
    assert back.latency_s == pytest.approx(m["synth_s"]["mean"], rel=1e-6)

    d = mm.predict_tts("f5-tts-v1-base", load_hardware()["nv_h100_sxm"], "bf16", 60).to_dict()
    n = 469 + 60 * 5  # the 5 s reference and the generated frames
    per_utterance = 32 * (774.6e6 * n + 180_224 * n * n + 0.57e9)
    assert d["fits"] and d["flops_per_unit"] * 60 * 5 * 256 / 24000 == pytest.approx(per_utterance, rel=0.01)
    assert d["efficiency"]["mfu"] == 0.37 and "diffusion transformer" in d["notes"][0]


def test_attention_on_a_cpu_is_counted_as_on_the_meta_device():
    """torch's counter has no formula for the CPU flash-attention kernel; ours gives it SDPA's, so a CPU
    run's FLOPs equal the planner's meta-device count."""
    import torch

    from infra_bench.measure.flops import counted

    q = torch.randn(1, 2, 64, 16)
    m = torch.zeros(1, 2, 64, 16, device="meta")
    cpu = counted(lambda: torch.nn.functional.scaled_dot_product_attention(q, q, q))
    assert cpu == counted(lambda: torch.nn.functional.scaled_dot_product_attention(m, m, m)) == 4 * 64 * 64 * 16 * 2
