"""Calibration: the serving model's efficiencies fitted to measurements, plus diffusion/TTS MFUs and
measured device power, in one file that `predict` and `plan` take with --calibration.

LLM: the reference measurements shipped with infra-bench (NVIDIA's AIConfigurator silicon sample and
published points) and the user's own `run` and `loadtest` records are fitted together by
planner/fit.py, starting from the shipped fit; the levels the user's records measured (their
hardware, engine, precision) get factors of their own. Intervals keep the held-out residual tiers of
the shipped fit (benchmarks/planner_accuracy.py).
Diffusion and TTS: per (kind, hardware, engine, precision), the MFU that makes FLOPs / (peak x MFU)
+ the prior fixed overhead equal the measured time. Speech LMs: per (hardware, mode, precision), the
per-layer-step overhead that makes the iteration model meet the measured synthesis. Power: mean busy watts of records whose energy
was measured (NVML, RAPL), per hardware.
"""
from __future__ import annotations

import json
import math
import statistics
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

from ..errors import UserError
from ..inputs import load_json
from ..measure.energy import MEASURED_SOURCES
from . import fit as llm_fit
from .engines import engine_name
from .iteration import peak_tflops
from .measurements import unmatched
from .profiles import HardwareProfile, match_device
from .shapes import LlmShape

KIND = "infra-bench calibration"
VERSION = 7  # 4: diffusion fits take off the UNet prior's per-step time; 5: speech LMs fit apart from the TTS MFU;
#             6: the LLM fit's TTFT clustering has a factor per engine x class (LLM fit version 7);
#             7: the expert GEMM efficiency has a factor per generation x precision (LLM fit version 8)


@dataclass(frozen=True)
class MediaPoint:
    """A diffusion or TTS record: the work (FLOPs), the measured seconds for it, the prior fixed
    overhead over that time and the device peak, and the MFU they imply."""
    kind: str
    hardware: str
    engine: str
    precision: str
    model: str
    flops: float
    seconds: float
    fixed_s: float
    peak: float
    source: str

    @property
    def key(self) -> str:
        return f"{self.kind}|{self.hardware}|{self.engine}|{self.precision}"

    def mfu(self, overhead_scale: float) -> float:
        return self.flops / (self.peak * (self.seconds - self.fixed_s * overhead_scale))


def media_points(records: list[dict], profiles: dict[str, HardwareProfile]) -> tuple[list[MediaPoint], list[str]]:
    """Points from our own records of the kinds that register a calibration point (diffusion s/image
    at batch 1, TTS synthesis time, embedding batch latency) on a profiled device."""
    from ..kinds import KINDS
    from ..kinds.base import load_ref
    from . import media_model as mm
    from . import speech_lm

    hooks = {name: load_ref(k.calibration_point) for name, k in KINDS.items() if k.calibration_point}
    points, skipped = [], []
    for r in records:
        if r.get("kind") not in hooks or r.get("status") != "ok":
            continue
        if speech_lm.is_speech_lm(r["model"].get("arch") or ""):
            continue  # speech_lm_points
        hw, precision = match_device(profiles, r["device"].get("model")), r["spec"]["dtype"]
        if hw is None or precision not in mm.PRECISIONS:
            skipped.append(f"{r['cell_id']}: " + (unmatched(r["device"].get("model"))
                                                   if hw is None else "only fp32/bf16/fp16 cells calibrate"))
            continue
        model, family = r["model"].get("arch") or r["model"].get("voice") or "?", r["model"].get("family")
        # the model (a local folder: its family), dtype and device kind pick the priors whose fixed time comes off
        got = hooks[r["kind"]](r["metrics"], {**r["cell"], "model": model, "family": family, "dtype": precision,
                                              "accelerator": hw.kind == "accelerator"})
        if isinstance(got, str):
            skipped.append(f"{r['cell_id']}: {got}")
            continue
        work, seconds, fixed = got
        engine = engine_name(str(r["backend"].get("name")))
        points.append(MediaPoint(mm.fit_group(r["kind"], model, family), hw.id, engine, precision, model, work, seconds, fixed,
                                 peak_tflops(hw, precision) * 1e12, f"record {r['run_id']}/{r['cell_id']}"))
    return points, skipped


def speech_lm_points(records: list[dict], profiles: dict[str, HardwareProfile]) -> tuple[list[dict], list[str]]:
    """Points from speech-LM `run` records on a profiled device: the per-layer-step overhead each implies."""
    from . import speech_lm

    points, skipped = [], []
    for r in records:
        if r.get("kind") != "tts" or r.get("status") != "ok" or not speech_lm.is_speech_lm(r["model"].get("arch") or ""):
            continue
        hw = match_device(profiles, r["device"].get("model"))
        got = speech_lm.record_overhead(r, hw) if hw else unmatched(r["device"].get("model"))
        if isinstance(got, str):
            skipped.append(f"{r['cell_id']}: {got}")
        else:
            points.append(got)
    return points, skipped


def speech_lm_key(point: dict) -> str:
    """The key of a speech-LM point's fit: hardware|mode|precision."""
    return f"{point['hardware']}|{point['mode']}|{point['precision']}"


def busy_only(data: dict, fit: str, *keys: str) -> str | None:
    """The file's lines saying that fits `keys` of `fit` (llm, media, speech_lm, power) came from a busy
    machine only (planner/quiet.py), or None."""
    lines = [line for k in keys if (line := data.get("busy_only", {}).get(fit, {}).get(k))]
    return "; ".join(lines) or None


BUSY_LABEL = "busy machine only"


def label(fitted: dict) -> str:
    """How `plan` names a fit of your own runs: its key, and whether it rests on a busy machine's records only."""
    return f"calibrated ({fitted['key']}" + (f"; {BUSY_LABEL})" if fitted.get("busy") else ")")


def busy_lines(data: dict | None) -> list[str]:
    """Every line of the file saying a fit rests on a busy machine's records only, for `plan`'s notes."""
    return [line for fits in (data or {}).get("busy_only", {}).values() for line in fits.values()]


def busy_llm(data: dict, hardware: str, engine: str, precision: str, shape: LlmShape) -> str | None:
    """The file's lines for LLM cases of this hardware, engine, precision and architecture class (dense or MoE)
    fitted from a busy machine's records only: their category's own factors, which every model of it is
    predicted with, rest on them. A case whose model can no longer be read (a local folder since moved) counts
    for either class."""
    cls = llm_fit.arch_class(shape)
    lines = []
    for key, line in data.get("busy_only", {}).get("llm", {}).items():
        model, *case = key.rsplit("|", 3)
        if case == [hardware, engine, precision] and _class_of(model) in (cls, None):
            lines.append(line)
    return "; ".join(lines) or None


def _class_of(model: str) -> str | None:
    from .shapes import get_shape

    try:
        return llm_fit.arch_class(get_shape(model))
    except (UserError, OSError):
        return None


def fit_speech_lm(points: list[dict]) -> dict:
    """Per (hardware, mode, precision): the geometric mean of the points' overheads, and how far each
    point is from the mean of the others (the interval)."""
    groups: dict[str, list[dict]] = {}
    for p in points:
        groups.setdefault(speech_lm_key(p), []).append(p)
    out = {}
    for key, ps in groups.items():
        logs = [math.log(max(p["overhead_s"], 1e-9)) for p in ps]
        loo = (statistics.mean(abs(math.exp(v - statistics.mean(logs[:i] + logs[i + 1:])) - 1) for i, v in enumerate(logs))
               if len(logs) >= 2 else None)
        out[key] = {"overhead_s": math.exp(statistics.mean(logs)), "n": len(ps), "loo_rel_error": loo, "points": ps}
    return out


def for_speech_lm(data: dict, hardware: str, mode: str, precision: str) -> dict | None:
    """The `calibration` argument of speech_lm.predict and capacity, or None without a fit for the key."""
    key = f"{hardware}|{mode}|{precision}"
    f = data.get("speech_lm_fits", {}).get(key)
    if not f:
        return None
    return {"overhead_s": f["overhead_s"], "n": f["n"], "interval": max(f["loo_rel_error"] or 0.25, 0.05), "key": key,
            "busy": busy_only(data, "speech_lm", key)}


def power_points(records: list[dict], profiles: dict[str, HardwareProfile]) -> list[dict]:
    """Device power while busy, from records whose energy was measured (not estimated) on a profiled
    device: a measured cell keeps its device busy, so its average power is the busy draw."""
    points = []
    for r in records:
        m = r.get("metrics") or {}
        if r.get("status") != "ok" or m.get("energy_source") not in MEASURED_SOURCES or not m.get("avg_power_w"):
            continue
        hw = match_device(profiles, (r.get("device") or {}).get("model"))
        if hw is not None:
            points.append({"hardware": hw.id, "busy_w": m["avg_power_w"], "energy_source": m["energy_source"],
                           "scope": m.get("energy_scope"), "kind": r.get("kind"),
                           "source": f"record {r['run_id']}/{r['cell_id']}"})
    return points


def fit_power(points: list[dict]) -> dict:
    """Per hardware: the mean measured busy power over its records."""
    out: dict[str, dict] = {}
    for p in points:
        out.setdefault(p["hardware"], {"points": []})["points"].append(p)
    for f in out.values():
        f["busy_w"] = statistics.mean(p["busy_w"] for p in f["points"])
        f["n"] = len(f["points"])
    return out


def device_power(data: dict) -> dict:
    """The `device_power` assumption (hardware -> busy watts with its source) from a calibration file."""
    return {hw: {"busy_w": f["busy_w"], "measured": True,
                 "source": f"mean of {f['n']} measured record(s): " + ", ".join(p["source"] for p in f["points"][:3])
                           + (" ..." if f["n"] > 3 else "")
                           + (f"; {busy}" if (busy := busy_only(data, "power", hw)) else "")}
            for hw, f in data.get("power_fits", {}).items()}


def fit_media(points: list[MediaPoint]) -> dict:
    """Per key: the mean MFU with the prior fixed overhead taken off each time; where a measurement
    is not at least twice that overhead (small models, no launch cost), the key keeps only the share
    of it that leaves every point half its time."""
    groups: dict[str, list[MediaPoint]] = {}
    for p in points:
        groups.setdefault(p.key, []).append(p)
    out = {}
    for key, ps in groups.items():
        # the largest share of the prior overhead (at most all of it) that leaves every point at least half
        # its time for compute: one fast record no longer strips the overhead from the key's other models
        scale = min([1.0] + [0.5 * p.seconds / p.fixed_s for p in ps if p.fixed_s > 0])
        values = [p.mfu(scale) for p in ps]
        loo = (statistics.mean(abs(v / statistics.mean(values[:i] + values[i + 1:]) - 1) for i, v in enumerate(values))
               if len(values) >= 2 else None)
        out[key] = {"mfu": statistics.mean(values), "overhead_scale": scale, "n": len(ps), "loo_rel_error": loo,
                    "points": [{**asdict(p), "mfu": v} for p, v in zip(ps, values)]}
    return out


def calibrate(problem: llm_fit.Problem | None, media: list[MediaPoint] = (), power: list[dict] = (),
              skipped: list[str] = (), speech: list[dict] = (), busy: dict[str, dict[str, str]] | None = None) -> dict:
    """The shipped LLM fit refined by `problem` (your measurements; None keeps it as shipped), and the
    media and power fits: the calibration file's data. `busy`: fit -> key -> line, for the keys fitted
    from a busy machine's records only (planner/quiet.py)."""
    shipped = llm_fit.shipped()
    if problem is not None:
        fitted = llm_fit.fit_own(llm_fit.fit(problem, anchor=shipped, max_evals=200), problem)
    else:
        fitted = shipped
    fitted.residuals = shipped.residuals
    missed = misses(fitted, problem) if problem is not None else []
    if problem is not None:
        fitted.meta = {**shipped.meta, **fitted.meta, "source": f"shipped fit refined by {len(problem.points)} "
                                                              f"measurement(s) of your own"}
    cases = {case_key(m.model, m.hardware, m.engine, m.precision) for m in (problem.points if problem else ())}
    busy = {**(busy or {}), "llm": {k: line for k, line in (busy or {}).get("llm", {}).items() if k in cases}}
    busy = {fit: lines for fit, lines in busy.items() if lines}  # an LLM case the fit's problem dropped is not fitted
    return {"kind": KIND, "version": VERSION, "llm": fitted.to_dict(), "media_fits": fit_media(list(media)),
            "speech_lm_fits": fit_speech_lm(list(speech)), "power_fits": fit_power(list(power)), "skipped": list(skipped),
            "busy_only": busy,
            "misses": [line for _, line in missed],
            "miss_cases": {key: [line for k, line in missed if k == key] for key, _ in missed},
            "local_models": local_models(problem) if problem is not None else {},
            "method": __doc__.split("\n\n")[0].strip()}


MISS = 0.10   # a calibrated prediction further than this from its own measurement is reported


def case_key(model: str, hardware: str, engine: str, precision: str) -> str:
    """The key a prediction and a measurement share in `miss_cases`."""
    return f"{model}|{hardware}|{engine}|{precision}"


def local_models(problem: llm_fit.Problem) -> dict[str, str]:
    """The local folders your records calibrated as their own shapes: id -> config.json, so that `predict` finds a
    folder's cases under the id it had here (two folders of one name calibrated together get ids apart)."""
    from .shapes import get_shape

    shapes = {get_shape(m.model) for m in problem.points}
    return {s.id: s.config_path for s in sorted(shapes, key=lambda s: s.id) if s.config_path}


def case_model(data: dict | None, shape: LlmShape) -> str:
    """The id `data` keys a model's cases by: for a local folder, the id it was calibrated under from the same
    config.json, else its own (the folder's name: a folder moved since keeps its cases)."""
    same = [i for i, path in (data or {}).get("local_models", {}).items() if shape.config_path and path == shape.config_path]
    return same[0] if same else shape.id


def misses(fitted: llm_fit.Fit, problem: llm_fit.Problem) -> list[tuple[str, str]]:
    """(case key, line) per measurement of your own that the calibrated fit does not reproduce within MISS,
    with the likely reason: a TTFT shorter than one decode step cannot be a prefill followed by its
    first token (the model's TTFT is at least a step), which is what a busy machine leaves in a record."""
    pred, _ = llm_fit.predict_problem(fitted, problem)
    out = []
    for i, m in enumerate(problem.points):
        pairs = (("TTFT", m.ttft_s, pred.ttft_s), ("TPOT", m.tpot_s, pred.tpot_s))
        off = {name: float(p[i]) / v - 1 for name, v, p in pairs if v and abs(float(p[i]) / v - 1) > MISS}
        if not off:
            continue
        why = (f"its TTFT ({m.ttft_s * 1e3:.1f} ms) is shorter than its TPOT ({m.tpot_s * 1e3:.1f} ms), which no "
               f"prefill can be: the machine was likely busy; measure again on a quiet machine"
               if m.ttft_s and m.tpot_s and m.ttft_s < m.tpot_s
               else "its category's factors reached their bounds; check the hardware profile's peaks")
        out.append((case_key(m.model, m.hardware, m.engine, m.precision),
                    f"{m.source}: calibrated " + ", ".join(f"{k} {v:+.0%}" for k, v in off.items())
                    + f" off the measurement; {why}"))
    return out


def write(path: Path, data: dict) -> None:
    Path(path).write_text(json.dumps(data, indent=1))


def load(path: str | Path) -> dict:
    data = load_json(path, "calibration file", "make one with `infra-bench calibrate`")
    if not isinstance(data, dict) or data.get("kind") != KIND:
        raise UserError(f"{path}: not an infra-bench calibration file; make one with `infra-bench calibrate`")
    if data.get("version") != VERSION:
        raise UserError(f"{path}: a calibration file of an older infra-bench (version {data.get('version')}); "
                        f"make it again with `infra-bench calibrate`")
    return data


@lru_cache(maxsize=8)
def _fit_of(text: str) -> llm_fit.Fit:
    return llm_fit.Fit.from_dict(json.loads(text), "calibration file")


PRIORS_ONLY: dict = {"kind": KIND, "priors_only": True}
"""Calibration data that asks for the priors: no shipped fit, no measured power (`plan --no-calibration`)."""


def fit_from(data: dict | None) -> llm_fit.Fit:
    """The LLM fit of loaded calibration data, else the one shipped with infra-bench."""
    if data and data.get("priors_only"):
        return llm_fit.Fit.uniform()
    if not data or "llm" not in data:
        return llm_fit.shipped()
    return _fit_of(json.dumps(data["llm"], sort_keys=True))


def for_media(data: dict, kind: str, hardware: str, engine: str | None, precision: str) -> dict | None:
    """The `calibration` argument of media_model's predictions: the key's MFU, else the mean over engines."""
    fits = data.get("media_fits", {})
    key = f"{kind}|{hardware}|{engine}|{precision}"
    keys = [key] if engine and key in fits else [
        k for k in fits if k.startswith(f"{kind}|{hardware}|") and k.endswith(f"|{precision}")]
    same = [fits[k] for k in keys]
    if not same:
        return None
    n = sum(f["n"] for f in same)
    loo = max((f["loo_rel_error"] or 0) for f in same)
    return {"mfu": sum(f["mfu"] * f["n"] for f in same) / n, "n": n, "interval": max(loo or 0.25, 0.05),
            "overhead_scale": min(f["overhead_scale"] for f in same),
            "key": key if len(same) == 1 and engine else f"{kind}|{hardware}|any engine|{precision}",
            "busy": busy_only(data, "media", *keys)}
