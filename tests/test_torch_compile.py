"""The compiled torch path: a static KV cache and torch.compile of the decode step, on the CPU
(inductor generates C++ with the machine's g++). Compile time is recorded apart from the timed
iterations, parity against the eager loop is recorded, and a compiler failure is a failed record."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import assert_one_line_error, read_records, run_cli, write_spec


def test_a_compiled_cell_records_compile_time_parity_and_its_label(tmp: Path):
    spec = write_spec(tmp, min_iters=3, warmup=1)
    p = run_cli("run", str(spec), "--compile", "default", "--out", "res", cwd=tmp, timeout=600)
    assert p.returncode == 0, p.stderr
    [r] = read_records(tmp / "res")
    c = r["settings"]["compile"]
    assert r["cell_id"] == "llama-tiny/torch+compile-default/cpu/fp32/b1-p16-o8"
    assert c["mode"] == "default" and c["compile_s"] > 0 and c["warmup_iters"] >= 1 and c["settled"]
    assert c["parity"]["checked"] and c["parity"]["max_rel_diff"] <= c["parity"]["tolerance"]
    assert c["parity"]["top1_agreement"] == 1.0
    # the timed iterations are the stopping rule's own: compiling ran before them, apart
    assert r["metrics"]["iterations"] == len(r["samples"]) == 3
    assert r["backend"]["compile"] == "default" and "StaticCache" in r["backend"]["loop"]
    assert "torch+compile:default" in p.stdout


def test_a_compiler_failure_is_a_failed_record_and_the_next_cell_runs(tmp: Path):
    """A g++ that cannot compile (first on PATH) and an empty inductor cache: compiling fails for
    real, the compiled spec's cell is a failed record with the reason, the eager spec still runs."""
    fake = tmp / "bin"
    fake.mkdir()
    (fake / "g++").write_text("#!/bin/sh\necho 'g++: fatal error: no compiler here' >&2\nexit 1\n")
    (fake / "g++").chmod(0o755)
    compiled = write_spec(tmp, "compiled.yaml", name="compiled", compile="default", min_iters=2)
    eager = write_spec(tmp, "eager.yaml", name="eager", min_iters=2)
    env = {"PATH": f"{fake}{os.pathsep}{os.environ['PATH']}", "TORCHINDUCTOR_CACHE_DIR": str(tmp / "inductor"),
           "TORCHINDUCTOR_FX_GRAPH_CACHE": "0"}
    p = run_cli("run", str(compiled), str(eager), "--json", "--out", "res", cwd=tmp, env=env, timeout=600)
    assert p.returncode == 1, p.stderr
    bad, good = json.loads(p.stdout)
    assert bad["status"] == "failed" and bad["error"].startswith("RuntimeError: torch.compile (default) failed:")
    assert len(bad["error"].splitlines()) == 1
    assert good["status"] == "ok" and good["workload"] == "eager"


def test_compile_input_errors_are_one_line(tmp: Path):
    spec = write_spec(tmp, compile="default", backend="onnxruntime")
    assert_one_line_error(run_cli("run", str(spec), cwd=tmp), "'compile' applies to backend torch, not onnxruntime")
    tts = tmp / "tts.yaml"
    tts.write_text(json.dumps({"kind": "tts", "arch": "vits-tiny"}))
    assert_one_line_error(run_cli("run", str(tts), "--compile", "default", cwd=tmp),
                          "--compile applies to llm specs")
    # beside an llm spec, --compile leaves a tts spec eager: the terminal says so before anything runs (the
    # absent device then stops it, so nothing is compiled here)
    p = run_cli("run", str(write_spec(tmp, "llm.yaml")), str(tts), "--compile", "default", "--device", "cuda", cwd=tmp)
    assert p.returncode == 2 and p.stderr.startswith("note: --compile applies to llm specs; vits-tiny runs as its "
                                                     "kind runs (no compiled path)\n")
    served = write_spec(tmp, "served.yaml", compile="default")
    assert_one_line_error(run_cli("serve", "--spec", str(served), "--port", "0", cwd=tmp),
                          "serve runs the eager decode loop")


def test_reduce_overhead_off_cuda_is_refused_not_recorded_as_its_own_mode(tmp: Path):
    """reduce-overhead is default plus CUDA graphs; on the CPU it ran as default under another label."""
    spec = write_spec(tmp, device="cpu")
    assert_one_line_error(run_cli("run", str(spec), "--compile", "reduce-overhead", "--out", "res", cwd=tmp),
                          "compile: reduce-overhead differs from default only by CUDA graphs, which cpu has not")
    assert not (tmp / "res").exists()


@pytest.mark.filterwarnings("ignore:`torch.jit.script_method`:DeprecationWarning")  # inductor's own import
def test_each_cell_shape_is_compiled_past_dynamo_recompile_limit(monkeypatch):
    """dynamo keeps `recompile_limit` (8) graphs per code object and past it runs the step eagerly without a
    word: a grid's ninth shape was timed eager under the compiled label. A limit of 1 stands in for 8 here."""
    import torch
    from torch._dynamo.utils import counters

    from infra_bench.backends.torch import TorchLlmRunner
    from infra_bench.devices import select_device
    from infra_bench.spec import spec_from_dict
    from infra_bench.workloads import llm

    monkeypatch.setattr(torch._dynamo.config, "recompile_limit", 1)
    spec = spec_from_dict({"arch": "gpt2-tiny", "compile": "default"})
    probe = select_device("cpu")
    runner = TorchLlmRunner(llm.build(spec, llm.resolve(spec), probe.torch_device), probe, "default")
    for prompt_len in (4, 5):
        graphs = counters["stats"]["unique_graphs"]
        runner.warm(llm.prompt_tokens(1, prompt_len, 100, 0, probe.torch_device), 3)
        assert counters["stats"]["unique_graphs"] > graphs, f"prompt_len {prompt_len} ran eager"
