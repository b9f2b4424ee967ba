"""Load-point metrics with vLLM's definitions, SLOs and goodput.

Per point, over the requests that succeeded: percentiles of TTFT, TPOT, ITL and E2E (LLM), of
TTFB, first audio, E2E and RTF (speech), of TTFB and E2E (images, embeddings, rerank); throughputs over the point's duration
(first send to the last request's end). Goodput is the number of requests that succeeded and
met every SLO threshold, divided by that duration (a request with one output token has TPOT 0
here, as in vLLM). A point *meets* its SLO when each named statistic is within its limit, the
statistic taken over every request sent, a failed one counting as infinitely slow (a point
that fails requests cannot pass by dropping them).
"""
from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

import numpy as np

from ..errors import UserError
from ..measure.stats import summarize
from .client import Outcome
from .load import PointResult
from .target import LLM_APIS

SLO_METRICS = {"completions": ("ttft", "tpot", "e2e"), "chat": ("ttft", "tpot", "e2e"), "tgi": ("ttft", "tpot", "e2e"),
               "speech": ("first_audio", "ttfb", "e2e", "rtf"), "images": ("ttfb", "e2e"), "embeddings": ("e2e", "ttfb"),
               "rerank": ("e2e", "ttfb")}
_SLO_ITEM = re.compile(r"^(?P<metric>[a-z0-9_]+?)_(?P<stat>p\d+|mean)=(?P<value>[0-9.eE+-]+)(?P<unit>ms|s)?$")


@dataclass(frozen=True)
class Slo:
    metric: str    # ttft | tpot | e2e | ttfb | first_audio | rtf
    stat: str      # pNN (a percentile) | mean
    limit: float   # seconds (rtf: a ratio)

    @property
    def name(self) -> str:
        return f"{self.metric}_{self.stat}"

    def value_of(self, o: Outcome) -> float | None:
        if self.metric == "tpot":
            return o.tpot_s if o.tpot_s is not None else 0.0
        return o.rtf if self.metric == "rtf" else getattr(o, f"{self.metric}_s")


def parse_slo(text: str, api: str) -> list[Slo]:
    """`ttft_p99=0.5,tpot_p99=50ms` -> SLOs; seconds unless `ms` is appended."""
    allowed = SLO_METRICS[api]
    slos: list[Slo] = []
    for item in (i.strip() for i in text.split(",")):
        m = _SLO_ITEM.match(item.replace(" ", ""))
        hint = f"write METRIC_STAT=SECONDS, e.g. {allowed[0]}_p99=0.5,{allowed[1]}_p99=50ms"
        if not m:
            raise UserError(f"--slo: cannot read '{item}'; {hint}")
        metric, stat = m["metric"], m["stat"]
        if metric not in allowed:
            raise UserError(f"--slo: '{metric}' is not a metric of --api {api}; use {', '.join(allowed)}")
        if stat != "mean" and not 0 < int(stat[1:]) <= 100:
            raise UserError(f"--slo: '{stat}' is not a percentile; use p1 ... p100 (e.g. p99) or mean")
        try:
            value = float(m["value"]) / (1000.0 if m["unit"] == "ms" else 1.0)
        except ValueError:
            raise UserError(f"--slo: '{m['value']}' is not a number; {hint}") from None
        if not value > 0 or math.isinf(value):
            raise UserError(f"--slo: the limit of {metric}_{stat} must be a positive number")
        if m["unit"] and metric == "rtf":
            raise UserError("--slo: rtf is a ratio; give it without a unit (e.g. rtf_p90=0.5)")
        slos.append(Slo(metric, stat, value))
    if len({s.name for s in slos}) != len(slos):
        raise UserError("--slo names the same statistic twice; give each once")
    return slos


def _stat(values: list[float], stat: str) -> float:
    """Mean or percentile; failed requests enter as inf, and a percentile between a finite value
    and inf is inf (numpy's interpolation would give nan)."""
    x = np.asarray(values, dtype=float)
    if stat == "mean":
        return float(x.mean())
    with np.errstate(invalid="ignore"):
        value = float(np.percentile(x, int(stat[1:])))
    return math.inf if math.isnan(value) else value


def slo_report(outcomes: list[Outcome], slos: list[Slo], duration_s: float) -> dict:
    """Whether the point meets its SLOs, each statistic's value, and goodput."""
    sent = [o for o in outcomes if not o.cancelled]
    checks = []
    for s in slos:
        values = [(s.value_of(o) if o.ok else None) for o in sent]
        value = _stat([math.inf if v is None else v for v in values], s.stat) if values else math.inf
        finite = math.isfinite(value)
        checks.append({"slo": s.name, "limit": s.limit, "value": value if finite else None,
                       "met": finite and value <= s.limit})
    good = sum(1 for o in sent if o.ok and all(s.value_of(o) is not None and s.value_of(o) <= s.limit for s in slos))
    return {"slo": checks, "slo_met": all(c["met"] for c in checks) and bool(sent),
            "good_requests": good, "goodput": good / duration_s if duration_s > 0 else 0.0}


def point_metrics(result: PointResult, api: str, slos: list[Slo], planned: int | None = None) -> dict:
    """The metrics of one load point (names in docs/endpoints.md); `planned`: the requests the
    budget asked for (None when a duration bounds the point)."""
    outs = result.outcomes
    ok = [o for o in outs if o.ok]
    failed = [o for o in outs if not o.ok and not o.cancelled]
    dur = result.duration_s
    sent = sorted(o.sent_s for o in outs)
    m: dict = {
        "planned": planned, "sent": len(outs), "not_sent": None if planned is None else max(planned - len(outs), 0),
        "completed": len(ok), "failed": len(failed), "cancelled": sum(o.cancelled for o in outs),
        "failure_rate": len(failed) / len(outs) if outs else None,
        "errors": dict(Counter(o.error for o in failed).most_common()),
        "duration_s": dur,
        "offered_rate": None if result.point.rate is None or math.isinf(result.point.rate) else result.point.rate,
        "arrival_rate": (len(sent) - 1) / (sent[-1] - sent[0]) if len(sent) > 1 and sent[-1] > sent[0] else None,
        "max_in_flight": result.max_in_flight,
        "saturated": result.saturated, "stopped_early": result.stopped_early,
        "requests_per_s": len(ok) / dur if dur > 0 else None,
    }
    if api in LLM_APIS:
        m.update(_llm(ok, dur))
    elif api == "speech":
        audio = sum(o.audio_s or 0.0 for o in ok)
        m.update({"ttfb_s": summarize([o.ttfb_s for o in ok]),
                  "first_audio_s": summarize([o.first_audio_s for o in ok if o.first_audio_s is not None]),
                  "e2e_s": summarize([o.e2e_s for o in ok]),
                  "audio_s": summarize([o.audio_s for o in ok if o.audio_s is not None]),
                  "rtf": summarize([o.rtf for o in ok if o.rtf is not None]),
                  "audio_seconds": audio, "audio_s_per_s": audio / dur if dur > 0 else None})
    elif api in ("embeddings", "rerank"):
        seqs = sum(o.sequences or 0 for o in ok)
        tokens = [o.input_tokens for o in ok if o.input_tokens is not None]
        m.update({"ttfb_s": summarize([o.ttfb_s for o in ok]), "e2e_s": summarize([o.e2e_s for o in ok]),
                  "sequences": seqs, "sequences_per_s": seqs / dur if dur > 0 else None,
                  "input_tokens_per_s": sum(tokens) / dur if dur > 0 and len(tokens) == len(ok) else None})
    else:
        images = sum(o.images or 0 for o in ok)
        m.update({"ttfb_s": summarize([o.ttfb_s for o in ok]), "e2e_s": summarize([o.e2e_s for o in ok]),
                  "images": images, "images_per_s": images / dur if dur > 0 else None})
    if slos:
        m.update(slo_report(outs, slos, dur))
    return m


def _llm(ok: list[Outcome], dur: float) -> dict:
    out_tokens = sum(o.output_tokens or 0 for o in ok)
    in_known = [o.input_tokens for o in ok if o.input_tokens is not None]
    in_tokens = sum(in_known) if ok and len(in_known) == len(ok) else None
    sources = {o.tokens_source for o in ok}
    source = None if not ok else sources.pop() if len(sources) == 1 else "mixed"
    rate = (lambda n: n / dur if dur > 0 and n is not None else None)  # noqa: E731
    return {
        "ttft_s": summarize([o.ttft_s for o in ok]),
        "tpot_s": summarize([o.tpot_s for o in ok if o.tpot_s is not None]),
        "itl_s": summarize([g for o in ok for g in o.itl_s]),
        "e2e_s": summarize([o.e2e_s for o in ok]),
        "input_tokens": in_tokens, "output_tokens": out_tokens, "output_tokens_source": source,
        "output_tokens_per_s": rate(out_tokens),
        "total_tokens_per_s": rate(None if in_tokens is None else in_tokens + out_tokens),
    }
