"""Serving engines as the planner sees them: how an engine forms its iterations and what it allows.

Every engine runs continuous batching. What differs, and changes TTFT and TPOT:
- `mixed`: decoding requests and prefill (chunks) share one iteration (vLLM with chunked prefill,
  TensorRT-LLM in-flight batching), or prefill runs in iterations of its own that stall decoding
  (SGLang and MindIE by default);
- `chunked`: a long prompt is cut to fit the iteration's token budget; without chunking a prompt
  goes in whole (TensorRT-LLM's default);
- the limits: most running sequences, most tokens per iteration (prefill tokens per prefill
  iteration where prefill runs alone), and the share of device memory the engine takes for weights
  and KV cache (of all memory, or of what is free after the weights).

Defaults are each engine's own, read in its source (docs/planner.md lists file and version); any
can be overridden (`predict --max-seqs --token-budget`, the demand's `engine:` block).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from ..errors import UserError, closest
from .profiles import vendor_word


@dataclass(frozen=True)
class Engine:
    name: str
    mixed: bool                 # decode and prefill share iterations
    chunked: bool               # prompts are cut to the token budget
    max_seqs: int               # running sequences at most
    token_budget: int           # tokens per iteration (mixed), or prefill tokens per prefill iteration
    memory_fraction: float      # of device memory for weights + KV (or of free memory, below)
    of_free_memory: bool        # the fraction applies to memory left after the weights
    reserve_whole_request: bool  # KV for prompt + all output reserved at admission (no preemption)
    source: str
    large_gpu: tuple[int, int] | None = None  # (max_seqs, token_budget) on GPUs of >= large_gib, where different
    large_gib: float = 70.0
    maturity: str = "production"
    static: bool = False        # a batch is prefilled together, then decoded together (infra-bench's own runners)
    vendors: tuple[str, ...] = ()  # the parts' vendors it runs on (empty: any)
    ported: tuple[tuple[str, str], ...] = ()  # (vendor, engine): on that vendor's parts it runs as that engine
    recv_interval: int = 1      # forward passes between polls for new requests (SGLang's --scheduler-recv-interval)

    def refusal(self, hw_id: str, vendor: str) -> str | None:
        """Why the engine does not run on this vendor's parts, or None where it does: its efficiencies would
        be another stack's, carried over as if it did (TensorRT-LLM on an Ascend came out 3x faster than
        vLLM-Ascend there). The fix is the caller's to name: `predict --engine`, a demand's `engine:`."""
        for v, other in self.ported:
            if vendor_word(vendor) == vendor_word(v):
                return f"{self.name} runs on {vendor} parts as {other}"
        if self.vendors and vendor_word(vendor) not in {vendor_word(v) for v in self.vendors}:
            return f"{self.name} runs on {' and '.join(self.vendors)} parts only, not on {hw_id} ({vendor})"
        return None

    def on(self, memory_bytes: float | None) -> Engine:
        """The engine's limits on a device of `memory_bytes` (vLLM and SGLang pick larger ones on large GPUs)."""
        if self.large_gpu and memory_bytes and memory_bytes >= self.large_gib * 2**30:
            return replace(self, max_seqs=self.large_gpu[0], token_budget=self.large_gpu[1])
        return self

    def with_limits(self, max_seqs: int | None = None, token_budget: int | None = None,
                    memory_fraction: float | None = None, recv_interval: int | None = None) -> Engine:
        """The engine with the user's limits in place of its defaults. `memory_fraction` is the share of memory
        the engine takes, as its own setting reads it (vLLM's --gpu-memory-utilization and SGLang's
        --mem-fraction-static: of the device's memory; TensorRT-LLM's free_gpu_memory_fraction and MindIE's
        NPU memory fraction: of the memory left after the weights). `recv_interval` is how many forward passes the
        scheduler runs between reads of new requests (SGLang's --scheduler-recv-interval; 1 elsewhere)."""
        if max_seqs is not None and max_seqs < 1 or token_budget is not None and token_budget < 1:
            raise UserError("--max-seqs and --token-budget must be at least 1")
        if recv_interval is not None and recv_interval < 1:
            raise UserError(f"the scheduler's receive interval must be 1 or more forward passes, not {recv_interval}")
        if memory_fraction is not None and not 0 < memory_fraction <= 1:
            raise UserError(f"--memory-fraction {memory_fraction:g} is not a share of memory; give a number above 0 "
                            f"and at most 1 (the engine's default for {self.name} is {self.memory_fraction:g})")
        return replace(self, max_seqs=max_seqs or self.max_seqs, token_budget=token_budget or self.token_budget,
                       memory_fraction=memory_fraction or self.memory_fraction,
                       recv_interval=recv_interval or self.recv_interval,
                       large_gpu=None if (max_seqs or token_budget) else self.large_gpu)


ENGINES: dict[str, Engine] = {e.name: e for e in (
    Engine("vllm", mixed=True, chunked=True, max_seqs=256, token_budget=2048, memory_fraction=0.9,
           of_free_memory=False, reserve_whole_request=False, large_gpu=(1024, 8192),
           ported=(("Huawei", "vllm-ascend"),),
           source="vLLM 0.10-0.19 vllm/engine/arg_utils.py (OpenAI server defaults: max_num_seqs 1024 and "
                  "max_num_batched_tokens 8192 on GPUs with >= 70 GiB, else 256 and 2048; chunked prefill on; "
                  "gpu_memory_utilization 0.9 of total memory)"),
    Engine("sglang", mixed=False, chunked=True, max_seqs=2048, token_budget=8192, memory_fraction=0.88,
           of_free_memory=False, reserve_whole_request=False, large_gpu=(2048, 16384), large_gib=160.0,
           source="SGLang 0.5.x python/sglang/srt/server_args.py (chunked_prefill_size 8192 below 160 GB, 16384 "
                  "above; max_running_requests up to the 2048-4096 request pool; mem_fraction_static fallback 0.88; "
                  "prefill batches run before decode, not mixed, unless --enable-mixed-chunk)"),
    Engine("trt-llm", mixed=True, chunked=False, max_seqs=2048, token_budget=8192, memory_fraction=0.9,
           of_free_memory=True, reserve_whole_request=True, vendors=("NVIDIA",),
           source="TensorRT-LLM tensorrt_llm/llmapi/llm_args.py (max_batch_size 2048, max_num_tokens 8192, "
                  "KV cache 0.9 of free memory, enable_chunked_prefill False, GUARANTEED_NO_EVICT)"),
    Engine("mindie", mixed=False, chunked=False, max_seqs=200, token_budget=8192, memory_fraction=0.8,
           of_free_memory=True, reserve_whole_request=True, vendors=("Huawei",),
           source="MindIE-LLM 3.0.0.beta.1 src/server/conf/config.json (maxBatchSize 200, maxPrefillTokens 8192, "
                  "maxPrefillBatchSize 50; prefill and decode batches formed apart; NPU memory fraction 0.8)"),
    Engine("vllm-ascend", mixed=True, chunked=True, max_seqs=256, token_budget=2048, memory_fraction=0.9,
           of_free_memory=False, reserve_whole_request=False, maturity="maturing", vendors=("Huawei",),
           source="vllm-ascend v0.10-v0.21: vLLM's scheduler with its defaults for devices whose memory vLLM "
                  "cannot query (max_num_seqs 256, max_num_batched_tokens 2048 for the OpenAI server)"),
    Engine("torch", mixed=False, chunked=False, max_seqs=1 << 20, token_budget=1 << 30, memory_fraction=0.9,
           of_free_memory=False, reserve_whole_request=True, static=True, maturity="benchmark runner",
           source="infra-bench's torch runner: one static batch, prefilled together then decoded together"),
    Engine("onnxruntime", mixed=False, chunked=False, max_seqs=1 << 20, token_budget=1 << 30, memory_fraction=0.9,
           of_free_memory=False, reserve_whole_request=True, static=True, maturity="benchmark runner",
           source="infra-bench's ONNX Runtime runner: one static batch, prefilled together then decoded together"),
    Engine("generic", mixed=True, chunked=True, max_seqs=256, token_budget=8192, memory_fraction=0.9,
           of_free_memory=False, reserve_whole_request=False, maturity="unknown",
           source="infra-bench default for an engine it does not know: continuous batching with chunked "
                  "prefill, 256 sequences, 8192 tokens per iteration, 0.9 of memory"),
)}
ALIASES = {"trtllm": "trt-llm", "tensorrt-llm": "trt-llm", "tensorrt_llm": "trt-llm", "nim": "trt-llm",
           "mindie-turbo": "mindie", "vllm_ascend": "vllm-ascend"}


def engine_name(text: str) -> str:
    """A measurement's or user's engine text ('vLLM 0.11.0', 'TRT-LLM 1.0', 'MindIE 2.1RC1') as a key."""
    import re

    first = re.split(r"[\s(+]", text.strip().lower(), maxsplit=1)[0]
    return ALIASES.get(first, first)


def default_engine(vendor: str) -> str:
    """`auto`: the engine most deployments of this vendor's parts run: vLLM, or its port to the vendor's parts
    (vLLM-Ascend on Huawei), matched as Engine.refusal matches vendors."""
    return next((e for v, e in ENGINES["vllm"].ported if vendor_word(v) == vendor_word(vendor)), "vllm")


def get_engine(name: str | None) -> Engine:
    key = engine_name(name) if name else "generic"
    if key not in ENGINES:
        raise UserError(f"unknown engine '{name}'{closest(key, ENGINES)}; known: {', '.join(ENGINES)}")
    return ENGINES[key]
