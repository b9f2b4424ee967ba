"""Offline batch scenario: the same batched request, repeated under the stopping rule.

Warm-up iterations run first and are not recorded. The measured window covers only the
recorded iterations, so throughput = work done in the window / window wall time.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from ..backends.base import LlmRunner, RequestTiming
from ..measure.stats import summarize
from ..measure.stopping import StoppingRule
from ..measure.window import MeasurementWindow, WindowMeasurement


@dataclass(frozen=True)
class OfflineResult:
    timings: list[RequestTiming]
    window: WindowMeasurement
    stop_reason: str

    def metrics(self) -> dict:
        """Per-cell metrics with the names DESIGN.md defines."""
        t, w = self.timings, self.window
        batch = t[0].batch_size
        out_tokens = sum(x.batch_size * x.output_len for x in t)
        in_tokens = sum(x.batch_size * x.prompt_len for x in t)
        ttft = [x.ttft_s for x in t]
        e = w.energy
        return {
            "iterations": len(t),
            "requests": len(t) * batch,
            "output_tokens": out_tokens,
            "window_s": w.wall_s,
            "ttft_s": summarize(ttft),
            "tpot_s": summarize([x.tpot_s for x in t]),
            "itl_s": summarize([g for x in t for g in x.itl_s]),
            "e2e_s": summarize([x.e2e_s for x in t]),
            "output_tokens_per_s": out_tokens / w.wall_s,
            "prefill_tokens_per_s": in_tokens / sum(ttft),
            "requests_per_s": len(t) * batch / w.wall_s,
            "host_peak_rss_bytes": w.host_peak_rss_bytes,
            "device_peak_allocated_bytes": w.device_peak_allocated_bytes,
            "device_peak_reserved_bytes": w.device_peak_reserved_bytes,
            "device_used_peak_bytes": w.device_used_peak_bytes,
            "energy_j": e.energy_j,
            "avg_power_w": e.avg_power_w,
            "j_per_token": e.energy_j / out_tokens if e.energy_j is not None else None,
            "energy_source": e.source,
            "energy_scope": e.scope,
            "energy_note": e.note,
        }


def run_offline(runner: LlmRunner, input_ids, output_len: int, rule: StoppingRule,
                window: MeasurementWindow) -> OfflineResult:
    for _ in range(rule.warmup):
        runner.run(input_ids, output_len)
    timings: list[RequestTiming] = []
    with window:
        t0 = time.perf_counter()
        while not rule.done(len(timings), time.perf_counter() - t0):
            timings.append(runner.run(input_ids, output_len))
        elapsed = time.perf_counter() - t0
    return OfflineResult(timings, window.result, rule.reason(len(timings), elapsed))
