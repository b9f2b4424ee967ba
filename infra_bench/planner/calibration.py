"""Calibrating the decode model: the memory-bandwidth efficiency (MBU) each measurement implies.

For a measured TPOT at a known batch and context, the model's decode time is
    TPOT = bytes_read / (TP x BW x MBU) + t_comm + t_fixed      (memory-bound decode)
so MBU = bytes_read / (TP x BW x (TPOT - t_comm - t_fixed)). Points come from published serving
measurements (workloads/published_measurements.csv, each with its source) and from our own
records whose device matches a profile. Fits are keyed by (hardware, engine, precision);
`predict` uses the mean for its key, with an interval from leave-one-out error.
"""
from __future__ import annotations

import csv
import io
import json
import re
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import UserError
from ..measure.energy import MEASURED_SOURCES
from ..paths import data_dir
from . import llm_model
from .profiles import HardwareProfile, match_device

MODEL_IDS = {"qwen3-8b": "qwen3-8b", "llama-3.1-8b-instruct": "llama-3.1-8b", "llama-3.1-70b": "llama-3.1-70b",
             "llama-3.3-70b-instruct": "llama-3.1-70b", "qwen3-30b-a3b": "qwen3-30b-a3b", "qwen3-32b": "qwen3-32b",
             "qwen2.5-7b-instruct": "qwen2.5-7b"}
HARDWARE_IDS = {"H100-SXM-80GB": "nv_h100_sxm", "H200-SXM-141GB": "nv_h200_sxm", "A100-SXM-80GB": "nv_a100_80g_sxm",
                "Ascend 910B": "hw_910b2"}
PRECISIONS = {"bf16": "bf16", "bf16 (assumed)": "bf16", "fp8": "fp8", "w8a8": "int8"}
MBU_RANGE = (0.05, 0.98)


@dataclass(frozen=True)
class Point:
    hardware: str
    engine: str
    precision: str
    model: str
    tp: int
    batch: int
    input_len: int
    output_len: int
    tpot_s: float
    mbu: float
    source: str
    note: str = ""

    @property
    def key(self) -> str:
        return f"{self.hardware}|{self.engine}|{self.precision}"


def engine_key(text: str) -> str:
    """'vLLM 0.11.0' -> 'vllm'; 'vLLM-Ascend 0.9.1 TP2' -> 'vllm-ascend'; 'torch 2.13.0+cpu' -> 'torch'."""
    return re.split(r"[\s(]", text.strip().lower(), maxsplit=1)[0]


def fit_mbu(shape, hw: HardwareProfile, precision: str, tp: int, batch: int, input_len: int, output_len: int,
            tpot_s: float) -> tuple[float, str]:
    """The MBU that makes the model's decode time equal `tpot_s` (clamped to a physical range)."""
    p = llm_model.predict(shape, hw, precision, tp, tp, batch, input_len, output_len)
    if not p.fits:
        raise ValueError("does not fit in memory under the model")
    t = p.bound["decode_terms_s"]
    bytes_per_s_at_prior = t["memory_bandwidth"] * p.efficiency["mbu"]  # = bytes_read / (TP x BW)
    budget = tpot_s - t["communication"] - t["fixed_overhead"]
    if budget <= 0:
        return MBU_RANGE[1], "measured faster than communication + fixed overhead allow; MBU clamped"
    mbu = bytes_per_s_at_prior / budget
    note = ""
    if not MBU_RANGE[0] <= mbu <= MBU_RANGE[1]:
        note = f"implied MBU {mbu:.2f} outside {MBU_RANGE}; clamped"
        mbu = min(max(mbu, MBU_RANGE[0]), MBU_RANGE[1])
    return mbu, note


def _scenario(text: str) -> tuple[int | None, int | None, int | None, int | None]:
    """(tp, batch, input_len, output_len) from a scenario description, None where not stated."""
    tp = re.search(r"TP(\d+)", text)
    batch = re.search(r"(?:concurrency|bs)\s*(\d+)", text)
    lens = re.search(r"(?:ISL|ISL/OSL)\s*(\d+)\s*/\s*(?:OSL\s*)?(\d+)", text) or re.search(r"(\d+)/(\d+)", text)
    return (int(tp.group(1)) if tp else None, int(batch.group(1)) if batch else None,
            int(lens.group(1)) if lens else None, int(lens.group(2)) if lens else None)


def published_points(profiles: dict[str, HardwareProfile]) -> tuple[list[Point], list[str]]:
    """Decode points from the published measurements; the rest are listed with why they are unused."""
    text = (data_dir("workloads") / "published_measurements.csv").read_text()
    rows = csv.DictReader(io.StringIO("".join(l for l in text.splitlines(True) if not l.startswith("#"))))
    points, skipped = [], []
    for r in rows:
        if r["metric"] not in ("mean TPOT", "TPOT", "ITL"):
            skipped.append(f"{r['id']}: {r['metric']} under burst load (batch unknown), not a decode point")
            continue
        tp, batch, isl, osl = _scenario(r["scenario"])
        tp = tp or int(r["count"] or 1)
        batch = batch or (1 if "concurrency 1" in r["scenario"] else None)
        isl, osl = isl or 1024, osl or 256  # ShareGPT-like lengths when not stated
        model, hw = MODEL_IDS.get(r["model"].lower()), HARDWARE_IDS.get(r["hardware"])
        precision = PRECISIONS.get(r["precision"].lower())
        if not (model and hw and precision and batch):
            skipped.append(f"{r['id']}: model, hardware, precision or batch not mappable")
            continue
        try:
            mbu, note = fit_mbu(llm_model.get_shape(model), profiles[hw], precision, tp, batch, isl, osl,
                                float(r["value"]) / 1e3)
        except (ValueError, UserError) as e:
            skipped.append(f"{r['id']}: {e}")
            continue
        points.append(Point(hw, engine_key(r["framework"]), precision, model, tp, batch, isl, osl,
                            float(r["value"]) / 1e3, mbu, f"published {r['id']} ({r['source']})", note))
    return points, skipped


def record_points(records: list[dict], profiles: dict[str, HardwareProfile]) -> tuple[list[Point], list[str]]:
    """Decode points from our own LLM records whose device matches a profile and model a planner shape."""
    points, skipped = [], []
    shapes = llm_model.shapes()
    for r in records:
        if r.get("kind") != "llm" or r.get("status") != "ok":
            continue
        hw = match_device(profiles, r["device"].get("model"))
        arch = r["model"].get("arch")
        if hw is None or arch not in shapes:
            skipped.append(f"{r['cell_id']}: " + ("no profile matches device " + str(r["device"].get("model"))
                                                   if hw is None else f"model '{arch}' is not in the planner catalog"))
            continue
        c, precision = r["cell"], {"fp32": "fp32", "bf16": "bf16", "fp16": "fp16"}.get(r["spec"]["dtype"])
        if precision not in llm_model.BYTES_PER_PARAM:
            skipped.append(f"{r['cell_id']}: precision {r['spec']['dtype']} is not modelled")
            continue
        tpot = r["metrics"]["tpot_s"]["mean"]
        try:
            mbu, note = fit_mbu(shapes[arch], hw, precision, 1, c["batch_size"], c["prompt_len"], c["output_len"], tpot)
        except (ValueError, UserError) as e:
            skipped.append(f"{r['cell_id']}: {e}")
            continue
        engine = engine_key(f"{r['backend'].get('name')} {r['backend'].get('version', '')}")
        points.append(Point(hw.id, engine, precision, arch, 1, c["batch_size"], c["prompt_len"], c["output_len"],
                            tpot, mbu, f"record {r['run_id']}/{r['cell_id']}", note))
    return points, skipped


def _catalog_model(name: str | None) -> str | None:
    """A served model name ('meta-llama/Llama-3.1-8B-Instruct') as a planner catalog id, if known."""
    if not name:
        return None
    key = name.lower().rsplit("/", 1)[-1]
    return MODEL_IDS.get(key) or (key if key in llm_model.shapes() else None)


def endpoint_points(records: list[dict], profiles: dict[str, HardwareProfile]) -> tuple[list[Point], list[str]]:
    """Decode points from `loadtest` records: closed-loop chat/completions points, whose running
    batch is their concurrency, on hardware named with --hardware (a profile id or device name),
    for a model in the planner catalog. The server's precision and TP are not in the API; bf16
    and TP 1 are assumed, and each point says so."""
    points, skipped = [], []
    for r in records:
        if r.get("kind") != "endpoint" or r.get("status") != "ok":
            continue
        c, label = r["cell"], (r.get("device") or {}).get("model")
        hw = profiles.get(label) if label in profiles else match_device(profiles, label)
        model = _catalog_model((r.get("model") or {}).get("name"))
        tpot = ((r.get("metrics") or {}).get("tpot_s") or {}).get("mean")
        why = ("only chat/completions points calibrate decode" if r["spec"].get("api") not in ("chat", "completions")
               else "open-loop point: its running batch is unknown (use --concurrency)" if c.get("load") != "concurrency"
               else f"--hardware '{label}' names no profile" if hw is None
               else f"model '{r['model'].get('name')}' is not in the planner catalog" if model is None
               else "no TPOT measured" if not tpot else None)
        if why:
            skipped.append(f"{r['cell_id']}: {why}")
            continue
        try:
            mbu, note = fit_mbu(llm_model.get_shape(model), hw, "bf16", 1, c["concurrency"], c["input_len"] or 1024,
                                c["output_len"] or 256, tpot)
        except (ValueError, UserError) as e:
            skipped.append(f"{r['cell_id']}: {e}")
            continue
        engine = engine_key(r["backend"].get("engine") or "endpoint")
        points.append(Point(hw.id, engine, "bf16", model, 1, c["concurrency"], c["input_len"] or 1024,
                            c["output_len"] or 256, tpot, mbu, f"endpoint {r['run_id']}/{r['cell_id']}",
                            "; ".join(x for x in ("bf16 and TP 1 assumed (not reported by the API)", note) if x)))
    return points, skipped


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
    """Points from our own diffusion (s/image at batch 1) and TTS (synthesis time) records on a profiled device."""
    from . import media_model as mm

    points, skipped = [], []
    for r in records:
        if r.get("kind") not in ("diffusion", "tts") or r.get("status") != "ok":
            continue
        hw, m, c = match_device(profiles, r["device"].get("model")), r["metrics"], r["cell"]
        precision = r["spec"]["dtype"]
        if hw is None or c.get("batch_size") != 1 or precision not in mm.PRECISIONS:
            skipped.append(f"{r['cell_id']}: " + ("no profile matches device " + str(r["device"].get("model"))
                                                   if hw is None else "only batch-1 cells in fp32/bf16/fp16 calibrate"))
            continue
        if r["kind"] == "diffusion":
            work, seconds = m["flops_per_image"], m["image_s"]["mean"]
            fixed = m["denoise_steps_run"] * mm.DIFFUSION_PRIORS["t_step_s"]
        elif m.get("flops_per_audio_s"):
            audio = m["audio_s"]["mean"]
            work, seconds, fixed = m["flops_per_audio_s"] * audio, m["rtf"]["mean"] * audio, mm.TTS_PRIORS["t_call_s"]
        else:
            skipped.append(f"{r['cell_id']}: no FLOP count in the record")
            continue
        engine = engine_key(f"{r['backend'].get('name')} {r['backend'].get('version', '')}")
        model = r["model"].get("arch") or r["model"].get("voice") or "?"
        points.append(MediaPoint(r["kind"], hw.id, engine, precision, model, work, seconds, fixed,
                                 llm_model.peak_tflops(hw, precision) * 1e12, f"record {r['run_id']}/{r['cell_id']}"))
    return points, skipped


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
                           + (" ..." if f["n"] > 3 else "")}
            for hw, f in data.get("power_fits", {}).items()}


def fit_media(points: list[MediaPoint]) -> dict:
    """Per key: the mean MFU with the prior fixed overhead taken off each time; where a measurement
    is faster than that overhead (small models, no launch cost), the key is fitted with none."""
    groups: dict[str, list[MediaPoint]] = {}
    for p in points:
        groups.setdefault(p.key, []).append(p)
    out = {}
    for key, ps in groups.items():
        scale = 1.0 if all(p.seconds > p.fixed_s for p in ps) else 0.0
        values = [p.mfu(scale) for p in ps]
        loo = (statistics.mean(abs(v / statistics.mean(values[:i] + values[i + 1:]) - 1) for i, v in enumerate(values))
               if len(values) >= 2 else None)
        out[key] = {"mfu": statistics.mean(values), "overhead_scale": scale, "n": len(ps), "loo_rel_error": loo,
                    "points": [{**asdict(p), "mfu": v} for p, v in zip(ps, values)]}
    return out


def cross_engine_loo(points: list[Point]) -> dict:
    """Each point predicted from the other points of the same hardware and precision (any engine):
    relative TPOT error |MBU_self / MBU_others - 1| (TPOT ~ 1/MBU when memory-bound)."""
    errors = {}
    for p in points:
        others = [q.mbu for q in points if q is not p and q.hardware == p.hardware and q.precision == p.precision]
        if others:
            errors[p.source] = abs(p.mbu / statistics.mean(others) - 1)
    return {"per_point": errors, "mean": statistics.mean(errors.values()) if errors else None}


def fit(points: list[Point]) -> dict:
    """Per key: mean MBU, the points, and leave-one-out relative TPOT error where a key has 2+ points."""
    groups: dict[str, list[Point]] = {}
    for p in points:
        groups.setdefault(p.key, []).append(p)
    out = {}
    for key, ps in groups.items():
        mbu = statistics.mean(p.mbu for p in ps)
        loo = None
        if len(ps) >= 2:  # predict each point from the others' MBU; TPOT scales ~ 1/MBU when memory-bound
            errs = [abs(p.mbu / statistics.mean(q.mbu for q in ps if q is not p) - 1) for p in ps]
            loo = statistics.mean(errs)
        out[key] = {"mbu": mbu, "n": len(ps), "loo_rel_error": loo, "points": [asdict(p) for p in ps]}
    return out


def write(path: Path, points: list[Point], skipped: list[str], media: list[MediaPoint] = (),
          power: list[dict] = ()) -> dict:
    data = {"kind": "infra-bench calibration", "version": 1, "fits": fit(points), "media_fits": fit_media(list(media)),
            "power_fits": fit_power(list(power)),
            "cross_engine_loo": cross_engine_loo(points), "skipped": skipped,
            "method": __doc__.split("\n\n")[1].strip()}
    path.write_text(json.dumps(data, indent=1))
    return data


def load(path: Path) -> dict:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise UserError(f"{path}: not a readable calibration file ({e}); make one with `infra-bench calibrate`") from None
    if data.get("kind") != "infra-bench calibration":
        raise UserError(f"{path}: not an infra-bench calibration file; make one with `infra-bench calibrate`")
    return data


def lookup(data: dict, hardware: str, engine: str | None, precision: str) -> tuple[dict | None, str]:
    """The fit for (hardware, engine, precision), else the mean over engines for that hardware and
    precision; with which key was used."""
    fits = data["fits"]
    if engine and f"{hardware}|{engine}|{precision}" in fits:
        return fits[f"{hardware}|{engine}|{precision}"], f"{hardware}|{engine}|{precision}"
    same = [f for k, f in fits.items() if k.startswith(f"{hardware}|") and k.endswith(f"|{precision}")]
    if not same:
        return None, ""
    n = sum(f["n"] for f in same)
    merged = {"mbu": sum(f["mbu"] * f["n"] for f in same) / n, "n": n,
              "loo_rel_error": max((f["loo_rel_error"] or 0) for f in same) or None}
    return merged, f"{hardware}|any engine|{precision}"


def for_prediction(data: dict, hardware: str, engine: str | None, precision: str) -> dict | None:
    """The `calibration` argument of llm_model.predict, or None when no fit applies."""
    found, key = lookup(data, hardware, engine, precision)
    if found is None:
        return None
    interval = found["loo_rel_error"] or data.get("cross_engine_loo", {}).get("mean") or 0.15
    return {"mbu": found["mbu"], "interval": max(interval, 0.05), "key": key, "n": found["n"]}


def for_media(data: dict, kind: str, hardware: str, engine: str | None, precision: str) -> dict | None:
    """The `calibration` argument of media_model's predictions: the key's MFU, else the mean over engines."""
    fits = data.get("media_fits", {})
    key = f"{kind}|{hardware}|{engine}|{precision}"
    same = [fits[key]] if engine and key in fits else [
        f for k, f in fits.items() if k.startswith(f"{kind}|{hardware}|") and k.endswith(f"|{precision}")]
    if not same:
        return None
    n = sum(f["n"] for f in same)
    loo = max((f["loo_rel_error"] or 0) for f in same)
    return {"mfu": sum(f["mfu"] * f["n"] for f in same) / n, "n": n, "interval": max(loo or 0.25, 0.05),
            "overhead_scale": min(f["overhead_scale"] for f in same),
            "key": key if len(same) == 1 and engine else f"{kind}|{hardware}|any engine|{precision}"}
