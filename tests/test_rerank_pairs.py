"""A local BERT cross-encoder served on /v1/rerank scores each query-passage pair as transformers does
with the folder's own tokenizer (`[CLS] q [SEP] d [SEP]`, token types 0 then 1), on torch and on ONNX
Runtime alike; not as the query's and the passage's encodings joined (`[CLS] q [SEP] [CLS] d [SEP]`, all
type 0), which is what serve answered before. The folder is written here: a tiny random-weight
BertForSequenceClassification (one label, two token types) and a WordPiece tokenizer from a vocab.txt."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from .test_embedding_local import RUN, SMALL

pytest.importorskip("aiohttp")

WORDS = ["what", "is", "the", "capital", "of", "france", "paris", "a", "city", "in", "europe", "berlin", "germany",
         "river", "seine", "flows", "through"]
QUERY = "what is the capital of france"
DOCS = ["paris is the capital of france", "berlin is in germany", "the seine flows through paris"]


def _cross_encoder(folder: Path) -> Path:
    """A BERT reranker folder as save_pretrained writes one, with its tokenizer. A wide initializer range
    makes the token type embeddings (and so the two encodings' scores) differ clearly."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    torch.manual_seed(0)
    BertForSequenceClassification(BertConfig(**SMALL, max_position_embeddings=64, type_vocab_size=2, num_labels=1,
                                             initializer_range=0.5)).save_pretrained(folder)
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    BertTokenizer(vocab=str(vocab)).save_pretrained(folder)
    return folder


def _transformers_scores(folder: Path) -> tuple[list[float], list[float], list[float], list[int]]:
    """(transformers' own pair scores, the same ids' scores without token types, the joined encodings' scores,
    tokens per pair) for QUERY x DOCS."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(folder, local_files_only=True).eval()
    with torch.inference_mode():
        pairs = [tok(QUERY, d, return_tensors="pt") for d in DOCS]
        right = [float(model(**p).logits[0, 0]) for p in pairs]
        untyped = [float(model(input_ids=p["input_ids"]).logits[0, 0]) for p in pairs]
        joined = [float(model(input_ids=torch.tensor([tok(QUERY)["input_ids"] + tok(d)["input_ids"]])).logits[0, 0])
                  for d in DOCS]
    return right, untyped, joined, [p["input_ids"].shape[1] for p in pairs]


def test_a_bert_cross_encoder_scores_pairs_as_transformers_does_on_torch_and_onnxruntime(tmp: Path):
    from .test_endpoints import start_server, stop_server
    from .test_serve import call

    _cross_encoder(tmp / "ce")
    (tmp / "torch.yaml").write_text(yaml.safe_dump({**RUN, "model": "ce"}))
    (tmp / "ort.yaml").write_text(yaml.safe_dump({**RUN, "model": "ce", "backend": "onnxruntime", "name": "ce-ort"}))
    proc, url = start_server("--spec", "torch.yaml", "--spec", "ort.yaml", "--device", "cpu", cwd=tmp)
    try:
        got, usage = {}, {}
        for name in ("ce", "ce-ort"):
            status, _, raw = call(f"{url}/rerank", {"model": name, "query": QUERY, "documents": DOCS}, key=None)
            assert status == 200, raw
            body = json.loads(raw)
            got[name] = [s for _, s in sorted((r["index"], r["relevance_score"]) for r in body["results"])]
            usage[name] = body["usage"]["total_tokens"]
        status, _, raw = call(f"{url}/rerank", {"model": "ce", "query": QUERY, "documents": ["paris " * 60]},
                              key=None)
        long_message = json.loads(raw)["error"]["message"]
        assert status == 400
    finally:
        stop_server(proc)
    right, untyped, joined, tokens = _transformers_scores(tmp / "ce")
    assert np.allclose(got["ce"], right, atol=1e-5), (got["ce"], right)
    assert np.allclose(got["ce-ort"], right, atol=1e-4), (got["ce-ort"], right)
    assert np.abs(np.array(right) - np.array(joined)).min() > 1e-2  # the old encoding scored otherwise
    assert np.abs(np.array(right) - np.array(untyped)).min() > 1e-2  # and the token types count
    assert usage["ce"] == usage["ce-ort"] == sum(tokens)
    assert long_message == "query + documents[0] has 69 tokens, more than the model's 64; shorten it"


def test_token_types_reach_the_onnx_export_and_its_parity_gate(tmp: Path):
    """The ONNX export of a reranker with two token types takes token_type_ids, and the parity gate checks a
    pair through it; a timing run's inputs give it all zeros (torch's default, as before). In this process:
    the executor as the run engine builds it."""
    import time

    from infra_bench.kinds.embedding import ort_exec
    from infra_bench.kinds.embedding import workload as ew
    from infra_bench.spec.loader import spec_from_dict

    _cross_encoder(tmp / "ce")
    spec = spec_from_dict({**RUN, "model": str(tmp / "ce"), "backend": "onnxruntime"})
    resolved = ew.resolve(spec)
    assert resolved.token_types
    built = ort_exec.build(spec, resolved, None)  # ONNX Runtime's build reads no device probe
    assert built.error is None, built.error
    parity = built.runner.info["parity"]
    assert "token types 0, then 1" in parity["inputs"] and parity["max_rel_diff"] <= parity["tolerance"]
    inputs = built.runner.prepare(spec, resolved, {"batch_size": 2, "seq_len": 16})
    assert inputs["token_type_ids"].shape == (2, 16) and not inputs["token_type_ids"].any()
    assert built.runner.run(inputs, time.perf_counter_ns).tokens == 32
