"""Greedy prefill + decode with a KV cache, one clock reading per output token.

A manual loop rather than `generate()`: it works at any batch size, produces exactly the
requested number of tokens (no EOS can stop it), and adds nothing between tokens except
the device synchronisation that makes each clock reading honest. Prefill computes logits for
the last position only (`logits_to_keep=1`) where the model supports it, as serving engines do.

`GreedyDecoder` is the one loop over a Hugging Face causal LM: the timed runner, the ONNX
Runtime parity reference and the serving endpoint all step through it.
"""
from __future__ import annotations

import inspect
from collections.abc import Iterator

import torch

from ...devices.base import DeviceProbe
from ..base import RequestTiming


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


class TorchLlmRunner:
    def __init__(self, model: torch.nn.Module, probe: DeviceProbe):
        self.model, self.probe = model, probe
        self.decoder = GreedyDecoder(model)

    def prepare(self, input_ids: torch.Tensor) -> torch.Tensor:
        return input_ids.to(self.probe.torch_device)

    @torch.inference_mode()
    def run(self, input_ids: torch.Tensor, output_len: int) -> RequestTiming:
        now = self.probe.now_ns
        stamps: list[int] = []
        start = now()
        for _ in self.decoder.steps(input_ids):
            stamps.append(now())
            if len(stamps) == output_len:
                break
        return RequestTiming(start, tuple(stamps), input_ids.shape[0], input_ids.shape[1])

    def describe(self) -> dict:
        return {"name": "torch", "version": torch.__version__, "loop": "manual greedy prefill+decode, DynamicCache",
                "prefill_logits": "last position" if self.decoder.prefill_kwargs else "all positions",
                "threads": torch.get_num_threads()}
