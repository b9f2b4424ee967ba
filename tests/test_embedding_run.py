"""Embedding and reranker workloads: official parameter counts, pooling and normalization, FLOP
counts, ONNX Runtime parity, the example spec end to end through the CLI, and bad input."""
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from infra_bench.devices import select_device
from infra_bench.errors import UserError
from infra_bench.kinds.embedding import ort_exec, torch_exec
from infra_bench.kinds.embedding import workload as ew
from infra_bench.spec import spec_from_dict
from .conftest import assert_one_line_error, read_records, run_cli

EXAMPLE = Path(__file__).resolve().parent.parent / "workloads" / "embedding.yaml"
TINY = ("bert-tiny-embed", "qwen3-tiny-embed", "xlmr-tiny-rerank")

# The official parameter counts (the sum of the tensor shapes of each published checkpoint; the
# catalog's `source` says where): the model built here must have exactly as many.
OFFICIAL = {"bge-m3": 567_754_752, "bge-large-zh-v1.5": 325_522_432, "qwen3-embedding-0.6b": 595_776_512,
            "bge-reranker-v2-m3": 567_755_777}


def _spec(arch: str, **fields):
    return spec_from_dict({"kind": "embedding", "arch": arch, **fields})


@pytest.mark.parametrize("arch", sorted(OFFICIAL))
def test_full_size_arch_has_the_official_parameter_count_exactly(arch):
    spec = _spec(arch)
    resolved = ew.resolve(spec)
    model = ew.build_model(resolved, spec, torch.device("meta"), torch.float32)  # no memory, no weights
    assert ew.param_count(model) == resolved.arch.params == resolved.info["params_reference"] == OFFICIAL[arch]


def test_flops_count_every_matmul_attention_included():
    # bert-tiny-embed, L = 32, h = 64, i = 128, 2 layers: QKVO and the MLP per token, QK^T and AV, the pooler
    L, h, i = 32, 64, 128
    assert ew.flops_per_sequence("bert-tiny-embed", L) == 2 * (2 * L * (4 * h * h + 2 * h * i) + 4 * L * L * h) + 2 * h * h
    # Qwen3-Embedding-0.6B at 512 tokens: q 2048 wide, k and v 1024 (GQA), SwiGLU MLP, 28 layers, no LM head
    L, h, q, kv, i = 512, 1024, 2048, 1024, 3072
    per_layer = 2 * L * (h * q + 2 * h * kv + q * h + 3 * h * i) + 4 * L * L * q
    assert ew.flops_per_sequence("qwen3-embedding-0.6b", L) == 28 * per_layer


@pytest.mark.parametrize("arch", TINY)
def test_tiny_arch_pools_normalizes_respects_padding_and_passes_ort_parity(arch):
    spec = _spec(arch, seq_len=[24])
    resolved = ew.resolve(spec)
    built = torch_exec.build(spec, resolved, select_device("cpu"))
    ids = ew.token_ids(resolved, spec, {"batch_size": 3, "seq_len": 24}).numpy()
    out = built.runner.embed(ids)
    hidden = resolved.arch.config["hidden_size"]
    if resolved.arch.task == "embed":
        assert out.shape == (3, hidden) and out.dtype == np.float32
        assert np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    else:
        assert out.shape == (3,) and out.dtype == np.float32  # one score per query-passage pair
    # a right-padded sequence gives what the same tokens give alone (CLS and last-token pooling alike)
    mask = np.ones_like(ids)
    mask[1, 10:] = 0
    padded = built.runner.embed(ids, mask)
    alone = built.runner.embed(ids[1:2, :10])
    assert np.abs(padded[1] - alone[0]).max() < 1e-5
    assert built.params == ew.param_count(built.runner.model)

    ort_spec = _spec(arch, seq_len=[24], backend="onnxruntime")
    ort = ort_exec.build(ort_spec, resolved, None)
    assert ort.error is None, ort.error
    parity = ort.info["parity"]
    assert parity["checked"] and parity["max_rel_diff"] <= parity["tolerance"] == 1e-4
    assert np.abs(ort.runner.embed(ids) - out).max() <= 1e-4 * np.abs(out).max()
    assert ort.params == built.params


def test_int8_quantized_export_passes_its_parity_gate():
    spec = _spec("bert-tiny-embed", backend="onnxruntime", dtype="int8", seq_len=[16])
    built = ort_exec.build(spec, ew.resolve(spec), None)
    assert built.error is None, built.error
    assert built.info["quantization"]["method"].startswith("dynamic int8")
    assert built.info["parity"]["tolerance"] == 0.15 and built.notes[0].startswith("quantized")


def test_decoder_exports_through_the_torch_export_based_exporter_too(monkeypatch):
    monkeypatch.setenv("INFRA_BENCH_ONNX_EXPORTER", "dynamo")
    spec = _spec("qwen3-tiny-embed", backend="onnxruntime", seq_len=[16])
    built = ort_exec.build(spec, ew.resolve(spec), None)
    assert built.error is None, built.error
    assert built.info["export"]["exporter"] == "torch.onnx.export(dynamo=True)"
    assert built.info["parity"]["max_rel_diff"] <= 1e-4


def test_parity_failure_fails_the_build_with_the_numbers():
    spec = _spec("qwen3-tiny-embed", backend="onnxruntime", dtype="int8", seq_len=[16], parity_tolerance=0.0)
    built = ort_exec.build(spec, ew.resolve(spec), None)
    assert built.runner is None and built.error.startswith("parity gate failed: embeddings max_rel_diff")


def test_cli_runs_the_example_spec(tmp: Path):
    p = run_cli("run", str(EXAMPLE), "--out", "res", cwd=tmp)
    assert p.returncode == 0, p.stderr
    assert "seq/s" in p.stdout and "latency p99 ms" in p.stdout and "J/sequence" in p.stdout
    records = read_records(tmp / "res")
    specs = {s["name"]: s for s in yaml.safe_load_all(EXAMPLE.read_text())}
    assert len(records) == sum(len(np.atleast_1d(s["batch_size"])) * len(np.atleast_1d(s["seq_len"]))
                               for s in specs.values())
    for rec in records:
        assert rec["status"] == "ok" and rec["kind"] == "embedding", rec.get("error")
        m, c = rec["metrics"], rec["cell"]
        assert m["sequences"] == m["iterations"] * c["batch_size"] == len(rec["samples"]) * c["batch_size"]
        assert m["latency_s"]["n"] == m["iterations"]
        assert m["latency_s"]["mean"] == pytest.approx(np.mean([s["latency_s"] for s in rec["samples"]]))
        assert m["sequences_per_s"] == pytest.approx(m["sequences"] / m["window_s"])
        assert m["tokens_per_s"] == pytest.approx(m["sequences_per_s"] * c["seq_len"])
        assert m["flops_per_sequence"] == ew.flops_per_sequence(rec["model"]["arch"], c["seq_len"]) > 0
        assert m["j_per_sequence"] > 0 and m["j_per_1k_sequences"] == pytest.approx(1000 * m["j_per_sequence"])
        assert rec["model"]["weights"] == "random" and rec["model"]["params"] > 0
        assert rec["cell_id"].endswith(f"/b{c['batch_size']}-l{c['seq_len']}")
        if rec["spec"]["backend"] == "onnxruntime":
            assert rec["backend"]["parity"]["max_rel_diff"] <= rec["backend"]["parity"]["tolerance"]


@pytest.mark.parametrize("fields, message", [
    ({"arch": "bert-tiny-embd"}, "unknown embedding architecture 'bert-tiny-embd' (did you mean 'bert-tiny-embed'?)"),
    ({"seq_len": [128, 513]}, "seq_len 513 is longer than bert-tiny-embed takes (512 tokens); use seq_len up to 512"),
    ({"dtype": "int8"}, "int8 (dynamic quantization) runs on backend onnxruntime"),
])
def test_bad_embedding_input_is_one_line(tmp: Path, fields, message):
    (tmp / "e.yaml").write_text(yaml.safe_dump({"kind": "embedding", "arch": "bert-tiny-embed", **fields}))
    assert_one_line_error(run_cli("run", "e.yaml", "--out", "res", cwd=tmp), message)
    assert not (tmp / "res").exists()  # refused before a run folder is made


@pytest.mark.parametrize("arch, longest", [("xlmr-tiny-rerank", 512), ("qwen3-embedding-0.6b", 32768),
                                           ("bge-m3", 8192)])
def test_longest_sequence_follows_the_position_table(arch, longest):
    ew.check_cells(_spec(arch, seq_len=longest), ew.resolve(_spec(arch)))
    with pytest.raises(UserError, match=f"use seq_len up to {longest}$"):
        ew.check_cells(_spec(arch, seq_len=longest + 1), ew.resolve(_spec(arch)))
    with pytest.raises(UserError, match="field 'seq_len.0'"):
        _spec(arch, seq_len=0)
