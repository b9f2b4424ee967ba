"""Text embeddings and cross-encoder rerankers: batch latency, sequences/s and tokens/s."""
from ..base import Kind, KindMetrics, Latency, Route, num_text, stat_text

KIND = Kind(
    name="embedding",
    description="text embeddings and rerankers (sequences in, vectors or scores out)",
    spec="infra_bench.kinds.embedding.spec:EmbeddingSpec",
    workload="infra_bench.kinds.embedding.workload",
    executors={"torch": "infra_bench.kinds.embedding.torch_exec:build",
               "onnxruntime": "infra_bench.kinds.embedding.ort_exec:build"},
    cell_keys={"batch_size": "b", "seq_len": "l"},
    energy_unit="sequence",
    columns=(
        ("seq", lambda r, m, c: str(c["seq_len"])),
        ("latency p50 ms", lambda r, m, c: stat_text(m.get("latency_s"), 1e3, ".2f")),
        ("latency p99 ms", lambda r, m, c: stat_text(m.get("latency_s"), 1e3, ".2f", "p99")),
        ("seq/s", lambda r, m, c: num_text(m.get("sequences_per_s"), ".1f")),
        ("tok/s", lambda r, m, c: num_text(m.get("tokens_per_s"), ".0f")),
    ),
    metrics=KindMetrics("sequences_per_s", "sequences/s", (Latency("latency_s", "batch latency (ms)", 1e3),)),
    served="infra_bench.kinds.embedding.served:served",
    routes=(Route("/v1/embeddings", "infra_bench.kinds.embedding.routes:embeddings"),
            Route("/v1/rerank", "infra_bench.kinds.embedding.routes:rerank")),
    service="infra_bench.kinds.embedding.planner:EmbeddingService",
    planner_models="infra_bench.planner.media_model:catalog_ids",
    predict="infra_bench.kinds.embedding.planner:predict_hook",
    predict_options=("precision", "input_len", "concurrency"),
    calibration_point="infra_bench.kinds.embedding.planner:calibration_point",
    plan_latency=("request_s", "one request alone (s)"),
    catalogs=("embedding",),
    local_model="infra_bench.kinds.embedding.local:is_local_embedder",
)
