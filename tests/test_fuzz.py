"""Property-based fuzzing of every input parser: workload specs, sweep matrices, hardware and site
profiles, demand files. Each generated input must parse, or be refused with a one-line UserError;
any other exception is a traceback a user would see. Cases: 6 x 250 mutated mappings + 4 x 60
random YAML texts = 1,740 (docs/reliability.md)."""
from __future__ import annotations

import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infra_bench.errors import UserError
from infra_bench.planner.demand import demand_from_dict, load_demand
from infra_bench.planner.profiles import HardwareProfile, SiteProfile, load_file
from infra_bench.scale.matrix import load_matrix
from infra_bench.spec.loader import load_spec_file, spec_from_dict

from .conftest import TINY

MAPPINGS, TEXTS = 250, 60
FUZZ = settings(max_examples=MAPPINGS, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
TEXT_FUZZ = settings(max_examples=TEXTS, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)

DEMAND = {"name": "d", "headroom": 0.2, "redundancy": 1, "services": [
    {"name": "chat", "model": "llama-3.1-8b", "precision": ["bf16", "fp8"],
     "traffic": {"requests_per_s": 5, "input_len": {"mean": 512, "distribution": "exponential"}, "output_len": 128},
     "slo": {"ttft_p95_s": 2.0, "tpot_p99_s": 0.05}},
    {"name": "img", "kind": "diffusion", "model": "sd-1.5", "traffic": {"images_per_hour": 100},
     "slo": {"latency_p95_s": 8}},
    {"name": "tts", "model": "vits-mms", "traffic": {"concurrent_streams": 4}, "slo": {"rtf": 0.5}}]}
PROFILE = {"kind": "accelerator", "vendor": "X", "model": "X1", "peak_tflops": {"bf16": 100, "fp8": 200},
           "memory_gb": 64, "memory_bandwidth_tbs": 1.6, "tdp_w": 400, "typical_node_size": 8,
           "match": ["X1"], "sources": ["https://example.invalid/x1"],
           "price": {"amount": 10000, "currency": "USD", "date": "2026", "source": "quote"}}
SITE = {"region": "r", "grid_kgco2_per_kwh": 0.5, "grid_factor_type": "average", "grid_source": "g",
        "power_price": 0.1, "power_currency": "USD", "power_source": "p", "pue": 1.3, "pue_source": "u"}
MATRIX = {"name": "m", "specs": [dict(TINY)], "backends": ["torch"], "devices": ["cpu"],
          "node_types": [{"name": "n", "resources": {"GPU": 1}, "labels": {"a": "b"}}], "max_retries": 2}

leaf = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12),
                 st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30),
                 st.sampled_from(["fp8", "bf16", "cuda", "auto", "exponential", "-1", "1e309", "", "\n", "x" * 300]))
values = st.recursive(leaf, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                     st.dictionaries(st.text(max_size=12), inner, max_size=4)),
                      max_leaves=12)


@st.composite
def mutated(draw, base):
    """The base mapping with a few keys dropped, replaced by random values or added, at any depth."""
    data = yaml.safe_load(yaml.safe_dump(base))  # a deep copy
    for _ in range(draw(st.integers(1, 4))):
        node = data
        while True:  # walk down a random path
            keys = list(node) if isinstance(node, dict) else list(range(len(node))) if isinstance(node, list) else []
            if not keys:
                break
            key = draw(st.sampled_from(keys))
            child = node[key]
            if isinstance(child, (dict, list)) and child and draw(st.booleans()):
                node = child
                continue
            action = draw(st.sampled_from(["replace", "drop", "add"]))
            if action == "replace":
                node[key] = draw(values)
            elif action == "drop" and isinstance(node, dict):
                del node[key]
            elif isinstance(node, dict):
                node[draw(st.text(min_size=1, max_size=10))] = draw(values)
            break
    return data


def accepted_or_one_line(call, *args) -> None:
    try:
        call(*args)
    except UserError as e:
        text = str(e)
        assert text and "\n" not in text and "Traceback" not in text, repr(text)


def accepted_as_file(call, text: str, name: str, *args) -> None:
    """accepted_or_one_line on a file holding text, in a folder removed afterwards (1,740 cases a run)."""
    with tempfile.TemporaryDirectory(prefix="fuzz-") as folder:
        path = Path(folder) / name
        path.write_text(text)
        accepted_or_one_line(call, path, *args)


@FUZZ
@given(mutated(TINY))
def test_llm_specs(data):
    accepted_or_one_line(spec_from_dict, data)


@FUZZ
@given(mutated({"kind": "diffusion", "arch": "sd-tiny", "resolution": [64], "steps": [4], "batch_size": [1]}))
def test_diffusion_specs(data):
    accepted_or_one_line(spec_from_dict, data)


@FUZZ
@given(mutated(DEMAND))
def test_demands(data):
    accepted_or_one_line(demand_from_dict, data)


@FUZZ
@given(mutated({"x1": PROFILE}))
def test_hardware_profiles(data):
    accepted_as_file(load_file, yaml.safe_dump(data), "cpus.yaml", HardwareProfile)


@FUZZ
@given(mutated({"here": SITE}))
def test_site_profiles(data):
    accepted_as_file(load_file, yaml.safe_dump(data), "sites.yaml", SiteProfile)


@FUZZ
@given(mutated(MATRIX))
def test_sweep_matrices(data):
    accepted_as_file(load_matrix, yaml.safe_dump(data), "m.yaml")


yaml_text = st.one_of(st.text(max_size=200),
                      st.lists(st.sampled_from(["kind: llm", "arch: [", "- a", ": :", "\t", "{", "}", "&a *a",
                                                "!!python/object:os.system", "services:", "  - x: 1", "'", "\x00",
                                                "batch_size: [1, 2", "---", "null", "1e999"]),
                               max_size=8).map("\n".join))


@TEXT_FUZZ
@given(yaml_text)
def test_spec_files_as_text(text):
    accepted_as_file(load_spec_file, text, "spec.yaml")


@TEXT_FUZZ
@given(yaml_text)
def test_demand_files_as_text(text):
    accepted_as_file(load_demand, text, "demand.yaml")


@TEXT_FUZZ
@given(yaml_text)
def test_profile_files_as_text(text):
    accepted_as_file(load_file, text, "cpus.yaml", HardwareProfile)


@TEXT_FUZZ
@given(yaml_text)
def test_matrix_files_as_text(text):
    accepted_as_file(load_matrix, text, "m.yaml")
