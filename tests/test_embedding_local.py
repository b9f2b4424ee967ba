"""Local embedder and reranker folders (`kind: embedding`, `model: PATH`) as a user brings them: real
save_pretrained folders of tiny BERT and XLM-RoBERTa models with random weights, sentence-transformers'
modules.json and 1_Pooling/config.json written by hand, run through the CLI and served; and the ways such
a folder goes wrong, each refused before anything runs with one line and exit 2."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from .conftest import (
    assert_one_line_error,
    read_records,
    refused_before_running,
    run_cli,
)

SMALL = {"vocab_size": 200, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
         "num_attention_heads": 2}
RUN = {"kind": "embedding", "batch_size": [2], "seq_len": [16], "warmup": 1, "min_iters": 3, "min_time_s": 0.0}


def _bert(folder: Path, pooling: str | None = "mean", normalize: bool = True, **config) -> Path:
    """A BERT embedder saved as sentence-transformers saves one (pooling None: no modules.json)."""
    import torch
    from transformers import BertConfig, BertModel
    torch.manual_seed(0)
    BertModel(BertConfig(**{**SMALL, "max_position_embeddings": 64, **config})).save_pretrained(folder)
    if pooling is not None:
        _pooling(folder, pooling, normalize)
    return folder


def _pooling(folder: Path, pooling: str, normalize: bool = True, extra: tuple = ()) -> None:
    mods = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    mods += [{"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}] \
        if normalize else []
    mods += [{"idx": len(mods), "name": str(len(mods)), "path": f"{len(mods)}_{t}", "type": f"sentence_transformers.models.{t}"}
             for t in extra]
    (folder / "modules.json").write_text(json.dumps(mods))
    (folder / "1_Pooling").mkdir(exist_ok=True)
    modes = {"pooling_mode_cls_token": False, "pooling_mode_mean_tokens": False, "pooling_mode_max_tokens": False,
             "pooling_mode_mean_sqrt_len_tokens": False, "pooling_mode_weightedmean_tokens": False,
             "pooling_mode_lasttoken": False}
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(
        {"word_embedding_dimension": SMALL["hidden_size"], **modes, f"pooling_mode_{pooling}": True}))


def _reranker(folder: Path, num_labels: int = 1) -> Path:
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaForSequenceClassification
    torch.manual_seed(0)
    XLMRobertaForSequenceClassification(XLMRobertaConfig(
        **SMALL, max_position_embeddings=66, type_vocab_size=1, num_labels=num_labels)).save_pretrained(folder)
    return folder


def _write(tmp: Path, *specs: dict) -> str:
    (tmp / "s.yaml").write_text(yaml.safe_dump_all([{**RUN, **s} for s in specs]))
    return "s.yaml"


def test_a_local_embedder_and_reranker_run_and_record_their_checkpoint(tmp: Path):
    emb, rr = _bert(tmp / "emb", "mean_tokens"), _reranker(tmp / "rr")
    spec = _write(tmp, {"model": "emb"}, {"model": "rr", "seq_len": [16, 64]},
                  {"model": "emb", "backend": "onnxruntime", "name": "emb-ort"},
                  {"model": "rr", "backend": "onnxruntime", "name": "rr-ort"})
    p = run_cli("run", spec, "--out", "res", "--device", "cpu", cwd=tmp)
    assert p.returncode == 0, p.stderr
    records = read_records(tmp / "res")
    assert len(records) == 5
    for rec in records:
        assert rec["status"] == "ok", rec["error"]
        m = rec["model"]
        assert m["weights"] == "checkpoint" and m["weights_hash"].startswith("sha256:") and m["params"] > 0
        assert not any("random weights" in n for n in rec["notes"])
        assert rec["metrics"]["sequences_per_s"] > 0 and rec["metrics"]["flops_per_sequence"] > 0
        if rec["spec"]["backend"] == "onnxruntime":
            assert rec["backend"]["parity"]["max_rel_diff"] <= rec["backend"]["parity"]["tolerance"]
    by = {r["workload"]: r["model"] for r in records}
    assert by["emb"]["path"] == str(emb.resolve()) and by["rr"]["path"] == str(rr.resolve())
    assert (by["emb"]["task"], by["emb"]["pooling"], by["emb"]["normalize"]) == ("embed", "mean", True)
    assert by["emb"]["pooling_from"] == "1_Pooling/config.json + Normalize" and by["emb"]["max_tokens"] == 64
    assert (by["rr"]["task"], by["rr"]["pooling"], by["rr"]["max_tokens"]) == ("rerank", "none", 64)  # 66 - pad - 1
    assert by["emb"]["weights_hash"] == by["emb-ort"]["weights_hash"] != by["rr"]["weights_hash"]


def test_pooling_comes_from_the_folder_through_the_served_endpoints(tmp: Path):
    """The same weights served with cls, mean and no modules.json (the default: mean, not normalized) give
    the vectors transformers' own BertModel gives under those poolings; a local reranker scores on /v1/rerank."""
    pytest.importorskip("aiohttp")
    import torch
    from transformers import BertModel

    from .test_endpoints import start_server, stop_server
    from .test_serve import call

    _bert(tmp / "mean", "mean_tokens")
    shutil.copytree(tmp / "mean", tmp / "cls")
    _pooling(tmp / "cls", "cls_token")
    shutil.copytree(tmp / "mean", tmp / "plain")
    shutil.rmtree(tmp / "plain" / "1_Pooling")
    (tmp / "plain" / "modules.json").unlink()
    _reranker(tmp / "rr")
    for name in ("mean", "cls", "plain", "rr"):
        (tmp / f"{name}.yaml").write_text(yaml.safe_dump({**RUN, "model": name}))
    proc, url = start_server(*(a for n in ("mean", "cls", "plain", "rr") for a in ("--spec", f"{n}.yaml")),
                             "--device", "cpu", cwd=tmp)
    try:
        ids = [[7, 8, 9, 10, 11, 12]]
        got = {}
        for name in ("mean", "cls", "plain"):
            status, _, raw = call(f"{url}/embeddings", {"model": name, "input": ids}, key=None)
            assert status == 200, raw
            got[name] = np.array(json.loads(raw)["data"][0]["embedding"])
        status, _, raw = call(f"{url}/rerank", {"model": "rr", "query": "q", "documents": ["a", "b c"]}, key=None)
        assert status == 200 and len(json.loads(raw)["results"]) == 2, raw
        status, _, raw = call(f"{url}/embeddings", {"model": "rr", "input": "x"}, key=None)
        assert status == 400 and "send it to /v1/rerank" in json.loads(raw)["error"]["message"]
        _, _, raw = call(f"{url}/models", key=None)
        cards = {c["id"]: c for c in json.loads(raw)["data"]}
    finally:
        stop_server(proc)
    with torch.inference_mode():
        hidden = BertModel.from_pretrained(tmp / "mean").eval()(input_ids=torch.tensor(ids)).last_hidden_state[0]
    mean, cls = hidden.mean(dim=0).numpy(), hidden[0].numpy()
    assert np.allclose(got["mean"], mean / np.linalg.norm(mean), atol=1e-5)
    assert np.allclose(got["cls"], cls / np.linalg.norm(cls), atol=1e-5)
    assert np.allclose(got["plain"], mean, atol=1e-5)  # not normalized
    assert np.abs(got["mean"] - got["cls"]).max() > 1e-2
    assert cards["cls"]["pooling"] == "cls" and cards["mean"]["pooling"] == "mean" and cards["rr"]["task"] == "rerank"


def _llama(folder: Path) -> None:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(AutoConfig.for_model(
        "llama", hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=1, vocab_size=200)).save_pretrained(folder)


def _pickled(folder: Path) -> None:
    _bert(folder, None)
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")


def _truncated(folder: Path) -> None:
    w = _bert(folder, "cls_token") / "model.safetensors"
    w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])


def _config(folder: Path, **fields) -> None:
    c = _bert(folder, "cls_token") / "config.json"
    c.write_text(json.dumps({**json.loads(c.read_text()), **fields}))


@pytest.mark.parametrize("make, spec, fragment", [
    (lambda f: None, {}, "/m; give a local Hugging Face folder (config.json + *.safetensors"),
    (lambda f: (_bert(f, "cls_token") / "config.json").unlink(), {}, "/m: no config.json"),
    (_pickled, {}, "(found pytorch_model.bin, which are pickle files); pickled weights are not loaded"),
    (_truncated, {}, "bytes of the"),
    (lambda f: _config(f, model_type="not-a-model"), {}, "config.json cannot be loaded by transformers"),
    (lambda f: _config(f, auto_map={"AutoModel": "modeling_x.XModel"}), {}, "pass --trust-remote-code"),
    (_llama, {}, "architectures LlamaForCausalLM is a language model, not an embedder"),
    (lambda f: _reranker(f, num_labels=3), {}, "has 3 labels; a reranker (cross-encoder) scores with one"),
    (lambda f: _bert(f, "max_tokens"), {}, "pooling pooling_mode_max_tokens is not supported"),
    (lambda f: _pooling(_bert(f, None), "cls_token", extra=("Dense",)), {},
     "module sentence_transformers.models.Dense is not run by kind: embedding"),
    (lambda f: _bert(f, "cls_token"), {"seq_len": [16, 65]}, "seq_len 65 is longer than m takes (64 tokens)"),
    (lambda f: _reranker(f), {"seq_len": [65]}, "use seq_len up to 64"),
])
def test_a_bad_local_folder_is_refused_before_anything_runs(tmp: Path, make, spec, fragment):
    """Each case through the run engine's planning in this process; the command line's one-line error and
    exit 2 for them is checked once, below."""
    make(tmp / "m")
    refused_before_running({**RUN, "model": str(tmp / "m"), **spec}, fragment, tmp / "res")


def test_a_bad_local_folder_is_one_line_from_the_command_line(tmp: Path):
    _truncated(tmp / "m")
    assert_one_line_error(run_cli("run", _write(tmp, {"model": "m"}), "--out", "res", cwd=tmp), "bytes of the")
    assert not (tmp / "res").exists()  # refused before a run folder is made


def test_a_causal_lm_folder_with_a_pooling_module_runs_as_an_embedder(tmp: Path):
    """An LLM-based embedder (as Qwen3-Embedding ships: *ForCausalLM in config.json, last-token pooling in
    modules.json) runs as the base model, last-token pooled; without modules.json it is refused (above)."""
    _llama(tmp / "dec")
    _pooling(tmp / "dec", "lasttoken")
    p = run_cli("run", _write(tmp, {"model": "dec"}), "--out", "res", "--device", "cpu", cwd=tmp)
    assert p.returncode == 0, p.stderr
    [rec] = read_records(tmp / "res")
    assert rec["status"] == "ok", rec["error"]
    assert (rec["model"]["pooling"], rec["model"]["normalize"], rec["model"]["architectures"]) == \
        ("last_token", True, ["LlamaForCausalLM"])
    assert rec["metrics"]["flops_per_sequence"] > 0
