"""The CLI end to end, as a user runs it: real subprocesses, real tiny models."""
import json
from pathlib import Path

import pytest

from infra_bench.engine import NO_OWN_CODE_NOTE
from infra_bench.results import Record
from .conftest import assert_one_line_error as _one_line_error
from .conftest import read_records, run_cli, write_spec


def test_run_prints_the_table_and_writes_valid_records(tmp: Path):
    spec = write_spec(tmp, batch_size=[1, 2])
    p = run_cli("run", str(spec), "--out", "res", "--device", "cpu", cwd=tmp)
    assert p.returncode == 0, p.stderr
    for column in ("TTFT p50 ms", "TPOT p50 ms", "out tok/s", "RSS MiB", "J/token", "energy source"):
        assert column in p.stdout
    assert "weights: random" in p.stdout and "records: " in p.stdout
    records = read_records(tmp / "res")
    assert len(records) == 2
    for r in records:
        Record(**r)  # validates the schema
        m = r["metrics"]
        assert r["status"] == "ok" and r["schema_version"] == 1 and r["model"]["weights"] == "random"
        assert m["ttft_s"]["n"] == len(r["samples"]) >= 3
        assert all(len(s["itl_s"]) == 7 for s in r["samples"])
        assert m["ttft_s"]["mean"] < m["e2e_s"]["mean"]
        assert m["output_tokens"] == m["iterations"] * r["cell"]["batch_size"] * 8
        assert m["energy_source"] in ("rapl", "estimated") and m["j_per_token"] > 0
        assert m["host_peak_rss_bytes"] > 0 and r["settings"]["timer"] == "perf_counter_ns"
        assert r["environment"]["libraries"]["torch"]

    run_id = records[0]["run_id"]
    listed = run_cli("results", "list", "--out", "res", "--json", cwd=tmp)
    assert json.loads(listed.stdout)[0]["ok"] == 2 and json.loads(listed.stdout)[0]["kind"] == "run"
    table = run_cli("results", "list", "--out", "res", cwd=tmp).stdout.splitlines()
    assert table[0].split() == ["run", "kind", "created", "cells", "specs"] and " run " in table[2]
    _one_line_error(run_cli("results", "list", "--out", "nowhere", cwd=tmp), "no results folder nowhere")
    shown = run_cli("results", "show", run_id, "--out", "res", cwd=tmp)
    assert shown.returncode == 0 and "2 of 2 cells recorded" in shown.stdout and "TTFT p50 ms" in shown.stdout
    as_json = run_cli("results", "show", run_id, "--out", "res", "--json", cwd=tmp)
    assert [r["cell_id"] for r in json.loads(as_json.stdout)] == [r["cell_id"] for r in records]


def test_json_output_and_cli_overrides(tmp: Path):
    spec = write_spec(tmp, min_iters=50)
    p = run_cli("run", str(spec), "--out", "res", "--json", "--min-iters", "2", "--warmup", "0", cwd=tmp)
    assert p.returncode == 0, p.stderr
    (rec,) = json.loads(p.stdout)
    assert rec["spec"]["min_iters"] == 2 and rec["metrics"]["iterations"] >= 2
    assert rec["device"]["name"] == "cpu"  # auto resolved on a machine without accelerators
    # a time cap that ends a cell before min_iters: said in the record and the table, not a plain ok; and
    # --trust-remote-code, which a built-in architecture leaves unused: said under the table and in the record
    p = run_cli("run", str(spec), "--out", "cut", "--max-time", "0.001", "--warmup", "0", "--trust-remote-code",
                cwd=tmp)
    assert p.returncode == 0, p.stderr
    (rec,) = read_records(tmp / "cut")
    assert rec["settings"]["stop_reason"] == "max_time" and rec["metrics"]["iterations"] < 50
    assert any(n.startswith("cut short: max_time_s 0.001 s ended it after") for n in rec["notes"])
    assert NO_OWN_CODE_NOTE in rec["notes"] and f"note: {NO_OWN_CODE_NOTE}" in p.stdout.splitlines()
    assert p.stdout.splitlines()[2].rstrip().endswith("cut short")  # status (a busy CI machine adds "busy" first)


@pytest.mark.parametrize("setup, args, fragment", [
    (None, ["run", "missing.yaml"], "spec file not found: missing.yaml"),
    ("bad_yaml", ["run", "s.yaml"], "invalid YAML at line 3, column 6"),
    ({"bach_size": [1]}, ["run", "s.yaml"], "unknown field 'bach_size' (did you mean 'batch_size'?)"),
    ({"arch": "lama-tiny"}, ["run", "s.yaml"], "unknown architecture 'lama-tiny' (did you mean 'llama-tiny'?)"),
    ({}, ["run", "s.yaml", "--backend", "torc"], "unknown backend 'torc' (did you mean 'torch'?)"),
    ({}, ["run", "s.yaml", "--device", "gpu"], "unknown device 'gpu'"),
    ({"arch": None, "model": "nowhere"}, ["run", "s.yaml"], "model path not found"),
    ({"dtype": "int4"}, ["run", "s.yaml"], "field 'dtype'"),
    ({}, ["run", "--resume", "nope"], "no run 'nope'"),
    ({}, ["run", "--resume", "nope", "--trust-remote-code"], "--resume takes the specs and settings from the run"),
    ({}, ["run", "s.yaml", "--min-iters", "0"], "Invalid value for '--min-iters'"),
    ({"min_time_s": 1.0}, ["run", "s.yaml", "--max-time", "0.5"],
     ("max_time_s 0.5 is below min_time_s 1: the cap would end each cell at 0.5 s, before min_time_s is reached; "
      "raise max_time_s (--max-time) to at least 1 or lower min_time_s (--min-time)")),
    ({}, ["run", "s.yaml", "--nope"], "No such option '--nope'"),
])
def test_bad_input_gives_one_line_and_exit_2(tmp: Path, setup, args, fragment):
    if setup == "bad_yaml":
        (tmp / "s.yaml").write_text("kind: llm\narch: [llama-tiny\n  - x: :\n")
    elif setup is not None:
        write_spec(tmp, "s.yaml", **setup)
    p = run_cli(*args, "--out", "res", cwd=tmp)
    _one_line_error(p, fragment)
    assert not list((tmp / "res").glob("*/records.jsonl")) if (tmp / "res").exists() else True


def test_a_prompt_past_the_context_is_refused_with_no_warm_up(tmp: Path):
    """With --warmup 0 no request runs before the measured ones, so the length check cannot lean on a first
    warm-up: the context is checked when the run is planned (before a run folder exists), on both backends,
    compiled or not, and for a local folder too; the CLI prints that UserError as one line, exit 2."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from .conftest import refused_before_running

    long = {"kind": "llm", "arch": "llama-tiny", "prompt_len": 2100, "output_len": 8, "warmup": 0}
    refused_before_running(long, "spec 'llama-tiny': prompt_len + output_len = 2108 exceeds the model's 2048 "
                                 "positions; use shorter prompt_len or output_len", tmp / "torch")
    refused_before_running({**long, "backend": "onnxruntime"}, "2108 exceeds the model's 2048", tmp / "ort")
    refused_before_running({**long, "compile": "default"}, "2108 exceeds the model's 2048", tmp / "compiled")
    tiny = GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=64, n_positions=32, bos_token_id=0, eos_token_id=0)
    GPT2LMHeadModel(tiny).save_pretrained(tmp / "gpt2")
    refused_before_running({**long, "arch": None, "model": str(tmp / "gpt2"), "prompt_len": 30, "output_len": 4},
                           "prompt_len + output_len = 34 exceeds the model's 32 positions", tmp / "local")


def test_device_not_present(tmp: Path):
    import torch
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    write_spec(tmp, "s.yaml")
    _one_line_error(run_cli("run", "s.yaml", "--device", "cuda", cwd=tmp), "device 'cuda' is not present")
    _one_line_error(run_cli("run", "s.yaml", "--device", "npu", cwd=tmp), "device 'npu' is not present")


def test_local_checkpoint_folder(tmp: Path):
    """A real save_pretrained folder runs, and its record names the path and a content hash."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM
    cfg = AutoConfig.for_model("llama", hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                               num_attention_heads=4, num_key_value_heads=2, vocab_size=1000)
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(cfg).save_pretrained(tmp / "ckpt")
    write_spec(tmp, "s.yaml", arch=None, model="ckpt", name="mine")
    p = run_cli("run", "s.yaml", "--out", "res", cwd=tmp)
    assert p.returncode == 0, p.stderr
    (rec,) = read_records(tmp / "res")
    assert rec["model"]["weights"] == "checkpoint" and rec["model"]["path"] == str((tmp / "ckpt").resolve())
    assert rec["model"]["weights_hash"].startswith("sha256:")
    assert [n for n in rec["notes"] if not n.startswith("machine busy")] == []  # a busy CI machine may add that one
    assert "Loading weights" not in p.stderr  # transformers' progress bar: chatter, as its warnings are

    (tmp / "pickled").mkdir()
    (tmp / "pickled" / "config.json").write_text((tmp / "ckpt" / "config.json").read_text())
    (tmp / "pickled" / "pytorch_model.bin").write_bytes(b"\x80\x04")
    write_spec(tmp, "p.yaml", arch=None, model="pickled")
    _one_line_error(run_cli("run", "p.yaml", "--out", "res", cwd=tmp), "pickled weights are not loaded")

    config = json.loads((tmp / "ckpt" / "config.json").read_text())
    (tmp / "ckpt" / "config.json").write_text(json.dumps({**config, "auto_map": {"AutoModel": "x.Y"}}))
    _one_line_error(run_cli("run", "s.yaml", "--out", "res2", cwd=tmp), "pass --trust-remote-code")


def test_sysinfo_without_nvml(tmp: Path):
    p = run_cli("sysinfo", "--json", cwd=tmp)
    assert p.returncode == 0, p.stderr
    info = json.loads(p.stdout)
    assert info["host"]["cpu_logical_cores"] >= 1 and info["libraries"]["torch"]
    assert "CPUExecutionProvider" in info["onnxruntime"]["providers"]
    assert info["accelerators"]["npu"]["count"] == 0 or info["accelerators"]["npu"]["devices"]
    # pynvml not installed at all: sysinfo still works and says why NVML is absent
    blocked = run_cli("sysinfo", "--json", cwd=tmp,
                      python_args=("-c", "import sys, runpy; sys.modules['pynvml'] = None; "
                                         "sys.argv = ['infra-bench', 'sysinfo', '--json']; "
                                         "runpy.run_module('infra_bench', run_name='__main__')"))
    assert blocked.returncode == 0, blocked.stderr
    nvml = json.loads(blocked.stdout)["accelerators"]["nvml"]
    assert nvml["available"] is False and "nvidia-ml-py is not installed" in nvml["reason"]
    text = run_cli("sysinfo", cwd=tmp)
    assert text.returncode == 0 and "nvml" in text.stdout and "cuda" in text.stdout
