"""What the server says about a load point: its Prometheus /metrics read before and after the
point (counters and histograms as deltas) and once a second during it (gauges).

The engines name the same things differently, and rename them between versions; `SERIES`
lists, per quantity, the names tried in order (the first one the server exposes wins, and the
record says which). Samples of one name are summed over their labels (model, engine), except
`le` for histogram buckets. Percentiles of a histogram delta are interpolated within buckets,
as Prometheus's histogram_quantile does, so they are only as fine as the server's buckets; each
comes with the bounds of its bucket, and the mean (sum over count) is exact.
"""
from __future__ import annotations

import asyncio
import math
from collections import defaultdict
from dataclasses import dataclass, field

# Each quantity: the metric family names that carry it, newest first. vLLM V1 (vllm/v1/metrics/
# loggers.py; 0.9 renamed gpu_cache_usage_perc and gpu_prefix_cache_*, 0.11 renamed
# time_per_output_token_seconds to inter_token_latency_seconds), SGLang with --enable-metrics
# (python/sglang/srt/metrics/collector.py), TensorRT-LLM's /prometheus/metrics
# (tensorrt_llm/metrics/collector.py), MindIE's metrics port with MIES_SERVICE_MONITOR_MODE=1
# (unprefixed names, src/server/endpoint/http_wrapper/prometheus_metrics.cpp), TGI (docs/source/
# reference/metrics.md; it has no TTFT or prefix-cache series).
COUNTERS = {
    "prefix_cache_queries": ("vllm:prefix_cache_queries", "vllm:gpu_prefix_cache_queries"),
    "prefix_cache_hits": ("vllm:prefix_cache_hits", "vllm:gpu_prefix_cache_hits"),
    "cached_tokens": ("sglang:cached_tokens",),
    "prompt_tokens": ("vllm:prompt_tokens", "sglang:prompt_tokens", "trtllm_prompt_tokens", "prompt_tokens"),
    "generation_tokens": ("vllm:generation_tokens", "sglang:generation_tokens", "trtllm_generation_tokens",
                          "generation_tokens"),
    "preemptions": ("vllm:num_preemptions", "num_preemptions"),
    "requests_finished": ("vllm:request_success", "sglang:num_requests", "trtllm_request_success",
                          "request_success", "tgi_request_success"),
}
HISTOGRAMS = {
    "ttft_s": ("vllm:time_to_first_token_seconds", "sglang:time_to_first_token_seconds",
               "trtllm_time_to_first_token_seconds", "time_to_first_token_seconds"),
    "itl_s": ("vllm:inter_token_latency_seconds", "sglang:inter_token_latency_seconds",
              "vllm:time_per_output_token_seconds", "sglang:time_per_output_token_seconds",
              "trtllm_time_per_output_token_seconds", "time_per_output_token_seconds"),
    "tpot_s": ("vllm:request_time_per_output_token_seconds", "tgi_request_mean_time_per_token_duration"),
    "e2e_s": ("vllm:e2e_request_latency_seconds", "sglang:e2e_request_latency_seconds",
              "trtllm_e2e_request_latency_seconds", "e2e_request_latency_seconds", "tgi_request_duration"),
    "queue_s": ("vllm:request_queue_time_seconds", "sglang:queue_time_seconds", "trtllm_request_queue_time_seconds",
                "tgi_request_queue_duration"),
}
GAUGES = {
    "running": ("vllm:num_requests_running", "sglang:num_running_reqs", "trtllm_num_requests_running",
                "num_requests_running", "tgi_batch_current_size"),
    "waiting": ("vllm:num_requests_waiting", "sglang:num_queue_reqs", "trtllm_num_requests_waiting",
                "num_requests_waiting", "tgi_queue_size"),
    "kv_cache_usage": ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc", "sglang:token_usage",
                       "trtllm_kv_cache_utilization", "npu_cache_usage_perc"),
    "cache_hit_rate": ("sglang:cache_hit_rate", "trtllm_kv_cache_hit_rate", "npu_prefix_cache_hit_rate"),
}
_GAUGE_NAMES = {n for names in GAUGES.values() for n in names}
QUANTILES = (0.5, 0.9, 0.99)
POLL_S = 1.0
SCRAPE_TIMEOUT_S = 5.0

Samples = dict[str, dict[str | None, float]]  # sample name -> {le (buckets) or None: value summed over labels}


class NotPrometheus(Exception):
    """The URL answered, but not with a Prometheus text exposition; the message says how."""


def parse(text: str) -> Samples:
    """A Prometheus text exposition as summed samples; NotPrometheus when it is not one."""
    from prometheus_client.parser import text_string_to_metric_families

    out: Samples = defaultdict(lambda: defaultdict(float))
    families = 0
    try:
        for family in text_string_to_metric_families(text):
            families += 1
            for s in family.samples:
                out[s.name][s.labels.get("le") if s.name.endswith("_bucket") else None] += s.value
    except (ValueError, TypeError, IndexError) as e:
        raise NotPrometheus(f"not a Prometheus text exposition ({str(e).splitlines()[0][:80]})") from None
    if not families:
        raise NotPrometheus("an empty exposition")
    return {k: dict(v) for k, v in out.items()}


def _counter(s: Samples, names: tuple[str, ...]) -> tuple[str, float] | None:
    for n in names:
        for sample in (n + "_total", n):
            if sample in s:
                return n, s[sample][None]
    return None


def _histogram(s: Samples, names: tuple[str, ...]) -> tuple[str, dict[float, float], float, float] | None:
    for n in names:
        if n + "_bucket" in s:
            buckets = {math.inf if le in ("+Inf", "Inf") else float(le): v for le, v in s[n + "_bucket"].items()}
            return n, buckets, s.get(n + "_count", {}).get(None, 0.0), s.get(n + "_sum", {}).get(None, 0.0)
    return None


def _gauge(s: Samples, names: tuple[str, ...]) -> tuple[str, float] | None:
    return next(((n, s[n][None]) for n in names if n in s and None in s[n]), None)


def quantile(q: float, buckets: dict[float, float]) -> float | None:
    """histogram_quantile: linear within the bucket that holds the q-th observation; the upper
    bound of the last finite bucket when it falls in +Inf."""
    found = _bucket(q, buckets)
    if found is None:
        return None
    lower, upper, share = found
    return lower if math.isinf(upper) else lower + (upper - lower) * share


def bucket(q: float, buckets: dict[float, float]) -> list[float] | None:
    """The (lower, upper] bounds of the bucket that holds the q-th observation: all the histogram
    knows of that percentile, however the interpolation places it (upper None for +Inf)."""
    found = _bucket(q, buckets)
    return None if found is None else [found[0], None if math.isinf(found[1]) else found[1]]


def _bucket(q: float, buckets: dict[float, float]) -> tuple[float, float, float] | None:
    """(lower bound, upper bound, how far into the bucket the rank falls) for the q-th observation."""
    bounds = sorted(buckets)
    total = buckets[bounds[-1]] if bounds else 0.0
    if total <= 0:
        return None
    rank, lower, below = q * total, 0.0, 0.0
    for b in bounds:
        if buckets[b] >= rank:
            width = buckets[b] - below
            return lower, b, (rank - below) / width if width > 0 else 1.0
        lower, below = b, buckets[b]
    return lower, math.inf, 1.0


@dataclass
class PointWatch:
    """A point's server-side view: the scrape before, the gauges during, the scrape after."""
    before: Samples
    during: list[Samples] = field(default_factory=list)

    def summary(self, after: Samples) -> dict:
        out: dict = {"names": {}}
        for key, names in COUNTERS.items():
            a, b = _counter(after, names), _counter(self.before, names)
            if a:
                out[key] = a[1] - (b[1] if b and b[0] == a[0] else 0.0)
                out["names"][key] = a[0]
        for key, names in HISTOGRAMS.items():
            a, b = _histogram(after, names), _histogram(self.before, names)
            if not a:
                continue
            name, buckets, count, total = a
            if b and b[0] == name:
                buckets = {le: v - b[1].get(le, 0.0) for le, v in buckets.items()}
                count, total = count - b[2], total - b[3]
            out[key] = {"count": count, "mean": total / count if count > 0 else None,
                        **{f"p{round(q * 100)}": quantile(q, buckets) for q in QUANTILES},
                        **{f"p{round(q * 100)}_bucket": bucket(q, buckets) for q in QUANTILES}}
            out["names"][key] = name
        for key, names in GAUGES.items():
            seen = [g for g in (_gauge(s, names) for s in self.during) if g]
            if seen:
                values = [v for _, v in seen]
                out[key] = {"mean": sum(values) / len(values), "max": max(values), "samples": len(values)}
                out["names"][key] = seen[0][0]
        out["prefix_cache_hit_rate"] = _hit_rate(out)
        return out


def _hit_rate(m: dict) -> float | None:
    """Hits over queries (vLLM: tokens), cached over prompt tokens (SGLang), else SGLang's gauge."""
    if m.get("prefix_cache_queries"):
        return m.get("prefix_cache_hits", 0.0) / m["prefix_cache_queries"]
    if "cached_tokens" in m and m.get("prompt_tokens"):
        return m["cached_tokens"] / m["prompt_tokens"]
    gauge = m.get("cache_hit_rate")
    return gauge["max"] if gauge else None


class Scraper:
    """GET the metrics URL with the session of the load test; `None` from `scrape` means no
    exposition this time. When the first scrape fails the server exposes none (`why` says how) and
    nothing is tried again; a later failure (a busy server's scrape timing out) is one miss
    (`missed` says how), and the next scrape tries again."""

    def __init__(self, session, url: str, headers: dict[str, str]):
        self.session, self.url, self.headers = session, url, headers
        self.why: str | None = None
        self.missed: str | None = None     # the last failure after a success
        self.read_once = False

    async def scrape(self) -> Samples | None:
        import aiohttp

        if self.why:
            return None
        try:
            async with self.session.get(self.url, headers=self.headers,
                                        timeout=aiohttp.ClientTimeout(total=SCRAPE_TIMEOUT_S)) as resp:
                if resp.status != 200:
                    raise NotPrometheus(f"HTTP {resp.status}")
                samples = parse(await resp.text())
                self.read_once = True
                return samples
        except NotPrometheus as e:
            failure = f"GET {self.url}: {e}"
        except (aiohttp.ClientError, asyncio.TimeoutError, UnicodeDecodeError) as e:
            failure = f"GET {self.url}: {type(e).__name__}"
        if self.read_once:
            self.missed = failure
        else:
            self.why = failure
        return None

    async def poll(self, watch: PointWatch) -> None:
        """Scrape once a second into `watch.during` until cancelled."""
        while True:
            await asyncio.sleep(POLL_S)
            s = await self.scrape()
            if s is None:
                if self.why:
                    return
                continue
            watch.during.append({k: v for k, v in s.items() if k in _GAUGE_NAMES})
