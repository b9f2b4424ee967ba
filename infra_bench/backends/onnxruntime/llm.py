"""The ONNX Runtime LLM runner: greedy prefill + decode over the KV-cache graph, with IO binding.

Inputs are bound from host memory; the present KV tensors stay where the EP put them (device
memory on GPU EPs) and are fed back as the next step's past; logits come back to the host for
the greedy choice, as a server's sampler would need them. `ep_probe` gives the device probe that
measures an EP (devices/onnxruntime.py's EpProbe for a non-cpu one).
"""
from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np
import torch

from ...devices.base import DeviceProbe
from ...devices.cpu import CpuProbe
from ...devices.onnxruntime import EpProbe
from ...errors import UserError
from ..base import RequestTiming
from ..parity import DEFINITION, differences
from .llm_export import LlmIoLayout
from .providers import Ep, import_ort, short_names

BINDING_DEVICE = {"cuda": "cuda", "tensorrt": "cuda", "rocm": "cuda", "migraphx": "cuda", "cann": "cann"}


def ep_probe(ep: Ep, ep_options: dict) -> DeviceProbe:
    """The probe that measures `ep`'s device: the cpu probe for cpu EPs, else an EpProbe over
    the torch probe of the same device (None, with the reason, where torch cannot see it)."""
    if ep.device_family == "cpu":
        return CpuProbe()
    from ...devices import select_device
    device_id = int(ep_options.get("device_id", 0))
    try:
        base = select_device(f"{ep.device_family}:{device_id}")
    except UserError as e:
        return EpProbe(ep.device_family, ep.provider, device_id, None, str(e).split(": ", 1)[-1])
    return EpProbe(ep.device_family, ep.provider, device_id, base)


class OrtLlmRunner:
    def __init__(self, session, layout: LlmIoLayout, ep: Ep, ep_options: dict, probe: DeviceProbe,
                 info: dict):
        self.session, self.layout, self.probe, self.info = session, layout, probe, info
        self._dev = BINDING_DEVICE.get(ep.short, "cpu")
        self._dev_id = int(ep_options.get("device_id", 0))
        self._past_names, self._present_names = layout.past_names(), layout.present_names()
        self._kv_dtype = np.dtype(layout.kv_dtype)
        self.prefill_logits = self._prefill_logits()

    def prepare(self, input_ids: torch.Tensor) -> np.ndarray:
        return np.ascontiguousarray(input_ids.cpu().numpy().astype(np.int64))

    def _prefill_logits(self) -> str:
        """Which positions the graph's prefill logits cover, "last position" or "all positions": its logits
        shape says so where that axis is fixed at 1 (our export); else one 2-token prefill tells (a user's
        export may name the axis after the sequence, or after nothing)."""
        shape = next(o.shape for o in self.session.get_outputs() if o.name == "logits")
        if len(shape) == 3 and shape[1] == 1:
            return "last position"
        logits = self.forward(np.zeros((1, 2), dtype=np.int64), None, 0)[0]
        if logits.ndim != 3 or logits.shape[1] not in (1, 2):
            raise UserError(f"the .onnx file's logits for a 2-token prefill have shape {list(logits.shape)}; the "
                            f"convention is [batch, 1 or seq, vocab] (see docs/onnxruntime.md)")
        return "all positions" if logits.shape[1] == 2 else "last position"

    def step(self, tokens: np.ndarray, past, past_len: int):
        """One forward: `tokens` [B, S] after `past_len` cached positions; returns (logits[B, V], present)."""
        logits, present = self.forward(tokens, past, past_len)
        return logits[:, -1, :], present

    def forward(self, tokens: np.ndarray, past, past_len: int):
        """`step` with the logits of every position the graph returns: (logits [B, 1 or S, V], present)."""
        b, s = tokens.shape
        io = self.session.io_binding()
        io.bind_cpu_input("input_ids", tokens)
        io.bind_cpu_input("attention_mask", np.ones((b, past_len + s), dtype=np.int64))
        io.bind_cpu_input("position_ids", np.ascontiguousarray(
            np.broadcast_to(np.arange(past_len, past_len + s, dtype=np.int64), (b, s))))
        if past is None:
            empty = np.zeros((b, self.layout.kv_heads, 0, self.layout.head_dim), dtype=self._kv_dtype)
            for name in self._past_names:
                io.bind_cpu_input(name, empty)
        else:
            for name, value in zip(self._past_names, past):
                io.bind_ortvalue_input(name, value)
        io.bind_output("logits", "cpu")
        for name in self._present_names:
            io.bind_output(name, self._dev, self._dev_id)
        self.session.run_with_iobinding(io)
        outs = io.get_outputs()
        return outs[0].numpy(), outs[1:]

    def greedy(self, input_ids: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(next token ids [B, 1], last-position logits [B, V]) after the prefill, then after each decode
        step; the next step runs only when the caller asks for another token."""
        p = input_ids.shape[1]
        logits, past = self.step(input_ids, None, 0)
        for k in itertools.count():
            token = logits.argmax(axis=-1).astype(np.int64)[:, None]
            yield token, logits
            logits, past = self.step(token, past, p + k)

    def run(self, input_ids: np.ndarray, output_len: int) -> RequestTiming:
        now = self.probe.now_ns
        stamps: list[int] = []
        start = now()
        for _ in self.greedy(input_ids):
            stamps.append(now())
            if len(stamps) == output_len:
                break
        return RequestTiming(start, tuple(stamps), *input_ids.shape)

    def generate(self, ids: list[int], n: int, emit) -> None:
        """Serving: the greedy loop `run` times, one prompt, each token to `emit` as it comes."""
        for k, (token, _) in enumerate(self.greedy(np.asarray([ids], dtype=np.int64))):
            if not emit(int(token[0, 0])) or k == n - 1:
                return

    def describe(self) -> dict:
        ort = import_ort()
        return {"name": "onnxruntime", "version": ort.__version__,
                "providers": short_names(self.session.get_providers()),
                "loop": "manual greedy prefill+decode, IO binding", "prefill_logits": self.prefill_logits,
                **self.info}


@torch.inference_mode()
def parity(reference: torch.nn.Module | OrtLlmRunner, runner: OrtLlmRunner, vocab_size: int, seed: int,
           batch: int = 2, prompt: int = 16, decode_steps: int = 3) -> dict:
    """Logits of the reference and of `runner` on the same tokens: prefill plus a few decode steps,
    both fed the reference's greedy tokens so they cannot drift apart. The reference is the torch
    model in fp32, or for a user's .onnx file quantized to int8, that file unquantized."""
    from ...workloads.llm import prompt_tokens
    from ..torch.llm import GreedyDecoder

    ids = prompt_tokens(batch, prompt, vocab_size, seed, torch.device("cpu"))
    ref, got, past, token = [], [], None, runner.prepare(ids)
    if isinstance(reference, OrtLlmRunner):
        steps, name = reference.greedy(runner.prepare(ids)), "the .onnx file unquantized, in ONNX Runtime"
    else:
        steps, name = GreedyDecoder(reference).steps(ids), "torch fp32 on cpu"
    for k, (next_token, logits) in enumerate(steps):
        ref.append(np.asarray(logits, dtype=np.float32))
        got_logits, past = runner.step(token, past, 0 if k == 0 else prompt + k - 1)
        got.append(got_logits)
        if k == decode_steps:
            break
        token = np.asarray(next_token, dtype=np.int64)
    r, g = np.stack(ref), np.stack(got)
    return {"checked": True, **differences(r, g), "top1_agreement": float((g.argmax(-1) == r.argmax(-1)).mean()),
            "inputs": f"batch {batch}, prompt {prompt}, prefill + {decode_steps} decode steps",
            "reference": name, "definition": DEFINITION}
