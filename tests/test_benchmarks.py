"""Every script in benchmarks/ runs end to end in its --quick mode, so a published figure can always
be re-measured: a script that rots (an API it calls changed) fails here. Figures are not checked,
only that each script finishes and prints its result lines; no assertion depends on speed."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = sorted((ROOT / "benchmarks").glob("*.py"))

# A fragment each script prints only once it has measured something.
EXPECTED = {
    "acceptance_check.py": "comparable",
    "amd_vllm_check.py": "AMD vLLM latency rows predicted",
    "aiconfigurator_compare.py": "AIConfigurator (kernel databases; in sample)",
    "attention_kernel_fit.py": "in use",
    "backend_compare.py": "ORT fp32 / torch fp32 =",
    "calibration_gain.py": "calibration gain measured",
    "diffusion_compare.py": "ORT / torch per-step time =",
    "embedding_capacity.py": "approx / simulated capacity",
    "fleet_speed.py": "optimiser",
    "gpu_checklist.py": "gpu checklist done",
    "gpustack_check.py": "GPUStack rows predicted",
    "harness_overhead.py": "ratio harness/bare =",
    "loadgen_ceiling.py": "timing overhead",
    "llm_capacity.py": "simulated with sim_requests",
    "moe_kernel_fit.py": "in use",
    "nim_check.py": "NIM benchmark rows predicted",
    "plan_speed.py": "ranking",
    "power_fit.py": "leave one engine out",
    "planner_accuracy.py": "a shared correction learnt from the other models",
    "tts_compare.py": "ORT / torch RTF",
    "vllm_crosscheck.py": "infra-bench / vLLM client",
}

# Flags beside --quick, where a script's widest run is still quick: gpustack_check.py's steady state, finite runs
# and ShareGPT spread together take about 3 s on 2 cores.
FLAGS = {"gpustack_check.py": ["--sharegpt-spread"]}


def test_every_script_is_listed():
    """A new script must say here what it prints, so it is checked too."""
    assert sorted(EXPECTED) == sorted(p.name for p in SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_runs_in_quick_mode(script: Path, tmp: Path):
    p = subprocess.run([sys.executable, str(script), "--quick", *FLAGS.get(script.name, [])], cwd=tmp, capture_output=True, text=True,
                       timeout=600, env={**os.environ, "PYTHONWARNINGS": "ignore", "TMPDIR": str(tmp)})  # records kept in tmp
    assert p.returncode == 0, (p.stdout[-2000:], p.stderr[-3000:])
    assert EXPECTED[script.name] in p.stdout, p.stdout[-2000:]
