"""Calibration round trips: a measured cell, predicted with its own fit, comes back."""
import json
import shutil
from pathlib import Path

import pytest

from infra_bench.planner import measurements as meas
from .conftest import assert_one_line_error, read_records, run_cli, write_cpu_profile, write_spec


def test_reference_measurements_map_to_the_catalog_and_profiles():
    aic, skipped = meas.aic_measurements()
    assert len(aic) > 3000 and {m.engine for m in aic} == {"vllm", "sglang", "trt-llm"}
    assert {m.hardware for m in aic} >= {"nv_h100_sxm", "nv_h200_sxm", "nv_b200", "nv_b300"}
    assert all(m.ttft_s > 0 and m.tpot_s > 0 and m.concurrency >= 1 for m in aic)
    assert any(m.precision == "int4" and m.hardware == "nv_h100_sxm" for m in aic)  # 4-bit weights on Hopper
    published, why = meas.published_measurements()
    assert {p.source.split()[1] for p in published} == {"S1", "S2", "S3", "S4", "S5", "S14"}
    assert any("burst load" in s for s in why)


def _with_ttft(tmp: Path, folder: str, *recs: tuple[dict, float]) -> None:
    """A copy of the run the records came from (under tmp/res) under tmp/folder, holding those (record, TTFT)
    records in that order, each with its mean TTFT set to the TTFT."""
    dest = tmp / folder / recs[0][0]["run_id"]
    shutil.copytree(tmp / "res" / recs[0][0]["run_id"], dest)
    lines = []
    for rec, ttft in recs:
        rec = json.loads(json.dumps(rec))
        rec["metrics"]["ttft_s"]["mean"] = ttft
        lines.append(json.dumps(rec))
    (dest / "records.jsonl").write_text("\n".join(lines) + "\n")


def test_calibrate_from_our_own_record_and_predict_it_back(tmp: Path):
    """A real gpt2-small run on this CPU, a user profile for this CPU, calibrate, predict the cell: the
    record's own category is refitted to it, so the cell comes back as measured. The profile is sized
    from the run: reading the weights takes half of what a step spends beyond the engine's fixed
    time, and the fp32 peak (1 / TPOT TFLOPS) makes the prompt's GEMMs a few percent of a step. The
    record's TTFT is set to 1.3 TPOT, so what it spends beyond a step falls to the per-request time
    whatever the machine's speed: measured, a 16-token prompt's TTFT is 1.1-1.2 TPOT here, a busy CI
    machine once recorded it below the TPOT (which no prefill can be), and a loaded one 8 TPOT at 64
    tokens (beyond the per-request time's bound). A record under one TPOT cannot come back, and
    calibrate says so."""
    write_spec(tmp, "s.yaml", arch="gpt2-small", prompt_len=[16], output_len=[8], min_iters=2, warmup=1)
    run = run_cli("run", "s.yaml", "--out", "res", "--device", "cpu", cwd=tmp)
    assert run.returncode == 0, run.stderr
    (rec,) = read_records(tmp / "res")
    params, tpot = rec["model"]["params"], rec["metrics"]["tpot_s"]["mean"]
    from infra_bench.planner.profiles import load_hardware, match_device
    from infra_bench.system import cpu_model

    if match_device(load_hardware(), cpu_model()) is None:  # no built-in profile for this CPU: the records cannot
        p = run_cli("calibrate", rec["run_id"], "--results", "res", "--out", "none.json", cwd=tmp)  # calibrate
        assert_one_line_error(p, "no profile matches device")  # and the error says how to give one
        assert p.stderr.rstrip().endswith("add a profile whose `match` names the device with --profiles DIR "
                                          "(docs/profiles.md, \"Your own profiles\")"), p.stderr
    _with_ttft(tmp, "mine_res", (rec, 1.3 * tpot))
    write_cpu_profile(tmp)
    prior = run_cli("predict", "--model", "gpt2-small", "--hardware", "this_cpu", "--precision", "fp32",
                    "--engine", "torch", "--input-len", "16", "--output-len", "8", "--json", "--profiles", "mine",
                    cwd=tmp)
    fixed = json.loads(prior.stdout)["efficiency"]["t_iter"]
    assert 0 < fixed < 0.5 * tpot
    write_cpu_profile(tmp, bandwidth_tbs=params * 4 / (0.5 * (tpot - fixed)) / 1e12, fp32_tflops=1.0 / tpot)
    p = run_cli("calibrate", rec["run_id"], "--results", "mine_res", "--out", "cal.json", "--profiles", "mine",
                cwd=tmp)
    assert p.returncode == 0 and p.stderr == "", p.stderr
    data = json.loads((tmp / "cal.json").read_text())
    groups = data["llm"]["values"]["mbu"]["hw|engine|precision|cls"]
    assert "this_cpu|torch|fp32|dense" in groups and len(groups) > 10  # ours beside the shipped ones
    assert data["misses"] == []
    out = run_cli("predict", "--model", "gpt2-small", "--hardware", "this_cpu", "--precision", "fp32",
                  "--input-len", "16", "--output-len", "8", "--calibration", "cal.json", "--engine", "torch",
                  "--json", "--profiles", "mine", cwd=tmp)
    assert out.returncode == 0, out.stderr
    pred = json.loads(out.stdout)
    assert pred["fit"]["tier"] == "fitted" and not pred["fit"]["not_measured"]
    assert pred["tpot_s"] == pytest.approx(tpot, rel=0.05)
    assert pred["ttft_s"] == pytest.approx(1.3 * tpot, rel=0.05)
    shipped = run_cli("predict", "--model", "llama-3.1-8b", "--hardware", "nv_h100_sxm", "--json", cwd=tmp)
    mine = run_cli("predict", "--model", "llama-3.1-8b", "--hardware", "nv_h100_sxm", "--json", "--calibration",
                   "cal.json", "--profiles", "mine", cwd=tmp)
    assert json.loads(shipped.stdout)["tpot_s"] == pytest.approx(json.loads(mine.stdout)["tpot_s"], rel=0.02)
    _with_ttft(tmp, "busy_res", (rec, 0.5 * tpot))
    p = run_cli("calibrate", rec["run_id"], "--results", "busy_res", "--out", "busy.json", "--profiles", "mine",
                cwd=tmp)
    assert p.returncode == 0 and "shorter than its TPOT" in p.stderr and "likely busy" in p.stderr, p.stderr
    # predict with that file says so too: its "fitted, all levels measured" alone would read as a clean fit
    out = run_cli("predict", "--model", "gpt2-small", "--hardware", "this_cpu", "--precision", "fp32",
                  "--input-len", "16", "--output-len", "8", "--calibration", "busy.json", "--engine", "torch",
                  "--profiles", "mine", cwd=tmp)
    assert out.returncode == 0 and "busy.json does not reproduce its own measurement of this case" in out.stdout


def _own_llama(folder: Path, layers: int) -> Path:
    """A small Llama of the user's own (save_pretrained: config.json and safetensors weights) whose shape no
    catalog model has: about 10M parameters, so that reading them is a good part of a CPU decode step, beside
    the engine's fixed time (a 64-wide one's step is little more than that time)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    LlamaForCausalLM(LlamaConfig(hidden_size=512, intermediate_size=1024, num_hidden_layers=layers,
                                 num_attention_heads=8, num_key_value_heads=4, vocab_size=1000)).save_pretrained(folder)
    assert list(folder.glob("*.safetensors"))
    assert meas.catalog_shape(json.loads((folder / "config.json").read_text())) is None
    return folder


def _run(tmp: Path, *models: dict) -> list[dict]:
    """The records of one real run on this CPU (16 prompt, 8 output tokens) under tmp/res, a spec per model (its
    fields), in that order: one process for both models below (each CLI process spends seconds importing)."""
    names = [write_spec(tmp, f"s{i}.yaml", arch=None, prompt_len=[16], output_len=[8], min_iters=2, warmup=1,
                        **fields).name for i, fields in enumerate(models)]
    run = run_cli("run", *names, "--out", "res", "--device", "cpu", cwd=tmp)
    assert run.returncode == 0, run.stderr
    return read_records(tmp / "res")


def test_calibrate_a_local_model_of_no_catalog_shape_and_predict_it_back(tmp: Path):
    """A run of a user's own model (a 4-layer Llama in no catalog) was skipped by calibrate ("has the shape of
    no planner catalog model"): it now calibrates as that local shape, under the id `predict --model PATH`
    gives the folder, and comes back as measured, as gpt2-small's run does above (the profile sized from the
    run the same way, the record's TTFT set to 1.3 TPOT for the same reason). Another folder of the same name
    (3 layers, bf16, its record busy) is calibrated beside it, first: it takes the name, this one its config's
    full path, and predict finds each folder's cases under the id it had, not by name."""
    mine = _own_llama(tmp / "mymodel", layers=4)
    other = _own_llama(tmp / "other" / "mymodel", layers=3)
    busy, rec = _run(tmp, {"model": "other/mymodel", "dtype": "bf16", "name": "other"},
                     {"model": "mymodel", "name": "mine"})  # names apart: one run
    params, tpot = rec["model"]["params"], rec["metrics"]["tpot_s"]["mean"]
    _with_ttft(tmp, "mine_res", (busy, 0.5 * busy["metrics"]["tpot_s"]["mean"]), (rec, 1.3 * tpot))
    write_cpu_profile(tmp)
    predict = ("predict", "--hardware", "this_cpu", "--engine", "torch", "--input-len", "16", "--output-len", "8",
               "--profiles", "mine")
    prior = run_cli(*predict, "--model", "mymodel", "--precision", "fp32", "--json", cwd=tmp)
    fixed = json.loads(prior.stdout)["efficiency"]["t_iter"]
    assert 0 < fixed < 0.5 * tpot
    write_cpu_profile(tmp, bandwidth_tbs=params * 4 / (0.5 * (tpot - fixed)) / 1e12, fp32_tflops=1.0 / tpot)
    p = run_cli("calibrate", rec["run_id"], "--results", "mine_res", "--out", "both.json",
                "--profiles", "mine", cwd=tmp)
    assert p.returncode == 0 and "shorter than its TPOT" in p.stderr, p.stderr
    config = str((mine / "config.json").resolve())
    assert f"note: a run of {mine.resolve()} (no catalog model has its shape) is calibrated as that local shape, " \
           f"'{config}'" in p.stderr
    data = json.loads((tmp / "both.json").read_text())
    assert "this_cpu|torch|fp32|dense" in data["llm"]["values"]["mbu"]["own: hw|engine|precision|cls"]
    assert data["local_models"] == {"mymodel": str((other / "config.json").resolve()), config: config}
    assert list(data["miss_cases"]) == ["mymodel|this_cpu|torch|bf16"]
    out = run_cli(*predict, "--model", "mymodel", "--precision", "fp32", "--calibration", "both.json", "--json",
                  cwd=tmp)
    assert out.returncode == 0, out.stderr
    pred = json.loads(out.stdout)
    assert pred["fit"]["tier"] == "fitted" and not pred["fit"]["not_measured"]
    assert pred["tpot_s"] == pytest.approx(tpot, rel=0.05)
    assert pred["ttft_s"] == pytest.approx(1.3 * tpot, rel=0.05)
    said = "both.json does not reproduce its own measurement of this case"
    for model, expected in (("other/mymodel", True), ("mymodel", False)):
        out = run_cli(*predict, "--model", model, "--precision", "bf16", "--calibration", "both.json", cwd=tmp)
        assert out.returncode == 0 and (said in out.stdout) == expected, (model, out.stdout, out.stderr)


def test_bad_calibration_file(tmp: Path):
    (tmp / "bad.json").write_text("{}")
    assert_one_line_error(run_cli("predict", "--model", "qwen3-8b", "--hardware", "nv_h100_sxm", "--calibration",
                                  "bad.json", cwd=tmp), "not an infra-bench calibration file")


def test_calibrate_from_an_endpoint_curve(tmp: Path):
    """A real loadtest against `infra-bench serve --arch gpt2-small` labelled with a profile of this
    CPU: its closed-loop points become decode points (bf16 and TP 1 assumed, and said); an
    open-loop point is skipped with the reason."""
    from .test_endpoints import start_server, stop_server

    write_cpu_profile(tmp)
    proc, url = start_server("--arch", "gpt2-small", cwd=tmp)
    try:
        for load in (("--concurrency", "1,2"), ("--rate", "2")):
            p = run_cli("loadtest", "--endpoint", url, "--model", "gpt2-small", *load, "--num-requests", "4",
                        "--input-len", "16", "--output-len", "8", "--hardware", "this_cpu", "--engine", "ours 1",
                        "--out", "res", cwd=tmp)
            assert p.returncode == 0, p.stderr
            assert "--hardware 'this_cpu' is no shipped profile id" in p.stderr  # it is in ./mine, said up front
    finally:
        stop_server(proc)
    runs = sorted(x.name for x in (tmp / "res").iterdir())
    p = run_cli("calibrate", *runs, "--results", "res", "--out", "new/cal.json", "--profiles", "mine", cwd=tmp)
    assert p.returncode == 0, p.stderr
    data = json.loads((tmp / "new/cal.json").read_text())  # its folder made, as report makes one
    # the precision the server reports (serve runs fp32 on a CPU); the TP it cannot report is assumed, and said
    assert "this_cpu|generic|fp32|dense" in data["llm"]["values"]["mbu"]["hw|engine|precision|cls"]
    assert "note: TP 1 assumed" in p.stderr and "bf16" not in p.stderr
    assert sum("endpoint " in line for line in p.stdout.splitlines()) == 2  # the two closed-loop points
    assert any("open-loop point" in s for s in data["skipped"]) and "not used: " in p.stderr
    # the open-loop run alone can calibrate nothing: one line, exit 2, not a copy of the shipped fit
    open_loop = next(r for r in runs if json.loads((tmp / "res" / r / "records.jsonl").read_text().splitlines()[0])
                     ["cell"]["load"] == "rate")
    assert_one_line_error(run_cli("calibrate", open_loop, "--results", "res", "--profiles", "mine", cwd=tmp),
                          "can calibrate the planner (1 record(s)): ")
    assert_one_line_error(run_cli("calibrate", cwd=tmp), "give the runs to calibrate with")


def test_served_model_names_map_to_the_catalog():
    from infra_bench.planner.measurements import catalog_model

    assert catalog_model("Qwen/Qwen2.5-0.5B-Instruct") == "qwen2.5-0.5b"
    assert catalog_model("meta-llama/Meta-Llama-3.1-8B-Instruct-FP8") == "llama-3.1-8b"
    assert catalog_model("mistralai/Mistral-7B-Instruct-v0.3") == "mistral-7b-v0.3"
    assert catalog_model("Qwen/Qwen3-235B-A22B-Instruct-2507") == "qwen3-235b-a22b"
    assert catalog_model("meta-llama/Llama-3.3-70B-Instruct") == "llama-3.1-70b"  # the same architecture
    assert catalog_model("my-private-llm") is None and catalog_model(None) is None


def test_calibration_file_of_the_previous_version_is_refused(tmp: Path):
    """A file made before the LLM fit gained its expert GEMM factor per generation x precision would miss
    that factor; it is refused in one line that says to make it again, not read with the factor missing."""
    (tmp / "old.json").write_text(json.dumps({"kind": "infra-bench calibration", "version": 6, "llm": {}}))
    assert_one_line_error(run_cli("predict", "--model", "qwen3-8b", "--hardware", "nv_h100_sxm", "--calibration",
                                  "old.json", cwd=tmp), "make it again with `infra-bench calibrate`")


def test_calibrate_refuses_records_that_are_not_records(tmp: Path):
    """A hand-edited or foreign records.jsonl stopped calibrate with an internal error (exit 1); each is now a
    one-line error naming the run and the record."""
    for name, line, fragment in (("a", "[1, 2]", "record 1 is not a JSON object"),
                                 ("b", '{"kind": "diffusion", "status": "ok"}', "is not an infra-bench record"),
                                 ("c", '{"schema_version": 99, "kind": "llm", "status": "ok"}', "schema version 99")):
        run = tmp / "res" / name
        run.mkdir(parents=True)
        (run / "run.json").write_text("{}")
        (run / "records.jsonl").write_text(line + "\n")
        assert_one_line_error(run_cli("calibrate", name, "--results", "res", "--out", "c.json", cwd=tmp), fragment)


def test_calibrate_given_a_file_says_it_takes_runs(tmp: Path):
    """A JSON file given as a run was reported as 'no run ... under results'."""
    (tmp / "notrec.json").write_text("{}")
    assert_one_line_error(run_cli("calibrate", "notrec.json", cwd=tmp), "notrec.json is a file; give a run id or a run folder")
