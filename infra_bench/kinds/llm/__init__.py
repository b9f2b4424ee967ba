"""Text generation: a prompt in, tokens out; TTFT, TPOT and output tokens/s."""
from pathlib import Path

from ..base import Kind, KindMetrics, Latency, Route, num_text, stat_text

CAUSAL_HEADS = ("ForCausalLM", "LMHeadModel")  # how transformers names a causal LM's class (LlamaForCausalLM ...)


def is_local_llm(path: Path) -> bool:
    """An exported .onnx file, or a folder whose config.json names a causal-LM class and which has no
    sentence-transformers modules.json (an LLM-based embedder, as Qwen3-Embedding ships, has one)."""
    from ...workloads.files import config_json

    if path.is_file():
        return path.suffix == ".onnx"
    return not (path / "modules.json").is_file() and \
        any(str(a).endswith(CAUSAL_HEADS) for a in config_json(path).get("architectures") or [])


KIND = Kind(
    name="llm",
    description="text generation (prompt in, tokens out)",
    spec="infra_bench.spec.llm:LlmSpec",
    workload="infra_bench.workloads.llm",
    executors={"torch": "infra_bench.backends.torch.build:build_llm",
               "onnxruntime": "infra_bench.backends.onnxruntime.build:build_llm"},
    cell_keys={"batch_size": "b", "prompt_len": "p", "output_len": "o"},
    energy_unit="token",
    columns=(
        ("prompt", lambda r, m, c: str(c["prompt_len"])),
        ("out", lambda r, m, c: str(c["output_len"])),
        ("TTFT p50 ms", lambda r, m, c: stat_text(m.get("ttft_s"), 1e3, ".2f")),
        ("TPOT p50 ms", lambda r, m, c: stat_text(m.get("tpot_s"), 1e3, ".2f")),
        ("out tok/s", lambda r, m, c: num_text(m.get("output_tokens_per_s"), ".1f")),
    ),
    metrics=KindMetrics("output_tokens_per_s", "output tokens/s",
                        (Latency("ttft_s", "TTFT (ms)", 1e3), Latency("tpot_s", "TPOT (ms)", 1e3))),
    charts=(("TTFT and TPOT distributions", "infra_bench.report.run_charts:llm_distributions"),),
    served="infra_bench.serving.models:served_llm",
    routes=(Route("/v1/completions", "infra_bench.serving.routes:completions"),
            Route("/v1/chat/completions", "infra_bench.serving.routes:chat")),
    service="infra_bench.planner.demand:LlmService",
    planner_models="infra_bench.planner.shapes:model_ids",
    planner_paths="infra_bench.planner.shapes:is_local",
    predict="infra_bench.report.predict:llm",
    predict_options=("engine", "precision", "kv_cache", "tp", "pp", "dp", "ep", "count", "concurrency", "max_throughput",
                     "num_prompts", "lengths", "input_len", "output_len", "max_seqs", "token_budget",
                     "memory_fraction"),
    plan_latency=("ttft_p", "TTFT {p} at SLO capacity (s)"),
    catalogs=("llm",),
    local_model="infra_bench.kinds.llm:is_local_llm",
)
