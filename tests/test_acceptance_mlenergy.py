"""The ML.ENERGY part of the acceptance check (benchmarks/acceptance_check.py): its rows are sourced and
self-consistent, and each is predicted at its own parts, layout and vLLM limits."""
from __future__ import annotations

import pytest

from infra_bench.planner import llm_model
from infra_bench.planner.fit import shipped
from infra_bench.planner.profiles import load_hardware
from infra_bench.planner.shapes import shapes

from .conftest import benchmark_script


def test_every_mlenergy_row_is_sourced_and_its_energy_is_its_power_over_its_tokens():
    """J per output token = the GPUs' summed power / output tokens per second, in every copied row."""
    ac = benchmark_script("acceptance_check")
    rows, hw = ac.read_rows(ac.MLENERGY), load_hardware()
    assert len(rows) >= 50
    for r in rows:
        assert r["model"] in shapes() and r["hardware"] in hw, r
        assert r["source"].startswith("ml-energy/leaderboard@") and f"max_num_seqs={r['max_num_seqs']}]" in r["source"]
        assert float(r["j_per_output_token"]) == pytest.approx(
            float(r["gpu_power_w"]) / float(r["output_tokens_per_s"]), rel=0.01), r
        assert int(r["tp"]) == int(r["gpus"]) and int(r["ep"]) in (1, int(r["gpus"]))


def test_a_row_is_predicted_as_a_closed_loop_of_its_running_sequences_under_its_limits():
    """Llama-3.1-70B on 2 x B200 at 32 sequences: the same prediction `predict` gives for that replica, with
    vLLM held to 32 running sequences and an 8,192-token budget; power summed over both GPUs."""
    ac = benchmark_script("acceptance_check")
    row = next(r for r in ac.read_rows(ac.MLENERGY) if r["model"] == "llama-3.1-70b" and r["hardware"] == "nv_b200"
               and r["max_num_seqs"] == "32")
    done = ac.mlenergy_rows([row])[0]
    rep = llm_model.replica("llama-3.1-70b", load_hardware()["nv_b200"], "bf16", 2, engine="vllm", max_seqs=32,
                            token_budget=8192)
    p = llm_model.predict(rep, shipped(), 32, ac.MLENERGY_INPUT_LEN, round(float(row["output_len"])))
    assert p.running == 32 and done["fits"]
    assert done["predicted"]["j"] == pytest.approx(p.energy["j_per_token"])
    assert done["predicted"]["w"] == pytest.approx(2 * p.energy["avg_power_w"])
    assert done["errors"]["tok"] == pytest.approx(p.output_tokens_per_s / float(row["output_tokens_per_s"]) - 1)


def test_every_media_row_is_sourced_and_self_consistent():
    """The text-to-image and text-to-video rows: one GPU, a catalog model and profile, a source naming the file and
    configuration; the rate is the batch over its seconds, and the energy per unit the power over the rate."""
    ac = benchmark_script("acceptance_check")
    rows, hw = ac.read_rows(ac.MLENERGY_MEDIA), load_hardware()
    assert len(rows) >= 60 and {r["task"] for r in rows} == {"text-to-image", "text-to-video"}
    for r in rows:
        assert r["hardware"] in hw and r["source"].startswith("ml-energy/leaderboard@"), r
        assert f"num_gpus=1,batch_size={r['batch']}]" in r["source"], r
        rate = float(r["units_per_s"])
        assert rate == pytest.approx(int(r["batch"]) / float(r["s_per_batch"]), rel=0.01), r
        assert float(r["j_per_unit"]) == pytest.approx(float(r["gpu_power_w"]) / rate, rel=0.01), r


@pytest.mark.parametrize("model,hardware,batch,args", [
    ("flux-1-dev", "nv_h100_sxm", "4", ("--resolution", "1024", "--steps", "50")),
    ("wan2.1-t2v-14b", "nv_b200", "2", ("--size", "832x480", "--frames", "81", "--steps", "50"))])
def test_a_media_row_is_predicted_as_the_predict_command_would(tmp, model, hardware, batch, args):
    """The check's prediction of a row is what `infra-bench predict --batch B` prints for the same request."""
    import json

    from .conftest import run_cli

    ac = benchmark_script("acceptance_check")
    row = next(r for r in ac.read_rows(ac.MLENERGY_MEDIA) if r["model"] == model and r["hardware"] == hardware
               and r["batch"] == batch)
    done = ac.mlenergy_media_rows([row])[0]
    p = run_cli("predict", "--model", model, "--hardware", hardware, "--precision", "bf16", "--batch", batch, *args,
                "--json", cwd=tmp)
    assert p.returncode == 0, p.stderr
    assert done["fits"] and done["predicted"] == pytest.approx(json.loads(p.stdout)["units_per_s_per_device"])
    assert done["error"] == pytest.approx(done["predicted"] / float(row["units_per_s"]) - 1)
