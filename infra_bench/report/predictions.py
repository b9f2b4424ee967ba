"""Plain-text renderings of single predictions (LLM, diffusion, TTS) for the terminal."""
from __future__ import annotations

from collections.abc import Callable

from .charts import number


def _range(value: float, interval: float, scale: float, fmt: str) -> str:
    return f"{value * scale:{fmt}} ({value * (1 - interval) * scale:{fmt}}-{value * (1 + interval) * scale:{fmt}})"


def _interval(value: float | None, bounds, scale: float, fmt: str) -> str:
    if value is None:
        return "-"
    text = f"{value * scale:{fmt}}"
    return text + (f" ({bounds[0] * scale:{fmt}}-{bounds[1] * scale:{fmt}})" if bounds else "")


BOUND_WORDS = {"dense_gemm": "dense GEMMs", "moe_experts": "MoE experts", "tp_allreduce": "TP all-reduces",
               "ep_alltoall": "EP all-to-alls", "pp_send": "pipeline sends", "fixed": "fixed per-iteration overheads"}


def llm_text(p, hw) -> str:
    """A serving prediction: configuration, memory, latencies and throughput with 80% intervals,
    energy, and which fit it rests on."""
    m, lay, iv, replicas = p.memory, p.layout, p.intervals, p.replicas
    par = " ".join(f"{k.upper()} {v}" for k, v in lay.items() if v > 1) or "1 device"
    if p.run:
        return run_text(p, hw)
    load = (f"offline maximum at {p.concurrency:g} clients" if p.mode == "max throughput"
            else f"{p.concurrency:g} closed-loop client{'' if p.concurrency == 1 else 's'}")
    lines = [f"{p.model} on {p.devices * replicas} x {hw.vendor} {hw.model} ({par} per replica, {replicas} "
             f"replica{'s' if replicas > 1 else ''}), {p.precision}, {p.engine}; {load} per replica, input "
             f"{p.input_len}, output {p.output_len}",
             f"memory per device: weights {m['weights_gb_per_device']:.1f} GB + reserve {m['runtime_reserve_gb']:.1f} GB; "
             f"KV room {m['kv_room_gb_per_device']:.1f} GB holds {m['max_sequences']} sequences of "
             f"{m['context_tokens']:.0f} tokens, this length's mean context (engine limit {p.engine_limits['max_seqs']})"]
    lines.append(f"TTFT {_interval(p.ttft_s, iv.get('ttft_s'), 1e3, '.1f')} ms, "
                 f"TPOT {_interval(p.tpot_s, iv.get('tpot_s'), 1e3, '.2f')} ms (80% intervals)")
    total = p.output_tokens_per_s * replicas
    lines.append(f"output tokens/s {_interval(total, [x * replicas for x in iv['output_tokens_per_s']] if iv.get('output_tokens_per_s') else None, 1, '.0f')} "
                 f"in total, {number(p.output_tokens_per_s_per_device)} per device; {p.running:.0f} running, "
                 f"{p.waiting:.0f} waiting{' per replica' if replicas > 1 else ''}; decode iteration bound by "
                 f"{BOUND_WORDS.get(p.bound['decode_bound_by'], p.bound['decode_bound_by'].replace('_', ' '))}")
    if p.energy:
        e = p.energy
        lines.append(f"energy {e['j_per_token']:.3f} J per output token ({e['interval'][0]:.3f}-{e['interval'][1]:.3f}) "
                     f"for the devices, {e['j_per_token_node']:.3f} with the node; {e['avg_power_w']:.0f} W per device "
                     f"({e['energy_source']})")
    lines.append(_fit_line(p, "intervals from held-out {tier} residuals"))
    return "\n".join(lines + [f"note: {n}" for n in p.notes])


def _fit_line(p, intervals: str) -> str:
    """The fit an LLM prediction rests on: source, engine, class, unmeasured levels, and `intervals` (a template
    with {tier}) naming where its intervals come from."""
    f = p.fit
    measured = "all levels measured" if not f["not_measured"] else "not measured: " + ", ".join(f["not_measured"])
    return (f"fit: {f['source']}; {p.engine} ({f['engine_maturity']}), {f['class']} model; {measured}; "
            + intervals.format(tier=f["tier"].replace("_", " "))
            + (f" of {f['interval_engine']} points" if f.get("interval_engine") else ""))


def run_text(p, hw) -> str:
    """A finite benchmark run (predict --num-prompts): what was run, then its figures as vllm bench serve prints them."""
    m, lay, iv, r = p.memory, p.layout, p.intervals, p.run
    par = " ".join(f"{k.upper()} {v}" for k, v in lay.items() if v > 1) or "1 device"
    sent = "all at once" if r["max_concurrency"] is None else f"at most {r['max_concurrency']} in flight"
    lengths = f"input {p.input_len}, output {p.output_len}" if r["lengths"] == "fixed" else \
        f"lengths drawn from {r['lengths']} (mean input {p.input_len}, output {p.output_len})"
    lines = [(f"{p.model} on {p.devices} x {hw.vendor} {hw.model} ({par}), {p.precision}, {p.engine}; a benchmark run "
              f"of {r['num_prompts']:,} prompts, {sent}, {lengths} (predicted, stepped iteration by iteration)"),
             (f"memory per device: weights {m['weights_gb_per_device']:.1f} GB + reserve {m['runtime_reserve_gb']:.1f} "
              f"GB; KV room {m['kv_room_gb_per_device']:.1f} GB holds {m['max_sequences']} sequences of "
              f"{m['context_tokens']:.0f} tokens (engine limit {p.engine_limits['max_seqs']}); "
              f"{r['peak_running_per_rank']} running at most"),
             (f"duration {r['duration_s']:.3g} s; total tokens/s "
              f"{_interval(r['total_tokens_per_s'], r['total_tokens_per_s_interval'], 1, '.0f')}, output tokens/s "
              f"{_interval(r['output_tokens_per_s'], iv.get('output_tokens_per_s'), 1, '.0f')}"),
             (f"mean TTFT {_interval(p.ttft_s, iv.get('ttft_s'), 1e3, '.1f')} ms, mean TPOT "
              f"{_interval(p.tpot_s, iv.get('tpot_s'), 1e3, '.2f')} ms (80% intervals: the steady state's, see note)")]
    lines.append(_fit_line(p, "interval tier {tier}"))
    return "\n".join(lines + [f"note: {n}" for n in p.notes])


def media_text(p, hw, result: Callable[[object], str]) -> str:
    """A media prediction: what was predicted, its memory, the kind's `result` line when it fits, notes."""
    m = p.memory
    act = f" + activations {m['activations_gb']:.1f} GB (estimated)" if m.get("activations_gb") else ""
    lines = [f"{p.model} ({p.kind}) on 1 x {hw.vendor} {hw.model}, {p.precision}",
             f"memory: weights {m['weights_gb']:.2f} GB + reserve {m['runtime_reserve_gb']:.1f} GB{act} = "
             f"{m['total_gb']:.1f} of {m['usable_gb']:.1f} GB usable"]
    if p.fits:
        lines.append(result(p))
    return "\n".join(lines + [f"note: {n}" for n in p.notes])


def diffusion_result(p) -> str:
    b = p.efficiency.get("batch", 1)
    per = f"s per batch of {b} {_range(p.latency_s, p.interval, 1, '.3f')}" if b > 1 else \
        f"s/image {_range(p.latency_s, p.interval, 1, '.3f')}"
    return (f"{per}, images/s per device "
            f"{number(p.units_per_s_per_device)}; {p.flops_per_unit / 1e12:.1f} TFLOP per image; bound by "
            f"{p.bound.replace('_', ' ')}")


def speech_lm_text(p, hw) -> str:
    """A speech-LM prediction: streams batched by the LM, RTF, streaming first audio, memory, notes."""
    m = p.memory
    lines = [f"{p.model} (tts, speech LM, {p.mode}) on 1 x {hw.vendor} {hw.model}, {p.precision}, "
             f"{p.streams} stream(s) at once",
             f"memory: weights {m['weights_gb']:.2f} GB + KV cache {m['kv_cache_gb']:.2f} GB + reserve "
             f"{m['runtime_reserve_gb']:.1f} GB = {m['total_gb']:.1f} of {m['usable_gb']:.1f} GB usable"]
    if p.fits:
        lines += [f"RTF per stream {_range(p.rtf, p.interval, 1, '.3f')} (alone {p.rtf_alone:.3f}); streaming first "
                  f"audio {_range(p.first_audio_s, p.interval, 1e3, '.0f')} ms",
                  f"audio seconds per second per device {number(p.audio_s_per_s)}; LM {p.lm_tokens_per_s:.0f} frames/s; "
                  f"real time (RTF <= 1) for up to {p.max_streams_realtime} stream(s) at once"]
    return "\n".join(lines + [f"note: {n}" for n in p.notes])


def tts_result(p) -> str:
    return (f"RTF {_range(p.rtf, p.interval, 1, '.4f')}, first audio (non-streaming) "
            f"{p.latency_s * 1e3:.0f} ms, audio seconds per second per device {number(p.units_per_s_per_device)}; "
            f"{p.flops_per_unit / 1e9:.1f} GFLOP per audio second; bound by {p.bound.replace('_', ' ')}")
