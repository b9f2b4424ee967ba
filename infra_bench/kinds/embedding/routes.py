"""`/v1/embeddings` (OpenAI's request and response) and `/v1/rerank` (the shape vLLM, Jina and Cohere
share: query, documents, top_n; results sorted by relevance_score). A rerank pair is encoded as the
model reads one (ServedEmbedding.pair), and its usage counts every token of every pair."""
from __future__ import annotations

import base64
import time
import uuid

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ...serving.app import WEIGHTS_HEADER, Api, ApiError, json_response
from .served import ServedEmbedding


class EmbeddingsRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: str = Field(default="float", pattern="^(float|base64)$")
    dimensions: int | None = Field(default=None, ge=1)


class Document(BaseModel):
    model_config = ConfigDict(extra="allow")
    text: str


class RerankRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str
    query: str
    documents: list[str | Document] = Field(min_length=1)
    top_n: int | None = Field(default=None, ge=1)
    return_documents: bool = False


def _ids(m: ServedEmbedding, item: str | list[int], what: str) -> list[int]:
    if isinstance(item, str):
        ids = m.codec.encode(item)
    else:
        bad = [t for t in item if not 0 <= t < m.vocab_size]
        if bad:
            raise ApiError(400, f"{what}: token id {bad[0]} is outside the vocabulary (0..{m.vocab_size - 1})")
        ids = list(item)
    if not ids:
        raise ApiError(400, f"{what} is empty")
    if len(ids) > m.max_tokens:
        raise ApiError(400, f"{what} has {len(ids)} tokens, more than the model's {m.max_tokens}; shorten it")
    return ids


def _inputs(raw) -> list[str | list[int]]:
    if isinstance(raw, str):
        return [raw]
    if raw and all(isinstance(t, int) for t in raw):
        return [raw]
    return list(raw)


def embeddings(api: Api):
    async def handle(request):
        body, m = await api.parse(request, EmbeddingsRequest)
        if m.task != "embed":
            raise ApiError(400, f"'{m.name}' is a reranker; send it to /v1/rerank")
        items = [_ids(m, x, f"input[{i}]") for i, x in enumerate(_inputs(body.input))]
        if not items:
            raise ApiError(400, "input is empty")

        def job():
            return [m.vector(ids) for ids in items]
        vectors = await api.worker.call(job)
        if body.dimensions is not None:
            if body.dimensions > vectors[0].shape[-1]:
                raise ApiError(400, f"dimensions {body.dimensions} exceeds the model's {vectors[0].shape[-1]}")
            vectors = [v[: body.dimensions] for v in vectors]
            if m.card.get("normalized"):  # cut, then unit length again, as the card promises (and vLLM does)
                vectors = [v / max(float(np.linalg.norm(v)), 1e-12) for v in vectors]
        data = [{"object": "embedding", "index": i,
                 "embedding": base64.b64encode(v.astype("<f4").tobytes()).decode()
                 if body.encoding_format == "base64" else v.tolist()} for i, v in enumerate(vectors)]
        tokens = sum(len(ids) for ids in items)
        return json_response({"object": "list", "data": data, "model": m.name,
                              "usage": {"prompt_tokens": tokens, "total_tokens": tokens}},
                             headers={WEIGHTS_HEADER: str(m.card.get("weights"))})
    return handle


def rerank(api: Api):
    async def handle(request):
        body, m = await api.parse(request, RerankRequest)
        if m.task != "rerank":
            raise ApiError(400, f"'{m.name}' is an embedding model; send it to /v1/embeddings")
        texts = [d if isinstance(d, str) else d.text for d in body.documents]
        pairs = []
        for i, t in enumerate(texts):
            ids, types = m.pair(body.query, t)
            pairs.append((_ids(m, ids, f"query + documents[{i}]"), types))

        def job():
            return [m.score(ids, types) for ids, types in pairs]
        scores = await api.worker.call(job)
        order = sorted(range(len(scores)), key=lambda i: -scores[i])[: body.top_n or len(scores)]
        results = [{"index": i, "relevance_score": scores[i],
                    **({"document": {"text": texts[i]}} if body.return_documents else {})} for i in order]
        tokens = sum(len(ids) for ids, _ in pairs)
        return json_response({"id": f"rerank-{uuid.uuid4().hex[:24]}", "model": m.name, "created": int(time.time()),
                              "results": results, "usage": {"total_tokens": tokens}},
                             headers={WEIGHTS_HEADER: str(m.card.get("weights"))})
    return handle
