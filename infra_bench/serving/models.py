"""The served models, built once from workload specs by the same backends `infra-bench run` uses.

An LLM generates greedily with a KV cache, token by token, calling `emit` with each id (the
same compute as the torch and ONNX Runtime runners; no EOS stops it, so max_tokens is exact).
A diffusion pipeline runs the benchmarked denoising loop and returns the decoded images. A TTS
model synthesizes int16 PCM: random-weight models in one piece (one token per character), a
real piper voice one chunk per sentence.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import UserError, closest
from .codec import Codec, codec_for
from .media import to_uint8_rgb

Emit = Callable[[object], bool]  # returns False when the client went away: stop early


def arch_kind(arch: str) -> str:
    """Which kind's catalog holds the built-in architecture `arch`; one that serve does not serve is refused."""
    from ..catalog import builtin_archs
    from ..kinds import KINDS

    archs = builtin_archs()
    if arch in archs:
        kind = archs[arch].kind
        if KINDS[kind].served is None:  # before its model is built, not after
            raise UserError(f"--arch {arch}: {kind} models are not served yet; `infra-bench run` measures them")
        return kind
    known = [a.name for a in archs.values() if KINDS[a.kind].served is not None]
    raise UserError(f"--arch: unknown architecture '{arch}'{closest(arch, known)}; built-in: {', '.join(known)}")


def _arch_fields(arch: str) -> dict:
    """A spec for `--arch NAME`: the kind's spec defaults, which a kind may take from the arch (a diffusion
    pipeline's own resolution, steps and guidance)."""
    return {"kind": arch_kind(arch), "arch": arch}


def load_specs_for_serving(files: list[Path], archs: list[str], backend: str | None, device: str | None) -> list:
    """Specs from files and --arch names (default llama-tiny), with --backend/--device applied."""
    from ..kinds import KINDS
    from ..spec.loader import apply_overrides, load_specs, spec_from_dict

    specs = load_specs([str(f) for f in files]) if files else []
    specs += [spec_from_dict(_arch_fields(a), f"--arch {a}") for a in archs]
    if not specs:
        specs = [spec_from_dict({"kind": "llm", "arch": "llama-tiny"}, "default model")]
    specs = [apply_overrides(s, {"backend": backend, "device": device}) for s in specs]
    unserved = next((s for s in specs if KINDS[s.kind].served is None), None)
    if unserved:  # before any model is built: a real video pipeline takes minutes to load
        raise UserError(f"model '{unserved.label}': {unserved.kind} models are not served yet; "
                        f"`infra-bench run` measures them")
    compiled = next((s for s in specs if getattr(s, "compile", "none") != "none"), None)
    if compiled:
        raise UserError(f"spec '{compiled.label}': serve runs the eager decode loop (each request has its own "
                        f"shape); drop 'compile' for serving, `infra-bench run` measures the compiled path")
    names = [s.label for s in specs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes and archs.count(dupes[0]) > 1:
        raise UserError(f"--arch {dupes[0]} is given twice; give it once (each served model has its own name)")
    if dupes:
        raise UserError(f"two served models are named '{dupes[0]}'; give each spec a distinct 'name'")
    return specs


@dataclass
class Served:
    """What every served model has: its name, kind and /v1/models card."""
    name: str
    kind: str
    card: dict = field(default_factory=dict)

    def warm_up(self) -> None:
        """One short request, so the first timed request is not the first ever."""
        raise NotImplementedError


@dataclass
class ServedLlm(Served):
    codec: Codec | None = None
    generate: Callable[[list[int], int, Emit], None] | None = None
    max_positions: int | None = None
    vocab_size: int = 0

    def warm_up(self) -> None:
        self.generate(self.codec.encode("warm up the model") or [1], 2, lambda _: True)


@dataclass
class ServedImages(Served):
    resolution: int = 64
    pixel_multiple: int = 8  # a served size must be a multiple of this
    make: Callable[[int, int], list[np.ndarray]] | None = None  # (n, resolution) -> uint8 [H, W, 3] images

    def warm_up(self) -> None:
        self.make(1, self.resolution)


@dataclass
class ServedSpeech(Served):
    sample_rate: int = 16000
    synthesize: Callable[[str, Emit], None] | None = None  # text, emit(int16 PCM bytes)
    streams: bool = False  # chunks as they are made (piper), or the whole waveform at once

    def warm_up(self) -> None:
        self.synthesize("warm up", lambda _: True)


def build_all(specs: list, trust_remote_code: bool, progress: Callable[[str], None]) -> list[Served]:
    """Resolve, check and build every spec (the model weights load here, once)."""
    from ..engine import RunOptions, build_executor, plan
    from ..kinds import KINDS
    from ..kinds.base import load_ref

    out: list[Served] = []
    for p in plan(specs, RunOptions(trust_remote_code=trust_remote_code)):
        s = p.spec
        t0 = time.perf_counter()
        built = build_executor(s, p.resolved, p.probe, trust_remote_code)
        if built.error:
            raise UserError(f"model '{s.label}' cannot be served: {built.error}")
        card = {"id": s.label, "object": "model", "created": int(time.time()), "owned_by": "infra-bench",
                "kind": s.kind, "weights": p.resolved.info.get("weights"), "backend": s.backend,
                "device": p.probe.name, "dtype": s.dtype,
                "batching": "none: one request at a time, in arrival order"}
        if card["weights"] == "random":
            card["note"] = "random weights: outputs are meaningless; timing depends on shapes only"
        out.append(load_ref(KINDS[s.kind].served)(s, p, built, card))
        progress(f"built {s.label} ({s.kind}, {s.backend}, {p.probe.name}, weights: {card['weights']}) "
                 f"in {time.perf_counter() - t0:.1f} s")
    return out


def served_llm(spec, p, built, card: dict) -> ServedLlm:
    runner = built.runner
    codec = codec_for(spec.model if spec.model is not None and Path(spec.model).is_dir() else None, built.vocab_size)
    card.update(max_model_len=p.resolved.max_positions, text=codec.description)
    return ServedLlm(spec.label, "llm", card, codec, runner.generate, p.resolved.max_positions, built.vocab_size)


class _Capture:
    """Passes the diffusion loop's calls to the executor and keeps the decoded images."""

    def __init__(self, ex):
        self.ex, self.images = ex, None

    def __getattr__(self, name):
        return getattr(self.ex, name)

    def decode(self, *args):
        self.images = self.ex.decode(*args)
        return self.images


def served_images(spec, p, built, card: dict) -> ServedImages:
    import torch

    from ..workloads import diffusion as dw

    resolved, ex = p.resolved, built.runner
    steps = spec.steps[0]
    unet = isinstance(resolved, dw.ResolvedPipeline)
    size = spec.resolution[0]  # what a request without `size` gets: the record of a loadtest without --size says it
    card.update(size=f"{size}x{size}", steps=steps, guidance_scale=spec.guidance_scale,
                scheduler=(spec.scheduler or "euler") if unet else resolved.info["scheduler"],
                prompt="ignored: no tokenizer; a fixed seeded prompt of token ids is encoded")
    if unet and (run := dw.scheduled_steps(card["scheduler"], resolved.scheduler_config, steps)) != steps:
        card["steps_run"] = run  # what an image costs: PNDM runs one step more than asked
    make_request, run_request = dw.requests(resolved)

    def make(n: int, resolution: int) -> list[np.ndarray]:
        req = make_request(spec, resolved, {"batch_size": n, "resolution": resolution, "steps": steps}, ex)
        cap = _Capture(ex)
        with torch.inference_mode():
            run_request(cap, req, time.perf_counter_ns)
        return [to_uint8_rgb(img) for img in cap.images]
    multiple = resolved.vae_scale_factor if unet else resolved.pixel_multiple
    return ServedImages(spec.label, "diffusion", card, size, multiple, make)


def served_speech(spec, p, built, card: dict) -> ServedSpeech:
    ex = built.runner
    card.update(streaming=ex.streaming, voice="ignored: every request is spoken in this model's one voice",
                **({} if p.resolved.family == "piper" else {"text": "one token per character (random weights: "
                                                                    "meaningless audio)"}))
    return ServedSpeech(spec.label, "tts", card, ex.sample_rate, ex.speak, streams=ex.streams)
