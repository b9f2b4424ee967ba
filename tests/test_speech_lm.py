"""Speech LMs in predict and plan: the shipped stage table is what the built modules give, one step is
priced as the iteration model plus the fitted overhead, the fit and its held-out errors are those in
docs/planner.md, predict answers for each full-size model, plan sizes by LM batching, and bad input
is a one-line error."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from infra_bench.planner import profiles as pr
from infra_bench.planner import speech_lm as sl
from tests.conftest import assert_one_line_error, run_cli

HW = pr.load_hardware()


def test_the_shipped_table_is_the_count_of_the_built_modules():
    table = json.loads((Path(sl.__file__).parents[2] / "workloads" / "reference" / sl.TABLE).read_text())
    fresh = sl.count("dia-1.6b")
    assert fresh["params"] == table["dia-1.6b"]["params"] == 1_687_781_353
    assert fresh["stages"] == table["dia-1.6b"]["stages"]
    assert fresh["decoder_flops_per_audio_s"] == pytest.approx(table["dia-1.6b"]["decoder_flops_per_audio_s"])
    cosy = sl.count("cosyvoice2-0.5b")  # the composition run builds, counted on the meta device
    assert cosy["params"] == table["cosyvoice2-0.5b"]["params"] and cosy["stages"] == table["cosyvoice2-0.5b"]["stages"]
    assert cosy["decoder_flops_per_audio_s"] == pytest.approx(table["cosyvoice2-0.5b"]["decoder_flops_per_audio_s"])
    csm = sl.get("csm-1b")
    assert csm.params == 1_632_100_161 and [s.steps_per_frame for s in csm.stages] == [1, 31]


def test_one_step_is_the_roofline_plus_the_overhead_of_every_layer_step():
    """CSM at one stream: 16 backbone layers once and 4 depth-decoder layers 31 times per frame, 12.5 frames
    per audio second; the overhead adds frame rate x layer-steps x overhead, and the rest is at least the
    weights read at 0.7 of the bandwidth."""
    c = sl.Costs(sl.get("csm-1b"), HW["nv_h100_sxm"], "bf16", 60, 24.0)
    base, with_overhead = float(c.lm_rtf(1, 0.0)), float(c.lm_rtf(1, 1e-3))
    assert with_overhead - base == pytest.approx(12.5 * (16 + 31 * 4) * 1e-3)
    weights = sum(s.matmul_params * s.steps_per_frame for s in c.lm.stages) * 2
    assert base >= 12.5 * weights / (3.35e12 * 0.7)
    assert float(c.lm_rtf(8, 0.0)) > base  # eight streams read more KV cache per step


def test_the_fit_and_its_held_out_errors_are_the_documented_ones():
    assert sl.overheads()["eager"] == pytest.approx(0.309e-3, rel=0.01)
    assert sl.overheads()["compiled"] == pytest.approx(0.115e-3, rel=0.01)
    assert sl.batch_exponent() == pytest.approx(0.556, abs=0.001)
    rows = sl.held_out()
    loo = [abs(r["error"]) for r in rows if r["split"] == "leave one model out"]
    assert len(loo) == 8 and np.median(loo) == pytest.approx(0.24, abs=0.01)
    assert sl.interval() == 0.6
    doc = (Path(sl.__file__).parents[2] / "docs" / "planner.md").read_text()
    for r in rows:
        if r["batch"] == 1:
            assert f"{r['error']:+.0%} | leave one model out" in doc, r


@pytest.mark.parametrize("model", ["csm-1b", "dia-1.6b", "cosyvoice2-0.5b"])
def test_predict_answers_for_each_full_size_speech_lm(model: str, tmp: Path):
    p = run_cli("predict", "--model", model, "--hardware", "nv_h100_sxm", "--concurrency", "4", "--json", cwd=tmp)
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    assert d["fits"] and d["streams"] == 4 and d["rtf"] > d["rtf_alone"] > 0
    assert d["audio_s_per_s"] == pytest.approx(4 / d["rtf"])
    assert 0 < d["first_audio_s"] < 2 and d["max_streams_realtime"] >= 1 and d["interval"] == 0.6


def test_lm_batching_serves_more_streams_than_one_at_a_time():
    svc = {"name": "voice", "kind": "tts", "model": "dia-1.6b", "engine": "compiled", "precision": "bf16",
           "traffic": {"concurrent_streams": 40}, "slo": {"rtf": 1.0}}
    from infra_bench.planner.demand import demand_from_dict
    from infra_bench.planner.sizing import plan

    result = plan(demand_from_dict({"services": [svc]}), HW, ["nv_h100_sxm"])
    (o,) = result.candidates[0].options
    alone = o.latency["rtf_alone"]
    assert o.method == "LM batching" and o.feasible
    assert o.capacity > int(1.0 / alone)  # processor sharing would give floor(SLO / RTF alone)
    assert o.latency["rtf_at_capacity"] <= 1.0
    c = sl.Costs(sl.get("dia-1.6b"), HW["nv_h100_sxm"], "bf16", 60, 24.0)
    assert float(c.rtf(int(o.capacity) + 1, sl.overheads()["compiled"])) > 1.0  # one more stream misses it
    assert o.replicas == int(np.ceil(40 / (o.capacity * 0.8))) + 1  # default headroom 20%, N+1


def test_speech_lm_bad_input_is_one_line(tmp: Path):
    assert_one_line_error(run_cli("predict", "--model", "dia-1.6b", "--hardware", "nv_h100_sxm", "--engine", "vllm",
                                  cwd=tmp), "use --engine eager")
    assert_one_line_error(run_cli("predict", "--model", "csm-1b", "--hardware", "nv_h100_sxm", "--precision", "fp8",
                                  cwd=tmp), "not offered for speech LMs")
    # an utterance beyond the model's positions (Dia: 3,072 frames and codebook delay; CSM: 2,048 for text and
    # frames), which was priced as if the context allowed it: refused with the longest that fits
    assert_one_line_error(run_cli("predict", "--model", "dia-1.6b", "--hardware", "nv_h100_sxm", "--text-len", "89",
                                  cwd=tmp), "dia-1.6b's context is 3,072 positions and an utterance of 89 text tokens "
                                            "(35.6 s of audio) needs 3,082: lower --text-len to at most 88")
    sl.get("dia-1.6b").check_length(88, "--text-len")
    from infra_bench.errors import UserError
    from infra_bench.planner.demand import demand_from_dict
    from infra_bench.planner.sizing import plan

    svc = {"name": "voice", "model": "csm-1b", "text_len": 342, "traffic": {"concurrent_streams": 4}, "slo": {"rtf": 1}}
    with pytest.raises(UserError, match=r"voice: csm-1b's context is 2,048 positions .* lower text_len to at most 341"):
        plan(demand_from_dict({"services": [svc]}), HW, ["nv_h100_sxm"])


def test_speech_lm_plan_lists_a_part_without_bandwidth_and_names_what_caps_the_batch(tmp: Path):
    """A speech LM's steps read its weights at the memory bandwidth: a part whose profile has none (ali_ppu) is
    listed as lacking it, and the others are planned (its error ended the whole plan, every part unranked). The
    why table's "capped by" names what stops one stream more."""
    from infra_bench.planner.demand import demand_from_dict
    from infra_bench.planner.sizing import plan

    svc = {"name": "voice", "model": "cosyvoice2-0.5b", "traffic": {"concurrent_streams": 20},
           "slo": {"rtf": 0.5, "first_audio_p95_s": 0.8}}
    result = plan(demand_from_dict({"services": [svc]}), HW, ["ali_ppu", "nv_l4"])
    by_id = {c.hardware: c for c in result.candidates}
    (o,) = by_id["nv_l4"].options
    # what stops one stream more: the RTF SLO (20 GB of KV room holds hundreds of streams); this RTF sat under
    # 0.9 of the SLO at the capacity, so the label read the streams' KV cache
    c = sl.Costs(sl.get("cosyvoice2-0.5b"), HW["nv_l4"], "fp16", 60, 24.0)
    assert float(c.rtf(int(o.capacity) + 1, sl.overheads()["eager"])) > 0.5 > o.latency["rtf_at_capacity"]
    assert o.binds == "RTF SLO at the batch" and "binds" not in o.latency
    assert not by_id["ali_ppu"].feasible and "lacks memory bandwidth" in by_id["ali_ppu"].reason
    assert_one_line_error(run_cli("predict", "--model", "cosyvoice2-0.5b", "--hardware", "ali_ppu", cwd=tmp),
                          "ali_ppu lacks memory_bandwidth_tbs in its profile")


@pytest.mark.parametrize("hw", ["nv_l20", "hw_300i_duo"])
def test_plan_and_predict_price_a_speech_lm_in_the_same_default_precision(hw: str):
    """predict priced a speech LM in bf16 and plan in fp16 (the TTS default), so a calibration of bf16 runs moved
    predict and not plan, and a part with no bf16 peak (the 310P) was predicted in a precision it lacks. Both now
    take speech_lm.default_precision: bf16, fp16 where the part has only an fp16 peak."""
    from infra_bench.planner import calibration as cal
    from infra_bench.planner.demand import demand_from_dict
    from infra_bench.planner.sizing import plan
    from infra_bench.report.predict import tts

    part = HW[hw]
    want = "fp16" if hw == "hw_300i_duo" else "bf16"
    assert sl.default_precision(part) == want
    point = {"model": "cosyvoice2-0.5b", "hardware": hw, "precision": want, "mode": "eager", "batch": 1, "rtf": 0.3,
             "overhead_s": 3 * sl.overheads()["eager"], "source": "a run of your own"}
    data = cal.calibrate(None, speech=[point])
    p, _ = tts("cosyvoice2-0.5b", part, {"engine": "auto", "precision": None, "text_len": 60, "concurrency": 1},
               data, "mine.json")
    assert p.precision == want and not any("publishes no bf16 peak" in n for n in p.notes), p.notes
    svc = {"name": "voice", "model": "cosyvoice2-0.5b", "traffic": {"concurrent_streams": 4}, "slo": {"rtf": 1.0}}
    (o,) = plan(demand_from_dict({"services": [svc]}), HW, [hw], calibration=data, confirm_top=0).candidates[0].options
    assert o.precision == want and o.calibrated
    assert o.latency["rtf_alone"] == pytest.approx(p.rtf_alone)
