"""No deprecation from our own calls, and nothing from the libraries on the user's terminal.

`infra-bench run` over every kind and backend of the default suite (tiny shapes), with Python told to
turn deprecation warnings into errors: a library API we call that is going away fails its cell here,
long before the release that removes it. The same run must print only our own lines on stderr.
pyproject's pytest settings do the same for every in-process test."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import yaml

from .conftest import read_records, run_cli

QUICK = {"warmup": 0, "min_iters": 1, "min_time_s": 0}
SPECS = [
    {"kind": "llm", "arch": "llama-tiny", "prompt_len": [8], "output_len": [4]},
    {"kind": "llm", "name": "llama-tiny-ort", "arch": "llama-tiny", "backend": "onnxruntime", "prompt_len": [8],
     "output_len": [4]},
    {"kind": "llm", "arch": "gpt2-tiny", "prompt_len": [8], "output_len": [4]},
    {"kind": "diffusion", "arch": "sd-tiny", "resolution": [64], "steps": [2]},
    {"kind": "diffusion", "name": "sd-tiny-ort", "arch": "sd-tiny", "resolution": [64], "steps": [2],
     "backend": "onnxruntime"},
    {"kind": "tts", "arch": "vits-tiny", "text_len": [10]},
    {"kind": "tts", "name": "vits-tiny-ort", "arch": "vits-tiny", "text_len": [10], "backend": "onnxruntime"},
]
VOICE = {"kind": "tts", "voice": "joe-us", "backend": "onnxruntime", "text_len": [20]}

def test_default_kinds_run_with_deprecations_as_errors_and_a_quiet_terminal(tmp: Path, pytestconfig):
    """The reviewed third-party exceptions are pyproject's `ignore:` filters, applied here too."""
    specs = SPECS + ([VOICE] if importlib.util.find_spec("piper") else [])
    (tmp / "all.yaml").write_text(yaml.safe_dump_all([{**s, **QUICK} for s in specs]))
    flags = ["-W", "error::DeprecationWarning", "-W", "error::PendingDeprecationWarning", "-W", "error::FutureWarning"]
    for rule in (r for r in pytestconfig.getini("filterwarnings") if r.startswith("ignore:")):
        flags += ["-W", rule]
    p = run_cli("run", "all.yaml", "--out", "res", cwd=tmp, python_args=tuple(flags))
    records = read_records(tmp / "res")
    failed = {r["cell_id"]: r["error"] for r in records if r["status"] != "ok"}
    assert p.returncode == 0 and not failed, failed or p.stderr
    assert len(records) == len(specs)
    ours = ("run ", "[", "note: ")
    foreign = [line for line in p.stderr.splitlines() if line.strip() and not line.startswith(ours)]
    assert not foreign, "\n".join(foreign)
