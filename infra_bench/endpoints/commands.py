"""The `loadtest` and `serve` commands. Nothing here imports aiohttp, torch or the server at
import time: the CLI stays fast and works without the `serve` extra until these run."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import secrets
import sys
from pathlib import Path
from urllib.parse import urlsplit

import click
from click.core import ParameterSource

from ..errors import UserError, closest
from .target import LLM_APIS, Target, not_found

API_CHOICES = ("completions", "chat", "tgi", "speech", "images", "embeddings", "rerank")


def _levels(text: str | None, name: str, integer: bool) -> tuple[float, ...] | None:
    """`2`, `0.5,1,2` or `inf` (rates) -> levels; every one > 0."""
    if text is None:
        return None
    out = []
    for item in (t.strip() for t in text.split(",")):
        try:
            v = int(item) if integer else float(item)
        except ValueError:
            kind = "whole numbers" if integer else "numbers (or inf)"
            raise UserError(f"--{name} '{text}': give {kind}, comma-separated, e.g. --{name} 1,2,4") from None
        if not v > 0 or (math.isnan(v)):
            raise UserError(f"--{name}: {item} is not > 0")
        out.append(v)
    return tuple(out)


def _strategy(rate, concurrency, sweep: bool, search: bool, max_points: int):
    from .bench import Strategy

    rates, concs = _levels(rate, "rate", False), _levels(concurrency, "concurrency", True)
    if sweep and search:
        raise UserError("--sweep and --search are two ways to pick load points; give one of them")
    mode = "sweep" if sweep else "search" if search else "fixed"
    if rates and concs and len(concs) > 1:
        raise UserError("with --rate, --concurrency is one cap on requests in flight; give one number")
    if rates:
        if mode != "fixed" and len(rates) > 1:
            raise UserError(f"--{mode} starts from one --rate; give one number (the points double from it)")
        if mode != "fixed" and math.isinf(rates[0]):
            raise UserError(f"--{mode} cannot start from an infinite rate; give a number, e.g. --rate 1")
        return Strategy("rate", mode, rates, concs[0] if concs else None, max_points)
    concs = concs or (1,)
    if mode != "fixed" and len(concs) > 1:
        raise UserError(f"--{mode} starts from one --concurrency; give one number (the points double from it)")
    return Strategy("concurrency", mode, tuple(float(c) for c in concs), None, max_points)


@click.command()
@click.option("--endpoint", required=True, metavar="URL",
              help="The server: http://host:8000, http://host:8000/v1, or a full API URL (.../v1/chat/completions).")
@click.option("--model", required=True, help="The model name the server serves (sent in every request).")
@click.option("--api", type=click.Choice(API_CHOICES),
              help="completions (default, as vLLM's bench), chat, tgi (TGI's and MindIE's /generate_stream), "
                   "speech (/v1/audio/speech), images (/v1/images/generations), embeddings (/v1/embeddings) or "
                   "rerank (/v1/rerank: one query and one passage per request); default: what the --endpoint "
                   "path names.")
@click.option("--rate", metavar="R[,R...]",
              help="Open loop: requests/s with gamma gaps (inf: all at once); a list runs one point each.")
@click.option("--concurrency", metavar="C[,C...]",
              help="Closed loop: requests kept in flight (default 1); with --rate, a cap on requests in flight.")
@click.option("--sweep", is_flag=True, help="Double the rate (or concurrency) from its value until throughput "
                                            "stops growing or the server saturates.")
@click.option("--search", is_flag=True, help="With --slo: the highest rate (or concurrency) that meets the SLO, "
                                             "by doubling then bisection.")
@click.option("--max-points", type=click.IntRange(min=1), default=8, show_default=True,
              help="Most load points a --sweep or --search runs.")
@click.option("--burstiness", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True,
              help="Gamma shape of the gaps between arrivals: 1 = Poisson, < 1 burstier, > 1 steadier.")
@click.option("--num-requests", type=click.IntRange(min=1), help="Requests per load point (default 100, or "
                                                                 "unbounded with --duration).")
@click.option("--duration", type=click.FloatRange(min=0, min_open=True),
              help="Seconds each load point issues requests (with --num-requests: whichever ends first).")
@click.option("--input-len", type=click.IntRange(min=1), help="Random prompts: words (about tokens); speech: "
                                                              "characters (defaults: 128, speech 120, images 20).")
@click.option("--output-len", type=click.IntRange(min=1), help="Output tokens asked (max_tokens) for chat and "
                                                               "completions (default 128).")
@click.option("--dataset", type=click.Path(path_type=Path),
              help="JSONL or CSV: prompts ({\"prompt\": ...} or {\"messages\": [...]}, optional \"output_len\"; "
                   "speech {\"input\": ...}), or lengths only ({\"input_len\": I, \"output_len\": O}).")
@click.option("--lengths", metavar="NAME", help="Input and output lengths drawn from a built-in distribution: "
                                                "azure-conv-2023 (chat) or azure-code-2023 (coding), from Azure's "
                                                "LLM inference traces, or sharegpt-opt-2023 (ShareGPT's first "
                                                "rounds as the vLLM paper measured them; docs/endpoints.md).")
@click.option("--shared-prefix-len", type=click.IntRange(min=1), metavar="N",
              help="Every prompt starts with one of --prefix-groups shared texts of N words (a system prompt "
                   "as real traffic has); the rest of each prompt is its own.")
@click.option("--prefix-groups", type=click.IntRange(min=1), metavar="K",
              help="How many different shared prefixes (default 1), each request taking one at random.")
@click.option("--slo", metavar="METRIC_STAT=S,...",
              help="e.g. ttft_p99=0.5,tpot_p99=50ms (speech: first_audio, ttfb, e2e, rtf; images, embeddings, "
                   "rerank: ttfb, e2e); "
                   "adds goodput.")
@click.option("--api-key-env", metavar="VAR", help="Send 'Authorization: Bearer' with the key in this "
                                                   "environment variable (never stored).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=120.0, show_default=True,
              help="Seconds one request may take in all.")
@click.option("--stall-timeout", type=click.FloatRange(min=0, min_open=True), default=30.0, show_default=True,
              help="Seconds without a byte from the server before a request fails as stalled.")
@click.option("--warmup", type=click.IntRange(min=0), default=1, show_default=True,
              help="Requests sent one by one before the first point, not recorded.")
@click.option("--ignore-eos/--no-ignore-eos", default=True, show_default=True,
              help="Send ignore_eos so outputs have exactly --output-len tokens (vLLM, SGLang); "
                   "drop it for servers that refuse unknown fields.")
@click.option("--voice", help="Speech: the voice asked for (default alloy).")
@click.option("--size", metavar="WxH", help="Images: the size asked for (default: the server's).")
@click.option("--hardware", help="Label: the server's accelerator (a profile id or device name), kept as "
                                 "device.model in the records.")
@click.option("--engine", help="Label: the serving engine and version (e.g. 'vllm 0.8.5'), kept in the records.")
@click.option("--precision", help="Label: the precision the server runs (bf16, fp8, int8, int4, fp4 ...), for "
                                  "`calibrate` (default: what the server reports, else bf16, said as assumed).")
@click.option("--tp", type=click.IntRange(min=1), help="Label: the server's tensor-parallel size, for `calibrate` "
                                                         "(default: 1, said as assumed).")
@click.option("--memory-fraction", type=click.FloatRange(min=0, max=1, min_open=True),
              help="Label: the engine's memory share as the server was started with it (vLLM "
                   "--gpu-memory-utilization, SGLang --mem-fraction-static, TensorRT-LLM free_gpu_memory_fraction), "
                   "for `calibrate`'s memory check (default: the engine's).")
@click.option("--seed", type=click.IntRange(min=0), help="Seeds prompts and arrival times; the same seed repeats a "
                                                         "run exactly (default: a new one per run, printed and "
                                                         "recorded).")
@click.option("--saturation-stop/--no-saturation-stop", default=None,
              help="End an open-loop point early when the server's queue keeps growing (default: on for --sweep "
                   "and --search, off for fixed points, which then send every request and say they saturated).")
@click.option("--max-failure-rate", type=click.FloatRange(0, 1), default=0.05, show_default=True,
              help="Exit with status 1 when more than this fraction of a point's requests fail (records are kept).")
@click.option("--metrics-url", metavar="URL|none",
              help="The server's Prometheus metrics, read around each point (default: <endpoint>/metrics; none: "
                   "do not read).")
@click.option("--tokenizer", type=click.Path(path_type=Path), metavar="DIR",
              help="A local folder with the served model's tokenizer: counts output tokens exactly when the "
                   "server sends no usage.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("results"), show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the records as JSON on stdout.")
def loadtest(endpoint, model, api, rate, concurrency, sweep, search, max_points, burstiness, num_requests,
             duration, input_len, output_len, dataset, lengths, shared_prefix_len, prefix_groups, slo, api_key_env,
             timeout, stall_timeout, warmup, ignore_eos, voice, size, hardware, engine, precision, tp, memory_fraction, seed,
             saturation_stop,
             max_failure_rate, metrics_url, tokenizer, out, as_json) -> None:
    """Load an OpenAI-compatible endpoint (vLLM, SGLang, MindIE ...) and record TTFT, TPOT, ITL, E2E,
    throughput and goodput per load point."""
    from ..report.endpoint_table import format_points
    from ..report.table import format_notes
    from . import bench
    from .client import RequestOptions
    from .load import Budget
    from .metrics import parse_slo
    from .target import resolve
    from .tokens import load as load_tokenizer

    if precision is not None:
        from ..planner.iteration import get_precision

        get_precision(precision)
    if hardware is not None:
        from ..planner.profiles import load_hardware, match_device

        profiles = load_hardware()
        if hardware not in profiles and match_device(profiles, hardware) is None:
            click.echo(f"note: --hardware '{hardware}' is no shipped profile id or device name; `calibrate` uses "
                       f"these points only with a --profiles folder that has it (ids: infra-bench profiles list)",
                       err=True)
    target = resolve(endpoint, api, api_key_env)
    api = target.api
    llm = api in LLM_APIS
    if output_len is not None and not llm:
        raise UserError(f"--output-len applies to the chat, completions and tgi APIs, not {api}")
    if tokenizer is not None and not llm:
        raise UserError(f"--tokenizer counts the output tokens of the chat, completions and tgi APIs; {api} has none")
    if api not in ("chat", "completions") and \
            click.get_current_context().get_parameter_source("ignore_eos") is not ParameterSource.DEFAULT:
        flag = "--ignore-eos" if ignore_eos else "--no-ignore-eos"  # on by default: only a flag the user gave
        raise UserError(f"{flag} applies to the chat and completions APIs (their output length; TGI's API has no "
                        f"such field), not {api}; drop it")
    if voice is not None and api != "speech":
        raise UserError("--voice applies to --api speech")
    voice = voice or "alloy"
    if size is not None and api != "images":
        raise UserError("--size applies to --api images")
    if size is not None and not re.fullmatch(r"[1-9][0-9]*x[1-9][0-9]*", size):
        raise UserError(f"--size {size}: expected WIDTHxHEIGHT in pixels, e.g. --size 512x512")
    slos = parse_slo(slo, api) if slo else []
    if search and not slos:
        raise UserError("--search looks for the highest load that meets an SLO; add --slo, e.g. --slo ttft_p99=0.5")
    strategy = _strategy(rate, concurrency, sweep, search, max_points)
    budget = Budget(num_requests if num_requests or duration else 100, duration)
    seed = secrets.randbelow(2**31) if seed is None else seed
    prompts = _prompts(api, input_len, output_len, dataset, lengths, shared_prefix_len, prefix_groups, seed)
    options = RequestOptions(model=model, timeout_s=timeout, stall_timeout_s=min(stall_timeout, timeout),
                             connect_timeout_s=min(10.0, timeout), ignore_eos=ignore_eos, voice=voice, size=size)
    if metrics_url and metrics_url.lower() != "none":
        parts = urlsplit(metrics_url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UserError(f"--metrics-url '{metrics_url}' is not an http(s) URL; give e.g. "
                            f"http://127.0.0.1:8000/metrics, or none")
    metrics_url = None if (metrics_url or "").lower() == "none" else metrics_url or target.metrics_url
    counter = load_tokenizer(tokenizer) if tokenizer is not None else None
    stop = strategy.mode != "fixed" if saturation_stop is None else saturation_stop
    spec = {"endpoint": target.url, "api": api, "input_len": prompts.input_len, "output_len": prompts.one_output_len,
            "prompts": prompts.source, "burstiness": burstiness, "slo": slo,
            "strategy": {"axis": strategy.axis, "mode": strategy.mode, "levels": list(strategy.levels),
                         "cap": strategy.cap, "max_points": strategy.max_points},
            "ignore_eos": ignore_eos if api in ("chat", "completions") else None,  # TGI's API cannot send it "voice": voice if api == "speech" else None, "size": size,
            "api_key_env": api_key_env, "max_failure_rate": max_failure_rate}
    test = bench.LoadTest(target, options, strategy, budget, prompts, warmup, tuple(slos), burstiness, stop,
                          metrics_url, counter, spec,
                          {"hardware": hardware, "engine": engine, "precision": precision, "tp": tp,
                           "memory_fraction": memory_fraction})
    def progress(line: str) -> None:
        if not as_json:
            click.echo(line)
    try:
        result = bench.run(test, out, progress, lambda line: click.echo(line, err=True))
    except bench.Stopped as stop:
        where = (f"{stop.points} load point(s) kept in {stop.folder}, the one in progress with the requests that "
                 f"had finished" if stop.points else f"nothing measured yet; the run folder {stop.folder} holds no point"
                 ) if stop.folder else "nothing recorded yet"
        click.echo(f"error: interrupted; {where}", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        click.echo(f"error: interrupted; the load points that finished are kept under {out}", err=True)
        sys.exit(130)
    recs = result.records
    if as_json:
        click.echo(json.dumps(recs, indent=1))
    else:
        click.echo(format_points(recs))
        if notes := format_notes(recs):  # random weights, as `run` and `results show` say them
            click.echo(notes)
        if strategy.mode != "fixed":
            click.echo(_strategy_line(strategy.mode, strategy.axis, result.strategy))
        if result.metrics_note:
            click.echo(f"note: server metrics: {result.metrics_note}")
        if result.warmup_errors:
            click.echo(f"note: {len(result.warmup_errors)} warm-up request(s) failed: {result.warmup_errors[0]}")
        click.echo(f"records: {result.store.folder / 'records.jsonl'}")
        click.echo(f"seed: {seed} (--seed {seed} sends these same requests again)")
    failing = _too_many_failures(recs, max_failure_rate, target)
    if failing:
        click.echo(f"error: {failing}; records kept in {result.store.folder}", err=True)
        sys.exit(1)


def _too_many_failures(recs: list[dict], limit: float, target: Target) -> str | None:
    """The first point where nothing succeeded or more than `limit` of the requests failed, in words; where every
    request got a 404, the URL asked and where the API is likelier."""
    from ..report.endpoint_table import point_label

    for r in recs:
        m = r["metrics"]
        if not m["sent"]:
            continue
        top = next(iter(m["errors"]), "cancelled by the saturation stop")
        if m["completed"] == 0:
            what = "every request failed" if m["failed"] == m["sent"] else "no request succeeded"
            if m["errors"].get(top) == m["sent"] and top.startswith("HTTP 404"):
                return f"{what} ({m['sent']} sent at {point_label(r)}): {not_found(target, top)}"
            return f"{what} ({m['sent']} sent at {point_label(r)}); most common error: {top}"
        if m["failure_rate"] > limit:
            return (f"{m['failed']} of {m['sent']} requests failed at {point_label(r)} ({m['failure_rate']:.0%}, "
                    f"above --max-failure-rate {limit:g}); most common error: {top}")
    return None


def _prompts(api: str, input_len, output_len, dataset, lengths, prefix_len, prefix_groups, seed: int):
    """The run's prompt source from the options, each conflict a one-line error."""
    from .inputs import DEFAULT_INPUT_LEN, DEFAULT_OUTPUT_LEN, Prompts, SharedPrefix, distributions, load_dataset

    llm = api in LLM_APIS
    given = [n for n, v in (("--input-len", input_len), ("--dataset", dataset), ("--lengths", lengths)) if v]
    if len(given) > 1:
        raise UserError(f"{given[0]} and {given[1]} both set the prompts' lengths; give one of them")
    if prefix_groups is not None and prefix_len is None and not dataset:  # a dataset's own check below
        raise UserError("--prefix-groups counts shared prefixes; add --shared-prefix-len N")
    prefix = SharedPrefix(prefix_len, prefix_groups or 1) if prefix_len else None
    out_len = (output_len or DEFAULT_OUTPUT_LEN) if llm else None
    if lengths:
        table = distributions()
        if lengths not in table:
            raise UserError(f"--lengths {lengths}: no such distribution{closest(lengths, table)}; choose one of "
                            f"{', '.join(table)}")
        if not llm:
            raise UserError(f"--lengths draws token lengths for the chat and completions APIs, not {api}")
        if output_len is not None:
            raise UserError("--lengths draws output lengths too; drop --output-len")
        d = table[lengths]
        digest = hashlib.sha256(json.dumps(dataclasses.asdict(d), sort_keys=True).encode()).hexdigest()
        return Prompts(api, seed, None, None, prefix, distribution=d,
                       source={"kind": "lengths", "name": d.name, "source": d.source, "sha256": digest, "salt": seed})
    if dataset:
        lines, source = load_dataset(dataset, api)
        given = [n for n, v in (("--shared-prefix-len", prefix_len), ("--prefix-groups", prefix_groups)) if v is not None]
        if given and lines[0].input_len is None:
            raise UserError(f"{' and '.join(given)}: shared prefixes are built into random prompts; a --dataset of "
                            f"prompts brings its own text, so drop {' and '.join(given)}")
        if prefix_groups is not None and prefix_len is None:
            raise UserError("--prefix-groups counts shared prefixes; add --shared-prefix-len N")
        if lines[0].input_len is not None and output_len is not None:
            raise UserError("this --dataset gives output lengths; drop --output-len")
        return Prompts(api, seed, None, out_len, prefix, lines=lines, source={**source, "salt": seed})
    in_len = input_len or DEFAULT_INPUT_LEN[api]
    return Prompts(api, seed, in_len, out_len, prefix,
                   source={"kind": "random", "words": in_len, "salt": seed,
                           "shared_prefix_len": prefix_len, "prefix_groups": prefix.groups if prefix else None})




def _strategy_line(mode: str, axis: str, s) -> str:
    unit = "req/s" if axis == "rate" else "in flight"
    if mode == "search":
        best = "none of the points tried" if s.best is None else f"{s.best:g} {unit}"
        return f"SLO search: highest {axis} meeting the SLO: {best} ({s.stop_reason})"
    return f"sweep: stopped: {s.stop_reason}"
