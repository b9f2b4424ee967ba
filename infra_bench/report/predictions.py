"""Plain-text renderings of single predictions (LLM, diffusion, TTS) for the terminal."""
from __future__ import annotations


def _range(value: float, interval: float, scale: float, fmt: str) -> str:
    return f"{value * scale:{fmt}} ({value * (1 - interval) * scale:{fmt}}-{value * (1 + interval) * scale:{fmt}})"


def llm_text(p, hw) -> str:
    m = p.memory
    lines = [f"{p.model} on {p.count} x {hw.vendor} {hw.model} (TP {p.tp}), {p.precision}, batch {p.batch}, "
             f"input {p.input_len}, output {p.output_len}",
             f"memory per device: weights {m['weights_gb_per_device']:.1f} GB + KV {m['kv_cache_gb_per_device']:.1f} GB"
             f" + reserve {m['runtime_reserve_gb']:.1f} GB = {m['total_gb_per_device']:.1f} of "
             f"{m['usable_gb_per_device']:.1f} GB usable; at most {p.max_concurrency} requests of this length fit"]
    if p.fits:
        lines.append(f"TTFT {_range(p.ttft_s, p.interval, 1e3, '.1f')} ms, TPOT {_range(p.tpot_s, p.interval, 1e3, '.2f')} ms")
        lines.append(f"output tokens/s {p.output_tokens_per_s:.0f} in total, {p.output_tokens_per_s_per_device:.0f} "
                     f"per device; decode bound by {p.bound['decode'].replace('_', ' ')}")
    return "\n".join(lines + [f"note: {n}" for n in p.notes])


def media_text(p, hw) -> str:
    m = p.memory
    lines = [f"{p.model} ({p.kind}) on 1 x {hw.vendor} {hw.model}, {p.precision}",
             f"memory: weights {m['weights_gb']:.2f} GB + reserve {m['runtime_reserve_gb']:.1f} GB = "
             f"{m['total_gb']:.1f} of {m['usable_gb']:.1f} GB usable"]
    if p.fits and p.kind == "diffusion":
        lines.append(f"s/image {_range(p.latency_s, p.interval, 1, '.3f')}, images/s per device "
                     f"{p.units_per_s_per_device:.2f}; {p.flops_per_unit / 1e12:.1f} TFLOP per image; bound by "
                     f"{p.bound.replace('_', ' ')}")
    elif p.fits:
        lines.append(f"RTF {_range(p.rtf, p.interval, 1, '.4f')}, first audio (non-streaming) "
                     f"{p.latency_s * 1e3:.0f} ms, audio seconds per second per device {p.units_per_s_per_device:.0f}; "
                     f"{p.flops_per_unit / 1e9:.1f} GFLOP per audio second; bound by {p.bound.replace('_', ' ')}")
    return "\n".join(lines + [f"note: {n}" for n in p.notes])
