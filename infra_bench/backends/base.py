"""What backends share: the backends and their options models, the executor protocols (an LLM
runner's timed request and its streaming generate), and `Built`, a backend's executor for a spec."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..errors import UserError, closest

# backend -> its options model (a pydantic model of the spec's `options:`), imported on first use
OPTIONS = {"torch": "infra_bench.backends.torch.options:TorchOptions",
           "onnxruntime": "infra_bench.backends.onnxruntime.options:OrtOptions"}
BACKENDS = tuple(OPTIONS)


@dataclass(frozen=True)
class RequestTiming:
    """Clock readings (ns) of one batched request: submit, and each output token's arrival.

    All sequences of a batch advance together, so one reading serves the whole batch.
    """
    start_ns: int
    token_ns: tuple[int, ...]
    batch_size: int
    prompt_len: int

    @property
    def output_len(self) -> int:
        return len(self.token_ns)

    @property
    def ttft_s(self) -> float:
        return (self.token_ns[0] - self.start_ns) / 1e9

    @property
    def e2e_s(self) -> float:
        return (self.token_ns[-1] - self.start_ns) / 1e9

    @property
    def itl_s(self) -> list[float]:
        t = self.token_ns
        return [(b - a) / 1e9 for a, b in zip(t, t[1:])]

    @property
    def tpot_s(self) -> float:
        """(e2e - ttft) / (output tokens - 1): the first token is excluded, as vLLM and MLPerf do."""
        return (self.e2e_s - self.ttft_s) / (self.output_len - 1)


class Executor(Protocol):
    """What every kind's executor has; each kind's protocol adds its timed call (what `run`
    measures) and the streaming call `serve` answers with (LlmRunner here; the other kinds'
    protocols sit in their workload modules)."""

    def describe(self) -> dict: ...


class LlmRunner(Executor, Protocol):
    def prepare(self, input_ids) -> Any:
        """Move seeded prompt ids (a CPU tensor) to where `run` wants them; not timed."""

    def run(self, input_ids, output_len: int) -> RequestTiming:
        """Timed: one batched request, the clock read as each token arrives."""

    def generate(self, ids: list[int], n: int, emit: Callable[[int], bool]) -> None:
        """Streaming: greedy tokens of one prompt, each passed to `emit` as it is made, until `n`
        tokens or `emit` returns False (the client went away)."""


@dataclass
class Built:
    """A backend's executor for one spec, or why there is none. `info` goes into every record
    of the spec's cells, failed ones included (a parity failure keeps its numbers there)."""
    runner: Executor | None
    info: dict
    params: int | None = None
    vocab_size: int | None = None
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    count_flops: Callable[..., float] | None = None  # tts: (inputs, audio_s) -> FLOPs per audio second


def options_model(backend: str):
    """The options model of `backend` (check_backend first)."""
    import importlib

    module, _, cls = OPTIONS[check_backend(backend)].partition(":")
    return getattr(importlib.import_module(module), cls)


def check_backend(name: str) -> str:
    if name not in BACKENDS:
        raise UserError(f"unknown backend '{name}'{closest(name, BACKENDS)}; available: {', '.join(BACKENDS)}")
    return name
