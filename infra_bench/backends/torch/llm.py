"""Greedy prefill + decode with a KV cache, one clock reading per output token.

A manual loop rather than `generate()`: it works at any batch size, produces exactly the
requested number of tokens (no EOS can stop it), and adds nothing between tokens except
the device synchronisation that makes each clock reading honest. Prefill computes logits for
the last position only (`logits_to_keep=1`) where the model supports it, as serving engines do.
"""
from __future__ import annotations

import inspect

import torch

from ...devices.base import DeviceProbe
from ..base import RequestTiming


class TorchLlmRunner:
    def __init__(self, model: torch.nn.Module, probe: DeviceProbe):
        self.model, self.probe = model, probe
        keeps = "logits_to_keep" in inspect.signature(model.forward).parameters
        self._prefill_kwargs = {"logits_to_keep": 1} if keeps else {}

    def prepare(self, input_ids: torch.Tensor) -> torch.Tensor:
        return input_ids.to(self.probe.torch_device)

    @torch.inference_mode()
    def run(self, input_ids: torch.Tensor, output_len: int) -> RequestTiming:
        from transformers import DynamicCache

        model, now = self.model, self.probe.now_ns
        stamps: list[int] = []
        start = now()
        cache = DynamicCache(config=model.config)
        out = model(input_ids=input_ids, past_key_values=cache, use_cache=True, **self._prefill_kwargs)
        token = out.logits[:, -1, :].argmax(dim=-1, keepdim=True)
        stamps.append(now())
        for _ in range(output_len - 1):
            out = model(input_ids=token, past_key_values=out.past_key_values, use_cache=True)
            token = out.logits[:, -1, :].argmax(dim=-1, keepdim=True)
            stamps.append(now())
        return RequestTiming(start, tuple(stamps), input_ids.shape[0], input_ids.shape[1])

    def describe(self) -> dict:
        return {"name": "torch", "version": torch.__version__, "loop": "manual greedy prefill+decode, DynamicCache",
                "prefill_logits": "last position" if self._prefill_kwargs else "all positions",
                "threads": torch.get_num_threads()}
