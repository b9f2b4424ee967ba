"""Greedy prefill + decode with a KV cache, one clock reading per output token.

A manual loop rather than `generate()`: it works at any batch size, produces exactly the
requested number of tokens (no EOS can stop it), and adds nothing between tokens except
the device synchronisation that makes each clock reading honest. Prefill computes logits for
the last position only (`logits_to_keep=1`) where the model supports it, as serving engines do.

`GreedyDecoder` is the one loop over a Hugging Face causal LM: the timed runner, the ONNX
Runtime parity reference and the serving endpoint all step through it.

With `compile` (a torch.compile mode), the cache is a StaticCache sized to the cell (prompt +
output), so every decode step has the same shapes and one compiled graph serves them all (on
CUDA, `reduce-overhead` replays it as a CUDA graph); prefill stays eager, its shape changing with
each prompt length. Compiling happens in `warm`, before the cell's own warm-up, timed apart; the
same call checks the compiled logits against the eager loop's.
"""
from __future__ import annotations

import inspect
import time
from collections.abc import Iterator

import numpy as np
import torch

from ...devices.base import DeviceProbe
from ..base import RequestTiming
from ..parity import DEFINITION, PARITY_TOLERANCE, differences, gate

COMPILE_MODES = ("default", "max-autotune", "reduce-overhead")
MAX_COMPILE_RUNS = 6      # requests run to let compilation (and recompilation) settle
PARITY_DECODE_STEPS = 3


def cache_argument(model: torch.nn.Module) -> str:
    """The forward() argument that takes the KV cache: `cache` from transformers 5.24 on,
    `past_key_values` in the 5.x releases before it (deprecated since, removed in 5.40)."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def new_cache(config, layers: list[tuple[torch.Tensor, torch.Tensor]] | None = None):
    """An empty DynamicCache, or one holding the given (keys, values) per layer."""
    from transformers import DynamicCache

    return DynamicCache(config=config) if layers is None else DynamicCache(ddp_cache_data=layers, config=config)


class GreedyDecoder:
    """Steps a causal LM greedily: prefill, then one token per decode step, on a cache it owns."""

    def __init__(self, model: torch.nn.Module):
        self.model = model
        self.cache_arg = cache_argument(model)
        keeps = "logits_to_keep" in inspect.signature(model.forward).parameters
        self.prefill_kwargs = {"logits_to_keep": 1} if keeps else {}

    def forward(self, input_ids: torch.Tensor, cache, **kwargs):
        """One forward pass that reads and extends `cache` in place."""
        return self.model(input_ids=input_ids, use_cache=True, **{self.cache_arg: cache}, **kwargs)

    def steps(self, input_ids: torch.Tensor) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(next token ids [batch, 1], last-position logits [batch, vocab]) for prefill, then for
        each decode step; the next forward pass runs only when the caller asks for another token."""
        cache = new_cache(self.model.config)
        out = self.forward(input_ids, cache, **self.prefill_kwargs)
        while True:
            logits = out.logits[:, -1, :]
            token = logits.argmax(dim=-1, keepdim=True)
            yield token, logits
            out = self.forward(token, cache)


class CompiledDecoder(GreedyDecoder):
    """Greedy steps on a StaticCache, the decode step through torch.compile(mode)."""

    def __init__(self, model: torch.nn.Module, mode: str):
        super().__init__(model)
        self.mode = mode
        self.compiled = torch.compile(model.forward, mode=mode, dynamic=False)
        self.caches: dict[tuple[int, int], object] = {}

    def cache_for(self, batch: int, length: int):
        """The StaticCache of this shape, emptied (allocated once, outside any timed region). A new shape
        (a new cell) also drops dynamo's compiled graphs: it keeps at most `recompile_limit` (8) per code
        object and past that runs the step eagerly without a word, so a grid's ninth shape was timed eager
        under the compiled label."""
        from transformers import StaticCache

        key = (batch, length)
        if key not in self.caches:
            torch._dynamo.reset()
            self.caches = {key: StaticCache(config=self.model.config, max_cache_len=length)}
        cache = self.caches[key]
        cache.reset()
        return cache

    def steps(self, input_ids: torch.Tensor, cache=None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        p = input_ids.shape[1]
        device = input_ids.device
        out = self.model(input_ids=input_ids, use_cache=True, **{self.cache_arg: cache},
                         cache_position=torch.arange(p, device=device), **self.prefill_kwargs)
        pos = p
        while True:
            logits = out.logits[:, -1, :]
            token = logits.argmax(dim=-1, keepdim=True)
            yield token, logits
            out = self.compiled(input_ids=token, use_cache=True, **{self.cache_arg: cache},
                                cache_position=torch.tensor([pos], device=device))
            pos += 1


class TorchLlmRunner:
    def __init__(self, model: torch.nn.Module, probe: DeviceProbe, compile_mode: str = "none", dtype: str = "fp32"):
        self.model, self.probe, self.dtype = model, probe, dtype
        self.decoder = GreedyDecoder(model) if compile_mode == "none" else CompiledDecoder(model, compile_mode)

    def prepare(self, input_ids: torch.Tensor) -> torch.Tensor:
        return input_ids.to(self.probe.torch_device)

    @torch.inference_mode()
    def run(self, input_ids: torch.Tensor, output_len: int) -> RequestTiming:
        now = self.probe.now_ns
        stamps: list[int] = []
        compiled = isinstance(self.decoder, CompiledDecoder)
        steps = self.decoder.steps(input_ids, self.decoder.cache_for(input_ids.shape[0], input_ids.shape[1] +
                                                                      output_len)) if compiled else \
            self.decoder.steps(input_ids)
        start = now()
        for _ in steps:
            stamps.append(now())
            if len(stamps) == output_len:
                break
        return RequestTiming(start, tuple(stamps), input_ids.shape[0], input_ids.shape[1])

    @torch.inference_mode()
    def generate(self, ids: list[int], n: int, emit) -> None:
        """Serving: the eager greedy loop `run` times, one prompt, each token to `emit` as it comes."""
        for k, (token, _) in enumerate(GreedyDecoder.steps(self.decoder, self.prepare(torch.tensor([ids])))):
            if not emit(int(token)) or k == n - 1:
                return

    @torch.inference_mode()
    def warm(self, input_ids: torch.Tensor, output_len: int) -> dict | None:
        """Compile for this cell's shapes: whole requests until one runs without compiling anything
        new; then the parity check. None for the eager loop. A compiler error is raised with its
        first line; a parity failure raises with the numbers."""
        if not isinstance(self.decoder, CompiledDecoder):
            return None
        from torch._dynamo.utils import counters

        t0, runs = time.perf_counter(), 0
        try:
            while runs < MAX_COMPILE_RUNS:
                before = sum(counters["stats"].values()) + sum(counters["frames"].values())
                self.run(input_ids, output_len)
                runs += 1
                if sum(counters["stats"].values()) + sum(counters["frames"].values()) == before:
                    break
        except Exception as e:  # inductor, dynamo or the C++ compiler: the cell fails with why
            lines = [ln for ln in str(e).strip().splitlines() if ln.strip()]
            raise RuntimeError(f"torch.compile ({self.decoder.mode}) failed: {type(e).__name__}: "
                               f"{lines[0] if lines else ''}"[:300]) from None
        info = {"mode": self.decoder.mode, "compile_s": time.perf_counter() - t0, "warmup_iters": runs,
                "settled": runs < MAX_COMPILE_RUNS, "parity": self._parity(input_ids, output_len)}
        error = gate(info["parity"], subject="compiled decode ")
        if error:
            raise RuntimeError(error)
        return info

    def _parity(self, input_ids: torch.Tensor, output_len: int) -> dict:
        """Logits of the compiled path against the eager loop on the cell's own prompt: prefill and
        the first decode steps, both fed the eager loop's tokens so they cannot drift apart."""
        n = min(PARITY_DECODE_STEPS, output_len - 1)
        d, p = self.decoder, input_ids.shape[1]
        cache = d.cache_for(input_ids.shape[0], p + output_len)
        out = self.model(input_ids=input_ids, use_cache=True, **{d.cache_arg: cache},
                         cache_position=torch.arange(p, device=input_ids.device), **d.prefill_kwargs)
        ref, got = [], [out.logits[:, -1, :].float().cpu().numpy()]
        for k, (token, logits) in enumerate(GreedyDecoder(self.model).steps(input_ids)):
            ref.append(logits.float().cpu().numpy())
            if k == n:
                break
            out = d.compiled(input_ids=token, use_cache=True, **{d.cache_arg: cache},
                             cache_position=torch.tensor([p + k], device=input_ids.device))
            got.append(out.logits[:, -1, :].float().cpu().numpy())
        r, g = np.stack(ref), np.stack(got)
        return {"checked": True, **differences(r, g), "tolerance": PARITY_TOLERANCE.get(self.dtype, 5e-2),
                "top1_agreement": float((g.argmax(-1) == r.argmax(-1)).mean()),
                "inputs": f"the cell's prompt, prefill + {n} decode steps", "reference": "torch eager",
                "definition": DEFINITION}

    def describe(self) -> dict:
        compiled = isinstance(self.decoder, CompiledDecoder)
        return {"name": "torch", "version": torch.__version__,
                "loop": "manual greedy prefill+decode, " + (
                    f"StaticCache, decode step torch.compile(mode={self.decoder.mode}), prefill eager"
                    if compiled else "DynamicCache"),
                "compile": self.decoder.mode if compiled else "none",
                "prefill_logits": "last position" if self.decoder.prefill_kwargs else "all positions",
                "threads": torch.get_num_threads()}
