"""Charts of measured records: latency against throughput over batch sizes, TTFT/TPOT/ITL
distributions, diffusion per-step and phase times, TTS real-time factor, memory, energy per unit
of work, and bars comparing setups. Each returns an Image (PNG with a caption naming units and
labels) or None when the records hold nothing to draw."""
from __future__ import annotations

import statistics
from collections import defaultdict

from ..kinds import KINDS
from . import charts
from .charts import Bar
from .document import Image
from .labels import (
    Names,
    energy_label,
    energy_metric,
    is_estimated,
    mib,
    model_id,
    shape,
    stat,
)


def _image(fig, alt: str, caption: str) -> Image:
    return Image(charts.png(fig), alt, caption)


def latency_throughput(records: list[dict], kind: str, names: Names) -> Image | None:
    """Per series (a cell id without its batch size): p50 (solid) and p90 (dashed) latency against
    throughput, one point per batch size."""
    km = KINDS[kind].metrics
    series: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        if stat(r["metrics"], km.throughput) is not None:
            series[names.series(r)].append(r)
    if not any(len(rs) > 1 for rs in series.values()):
        return None  # one batch size per series: no curve to draw
    fig, axes = charts.figure(ncols=len(km.latencies), height=3.8)
    for ax, lat in zip(axes, km.latencies):
        for i, (label, rs) in enumerate(series.items()):
            rs = sorted(rs, key=lambda r: r["cell"].get("batch_size", 0))
            pts = [(r["metrics"][km.throughput], stat(r["metrics"], lat.metric), stat(r["metrics"], lat.metric, "p90"),
                    r["cell"].get("batch_size")) for r in rs if stat(r["metrics"], lat.metric) is not None]
            if not pts:
                continue
            x = [p[0] for p in pts]
            ax.plot(x, [p[1] * lat.scale for p in pts], "o-", color=f"C{i % 10}", label=label, ms=4)
            ax.plot(x, [p[2] * lat.scale for p in pts], "--", color=f"C{i % 10}", lw=0.8)
            for xi, p in zip(x, pts):
                ax.annotate(f"b{p[3]}", (xi, p[1] * lat.scale), textcoords="offset points", xytext=(4, 4), fontsize=7)
        charts.log_if_spread(ax, [r["metrics"][km.throughput] for rs in series.values() for r in rs], "x")
        charts.log_if_spread(ax, [(stat(r["metrics"], lat.metric, "p90") or 0) * lat.scale
                                  for rs in series.values() for r in rs], "y")
        ax.set_xlabel(km.throughput_label)
        ax.set_ylabel(f"{lat.label}, p50 solid, p90 dashed")
    charts.legend(axes[0])
    return _image(fig, f"{kind} latency against throughput",
                  f"Measured ({kind}): median (solid) and p90 (dashed) {', '.join(lat.label for lat in km.latencies)} "
                  f"against {km.throughput_label}; each point is one cell, labelled with its batch size (b).")


def endpoint_points(records: list[dict], names: Names) -> Image | None:
    """Load-test points (`kind: endpoint`): p50 (solid) and p95 (dashed) TTFT and end-to-end latency
    against throughput, one series per endpoint, model, API and request shape, one point per load."""
    from .endpoint_table import point_label

    rs = [r for r in records if r["kind"] == "endpoint"]
    tokens = all(r["metrics"].get("output_tokens_per_s") is not None for r in rs)
    x_key, x_label = ("output_tokens_per_s", "output tokens/s") if tokens else ("requests_per_s", "requests/s")
    series: dict[str, list[dict]] = defaultdict(list)
    for r in rs:
        if r["metrics"].get(x_key) is not None:
            c = r["cell"]
            series[f"{names.cell(r).rsplit('/', 1)[0]} in {c.get('input_len')} out {c.get('output_len')}"].append(r)
    lats = [(k, label) for k, label in (("ttft_s", "TTFT (ms)"), ("e2e_s", "end-to-end latency (ms)"))
            if any(stat(r["metrics"], k) is not None for rs_ in series.values() for r in rs_)]
    if not lats or not any(len(v) > 1 for v in series.values()):
        return None  # one point per series: no curve to draw
    fig, axes = charts.figure(ncols=len(lats), height=3.8)
    for ax, (key, label) in zip(axes, lats):
        for i, (name, points) in enumerate(series.items()):
            pts = sorted(((r["metrics"][x_key], stat(r["metrics"], key), stat(r["metrics"], key, "p95"), point_label(r))
                          for r in points if stat(r["metrics"], key) is not None), key=lambda p: p[0])
            if not pts:
                continue
            x = [p[0] for p in pts]
            ax.plot(x, [p[1] * 1e3 for p in pts], "o-", color=f"C{i % 10}", label=name, ms=4)
            ax.plot(x, [(p[2] or p[1]) * 1e3 for p in pts], "--", color=f"C{i % 10}", lw=0.8)
            for xi, p in zip(x, pts):
                ax.annotate(p[3], (xi, p[1] * 1e3), textcoords="offset points", xytext=(4, 4), fontsize=7)
        charts.log_if_spread(ax, [r["metrics"][x_key] for v in series.values() for r in v], "x")
        ax.set_xlabel(x_label)
        ax.set_ylabel(f"{label}, p50 solid, p95 dashed")
    charts.legend(axes[0])
    return _image(fig, "load test latency against throughput",
                  f"Measured at the client (endpoint): median (solid) and p95 (dashed) {' and '.join(l for _, l in lats)} "
                  f"against {x_label}; each point is one load point, labelled with its concurrency or rate.")


def _tpot_per_request(r: dict) -> list[float]:
    out = r["cell"].get("output_len", 0)
    if out < 2:
        return []
    return [(s["e2e_s"] - s["ttft_s"]) / (out - 1) * 1e3 for s in r.get("samples") or [] if "e2e_s" in s]


def llm_distributions(records: list[dict], names: Names) -> Image | None:
    """Per cell: TTFT and TPOT per request, and every inter-token gap, as box plots with the samples."""
    rs = [r for r in records if r.get("samples")]
    if not rs:
        return None
    panels = [("TTFT per request (ms)", [[s["ttft_s"] * 1e3 for s in r["samples"]] for r in rs]),
              ("TPOT per request (ms)", [_tpot_per_request(r) for r in rs]),
              ("ITL, every gap (ms)", [[g * 1e3 for s in r["samples"] for g in s.get("itl_s", [])]
                                                      for r in rs])]
    panels = [(label, data) for label, data in panels if all(data)]
    fig, axes = charts.figure(ncols=len(panels), height=charts.rows_height(len(rs), 0.45), sharey=True)
    for ax, (label, data) in zip(axes, panels):
        charts.hbox(ax, data, [names.cell(r) for r in rs], label)
        charts.log_if_spread(ax, [v for d in data for v in d], "x")
    return _image(fig, "TTFT, TPOT and inter-token latency distributions",
                  "Measured: the distribution of TTFT and TPOT over the recorded requests of each cell and of every "
                  "inter-token gap (box: quartiles, orange: median, whiskers: 1.5 IQR; dots: each sample). "
                  "TPOT = (e2e − TTFT)/(output tokens − 1).")


def diffusion_steps(records: list[dict], names: Names) -> Image | None:
    """Per cell: time of each denoising step (mean over requests, min-max band), and the phases."""
    rs = [r for r in records if r.get("samples") and all(s.get("step_s") for s in r["samples"])]
    if not rs:
        return None
    fig, (steps_ax, phase_ax) = charts.figure(ncols=2, height=max(3.6, charts.rows_height(len(rs), 0.4)))
    for i, r in enumerate(rs):
        runs = [s["step_s"] for s in r["samples"]]
        n = min(len(x) for x in runs)
        cols = [[x[k] * 1e3 for x in runs] for k in range(n)]
        idx = range(1, n + 1)
        steps_ax.plot(idx, [sum(c) / len(c) for c in cols], "o-", ms=3, color=f"C{i % 10}", label=names.cell(r))
        steps_ax.fill_between(idx, [min(c) for c in cols], [max(c) for c in cols], color=f"C{i % 10}", alpha=0.15)
    steps_ax.set_xlabel("denoising step")
    steps_ax.set_ylabel("step time (ms), mean and min-max")
    charts.legend(steps_ax)
    split = [phase_times(r) for r in rs]
    left = [0.0] * len(rs)
    for j, name in enumerate(split[0]):
        ms = [p[name] * 1e3 for p in split]
        phase_ax.barh(range(len(rs)), ms, left=left, color=f"C{j}", label=name, edgecolor="0.25", linewidth=0.4)
        left = [a + b for a, b in zip(left, ms)]
    phase_ax.set_yticks(range(len(rs)), [names.cell(r) for r in rs], fontsize=7)
    phase_ax.set_ylim(len(rs) - 0.5, -0.5)
    phase_ax.set_xlabel("time per request (ms), medians")
    charts.legend(phase_ax)
    return _image(fig, "diffusion per-step and phase times",
                  "Measured: each denoising step's time (mean over the recorded requests, band: min to max), and a "
                  "request split into text encoding, steps and VAE decoding (each the median over requests, a "
                  "request's steps summed), in ms.")


def phase_times(r: dict) -> dict[str, float]:
    """A diffusion request split into phases, in seconds: the median over requests of each phase, a request's steps
    summed. The median step times the steps run read 2.5 s of a 10.5 s request on a busy machine, whose slow steps
    came in runs within some requests."""
    med = statistics.median
    samples = r["samples"]
    return {"text encode": med(s["text_encode_s"] for s in samples),
            "denoising steps": med(sum(s["step_s"]) for s in samples),
            "VAE decode": med(s["vae_decode_s"] for s in samples)}


def tts_rtf(records: list[dict], names: Names) -> Image | None:
    """Per cell: RTF (median, whisker to p90) against the real-time line, and time to first audio."""
    rs = [r for r in records if stat(r["metrics"], "rtf") is not None]
    if not rs:
        return None
    rtf = [Bar(names.cell(r), "RTF", stat(r["metrics"], "rtf"), upper=stat(r["metrics"], "rtf", "p90")) for r in rs]
    first = [Bar(names.cell(r), "first audio", None if stat(r["metrics"], "first_audio_s") is None
                 else stat(r["metrics"], "first_audio_s") * 1e3) for r in rs]
    fig, (rtf_ax, first_ax) = charts.figure(ncols=2, height=charts.hbars_height(rtf, 0.4), sharey=True)
    charts.hbars(rtf_ax, rtf, "RTF (synthesis s / audio s), p50, whisker to p90")
    rtf_ax.axvline(1.0, color="C3", lw=1)
    rtf_ax.text(1.0, -0.4, " real time", color="C3", fontsize=7)
    charts.hbars(first_ax, first, "time to first audio (ms), p50")
    kinds = sorted({r["backend"].get("first_audio", "?") for r in rs})
    return _image(fig, "TTS real-time factor and first audio",
                  "Measured: real-time factor (below 1 is faster than real time) and time to first audio per cell. "
                  f"First audio: {'; '.join(kinds)}.")


def memory(records: list[dict], names: Names) -> Image | None:
    """Peak host RSS and, where the device reports one, peak device memory per cell (MiB)."""
    rs = [r for r in records if r["metrics"].get("host_peak_rss_bytes")]
    if not rs:
        return None
    bars = [Bar(names.cell(r), what, mib(r["metrics"].get(key))) for r in rs
            for what, key in (("host peak RSS", "host_peak_rss_bytes"), ("device peak allocated",
                                                                         "device_peak_allocated_bytes"))
            if r["metrics"].get(key)]
    fig, (ax,) = charts.figure(height=charts.hbars_height(bars))
    charts.hbars(ax, bars, "memory (MiB)")
    return _image(fig, "peak memory per cell",
                  "Measured: the largest resident set of the process (host, sampled every 50 ms) and the allocator's "
                  "peak on the device where there is one, in MiB (2^20 bytes).")


def energy(records: list[dict], names: Names) -> Image | None:
    """Energy per unit of work (J/token, J/image, J/audio s), one panel per kind; estimates hatched."""
    by_kind: dict[str, list[Bar]] = defaultdict(list)
    for r in records:
        key, unit = energy_metric(r["kind"])
        if r["metrics"].get(key) is not None:
            by_kind[r["kind"]].append(Bar(names.cell(r), unit, r["metrics"][key], is_estimated(r["metrics"])))
    if not by_kind:
        return None
    sizes = [len(bars) for bars in by_kind.values()]
    fig, axes = charts.figure(nrows=len(by_kind), height=charts.rows_height(sum(sizes), 0.32, 1.0 * len(sizes)),
                              height_ratios=[s + 1.5 for s in sizes])
    for ax, (kind, bars) in zip(axes, by_kind.items()):
        charts.hbars(ax, bars, f"{kind}: energy per unit ({energy_metric(kind)[1]})")
    sources = sorted({energy_label(r["metrics"].get("energy_source")) for r in records
                      if r["metrics"].get(energy_metric(r["kind"])[0]) is not None})
    return _image(fig, "energy per unit of work",
                  f"Energy over the measured window divided by the work done, in joules per unit; sources: "
                  f"{', '.join(sources)}. Hatched bars are estimates, not measurements (see Labels).")


def comparison_bars(kind: str, rows: list[tuple[str, str, dict]]) -> Image:
    """Throughput and energy per unit of each compared cell (model and shape) on every setup that
    measured it, 'failed' where its cell failed. `rows`: (category, setup, record) triples, grouped by category."""
    km = KINDS[kind].metrics
    key, unit = energy_metric(kind)
    gone = {"failed": "failed", "ok": "n/a"}
    thr = [Bar(c, s, stat(r.get("metrics") or {}, km.throughput), missing=gone[r["status"]]) for c, s, r in rows]
    en = [Bar(c, s, (r.get("metrics") or {}).get(key), is_estimated(r.get("metrics") or {}), missing=gone[r["status"]])
          for c, s, r in rows]
    fig, (thr_ax, en_ax) = charts.figure(ncols=2, height=charts.hbars_height(thr, 0.3), sharey=True)
    charts.hbars(thr_ax, thr, km.throughput_label)
    charts.hbars(en_ax, en, f"energy per unit ({unit})", series_legend=False)
    return _image(fig, f"{kind} comparison across setups",
                  f"Measured {km.throughput_label} (left) and energy per unit ({unit}, right; hatched = estimated) of "
                  f"the same model and shape on each setup (backend, device, precision, run).")


def category(r: dict) -> str:
    """What makes two measurements comparable: the same model and cell shape."""
    return f"{model_id(r)} {shape(r)}"
