"""Fitting the serving model's efficiencies to measurements, and using a fit.

Each Efficiency field varies by the levels LEVELS gives it, as a product of factors: a parent
factor (for example the bandwidth efficiency of a hardware x engine pair) times, for the bandwidth
and compute efficiencies, a factor per architecture class (dense, MoE), times a child factor per
(hardware, engine, precision, class) that is pulled towards 1, so a category measured on few
points stays near its parents. The fixed step times vary by generation x engine with a child per
hardware x engine (a child per category let each category's points, mostly one model's, set its own
overhead, which carried to no other model; without the generation, a part held out took other vendors'
overheads: an MI300X's TPOT came out 36% short with the MI325X, the same die, measured); the TTFT
clustering varies per engine, with a child per engine x architecture class (the sample's dense and
MoE models fit different exponents, and a held-out model is predicted better with its class's); the
expert GEMMs' efficiency varies by precision, with a child per generation x precision pulled towards 1
(grouped fp4 GEMMs on Blackwell reach a larger share of their peak than fp8 ones: 0.37 and 0.17 in the fit
of 2026-12-03, Hopper fp8 0.28). A generation measured on MoE models alone (AMD's, from DeepSeek-R1) cannot
tell its expert GEMMs from its other GEMMs, which grow alike with the tokens; with a free parent per
generation the fit split them as 0.67 and 0.24 of the fp8 peak in one fit and 0.19 and 0.38 in another, and a
dense model there took the second number. The child's pull keeps that split near what the other generations
show. The rest is global.
The factors are fitted together by robust least squares on log(TTFT) and log(TPOT)
(scipy.optimize.least_squares, soft-L1 loss, a weak pull towards the priors so that factors the
data cannot tell apart stay put). Efficiencies are fractions of the spec sheet, so a factor fitted
on one part carries over to another through the roofline: a case whose parent level was never
measured (a new part, engine or precision) takes the geometric mean of the fitted levels most like
it, and says so; a child category never measured takes its prior, 1, rather than another class's
deviation (borrowing the nearest child carried MoE models' compute efficiency to dense models on
the same part). How far to trust each kind of case comes from held-out residuals (benchmarks/
planner_accuracy.py): `Fit.residuals` keeps their 10th and 90th percentiles per tier, and a
prediction's 80% interval is pred x exp(-q90) .. pred x exp(-q10), with the engine's own quantiles where
the held-out residuals hold enough of its points. A model never measured in a category takes that category's
child factor of the bandwidth and GEMM efficiencies shrunk towards 1 (SHRINK_MODELS): fitted on one or two
other models, it is mostly their campaigns'.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, replace
from functools import cached_property, lru_cache

import numpy as np

from ..errors import UserError
from ..paths import data_dir
from .engines import ENGINES, Engine, get_engine
from .iteration import PRECISIONS, Efficiency, Terms, stack, terms
from .measurements import Measurement
from .profiles import HardwareProfile
from .shapes import LlmShape, architecture, get_shape
from .steady import EngineTerms, closed_loop, kv_capacity

# What each efficiency varies by. Levels: hw, family (the part's generation), engine, precision, cls
# (architecture class), and tuples. Bandwidth and GEMM efficiency have a parent per generation and a
# child per part pulled towards it: H100 and H200, one chip with two memories, share most of theirs,
# and a part never measured takes its generation's (GB200 takes B200's and B300's, not all parts').
GROUP = ("hw", "engine", "precision", "cls")
LEVELS: dict[str, tuple] = {
    "mbu": (("family", "engine"), ("hw", "engine"), "cls", GROUP),
    "t_iter": (("family", "engine"), ("hw", "engine")), "t_layer": (("family", "engine"), ("hw", "engine")),
    "mfu": (("family", "precision"), ("hw", "precision"), "cls", GROUP),
    "t_request": ("engine", ("hw", "engine")), "cluster": ("engine", ("engine", "cls")),
    "cluster_scale": ("engine",), "n_half": (), "attn": (), "link": (), "ar_latency": (), "t_moe_layer": (),
    "moe_mfu": ("precision", ("family", "precision")), "moe_n_half": (), "bench_requests": (),
}
# How much each part of a category counts when a case's parent category was never measured and the
# nearest fitted ones stand in: the same engine on another part outranks another engine on the same part.
NEAREST_WEIGHT = {"hw": 4, "family": 4, "engine": 3, "cls": 2, "precision": 1}
PRIORS = {"mbu": 0.7, "mfu": 0.5, "t_iter": 3e-3, "t_layer": 2e-5, "t_request": 0.01, "cluster": 0.5,
          "cluster_scale": 2.0, "n_half": 64.0, "attn": 0.4, "link": 0.7, "ar_latency": 1e-5, "t_moe_layer": 1e-4,
          "moe_mfu": 0.3, "moe_n_half": 64.0, "bench_requests": 400.0}
BOUNDS = {"mbu": (0.2, 0.95), "mfu": (0.05, 0.95), "t_iter": (1e-5, 0.05), "t_layer": (1e-7, 1e-3),
          "t_request": (1e-3, 0.05), "cluster": (0.01, 1.0), "cluster_scale": (0.5, 20.0), "n_half": (1.0, 2000.0),
          "attn": (0.05, 0.9), "link": (0.2, 1.0), "ar_latency": (1e-6, 1e-3), "t_moe_layer": (1e-6, 1e-3),
          "moe_mfu": (0.02, 0.9), "moe_n_half": (1.0, 1e4), "bench_requests": (20.0, 1e5)}
FACTOR_BOUNDS = (0.2, 5.0)   # the second and later factors of a product
PRIOR_WEIGHT = 0.3            # log-space pull of a first factor towards its prior
CHILD_WEIGHT = 1.0            # ... and of a later factor towards 1, so a sparse category stays near its parent
ANCHOR_PULL = 30.0            # calibrate: the pull of a class factor towards the shipped value
TTFT_WEIGHT = 1.0             # TTFT residuals count as much as TPOT's (0.7 was worse held out)
FIT_FILE = "llm_fit.json"
FIT_VERSION = 17              # 7: the TTFT clustering has a child per engine x class; 8: expert GEMM
#                               efficiency per generation x precision; 9: fixed step times per generation x engine;
#                               10: expert GEMM efficiency per precision, with a child per generation x precision;
#                               11: expert GEMM efficiency capped at what fused-MoE kernels reach (EXPERT_GEMM);
#                               12: all-to-alls only between attention-DP ranks (EP under TP attention has none);
#                               13: a prompt's prefill beside the other attention-DP ranks' own tokens;
#                               14: the per-request TTFT cost per engine with a child per part x engine (the front
#                               end's and its host's), not per engine x class with a child per category;
#                               15: the bandwidth and GEMM efficiencies' category child shrunk for a model the
#                               category never measured (SHRINK_MODELS); 16: the sample's rows measured with
#                               speculative decoding left out (measurements.speculative_rows); 17: NVIDIA NIM's
#                               benchmark tables fitted (measurements.nim_measurements)
# The bandwidth and GEMM efficiencies' child per category (GROUP) is fitted on the models measured there, and with
# one or two of them it is mostly those models' campaigns (engine builds, harnesses), not the category's. A model the
# category never measured takes it to the power n / (n + SHRINK_MODELS), n the models it measured: leaving one model
# out, TTFT 28.3% -> 27.5% and TPOT 14.9% -> 14.2% (k = 1.5 to 4 alike; the full child, and none, were worse).
SHRUNK = ("mbu", "mfu")
SHRINK_MODELS = 2.0
MIN_PARENT_POINTS = 5         # a parent category fitted on fewer measurements stands aside for the nearest ones
IN_FLIGHT_SLACK = 1.5         # a measurement with more sequences in flight than this x its KV room is left out


def arch_class(shape: LlmShape) -> str:
    return "dense" if not shape.moe else "moe"


@dataclass(frozen=True)
class Case:
    """What a prediction or a measurement is about, as the fit sees it."""
    model: str          # a catalog id, or the id of a local model's shape (shapes.get_shape finds both)
    hardware: str
    engine: str
    precision: str

    def key(self, level) -> str:
        names = level if isinstance(level, tuple) else (level,)
        values = {"hw": self.hardware, "engine": self.engine, "precision": self.precision,
                  "cls": arch_class(get_shape(self.model)), "family": family(self.hardware)}
        return "|".join(values[n] for n in names)


def family(hw_id: str) -> str:
    """A part's generation as far as the fit can tell: its vendor and the low precisions its tensor
    cores run (an fp4 peak: NVIDIA Blackwell; fp8 without fp4: Hopper, Ada). A part that is not
    shipped (your own profiles) is a family of its own."""
    return _families().get(hw_id, hw_id)


@lru_cache(maxsize=1)
def _families() -> dict[str, str]:
    """The shipped profiles' generations (your own profiles never change them)."""
    from .profiles import shipped_hardware

    return {k: "+".join([hw.vendor, *(p for p in ("fp8", "fp4") if hw.peak_tflops.get(p))])
            for k, hw in shipped_hardware().items()}


def peak_twins(hw_id: str, computes: tuple[str, ...]) -> list[str]:
    """The other shipped parts of the same vendor whose spec peaks at these compute types equal this part's:
    one die with another memory (H100 SXM, H800 SXM and H200 SXM, in every precision), or parts that differ
    only in other precisions (B200 and B300 at fp8 and 16-bit, not at fp4). Such parts run those GEMMs alike,
    and their achieved share of their own memory's bandwidth should be alike. A part with no known peak at
    one of them has none."""
    from .profiles import shipped_hardware

    parts = shipped_hardware()
    me = parts.get(hw_id)
    if me is None or me.kind != "accelerator" or not all(me.peak_tflops.get(c) for c in computes):
        return []
    return sorted(k for k, hw in parts.items() if k != hw_id and hw.kind == "accelerator" and hw.vendor == me.vendor
                  and all(hw.peak_tflops.get(c) == me.peak_tflops[c] for c in computes))


def case_computes(case: Case) -> tuple[str, ...]:
    """The compute types a case's GEMMs run at: the precision's, a MoE model's layers outside the experts,
    and attention (16-bit)."""
    p = PRECISIONS[case.precision]
    return (p.compute,) if p.compute == "fp32" else tuple(sorted({p.compute, p.dense_of_moe.compute, "bf16"}))


SAME_PEAKS_SPREAD = 1.25  # parts of the same peaks whose fitted GEMM or bandwidth efficiency differ by more are named


PART_LEVELS = (("hw", "engine"), ("hw", "precision"))  # a part's own factors under its generation's


def _vendor(key: str, level) -> str | None:
    """The vendor a category of a part or generation level belongs to (None for other levels)."""
    first = (level if isinstance(level, tuple) else (level,))[0]
    head = key.split("|")[0]
    if first == "hw":
        return family(head).split("+")[0]
    return head.split("+")[0] if first == "family" else None


def _shared(level) -> bool:
    """Whether a level's factors are shared by several parts (architecture class, generation)."""
    names = level if isinstance(level, tuple) else (level,)
    return level == "cls" or "family" in names


def _level_name(level) -> str:
    return "|".join(level) if isinstance(level, tuple) else level


def _parts() -> list[tuple[str, object, bool]]:
    """(param, level or None for a global, first factor?) for every fitted factor."""
    out = []
    for p, levels in LEVELS.items():
        if not levels:
            out.append((p, None, True))
        for j, level in enumerate(levels):
            out.append((p, level, j == 0))
    return out


@dataclass
class Fit:
    """Fitted factors: values[param][level name][category key] -> factor; globals under level 'all'."""
    values: dict
    residuals: dict = field(default_factory=dict)   # tier -> metric -> {q10, q50, q90, n, median_abs, by_engine}
    meta: dict = field(default_factory=dict)
    counts: dict = field(default_factory=dict)      # param -> level name -> category -> points fitted on
    models: dict = field(default_factory=dict)      # GROUP category -> the architectures measured in it (SHRUNK)
    _single: dict = field(default_factory=dict, repr=False, compare=False)  # case -> (efficiency, missing)

    def efficiency(self, cases: list[Case]) -> tuple[Efficiency, list[list[str]]]:
        """Efficiencies for the cases (arrays if several) and, per case, the levels not measured."""
        if len(cases) == 1:
            if cases[0] not in self._single:
                self._single[cases[0]] = self._efficiency(cases)
            return self._single[cases[0]]
        return self._efficiency(cases)

    def _efficiency(self, cases: list[Case]) -> tuple[Efficiency, list[list[str]]]:
        vals, missing = self.raw(cases)
        vals = {k: _bounded(k, v) for k, v in vals.items()}
        eff = Efficiency(**{k: (v if len(cases) > 1 else float(v[0])) for k, v in vals.items()})
        return eff, missing

    def raw(self, cases: list[Case]) -> tuple[dict[str, np.ndarray], list[list[str]]]:
        """Per parameter, the product of its factors for each case before the bounds, and per case the
        levels not measured."""
        vals: dict[str, np.ndarray] = {}
        missing: list[list[str]] = [[] for _ in cases]
        aside: dict[str, set[int]] = {}  # per parameter, the cases whose fitted parent stood aside
        powers = None  # the GROUP child's power per case (shrink), one for every SHRUNK parameter
        for p, level, first in _parts():
            table = self.values[p]["all" if level is None else _level_name(level)]
            keys = [None if level is None else c.key(level) for c in cases]
            lone: dict = {}
            if level is not None and first:
                table = self.trusted(p, level)
                # a generation's under one engine, never one part's, nor across engines
                names = level if isinstance(level, tuple) else (level,)
                lone = self.lone(p, level) if _shared(level) and "engine" in names else {}
                fitted = self.values[p][_level_name(level)]
                aside[p] = {i for i, k in enumerate(keys) if k in fitted and k not in table}
            col = []
            for i, k in enumerate(keys):
                if level is None:
                    col.append(table["all"])
                    continue
                if not first and i in aside.get(p, ()) and not _shared(level):
                    # fitted against a parent that stood aside, or against a lone one that speaks for the
                    # part's whole generation (its siblings share it): 1
                    col.append(1.0)
                elif k in table:
                    col.append(table[k])
                elif k in lone:  # its vendor's only evidence: used for itself, never carried to others
                    col.append(lone[k])
                else:
                    # a parent never measured (or on too few points): the nearest fitted ones, carried
                    # through the roofline; a child never measured: its prior, 1 (the parents and the
                    # class factor speak for it)
                    col.append(_nearest(table, k, level) if first else 1.0)
                    said = _level_name(level).replace("hw", "hardware").replace("family", "generation")
                    missing[i].append(f"{k} ({said})")
            arr = np.array(col, dtype=float)
            if level == GROUP and p in SHRUNK:
                powers = self.shrink(cases, keys) if powers is None else powers
                arr = arr ** powers
            vals[p] = vals[p] * arr if p in vals else arr
        for p in OWN:  # the categories your own records refitted (fit_own); none in the shipped fit
            own = self.values[p].get(OWN_LEVEL, {})
            if own:
                vals[p] = vals[p] * np.array([own.get(c.key(GROUP), 1.0) for c in cases])
        return vals, [sorted(set(m)) for m in missing]

    def shrink(self, cases: list[Case], keys: list[str]) -> np.ndarray:
        """Per case, the power its category's child factor (GROUP, `keys`) is taken to: 1 where the category
        measured the case's model (or the fit does not say which models it measured), else n / (n + SHRINK_MODELS)
        for the n models it measured."""
        out = np.ones(len(cases))
        for i, (case, key) in enumerate(zip(cases, keys)):
            measured = self.models.get(key)
            if measured and architecture(case.model) not in measured:
                out[i] = len(measured) / (len(measured) + SHRINK_MODELS)
        return out

    def other_models(self, case: Case) -> dict | None:
        """Where the case's category measured other models and not this one: {models, power}, the power its own
        bandwidth and GEMM factors are taken to (shrink); else None."""
        key = case.key(GROUP)
        power = float(self.shrink([case], [key])[0])
        return {"models": list(self.models[key]), "power": power} if power < 1 else None

    def same_peaks(self, case: Case) -> list[dict]:
        """Parts with this part's spec peaks at the case's compute types (peak_twins) whose fitted GEMM or
        bandwidth efficiency for this model, engine and precision differs from this part's by more than
        SAME_PEAKS_SPREAD either way. Such a gap is the measuring campaigns' (engine builds, harnesses), or for a
        part not measured under this engine the nearest parts', not the silicon's. Tying the factors across
        one die was tried and was worse held out, and so was lending a part never measured under an engine the
        factors of its generation's parts measured there (docs/planner.md), so the gap is said, not removed."""
        out = []
        mine, _ = self.efficiency([case])
        for h in peak_twins(case.hardware, case_computes(case)):
            other, _ = self.efficiency([replace(case, hardware=h)])
            gemm, bw = mine.mfu / other.mfu, mine.mbu / other.mbu
            if max(gemm, 1 / gemm, bw, 1 / bw) > SAME_PEAKS_SPREAD:
                out.append({"hardware": h, "gemm_ratio": gemm, "bandwidth_efficiency_ratio": bw})
        return out

    def other_class_only(self, hw_id: str, cls: str) -> list[str]:
        """The parts of `hw_id`'s generation the fit measured, where none of them ran a model of class `cls`
        (dense or MoE), else []. Such a case takes its class factor from other vendors' parts, and one class
        cannot tell a generation's GEMMs apart: from DeepSeek-R1 alone, AMD's other GEMMs and expert GEMMs
        trade off (0.24 and 0.67 of the fp8 peak in one fit, 0.38 and 0.19 in another, docs/planner.md)."""
        parts, classes = self._measured_classes.get(family(hw_id), (set(), set()))
        return [] if not parts or cls in classes else sorted(parts)

    @cached_property
    def _measured_classes(self) -> dict[str, tuple[set, set]]:
        """Generation -> (the parts the fit measured, the classes they ran), once per fit: plan asks per option."""
        out: dict[str, tuple[set, set]] = {}
        for key in (*self.counts.get("mbu", {}).get(_level_name(GROUP), {}), *self.values["mbu"].get(OWN_LEVEL, {})):
            hw, _, _, cls = key.split("|")
            parts, classes = out.setdefault(family(hw), (set(), set()))
            parts.add(hw)
            classes.add(cls)
        return out

    def trusted(self, param: str, level) -> dict:
        """A parent level's categories fitted on at least MIN_PARENT_POINTS measurements. A part seen in
        a handful of rows would otherwise set its own efficiencies from them: 3 GB200 rows gave it
        three times B200's fp4 GEMM efficiency."""
        name = _level_name(level)
        table, n = self.values[param][name], self.counts.get(param, {}).get(name)
        if n is None:
            return table
        trusted = {k: v for k, v in table.items() if n.get(k, 0) >= MIN_PARENT_POINTS}
        return trusted or table

    def lone(self, param: str, level) -> dict:
        """Categories fitted on fewer than MIN_PARENT_POINTS measurements whose vendor has no trusted
        category at this level: the only evidence for that vendor's parts. At a generation level they
        are used for their own key, which covers the vendor's parts alike (the nearest fitted parts
        would be another vendor's), never carried to another engine; a part's own few-point factors
        are not used, so identical parts stay identical, but name the part's tier (`few_points`). One 910B2 point under
        vLLM-Ascend sets its bandwidth efficiency to a third of NVIDIA's, which the 910B2's burst
        throughput, never fitted, confirms (docs/planner.md)."""
        name = _level_name(level)
        table, n = self.values[param][name], self.counts.get(param, {}).get(name)
        if n is None:
            return {}
        vendors = {_vendor(k, level) for k in table if n.get(k, 0) >= MIN_PARENT_POINTS}
        return {k: v for k, v in table.items() if n.get(k, 0) < MIN_PARENT_POINTS
                and _vendor(k, level) is not None and _vendor(k, level) not in vendors}

    def tier(self, case: Case) -> str:
        """Which held-out residuals describe the case: `fitted` where its hardware ran its engine in the
        data, `few_points` where that rests on fewer than MIN_PARENT_POINTS measurements (the widest
        intervals), `other_engine` where the hardware was measured under other engines only, else
        `other_hardware`."""
        if self.meta.get("priors"):
            return "priors"
        measured = [k.split("|") for k in self.trusted("mbu", ("hw", "engine"))]
        measured += [k.split("|")[:2] for k in self.values["mbu"].get(OWN_LEVEL, {})]  # your own records
        if [case.hardware, case.engine] in measured:
            return "fitted"
        if f"{case.hardware}|{case.engine}" in self.lone("mbu", ("hw", "engine")):
            return "few_points"
        return "other_engine" if any(k[0] == case.hardware for k in measured) else "other_hardware"

    def quantiles(self, tier: str, metric: str, engine: str | None = None) -> tuple[float, float] | None:
        """(q10, q90) of log(predicted / measured) for a tier. A new model on a measured part and engine
        has the leave-one-model-out residuals; carried to another engine or part, the errors add up,
        taken as independent: the leave-one-engine-out or leave-one-GPU-out quantiles combined with
        those in quadrature (an assumption, said in docs/planner.md). The leave-one-model-out quantiles
        are kept per engine where it has enough points (vLLM's residuals are half as wide as SGLang's and
        TensorRT-LLM's): `engine`'s are used, so each engine's interval holds about 80% of its points."""
        splits = {"fitted": ("fitted",), "other_engine": ("fitted", "other_engine"),
                  "other_hardware": ("fitted", "other_engine", "other_hardware"),
                  "few_points": ("fitted", "other_engine", "other_hardware"), "priors": ("priors",)}[tier]
        qs = [self.residuals.get(s, {}).get(metric) for s in splits]
        if not all(qs):
            return None
        qs = [q.get("by_engine", {}).get(engine, q) for q in qs]
        return (-float(np.sqrt(sum(min(q["q10"], 0.0) ** 2 for q in qs))),
                float(np.sqrt(sum(max(q["q90"], 0.0) ** 2 for q in qs))))

    def beyond(self, tier: str) -> dict | None:
        """Held-out throughput beyond the clients per replica where the fit's points thin out (benchmarks/
        planner_accuracy.py stores it per split): for a tier, that of the split that carries it furthest, as its
        interval's widest part. None where the fit has none (a uniform or priors fit)."""
        split = "other_hardware" if tier == "few_points" else tier
        got = self.residuals.get(split, {}).get("throughput", {}).get("beyond")
        return got if got and got.get("bias") is not None else None

    def engine_quantiles(self, tier: str, engine: str) -> bool:
        """Whether the tier's intervals use quantiles of `engine`'s own held-out residuals."""
        return tier != "priors" and any(engine in q.get("by_engine", {})
                                        for q in self.residuals.get("fitted", {}).values())

    def interval(self, tier: str, metric: str, value: float | None,
                 engine: str | None = None) -> tuple[float, float] | None:
        q = self.quantiles(tier, metric, engine)
        if value is None or q is None:
            return None
        return value * float(np.exp(-q[1])), value * float(np.exp(-q[0]))

    def to_dict(self) -> dict:
        return {"kind": "infra-bench llm fit", "version": FIT_VERSION,
                "levels": {p: [_level_name(x) for x in v] for p, v in LEVELS.items()},
                "values": self.values, "counts": self.counts, "models": self.models, "residuals": self.residuals,
                "meta": self.meta}

    @classmethod
    def uniform(cls, **values: float) -> Fit:
        """One value per efficiency for every case (PRIORS where not given): for tests and what-ifs."""
        tables: dict = {}
        for p, level, first in _parts():
            value = values.get(p, PRIORS[p]) if first else 1.0
            tables.setdefault(p, {})["all" if level is None else _level_name(level)] = {"*" if level else "all": value}
        return cls(tables, meta={"source": "uniform efficiencies: " + (", ".join(f"{k} {v:g}" for k, v in values.items())
                                                                       or "the priors"), "priors": not values})

    @classmethod
    def from_dict(cls, data: dict, where: str) -> Fit:
        if data.get("kind") != "infra-bench llm fit" or data.get("version") != FIT_VERSION:
            raise UserError(f"{where}: not an LLM fit of this version; make one with `infra-bench calibrate`")
        return cls(data["values"], data.get("residuals", {}), data.get("meta", {}), counts=data.get("counts", {}),
                   models=data.get("models", {}))


def _bounded(param: str, value):
    """A product of factors kept inside the parameter's bounds: a smooth cap at the top (so the fit
    keeps a gradient there), a floor at the bottom."""
    lo, hi = BOUNDS[param]
    return np.maximum(value / (1 + (value / hi) ** 8) ** (1 / 8), lo)


def _nearest(table: dict, key: str, level=None) -> float:
    """The geometric mean of the fitted categories most like `key` (parts a|b|c weighted by NEAREST_WEIGHT)."""
    names = level if isinstance(level, tuple) else (level,)
    weights = [NEAREST_WEIGHT.get(n, 1) for n in names]
    want = key.split("|")
    score = {k: sum(w for w, a, b in zip(weights, k.split("|"), want) if a == b) for k in table}
    best = max(score.values())
    return float(np.exp(np.mean([np.log(table[k]) for k, s in score.items() if s == best])))


@lru_cache(maxsize=1)
def shipped() -> Fit:
    """The fit shipped with infra-bench (reference measurements only)."""
    path = data_dir("workloads") / "reference" / FIT_FILE
    return Fit.from_dict(json.loads(path.read_text()), str(path))


# --- fitting -------------------------------------------------------------------------------------

@dataclass
class Problem:
    """Measurements with their model terms, ready to be fitted or predicted."""
    points: list[Measurement]
    terms: Terms
    engines: EngineTerms
    cases: list[Case]
    _arrays: tuple | None = field(default=None, repr=False, compare=False)

    @classmethod
    def build(cls, points: list[Measurement], profiles: dict[str, HardwareProfile]) -> tuple[Problem, list[str]]:
        kept, ts, gs, skipped = [], [], [], []
        for m in points:
            try:
                engine: Engine = get_engine(m.engine if m.engine in ENGINES else "generic").on(
                    profiles[m.hardware].memory_bytes).with_limits(memory_fraction=m.memory_fraction,
                                                                    recv_interval=m.recv_interval)
                ts.append(terms(get_shape(m.model), profiles[m.hardware], PRECISIONS[m.precision], m.layout,
                                 kv_bytes=m.kv_bytes))
            except (UserError, KeyError) as e:
                skipped.append(f"{m.source}: {e}")
                continue
            gs.append(engine)
            kept.append(m)
        if not kept:
            raise UserError("no measurement could be modelled; see the skipped list")
        problem = cls(kept, stack(ts), EngineTerms.of(gs), [Case(m.model, m.hardware, m.engine, m.precision)
                                                            for m in kept])
        # a closed loop's sequences in flight follow from its measured latencies (Little's law); a
        # layout whose memory holds far fewer was not the one that ran (or one the memory gate cannot model)
        b, isl, osl, ttft, tpot = problem.arrays()
        decode = np.maximum(osl - 1, 0) * np.nan_to_num(tpot)
        in_flight = b * decode / np.maximum(np.nan_to_num(ttft) + decode, 1e-12)
        room = kv_capacity(problem.terms, problem.engines, isl, osl)
        over = np.where(decode > 0, in_flight > IN_FLIGHT_SLACK * np.maximum(room, 0.5), False)
        if over.any():
            skipped += [f"{m.source}: its latencies put {f:.0f} sequences in flight, but its layout's memory holds "
                        f"{r:.0f} at {e.name}'s memory share of {e.memory_fraction:g}: the recorded layout or share is "
                        f"not the one that ran (for a loadtest, --tp and --memory-fraction label them), or the memory gate "
                        f"cannot model it"
                        for m, e, f, r, o in zip(kept, gs, in_flight, room, over) if o]
            problem = problem.take(np.where(~over)[0])
        return problem, skipped

    def take(self, idx: np.ndarray) -> Problem:
        return Problem([self.points[i] for i in idx],
                       Terms(**{f.name: getattr(self.terms, f.name)[idx] for f in fields(Terms)}),
                       EngineTerms(**{f.name: np.asarray(getattr(self.engines, f.name))[idx]
                                      for f in fields(EngineTerms)}),
                       [self.cases[i] for i in idx])

    def arrays(self):
        """(clients, prompt tokens, output tokens, TTFT s, TPOT s) per point, NaN where not measured: made
        once (a fit asks for them at every evaluation) and read-only, so no caller can change them for another."""
        if self._arrays is None:
            def a(k: str) -> np.ndarray:
                out = np.array([getattr(m, k) if getattr(m, k) is not None else np.nan for m in self.points],
                               dtype=float)
                out.flags.writeable = False
                return out
            self._arrays = (a("concurrency"), a("input_len"), a("output_len"), a("ttft_s"), a("tpot_s"))
        return self._arrays

    def predict(self, eff: Efficiency):
        b, isl, osl, _, _ = self.arrays()
        return closed_loop(self.terms, self._own_runs(eff), self.engines, b, isl, osl)

    def _own_runs(self, eff: Efficiency) -> Efficiency:
        """`eff` with each point's own run length where it is known: a loadtest point of 100 requests at 32 clients
        starts a third of them in its opening burst, where the fitted `bench_requests` (about 2,000, the reference
        campaigns') would price 2%, and calibrate put the rest of that mean TTFT into the part's own factors."""
        runs = self._runs
        return eff if runs is None else replace(eff, bench_requests=np.where(np.isnan(runs), eff.bench_requests, runs))

    @cached_property
    def _runs(self) -> np.ndarray | None:
        """Each point's run length (NaN where unknown), or None where no point knows it (the reference data)."""
        runs = np.array([m.requests if m.requests else np.nan for m in self.points], dtype=float)
        return None if np.isnan(runs).all() else runs

    def log_errors(self, eff: Efficiency) -> tuple[np.ndarray, np.ndarray]:
        """log(predicted / measured) TPOT and TTFT per point, 0 where a point lacks the measurement."""
        s = self.predict(eff)
        _, _, _, ttft, tpot = self.arrays()
        ok_tpot, ok_ttft = np.isfinite(tpot), np.isfinite(ttft)
        return (np.log(np.where(ok_tpot, s.tpot_s / np.where(ok_tpot, tpot, 1), 1)),
                np.log(np.where(ok_ttft, s.ttft_s / np.where(ok_ttft, ttft, 1), 1)))


class _Layout:
    """Where each factor sits in the parameter vector, and which categories the data has."""

    def __init__(self, problem: Problem):
        self.slots: list[tuple[str, object, bool, list[str], np.ndarray]] = []
        self.size = 0
        for p, level, first in _parts():
            keys = ["all"] * len(problem.cases) if level is None else [c.key(level) for c in problem.cases]
            cats = sorted(set(keys))
            pos = {k: i for i, k in enumerate(cats)}
            self.slots.append((p, level, first, cats, np.array([pos[k] for k in keys])))
            self.size += len(cats)

    def vector(self, fn) -> np.ndarray:
        return np.concatenate([np.full(len(cats), fn(p, first)) for p, _, first, cats, _ in self.slots])

    def efficiency(self, x: np.ndarray) -> Efficiency:
        vals, k = {}, 0
        for p, _, _, cats, index in self.slots:
            v = x[k:k + len(cats)][index]
            k += len(cats)
            vals[p] = vals[p] * v if p in vals else v
        return Efficiency(**{p: _bounded(p, v) for p, v in vals.items()})

    def values(self, x: np.ndarray) -> dict:
        out: dict = {}
        k = 0
        for p, level, _, cats, _ in self.slots:
            out.setdefault(p, {})["all" if level is None else _level_name(level)] = dict(
                zip(cats, map(float, x[k:k + len(cats)])))
            k += len(cats)
        return out

    def counts(self) -> dict:
        """Per factor, the measurements each category was fitted on."""
        out: dict = {}
        for p, level, _, cats, index in self.slots:
            n = np.bincount(index, minlength=len(cats))
            out.setdefault(p, {})["all" if level is None else _level_name(level)] = dict(zip(cats, map(int, n)))
        return out

    def sparsity(self, rows: int):
        from scipy.sparse import lil_matrix

        s = lil_matrix((2 * rows + self.size, self.size), dtype=np.int8)
        k = 0
        r = np.arange(rows)
        for _, _, _, cats, index in self.slots:
            for half in (0, rows):
                s[r + half, k + index] = 1
            k += len(cats)
        for j in range(self.size):
            s[2 * rows + j, j] = 1
        return s


def fit(problem: Problem, max_evals: int = 400, anchor: Fit | None = None) -> Fit:
    """Fit every factor the problem's measurements touch (seconds for a few thousand points), starting
    from the priors. With `anchor`, the fit updates it: factors start from the anchor's values and are
    pulled towards them (not towards the generic priors), and factors the measurements do not touch
    keep the anchor's values; this is how your own runs refine the shipped fit."""
    from scipy.optimize import least_squares

    lay = _Layout(problem)
    lo = lay.vector(lambda p, first: BOUNDS[p][0] if first else FACTOR_BOUNDS[0])
    hi = lay.vector(lambda p, first: BOUNDS[p][1] if first else FACTOR_BOUNDS[1])
    prior = lay.vector(lambda p, first: PRIORS[p] if first else 1.0)
    offsets = np.cumsum([0] + [len(slot[3]) for slot in lay.slots])[:-1]

    def values_of(f: Fit, default: np.ndarray) -> np.ndarray:
        out = []
        for (p, level, _, cats, _), k0 in zip(lay.slots, offsets):
            table = f.values[p]["all" if level is None else _level_name(level)]
            out += [table[c] if c in table else (_nearest(table, c, level) if table else default[k0 + j])
                    for j, c in enumerate(cats)]
        return np.array(out)
    weight = lay.vector(lambda p, first: PRIOR_WEIGHT if first else CHILD_WEIGHT)
    if anchor is not None:
        prior = values_of(anchor, prior)
        # the class and generation factors are shared by many parts: a few runs of your own must not move them
        shared = np.concatenate([[_shared(level) and c in anchor.values[p].get(_level_name(level), {})
                                  for c in cats] for p, level, _, cats, _ in lay.slots])
        # ... while the factor of the part they measured is theirs to move, as a parent's would be
        part = np.concatenate([[level in PART_LEVELS] * len(cats) for _, level, _, cats, _ in lay.slots])
        weight = np.where(shared, ANCHOR_PULL, np.where(part, PRIOR_WEIGHT, weight))
    x0 = np.clip(prior, lo * 1.0001, hi * 0.9999)
    prior = np.clip(prior, lo, hi)

    def residuals(z: np.ndarray) -> np.ndarray:
        x = np.exp(z)
        r_tpot, r_ttft = problem.log_errors(lay.efficiency(x))
        return np.concatenate([r_tpot, TTFT_WEIGHT * r_ttft, weight * np.log(x / prior)])

    res = least_squares(residuals, np.log(x0), bounds=(np.log(lo), np.log(hi)), loss="soft_l1", f_scale=0.2,
                        max_nfev=max_evals, jac_sparsity=lay.sparsity(len(problem.points)), x_scale="jac")
    values, counts = lay.values(np.exp(res.x)), lay.counts()
    models: dict[str, set] = {k: set(v) for k, v in (anchor.models if anchor is not None else {}).items()}
    for c in problem.cases:
        models.setdefault(c.key(GROUP), set()).add(architecture(c.model))
    if anchor is not None:
        merged, merged_counts = json.loads(json.dumps(anchor.values)), json.loads(json.dumps(anchor.counts))
        for p, tables in values.items():
            for level, table in tables.items():
                merged[p][level].update(table)
                # your own records are evidence however few: their categories count as measured
                known = merged_counts.setdefault(p, {}).setdefault(level, {})
                known.update({k: max(known.get(k, 0) + n, MIN_PARENT_POINTS) for k, n in counts[p][level].items()})
        values, counts = merged, merged_counts
    return Fit(values, meta={"points": len(problem.points), "cost": float(res.cost), "evaluations": int(res.nfev)},
               counts=counts, models={k: sorted(v) for k, v in sorted(models.items())})


def predict_problem(f: Fit, problem: Problem):
    eff, missing = f.efficiency(problem.cases)
    return problem.predict(eff), missing


# The efficiencies a category of its own moves when `fit_own` matches it to its measurements: the
# bandwidth and fixed step time (TPOT), the compute and fixed per-request time (TTFT).
OWN = ("mbu", "t_iter", "mfu", "t_request")
OWN_LEVEL = "own: " + _level_name(GROUP)
OWN_PULL = 0.02   # barely any pull: only to choose among factor changes the points cannot tell apart


def fit_own(f: Fit, problem: Problem) -> Fit:
    """`f` with the category factors (hardware, engine, precision, class) of the problem's categories
    refitted to those measurements alone. The joint fit pulls a category's factor towards its parent
    so that one sparse category cannot run away with the shared ones; for the categories a user
    measured, that pull would leave their own runs mispredicted (a record predicted back 20-30% off).
    Here the parents stay as fitted and each of the user's categories gets the factors that reproduce
    its own points, within the parameters' bounds."""
    from scipy.optimize import least_squares

    keys = [c.key(GROUP) for c in problem.cases]
    cats = sorted(set(keys))
    index = np.array([cats.index(k) for k in keys])
    raw, _ = f.raw(problem.cases)
    base = {p: np.array([f.values[p].get(OWN_LEVEL, {}).get(k, 1.0) for k in cats]) for p in OWN}
    n = len(cats)

    def efficiency(z: np.ndarray) -> Efficiency:
        vals = dict(raw)
        for j, p in enumerate(OWN):
            vals[p] = raw[p] * np.exp(z[j * n:(j + 1) * n])[index]
        return Efficiency(**{p: _bounded(p, v) for p, v in vals.items()})

    def residuals(z: np.ndarray) -> np.ndarray:
        return np.concatenate([*problem.log_errors(efficiency(z)), OWN_PULL * z])

    # the category's own measurements are direct evidence: its factor may take the efficiency
    # anywhere inside the parameter's bounds, not only within FACTOR_BOUNDS of its parent
    one_each = np.array([keys.index(k) for k in cats])  # the parents are the same for a category's points
    lo = np.concatenate([np.minimum(np.log(BOUNDS[p][0] / raw[p][one_each]), 0.0) for p in OWN])
    hi = np.concatenate([np.maximum(np.log(BOUNDS[p][1] / raw[p][one_each]), 0.0) for p in OWN])
    z0 = np.zeros(len(OWN) * n)
    lo, hi = np.minimum(lo, -1e-6), np.maximum(hi, 1e-6)
    res = least_squares(residuals, z0, bounds=(lo, hi), x_scale=1.0)
    values = json.loads(json.dumps(f.values))
    for j, p in enumerate(OWN):
        for k, b, z in zip(cats, base[p], res.x[j * n:(j + 1) * n]):
            values[p].setdefault(OWN_LEVEL, {})[k] = float(b * np.exp(z))
    return Fit(values, f.residuals, {**f.meta, "own_categories": cats}, counts=f.counts, models=f.models)
