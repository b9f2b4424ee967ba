"""The `infra-bench` command line.

Exit codes: 0 success; 1 a run finished with failed cells, or an internal error; 2 bad input
(one line on stderr naming the problem and the fix); 130 interrupted.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from .errors import Interrupted, UserError, closest, interrupted_before_measuring

DEFAULT_SUITE = "quick.yaml"


def _dump(obj) -> str:
    return json.dumps(obj, indent=1, default=str)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="infra-bench")
def cli() -> None:
    """Measure LLM, diffusion, speech and embedding inference on this machine and keep every result;
    predict it on other accelerators; size a cluster for a demand.

    Start with `infra-bench run` (a quick suite sized for a small CPU machine) or `infra-bench run --arch NAME`
    (one built-in model; `infra-bench archs` lists them), then `predict` and `plan`.
    """


PROFILES_OPTION = click.option("--profiles", "profile_dirs", multiple=True, type=click.Path(path_type=Path),
                               help="A folder of your own profiles (accelerators/*.yaml, cpus.yaml, sites.yaml) "
                                    "that extends or overrides the built-ins; repeatable.")


def _device_profiles(info: dict, profile_dirs) -> dict[str, str | None]:
    """Each local device (cpu, cuda:0, ...) -> the id of the profile its name matches, or None."""
    from .planner.profiles import load_hardware, match_device

    profiles = load_hardware(list(profile_dirs))
    names = {"cpu": info["host"]["cpu_model"]}
    for family in ("cuda", "npu", "mlu", "musa"):
        for d in info["accelerators"][family].get("devices", []):
            names[d["name"]] = d.get("model")
    return {dev: (p.id if (p := match_device(profiles, name)) else None) for dev, name in names.items()}


def _probe_results(results: Path, device: str, profile_id: str | None) -> list[dict]:
    """The newest `probe` of `device` under `results`: each ok test's measured value, and its ratio to the
    spec of the device's own profile (None where the probe compared with another profile, or with none)."""
    from .probing import latest_probe

    out = []
    for r in latest_probe(results, device):
        if r["status"] != "ok":
            continue
        m = r["metrics"]
        own = bool(profile_id and m.get("profile") == profile_id and m.get("spec"))
        out.append({"run_id": r["run_id"], "test": r["cell"]["test"], "dtype": r["cell"]["dtype"], "value": m["value"],
                    "unit": m["unit"], "profile": profile_id if own else None, "spec": m["spec"] if own else None,
                    "measured_over_spec": m["measured_over_spec"] if own else None,
                    "host_others_cpu_frac": m.get("host_others_cpu_frac")})
    return out


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the full inventory as JSON.")
@click.option("--results", type=click.Path(file_okay=False, path_type=Path), default=Path("results"),
              show_default=True, help="Where to look for the latest `infra-bench probe` run.")
@PROFILES_OPTION
def sysinfo(as_json: bool, results: Path, profile_dirs) -> None:
    """Host, libraries, ONNX Runtime providers, accelerators, and their matching profiles."""
    from .system import collect

    info = collect()
    info["profiles"] = _device_profiles(info, profile_dirs)
    info["probe"] = {dev: _probe_results(results, dev, pid) for dev, pid in info["profiles"].items()}
    if as_json:
        click.echo(_dump(info))
        return
    h, lib, acc = info["host"], info["libraries"], info["accelerators"]
    click.echo(f"host      {h['cpu_model']}, {h['cpu_logical_cores']} logical cores, "
               f"{h['memory_total_bytes'] / 2**30:.1f} GiB RAM, {h['os']}")
    click.echo(f"cpu flags {' '.join(h['cpu_flags']) or '-'}")
    click.echo(f"python    {info['python']['version']}")
    click.echo("libraries " + ", ".join(f"{k} {v}" for k, v in lib.items() if v))
    ort = info["onnxruntime"]
    click.echo(f"onnxruntime providers: {', '.join(ort['providers']) if ort['available'] else 'absent (' + ort['reason'] + ')'}")
    nv = acc["nvml"]
    click.echo(f"nvml      {'driver ' + str(nv['driver_version']) + ', ' + str(len(nv['gpus'])) + ' GPU(s)' if nv['available'] else 'absent: ' + nv['reason']}")
    for family in ("cuda", "npu", "mlu", "musa"):
        e = acc[family]
        if e["count"]:
            for d in e["devices"]:
                mem = d.get("memory_total_bytes")
                extra = f", {mem / 2**30:.1f} GiB" if mem else ""
                nvd = d.get("nvml") or {}
                if nvd.get("power_limit_w"):
                    extra += f", power limit {nvd['power_limit_w']:.0f} W"
                click.echo(f"{d['name']:<9} {d.get('model')}{extra}")
        else:
            click.echo(f"{family:<9} absent: {e['reason']}")
    from .measure.contention import BUSY_FRACTION
    from .measure.contention import note as busy_note

    for dev, pid in info["profiles"].items():
        line = f"profile   {dev}: {pid or 'none matched (add one with --profiles DIR; see infra-bench profiles list)'}"
        measured = [r for r in info["probe"][dev] if r["measured_over_spec"] is not None]
        if measured:  # a busy probe reads low with no error: it is marked, as `probe` marks it
            busy = [bool(busy_note(r["host_others_cpu_frac"])) for r in measured]
            line += "; measured/spec " + ", ".join(
                f"{r['test']} {r['dtype']} {r['measured_over_spec']:.2f}" + (" (busy)" if b else "")
                for r, b in zip(measured, busy))
            if any(busy):
                line += (f"; (busy): other processes used over {BUSY_FRACTION:.0%} of the CPU time during those tests, "
                         f"so they read low; re-run `infra-bench probe` when the machine is idle")
        elif pid:
            line += "; run `infra-bench probe` to compare measured with spec"
        click.echo(line)


@cli.command()
@click.option("--device", default="auto", show_default=True, help="cpu, cuda, cuda:1, npu, ... or auto.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("results"), show_default=True)
@click.option("--quick", is_flag=True, help="Shorter measuring windows (for tests and a first look).")
@click.option("--json", "as_json", is_flag=True, help="Print the records as JSON on stdout.")
@PROFILES_OPTION
def probe(device: str, out: Path, quick: bool, as_json: bool, profile_dirs) -> None:
    """Measure this device's roofline: matmul TFLOPS per dtype, memory and host-to-device bandwidth."""
    from .planner.profiles import load_hardware
    from .probing import run_probe
    from .report.table import format_notes, format_table
    from .system import collect

    profiles = load_hardware(list(profile_dirs))
    store, records = run_probe(device, out, profiles, collect(), quick, progress=lambda m: click.echo(m, err=True))
    if as_json:
        click.echo(_dump(records))
        return
    click.echo(format_table(records))
    if notes := format_notes(records):  # a busy machine's cells, as `run` says them
        click.echo(notes)
    click.echo(f"records: {store.folder / 'records.jsonl'}")
    if any(r["status"] == "failed" for r in records):
        sys.exit(1)


@cli.group()
def profiles() -> None:
    """Accelerator, CPU and site profiles (specs with sources)."""


def _profile_row(p, market: str = "CN") -> dict:
    return {"id": p.id, "vendor": p.vendor, "model": p.model, "kind": p.kind,
            "bf16_or_fp16_tflops": p.dense_tflops, "fp8_tflops": p.peak_tflops.get("fp8"),
            "int8_tops": p.peak_tflops.get("int8"), "memory_gb": p.memory_gb,
            "bandwidth_tbs": p.memory_bandwidth_tbs, "tdp_w": p.tdp_w, "domestic": p.domestic,
            f"{market.lower()}_available": p.available_in(market)}


def _text_table(rows: list[dict], columns: list[str]) -> str:
    from .report.table import render

    return render([columns] + [["-" if r[c] is None else (f"{r[c]:g}" if isinstance(r[c], float) else str(r[c]))
                                for c in columns] for r in rows])


@profiles.command("list")
@click.option("--vendor", help="Only this vendor (case-insensitive).")
@click.option("--domestic", is_flag=True, help="Only domestic Chinese parts.")
@click.option("--market", help="A market code (e.g. CN) for --available.")
@click.option("--available", is_flag=True, help="Only parts that can be bought in --market.")
@click.option("--kind", type=click.Choice(["accelerator", "cpu"]), help="Only accelerators or only CPUs.")
@click.option("--json", "as_json", is_flag=True, help="Print the profiles as JSON.")
@PROFILES_OPTION
def profiles_list(vendor, domestic, market, available, kind, as_json, profile_dirs) -> None:
    """Profiles with their key figures; filters combine."""
    from .planner.profiles import known_market, load_hardware

    if available and not market:
        raise UserError("--available needs --market, e.g. --market CN --available")
    profiles = load_hardware(list(profile_dirs))
    market = known_market(profiles, market or "CN")
    rows = []
    for p in profiles.values():
        if (vendor and vendor.lower() not in p.vendor.lower()) or (domestic and not p.domestic) or \
                (kind and p.kind != kind) or (available and p.available_in(market) is not True):
            continue
        rows.append(_profile_row(p, market))
    if not rows and vendor:
        raise UserError(f"no profile of vendor '{vendor}' matches these filters")
    if as_json:
        click.echo(_dump(rows))
        return
    column = f"{market.lower()}_available"
    click.echo(_text_table(rows, ["id", "vendor", "model", "bf16_or_fp16_tflops", "int8_tops", "memory_gb",
                                  "bandwidth_tbs", "tdp_w", column]))
    click.echo(f"dense peaks; null = not published; {column}: True/False, - = restricted or unclear "
               "(see profiles show ID)")


@profiles.command("show")
@click.argument("profile_id")
@click.option("--json", "as_json", is_flag=True, help="Print the profile as JSON.")
@PROFILES_OPTION
def profiles_show(profile_id: str, as_json: bool, profile_dirs) -> None:
    """Every field of one profile, with its sources."""
    import yaml

    from .planner.profiles import get, load_hardware, load_servers, server_for

    p = get(load_hardware(list(profile_dirs)), profile_id)
    data = p.model_dump(mode="json")
    data["derived"] = {"ridge_flop_per_byte": p.ridge_flop_per_byte(), "memory_gb_per_tflop": p.memory_gb_per_tflop(),
                       "price_per_tflop": p.price_per_tflop(),
                       "price_per_tflop_currency": p.price.currency if p.price else None}
    server = server_for(p, load_servers(list(profile_dirs))) if p.kind == "accelerator" else None
    if server:  # the platform `plan` buys it in (profiles servers)
        data["server"] = server.model_dump(mode="json")  # unknown figures as null, as the part's own
    click.echo(_dump(data) if as_json else yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=110))


@profiles.command("compare")
@click.argument("profile_ids", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
@PROFILES_OPTION
def profiles_compare(profile_ids, as_json: bool, profile_dirs) -> None:
    """Side by side, with ridge point (FLOP/byte), memory per TFLOP and price per TFLOP."""
    from .planner.cost import Assumptions
    from .planner.profiles import get, load_hardware

    hw = load_hardware(list(profile_dirs))
    ps = [get(hw, pid) for pid in profile_ids]
    fx = Assumptions().fx

    def usd_per_tflop(p) -> float | None:
        """In one currency, so parts priced in CNY and USD compare (the default rates, as `plan` uses)."""
        v = p.price_per_tflop()
        return None if v is None or p.price.currency not in fx else v / fx[p.price.currency]
    rows = {
        "vendor / model": [f"{p.vendor} {p.model}" for p in ps],
        "bf16/fp16 dense TFLOPS": [p.dense_tflops for p in ps],
        "fp8 dense TFLOPS": [p.peak_tflops.get("fp8") for p in ps],
        "fp4 dense TFLOPS": [p.peak_tflops.get("fp4") for p in ps],
        "int8 dense TOPS": [p.peak_tflops.get("int8") for p in ps],
        "memory GB": [p.memory_gb for p in ps],
        "bandwidth TB/s": [p.memory_bandwidth_tbs for p in ps],
        "ridge point FLOP/byte": [p.ridge_flop_per_byte() for p in ps],
        "memory GB per TFLOP": [p.memory_gb_per_tflop() for p in ps],
        "TDP W": [p.tdp_w for p in ps],
        "scale-up GB/s": [p.scale_up.bandwidth_gbs if p.scale_up else None for p in ps],
        "price (estimate)": [f"{p.price.amount:,.0f} {p.price.currency}" if p.price else None for p in ps],
        "USD per bf16 TFLOP": [usd_per_tflop(p) for p in ps],
        "CN available": [(p.availability["CN"].status if "CN" in p.availability else None) for p in ps],
        "confidence": [p.confidence for p in ps],
    }
    if as_json:
        click.echo(_dump({"profiles": list(profile_ids), "rows": rows}))
        return
    from .report.table import render

    def fmt(v) -> str:
        """Three significant figures, whole numbers from 1,000 (not 1.98e+03); long text cut with '...' (--json
        has it whole)."""
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}"
        text = str(v)
        return text if len(text) <= 38 else text[:35] + "..."
    click.echo(render([["", *profile_ids]] + [[name, *(fmt(v) for v in vals)] for name, vals in rows.items()],
                      rule=False))


@profiles.command("sites")
@click.option("--json", "as_json", is_flag=True, help="Print the sites as JSON.")
@PROFILES_OPTION
def profiles_sites(as_json: bool, profile_dirs) -> None:
    """Site presets: grid carbon factor, power price (and a subsidised one for domestic parts only), PUE."""
    from .planner.profiles import load_sites

    rows = [s.model_dump() for s in load_sites(list(profile_dirs)).values()]
    if as_json:
        click.echo(_dump(rows))
        return
    click.echo(_text_table(rows, ["id", "grid_kgco2_per_kwh", "grid_factor_type", "power_price", "domestic_power_price",
                                  "power_currency", "pue", "region"]))


@profiles.command("servers")
@click.option("--json", "as_json", is_flag=True, help="Print the servers as JSON.")
@PROFILES_OPTION
def profiles_servers(as_json: bool, profile_dirs) -> None:
    """Server platforms that plans buy accelerators in: slots, price, maximum power, what they host."""
    from .planner.profiles import load_servers

    servers = load_servers(list(profile_dirs)).values()
    if as_json:
        click.echo(_dump([s.model_dump() for s in servers]))
        return
    rows = [{"id": s.id, "slots": f"{s.slots} ({'baseboard' if s.baseboard else 'cards'})",
             "hosts": ", ".join(s.hosts or s.form_factors),
             "price": (f"{s.price.amount:,.0f} {s.price.currency} ({s.price.confidence or '?'}, "
                       f"{'with' if s.price.includes_accelerators else 'without'} accelerators)") if s.price else "unpriced",
             "max_power_w": s.max_power_w, "name": s.name} for s in servers]
    click.echo(_text_table(rows, ["id", "slots", "price", "max_power_w", "hosts", "name"]))
    click.echo("slots: devices (a card of several, as the Atlas 300I Duo's 2, fills as many); a baseboard's modules are "
               "bought for every slot, cards one by one; price confidence: A list price "
               "or tender award, B reputable press or reseller quote, C estimate, forum or derived; sources: profiles "
               "servers --json")


@profiles.command("groups")
@click.option("--json", "as_json", is_flag=True, help="Print the groups as JSON.")
@PROFILES_OPTION
def profiles_groups(as_json: bool, profile_dirs) -> None:
    """Names that `plan --hardware/--exclude/--compare` accept for sets of parts, with their members."""
    from .planner.profiles import load_hardware
    from .planner.selection import BUILT_IN, catalog

    parts = catalog(load_hardware(list(profile_dirs)), list(profile_dirs))
    vendors = parts.vendors()
    about = {**{g: parts.groups[g].description for g in parts.groups},
             "domestic": "domestic Chinese parts", "imported": "parts not made in China",
             **{v: "vendor" for v in vendors}}
    rows = [{"name": n, "description": about[n], "members": parts.resolve(n)}
            for n in [*parts.groups, *BUILT_IN, *vendors]]
    if as_json:
        click.echo(_dump(rows))
        return
    click.echo(_text_table([{**r, "members": f"{len(r['members'])}: " + ", ".join(r["members"])} for r in rows],
                           ["name", "description", "members"]))


@cli.command()
@click.option("--model", "model_id", required=True, metavar="ID|PATH",
              help="From the planner catalog: an LLM (llama-3.1-8b, deepseek-v3, qwen3.5-397b-a17b ...), a "
                   "diffusion pipeline (sd-1.5, sdxl-base-1.0), a video model (wan2.1-t2v-1.3b, hunyuanvideo), a TTS "
                   "model (vits-mms, fastspeech2-conformer; speech LMs csm-1b, dia-1.6b, cosyvoice2-0.5b) or an "
                   "embedding model or reranker (bge-m3, bge-reranker-v2-m3). Or PATH: a local LLM folder with "
                   "config.json (or the file), whose shape is counted offline on the meta device; no weights needed.")
@click.option("--hardware", "hardware_id", required=True, help="A hardware profile id, e.g. nv_h100_sxm, hw_910b2.")
@click.option("--engine", default="auto", show_default=True,
              help="LLM: serving engine (vllm, sglang, trt-llm, mindie, vllm-ascend, generic); auto = vllm, "
                   "vllm-ascend on Huawei parts. Speech LMs: eager (auto) or compiled.")
@click.option("--precision", help="LLM: bf16, fp16, fp8, int8 (w8a8), int4 (4-bit weights, 16-bit compute) or fp4 "
                                  "(nvfp4/mxfp4); default: the precision the model is published in (DeepSeek-R1's "
                                  "fp8, gpt-oss's 4-bit experts), else bf16; diffusion, TTS and embedding: fp16 "
                                  "(default), bf16 or fp32; video: bf16 (default) ...; speech LMs: bf16 (default; "
                                  "fp16 on a part with no bf16 peak, as plan), fp16 or fp32")
@click.option("--kv-cache", type=click.Choice(["bf16", "fp16", "fp8"]), help="LLM: KV cache type (default: fp8 "
                                                                               "with fp8/fp4, else 16-bit).")
@click.option("--tp", type=click.IntRange(min=1), default=1, show_default=True, help="LLM: tensor parallel.")
@click.option("--pp", type=click.IntRange(min=1), default=1, show_default=True, help="LLM: pipeline stages.")
@click.option("--dp", type=click.IntRange(min=1), default=1, show_default=True,
              help="LLM: attention data-parallel ranks (MoE with attention DP).")
@click.option("--ep", type=click.IntRange(min=1), default=1, show_default=True, help="LLM: expert parallel.")
@click.option("--count", type=click.IntRange(min=1), help="LLM: devices in total, a multiple of TP x PP x DP "
                                                          "(replicas = count / that).")
@click.option("--concurrency", "--batch", "concurrency", type=click.IntRange(min=1), default=1, show_default=True,
              help="LLM: closed-loop clients per replica (each sends its next request when the last finishes); "
                   "speech LMs: streams batched together; diffusion and video: images (videos) per batch; "
                   "embedding: sequences per request.")
@click.option("--max-throughput", is_flag=True, help="LLM: the offline maximum (best concurrency), prefill charged; "
                                                     "diffusion and video: the largest batch that fits.")
@click.option("--num-prompts", type=click.IntRange(min=1),
              help="LLM: a finite benchmark run of N prompts, as `vllm bench serve --num-prompts N` measures it: all "
                   "sent at once, or at most --concurrency in flight (as --max-concurrency); stepped iteration by "
                   "iteration. Gives the run's duration, total and output tokens/s, mean TTFT and TPOT.")
@click.option("--lengths", metavar="NAME", help="LLM with --num-prompts: draw each prompt's input and output lengths "
                                                "from a built-in distribution (as loadtest --lengths; seed 0).")
@click.option("--input-len", type=click.IntRange(min=1), default=1024, show_default=True,
              help="LLM: prompt tokens; embedding: tokens per sequence.")
@click.option("--output-len", type=click.IntRange(min=1), default=256, show_default=True, help="LLM output tokens.")
@click.option("--max-seqs", type=click.IntRange(min=1), help="LLM: the engine's running-sequence limit (default: "
                                                             "the engine's).")
@click.option("--token-budget", type=click.IntRange(min=1), help="LLM: tokens per iteration (default: the engine's).")
@click.option("--memory-fraction", type=float, help="LLM: the share of memory the engine takes, as its own setting "
              "reads it: vLLM's --gpu-memory-utilization and SGLang's --mem-fraction-static (of the device's memory), "
              "TensorRT-LLM's free_gpu_memory_fraction (of what the weights leave); default: the engine's.")
@click.option("--resolution", type=click.IntRange(min=8), default=512, show_default=True, help="Diffusion: pixels.")
@click.option("--steps", type=click.IntRange(min=1), help="Diffusion and video: denoising steps (default: 30 for an "
                                                            "image, the model's own for a video).")
@click.option("--size", help="Video: WIDTHxHEIGHT in pixels (default: the model's, e.g. 832x480).")
@click.option("--frames", type=click.IntRange(min=1), help="Video: frames (default: the model's, e.g. 81).")
@click.option("--guidance-scale", type=click.FloatRange(min=0),
              help="Diffusion and video: >1 runs classifier-free guidance (two denoiser passes per step; FLUX.1 "
                   "is guidance-distilled: one). Default: 7.5 for an image, the model's own for a video.")
@click.option("--text-len", type=click.IntRange(min=1), default=60, show_default=True,
              help="TTS: tokens per utterance (5 frames each).")
@click.option("--calibration", type=click.Path(dir_okay=False, path_type=Path),
              help="A file from `infra-bench calibrate` (default: the fit shipped with infra-bench).")
@click.option("--json", "as_json", is_flag=True, help="Print the prediction as JSON.")
@PROFILES_OPTION
def predict(model_id, hardware_id, engine, precision, kv_cache, tp, pp, dp, ep, count, concurrency, max_throughput,
            num_prompts, lengths, input_len, output_len, max_seqs, token_budget, memory_fraction, resolution, steps, size,
            frames, guidance_scale, text_len,
            calibration, as_json, profile_dirs) -> None:
    """Predict LLM TTFT/TPOT/throughput, diffusion s/image, video s/video, TTS RTF or an embedding request's
    latency on a profiled accelerator."""
    from .kinds import KINDS
    from .kinds.base import load_ref
    from .planner import calibration as cal
    from .planner import media_model
    from .planner.profiles import get, load_hardware

    hw = get(load_hardware(list(profile_dirs)), hardware_id)
    kind = KINDS[media_model.kind_of(model_id)]
    options = dict(engine=engine, precision=precision, kv_cache=kv_cache, tp=tp, pp=pp, dp=dp, ep=ep, count=count,
                   concurrency=concurrency, max_throughput=max_throughput, num_prompts=num_prompts, lengths=lengths,
                   input_len=input_len,
                   output_len=output_len, max_seqs=max_seqs, token_budget=token_budget,
                   memory_fraction=memory_fraction, resolution=resolution,
                   steps=steps, size=size, frames=frames, guidance_scale=guidance_scale, text_len=text_len)
    _given_apply(kind, model_id, options)
    data = cal.load(calibration) if calibration else None
    p, text = load_ref(kind.predict)(model_id, hw, options, data, str(calibration) if calibration else None)
    if not getattr(p, "fits", True):  # every kind as the LLMs: exit 2 and say so, not a trailing note and exit 0
        why = next((n for n in reversed(p.notes) if n.startswith("does not fit")), "does not fit")
        raise UserError(f"{model_id} on {hw.id}: {why}; try a lower precision, a smaller batch, size or stream "
                        f"count, or a part with more memory (`infra-bench profiles list`)")
    click.echo(_dump(p.to_dict()) if as_json else text)


def _given_apply(kind, model_id: str, options: dict) -> None:
    """A flag given on the command line that the model's kind does not read is an error, not ignored (`--tp 2`
    on sd-1.5 printed one device); so is --concurrency beside --max-throughput, which picks its own."""
    from click.core import ParameterSource

    ctx = click.get_current_context()
    given = [k for k in options if ctx.get_parameter_source(k) is ParameterSource.COMMANDLINE]
    flag = lambda k: "--concurrency/--batch" if k == "concurrency" else "--" + k.replace("_", "-")  # either was typed
    ignored = [flag(k) for k in given if k not in kind.predict_options]
    if ignored:
        raise UserError(f"{', '.join(ignored)} do{'es' if len(ignored) == 1 else ''} not apply to {model_id}, "
                        f"a model of kind {kind.name}; leave {'it' if len(ignored) == 1 else 'them'} out")
    if "concurrency" in given and "max_throughput" in given:
        raise UserError("--concurrency/--batch and --max-throughput contradict each other: the offline maximum picks "
                        "its own concurrency; give one")
    if "num_prompts" in given and "max_throughput" in given:
        raise UserError("--num-prompts and --max-throughput contradict each other: a finite run sends its N prompts "
                        "(at most --concurrency at once), the offline maximum picks its own concurrency; give one")
    if "lengths" in given and "num_prompts" not in given:
        raise UserError("--lengths applies to a finite run; add --num-prompts N (or use loadtest --lengths)")
    if "lengths" in given and {"input_len", "output_len"} & set(given):
        raise UserError("--lengths draws the input and output lengths; leave out --input-len and --output-len")
    if "num_prompts" in given and "concurrency" not in given:
        options["concurrency"] = None  # every prompt at once, as vllm bench serve's default request rate


def _compiles(spec) -> bool:
    """Whether the spec's kind has a compiled path (`compile:`), which --compile sets."""
    return "compile" in type(spec).model_fields


def _limits(items, profiles) -> dict[str, int]:
    out = {}
    for item in items:
        hid, _, n = item.partition("=")
        if not n.isdigit():
            raise UserError(f"--limit {item}: expected ID=N (devices), e.g. --limit hw_910b2=64")
        if hid not in profiles:
            raise UserError(f"--limit: unknown profile '{hid}'{closest(hid, profiles)}")
        out[hid] = int(n)
    return out


def _checked_records(records: list, run: str) -> list[dict]:
    """The run's records, each validated as a record of this schema version (a hand-edited or foreign line
    stopped `calibrate` with an internal error)."""
    from pydantic import ValidationError

    from .results.schema import SCHEMA_VERSION, Record

    for n, r in enumerate(records, 1):
        if not isinstance(r, dict):
            raise UserError(f"{run}: record {n} is not a JSON object; calibrate reads the records `run` and `loadtest` write")
        if r.get("schema_version", SCHEMA_VERSION) != SCHEMA_VERSION:
            raise UserError(f"{run}: record {n} has schema version {r.get('schema_version')}, this infra-bench reads "
                            f"{SCHEMA_VERSION}; re-run it with this version")
        try:
            Record.model_validate(r)
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(x) for x in first["loc"]) or "record"
            raise UserError(f"{run}: record {n} is not an infra-bench record ({where}: {first['msg']}); calibrate reads "
                            f"the records `run` and `loadtest` write") from None
    return records


def _check_assumptions(a, path, profiles) -> None:
    """Profile ids in an assumptions file must exist (a mistyped id left its price unused without a word), and
    a device's busy power cannot be far above its TDP (it put average IT power above the provisioned peak)."""
    for field_name in ("prices", "device_power"):
        for hid in getattr(a, field_name):
            if hid not in profiles:
                raise UserError(f"{path}: {field_name}: unknown profile '{hid}'{closest(hid, profiles)}")
    for hid, d in a.device_power.items():
        tdp = profiles[hid].tdp_w
        if tdp and d.busy_w > 1.1 * tdp:
            raise UserError(f"{path}: device_power: {hid} busy_w {d.busy_w:g} W is above its TDP of {tdp:g} W; "
                            f"give the measured average busy power")


def _cost_overrides(currency, fx, prices, colocation, profiles) -> dict:
    """Assumption fields from the plan command's options; one-line errors for malformed ones."""
    import re

    if currency and not re.fullmatch(r"[A-Za-z]{3}", currency):
        raise UserError(f"--currency {currency}: expected a three-letter code, e.g. --currency EUR")
    out: dict = {"currency": currency.upper()} if currency else {}  # codes in any case, as --market takes them
    rates = {}
    for item in fx:
        m = re.fullmatch(r"([A-Za-z]{3})=([0-9.]+)", item)
        if not m or float(m.group(2)) <= 0:
            raise UserError(f"--fx {item}: expected CUR=UNITS_PER_USD, e.g. --fx EUR=0.92")
        rates[m.group(1).upper()] = float(m.group(2))
    if rates:
        out["fx"] = rates
    table = {}
    for item in prices:
        m = re.fullmatch(r"([\w.-]+?)=([0-9.]+)([A-Za-z]{3})?", item)
        if not m or float(m.group(2)) <= 0:
            raise UserError(f"--price {item}: expected ID=AMOUNT[CUR], e.g. --price hw_910b2=120000CNY")
        if m.group(1) not in profiles:
            raise UserError(f"--price: unknown profile '{m.group(1)}'{closest(m.group(1), profiles)}")
        table[m.group(1)] = {"amount": float(m.group(2)), "currency": (m.group(3) or "USD").upper()}
    if table:
        out["prices"] = table
    if colocation:
        out["colocation_usd_per_kw_month"] = 184.0
    return out


@cli.command()
@click.argument("demand_file", metavar="DEMAND.yaml", type=click.Path(path_type=Path))
@click.option("--hardware", "hardware_ids", multiple=True, metavar="NAME[,NAME]",
              help="Candidates: profile ids, groups (`profiles groups`), vendors or domestic/imported; repeatable. "
                   "Default: every accelerator profile.")
@click.option("--domestic", is_flag=True, help="Only domestic Chinese parts.")
@click.option("--vendor", "vendors", multiple=True, metavar="X[,Y]", help="Only these vendors' parts (nvidia, huawei ...).")
@click.option("--exclude", multiple=True, metavar="NAME[,NAME]", help="Leave out these ids, groups or vendors.")
@click.option("--site", "site_id", help="A site profile (cn-east, us-average ...): sets the market; see `profiles sites`.")
@click.option("--market", help="Only parts available in this market count (CN ...); default: the site's market.")
@click.option("--rank-by", type=click.Choice(["tco", "capex", "carbon", "power", "devices", "servers"]),
              help="Default: tco with --site (yearly cost of ownership), else power.")
@click.option("--assumptions", type=click.Path(path_type=Path),
              help="YAML of cost and carbon assumptions (depreciation_years, prices, fx ...; see docs/cost.md).")
@click.option("--currency", help="Currency of costs (default: the site's power currency, else USD).")
@click.option("--fx", multiple=True, metavar="CUR=RATE", help="Exchange rate in units per USD, e.g. --fx EUR=0.92.")
@click.option("--price", "prices", multiple=True, metavar="ID=AMOUNT[CUR]",
              help="Device price override, e.g. --price hw_910b2=120000CNY (default currency USD).")
@click.option("--colocation", is_flag=True, help="Add colocation at 184 USD per kW-month (CBRE 2024) to yearly costs.")
@click.option("--compare", "groups", metavar="GROUP,GROUP",
              help="Best candidate per group side by side: domestic, imported, vendor names (nvidia, huawei ...) "
                   "or groups of `profiles groups`.")
@click.option("--sensitivity", type=click.FloatRange(min=0.01, max=0.9), is_flag=False, flag_value=0.2,
              help="How the TCO ranking moves with power price and device price +-X (default 0.2), lifetime 3/6 y "
                   "and utilization 0.3/0.8.")
@click.option("--mixed", is_flag=True, help="The cheapest mix of accelerator types (integer program; needs --site).")
@click.option("--limit", "limits", multiple=True, metavar="ID=N", help="--mixed: at most N devices of this type.")
@click.option("--budget", type=click.FloatRange(min=0, min_open=True), help="--mixed: capex budget in the plan currency.")
@click.option("--confirm", "confirm_top", type=click.IntRange(min=0), default=3, show_default=True,
              help="Confirm the top N candidates' capacities by discrete-event simulation.")
@click.option("--top", type=click.IntRange(min=1), default=15, show_default=True, help="Rows shown per table.")
@click.option("--calibration", type=click.Path(dir_okay=False, path_type=Path),
              help="A file from `infra-bench calibrate` (your runs fitted with the shipped data); default: the fit "
                   "shipped with infra-bench.")
@click.option("--no-calibration", "priors", is_flag=True,
              help="Use the priors instead of the shipped fit, to see what the fit changes.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan (and what --compare, --sensitivity and --mixed add) as JSON.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write a report: HTML if the name ends in .html, Markdown if .md (docs/reports.md).")
@PROFILES_OPTION
def plan(demand_file, hardware_ids, domestic, vendors, exclude, site_id, market, rank_by, assumptions, currency, fx,
         prices, colocation, groups, sensitivity, mixed, limits, budget, confirm_top, top, calibration, priors, as_json,
         report_path, profile_dirs) -> None:
    """Size a cluster for DEMAND.yaml on every candidate accelerator under its latency SLOs, ranked."""
    from .planner import calibration as cal
    from .planner import compare, selection
    from .planner.cost import DevicePower, load_assumptions
    from .planner.demand import load_demand
    from .planner.profiles import known_market, load_hardware, load_servers, load_sites
    from .planner.sizing import plan as make_plan
    from .report.plan import compare_text, fleet_text, plan_text, sensitivity_text

    if (mixed or sensitivity) and not site_id:  # options first: planning can take seconds
        raise UserError(f"{'--mixed' if mixed else '--sensitivity'} needs --site (power price, PUE) to cost the "
                        f"candidates; e.g. --site cn-east (see `infra-bench profiles sites`)")
    if rank_by in ("tco", "carbon") and not site_id:
        raise UserError(f"--rank-by {rank_by} needs --site: its "
                        f"{'power price and PUE price the energy' if rank_by == 'tco' else 'grid factor gives the carbon'}; "
                        f"e.g. --site cn-east (see `infra-bench profiles sites`), or --rank-by capex or power")
    if (limits or budget) and not mixed:
        raise UserError("--limit and --budget apply to --mixed; add --mixed")
    if colocation and not site_id:
        raise UserError("--colocation prices the power a site provisions; add --site (e.g. --site cn-east)")
    if budget is not None and not budget < float("inf"):  # nan and inf pass click's range
        raise UserError(f"--budget {budget}: give a finite amount in the plan currency, e.g. --budget 2500000")
    if priors and calibration:
        raise UserError("--calibration and --no-calibration contradict each other; give one")
    if mixed:
        from .planner.fleet import require_solver
        require_solver()
    if report_path:
        from .report.build import can_write
        can_write(report_path)
    demand = load_demand(demand_file)
    profiles = load_hardware(list(profile_dirs))
    parts = selection.catalog(profiles, list(profile_dirs))
    fleet_limits = _limits(limits, profiles)
    ids = parts.select(hardware_ids, domestic, vendors, exclude)
    if market:  # a market no profile records would filter nothing while the plan's header named it
        known_market(profiles, market)
    site = None
    if site_id:
        sites = load_sites(list(profile_dirs))
        if site_id not in sites:
            raise UserError(f"unknown site '{site_id}'{closest(site_id, sites)}; see `infra-bench profiles sites`")
        site = sites[site_id]
    a = load_assumptions(assumptions, _cost_overrides(currency, fx, prices, colocation, profiles))
    _check_assumptions(a, assumptions, profiles)
    fits = cal.load(calibration) if calibration else cal.PRIORS_ONLY if priors else None
    if fits:  # measured busy power, unless the assumptions file gives one for that device
        a = a.model_copy(update={"device_power": {**{h: DevicePower(**d) for h, d in cal.device_power(fits).items()},
                                                  **a.device_power}})
    servers = load_servers(list(profile_dirs))
    p = make_plan(demand, profiles, ids, site, market, fits, rank_by or ("tco" if site else "power"), confirm_top, a,
                  servers)
    extra = {}
    if groups:
        extra["compare"] = compare.by_group(p, parts, [g for g in groups.split(",") if g.strip()])
    if sensitivity:
        extra["sensitivity"] = compare.sensitivity(p, profiles, demand.services, site, a, sensitivity, servers=servers)
    if mixed:
        from .planner.fleet import optimise
        from .planner.sizing import MIXED_HINT
        p.notes = [n for n in p.notes if n != MIXED_HINT]
        extra["mixed"] = optimise(p, demand, profiles, site, a, fleet_limits, budget, fits, servers=servers).to_dict()
    if as_json:
        click.echo(_dump({**p.to_dict(), **extra}))
    else:
        click.echo(plan_text(p, top))
        if "compare" in extra:
            click.echo(compare_text(extra["compare"]))
        if "sensitivity" in extra:
            click.echo(sensitivity_text(extra["sensitivity"], next(
                (c.cost["currency"] for c in p.candidates if c.cost), a.currency or "USD")))
        if "mixed" in extra and (lines := fleet_text(extra["mixed"])):
            click.echo(lines)
    if report_path:
        from .report.build import write_report
        click.echo(f"report: {write_report([{**p.to_dict(), **extra}], report_path)}", err=True)
    _plan_failure(p, extra.get("mixed"), profiles)


def _plan_failure(p, fleet: dict | None, profiles) -> None:
    """Exit 2 with one line when the demand cannot be served. A fleet --mixed found is the answer asked for,
    even where no single part serves every service. A service no part serves is named with what came closest;
    else a mix that was not found gives its reason (said here only, not in the printed plan too)."""
    from .planner import compare

    if fleet and fleet["feasible"]:
        return
    single = any(c.feasible for c in p.candidates)
    if not single and not (fleet and all(p.coverage.values())):
        raise UserError(f"no candidate can serve this demand; {compare.why_no_candidate(p, profiles)}")
    if fleet:
        raise UserError(f"--mixed found no fleet: {fleet['reason']}")


@cli.command()
@click.argument("runs", nargs=-1)
@click.option("--results", type=click.Path(file_okay=False, path_type=Path), default=Path("results"),
              show_default=True, help="Where run ids are looked up.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("calibration.json"),
              show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the calibration file's contents as JSON (the fit, and the records it could not use).")
@PROFILES_OPTION
def calibrate(runs, results: Path, out: Path, as_json: bool, profile_dirs) -> None:
    """Refine the shipped serving-model fit with RUNS (ids or folders) of your own: `run` records on a
    profiled device and `loadtest` records of a server named with --hardware; fit diffusion/TTS MFUs and
    keep measured device power. Writes a file for `predict --calibration` and `plan --calibration`."""
    from .planner import calibration as cal
    from .planner import measurements as meas
    from .planner.fit import Problem
    from .planner.profiles import load_hardware
    from .planner.quiet import Quiet, busy_shares
    from .results.store import RunStore

    if not runs:
        raise UserError("give the runs to calibrate with: `infra-bench calibrate RUN_ID ...` (ids from "
                        "`infra-bench results list`, or run folders)")
    try:  # before the fit, not after it: a folder that cannot be made lost the work
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"--out {out}: cannot create its folder ({err.strerror}); choose another path") from None
    hw = load_hardware(list(profile_dirs))
    points, media, speech, power, skipped = [], [], [], [], []
    total, quiet = 0, Quiet({})
    for run in runs:
        records = _checked_records(RunStore.open(results, run).records(checked=False), run)
        total += len(records)
        quiet.shares |= busy_shares(records)
        for found, why in (meas.record_measurements(records, hw), meas.endpoint_measurements(records, hw)):
            points += found
            skipped += why
        more_media, why_media = cal.media_points(records, hw)
        media, skipped = media + more_media, skipped + why_media
        more_speech, why_speech = cal.speech_lm_points(records, hw)
        speech, skipped = speech + more_speech, skipped + why_speech
        power += cal.power_points(records, hw)
    points = quiet.keep("llm", "LLM case", points, lambda m: cal.case_key(m.model, m.hardware, m.engine, m.precision),
                        lambda m: m.source)
    media = quiet.keep("media", "MFU fit", media, lambda m: m.key, lambda m: m.source)
    speech = quiet.keep("speech_lm", "speech-LM fit", speech, cal.speech_lm_key, lambda p: p["source"])
    power = quiet.keep("power", "measured power of", power, lambda p: p["hardware"], lambda p: p["source"])
    skipped += quiet.left_out
    problem = None
    if points:
        problem, why = Problem.build(points, hw)
        skipped += why
    if not (problem and problem.points) and not media and not speech and not power:
        reasons = "; ".join(dict.fromkeys(skipped)) or (
            "none is an LLM, diffusion, TTS or loadtest measurement with its latencies (a probe run has none)")
        fix = f"; {meas.UNMATCHED_FIX}" if any(meas.UNMATCHED in s for s in skipped) else ""
        raise UserError(f"nothing in {', '.join(runs)} can calibrate the planner ({total} record(s)): {reasons[:400]}"
                        f"{'...' if len(reasons) > 400 else ''}{fix}")
    data = cal.calibrate(problem, media, power, skipped, speech, quiet.busy_only)
    cal.write(out, data)
    if as_json:
        click.echo(_dump(data))
    else:
        _calibration_tables(data, problem)
    for line in [*data["misses"], *cal.busy_lines(data)]:
        click.echo(f"warning: {line}", err=True)
    for line in dict.fromkeys(m.note for m in (problem.points if problem else []) if m.note):
        click.echo(f"note: {line}", err=True)
    reasons = list(dict.fromkeys(skipped))
    for line in reasons[:10]:
        click.echo(f"not used: {line}", err=True)
    if len(reasons) > 10:
        click.echo(f"not used: {len(reasons) - 10} more (under `skipped` in {out})", err=True)
    if not as_json:
        click.echo(f"{len(skipped)} record(s) not used (listed above and under `skipped` in {out}); "
                   f"calibration: {out}")


def _calibration_tables(data: dict, problem) -> None:
    """`calibrate`'s tables: each measurement of yours against the shipped and calibrated fits; the
    media MFUs, speech-LM overheads and measured power."""
    import numpy as np

    from .planner import calibration as cal
    from .planner.fit import predict_problem
    from .report.table import render

    if problem is not None:
        before, _ = predict_problem(cal.fit_from(None), problem)
        after, _ = predict_problem(cal.fit_from(data), problem)
        rows = [["measurement", "engine", "TPOT mean ms", "shipped fit", "calibrated", "TTFT mean ms", "shipped fit",
                 "calibrated"]]
        for i, m in enumerate(problem.points):
            ms = lambda v: "-" if v is None or not np.isfinite(v) else f"{v * 1e3:.2f}"  # noqa: E731
            rows.append([m.source, m.engine, ms(m.tpot_s), ms(float(before.tpot_s[i])), ms(float(after.tpot_s[i])),
                         ms(m.ttft_s), ms(float(before.ttft_s[i])), ms(float(after.ttft_s[i]))])
        click.echo(render(rows))
    else:
        click.echo("no LLM measurement of your own: the serving-model fit is the shipped one")
    if data["media_fits"]:
        rows = [["kind|hardware|engine|precision", "MFU", "points", "source(s)"]]
        for key, f in data["media_fits"].items():
            rows.append([key, f"{f['mfu']:.3f}", str(f["n"]), "; ".join(p["source"] for p in f["points"])[:70]])
        click.echo(render(rows))
    if data["speech_lm_fits"]:
        rows = [["speech LM: hardware|mode|precision", "overhead ms per layer-step", "points", "source(s)"]]
        for key, f in data["speech_lm_fits"].items():
            rows.append([key, f"{f['overhead_s'] * 1e3:.4f}", str(f["n"]),
                         "; ".join(p["source"] for p in f["points"])[:70]])
        click.echo(render(rows))
    if data["power_fits"]:
        rows = [["hardware", "busy W (measured)", "records", "energy source"]]
        for key, f in data["power_fits"].items():
            rows.append([key, f"{f['busy_w']:.0f}", str(f["n"]),
                         ", ".join(sorted({p["energy_source"] for p in f["points"]}))])
        click.echo(render(rows))


@cli.command()
@click.argument("specs", nargs=-1)
@click.option("--arch", metavar="NAME", help="Instead of SPEC files: one built-in architecture with random "
                                             "weights, as a spec `{kind: K, arch: NAME}` runs it (`infra-bench "
                                             "archs` lists them).")
@click.option("--model", metavar="PATH", help="Instead of SPEC files: one local model (a Hugging Face or diffusers "
                                              "folder, or an .onnx file, run on onnxruntime), as a spec's `model:` "
                                              "takes it.")
@click.option("--kind", metavar="K", help="With --model: the kind (llm, diffusion, embedding ...), where its "
                                         "files do not tell it.")
@click.option("--set", "set_fields", multiple=True, metavar="KEY=VALUE",
              help="A spec field, the value read as YAML (repeatable), e.g. --set 'batch_size=[1,4]' --set "
                   "prompt_len=128; with SPEC files it overrides each spec's.")
@click.option("--backend", help="torch or onnxruntime, for every spec (default: the spec's, torch).")
@click.option("--device", help="torch: cpu, cuda, cuda:1, npu, mlu, musa or auto (default: the spec's, auto).")
@click.option("--ep", help="onnxruntime: execution provider, e.g. cpu, cuda, tensorrt, openvino, cann.")
@click.option("--ep-option", "ep_options", multiple=True, metavar="KEY=VALUE",
              help="onnxruntime: a provider option (repeatable), e.g. device_id=1.")
@click.option("--backend-option", "backend_options", multiple=True, metavar="KEY=VALUE",
              help="An option of the spec's backend (repeatable), e.g. intra_op_threads=2 or graph_optimization=basic "
                   "for onnxruntime; merged into the spec's `options:`.")
@click.option("--precision", type=click.Choice(["fp32", "fp16", "bf16", "int8"]),
              help="Sets the spec's dtype: fp32/fp16/bf16, or int8 (onnxruntime dynamic quantization, cpu).")
@click.option("--compile", "compile_mode", type=click.Choice(["none", "default", "max-autotune", "reduce-overhead"]),
              help="torch LLM specs: torch.compile the decode step on a static KV cache (compile time is recorded "
                   "apart; CUDA graphs with reduce-overhead on CUDA).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("results"),
              show_default=True, help="Results folder.")
@click.option("--json", "as_json", is_flag=True, help="Print the records as JSON on stdout.")
@click.option("--resume", "resume_id", metavar="RUN_ID", help="Finish a run: measure only cells without a record.")
@click.option("--warmup", type=click.IntRange(min=0), help="Warm-up iterations per cell.")
@click.option("--min-iters", type=click.IntRange(min=1), help="Measure at least this many iterations.")
@click.option("--min-time", type=click.FloatRange(min=0), help="...and for at least this many seconds.")
@click.option("--max-time", type=click.FloatRange(min=0, min_open=True), help="Stop measuring a cell after this many seconds.")
@click.option("--cpu-watts-per-core", type=click.FloatRange(min=0, min_open=True),
              help="Watts per busy core for the CPU energy estimate (when RAPL is unreadable).")
@click.option("--trust-remote-code", is_flag=True, help="Allow a local model folder's own Python code to run.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write a report: HTML if the name ends in .html, Markdown if .md (docs/reports.md).")
def run(specs, arch, model, kind, set_fields, backend, device, ep, ep_options, backend_options, precision,
        compile_mode, out, as_json, resume_id, warmup, min_iters, min_time, max_time, cpu_watts_per_core,
        trust_remote_code, report_path) -> None:
    """Measure the workloads in SPEC files (default: the quick suite), or one model named by --arch or
    --model with its fields from --set."""
    from .backends.onnxruntime.providers import parse_ep_options
    from .paths import data_dir
    from .spec.loader import (
        apply_overrides,
        check_set_fields,
        load_specs,
        parse_options,
        parse_sets,
        spec_from_flags,
    )

    if report_path:  # fail before a run is made, not after measuring, when the report cannot be drawn
        from .report.build import can_write
        can_write(report_path)
    flags = {"backend": ("--backend", backend), "device": ("--device", device), "ep": ("--ep", ep),
             "dtype": ("--precision", precision),
             "options": ("--backend-option", parse_options(backend_options) or None),
             "ep_options": ("--ep-option", parse_ep_options(ep_options) or None), "warmup": ("--warmup", warmup),
             "min_iters": ("--min-iters", min_iters), "min_time_s": ("--min-time", min_time),
             "max_time_s": ("--max-time", max_time), "compile": ("--compile", compile_mode)}
    settings = {k: v for k, (_, v) in flags.items() if k != "compile" and v is not None}
    fields = parse_sets(set_fields)
    if resume_id and (specs or arch or model or kind or fields or settings or compile_mode or trust_remote_code):
        raise UserError("--resume takes the specs and settings from the run itself; "
                        "give only --resume RUN_ID (and --out if the run is elsewhere)")
    if arch and model:
        raise UserError("give --arch NAME or --model PATH, not both (one model per run; several go in SPEC files)")
    if specs and (arch or model):
        raise UserError(f"give SPEC files or {'--arch' if arch else '--model'}, not both "
                        f"(a spec file names its own model)")
    if kind and not model:
        raise UserError("--kind goes with --model PATH (a built-in architecture's kind is known; a spec file "
                        "says its own)")
    clash = next((k for k in fields if flags.get(k, (None, None))[1] is not None), None)
    if clash:
        raise UserError(f"--set {clash} and {flags[clash][0]} both set {clash}; give it once")
    with interrupted_before_measuring("run", resume_id):
        if not resume_id:  # the specs are checked before torch is imported: a bad one fails in a second
            if arch or model:
                given = [spec_from_flags(arch, model, kind, fields, settings)]
            else:
                files = load_specs(list(specs) or [str(data_dir("workloads") / DEFAULT_SUITE)])
                check_set_fields(files, fields, suite=not specs)
                given = [apply_overrides(s, {**fields, **settings}) for s in files]
            loaded = [apply_overrides(s, {"compile": compile_mode if _compiles(s) else None}) for s in given]
            if compile_mode and not any(_compiles(s) for s in loaded):
                raise UserError("--compile applies to llm specs (the torch decode loop); none was given")
            eager = [s.label for s in loaded if not _compiles(s)]
            if compile_mode not in (None, "none") and eager:  # the records say so; the terminal should too
                click.echo(f"note: --compile applies to llm specs; {', '.join(eager)} run{'s' * (len(eager) == 1)} "
                           f"as {'its' if len(eager) == 1 else 'their'} kind runs (no compiled path)", err=True)
        from . import engine
        from .system import collect

        if resume_id:
            store, planned, opts = engine.resume_run(resume_id, out, cpu_watts_per_core)
        else:
            opts = engine.RunOptions(out=out, cpu_watts_per_core=cpu_watts_per_core,
                                     trust_remote_code=trust_remote_code)

            def skip(spec, err) -> None:  # the default suite adapts to the backends installed
                click.echo(f"note: skipping '{spec.label}' from the default suite: {err}", err=True)
            store, planned = engine.start_run(loaded, opts, None if specs or arch or model else skip)
    if resume_id and not planned:
        click.echo(f"run {store.run_id}: every cell has a record; nothing left to run", err=True)
    else:
        with engine.resumable(store, engine.resume_command(store)):  # from the moment the run folder exists
            click.echo(f"run {store.run_id}: {sum(len(p.cells) for p in planned)} cell(s), records in "
                       f"{store.folder / 'records.jsonl'}", err=True)
            engine.execute(planned, store, collect(), opts)
    from .report.show import show_records

    records = show_records(store, as_json)
    if report_path:
        from .report.build import write_report
        click.echo(f"report: {write_report([store.folder], report_path)}", err=True)
    if any(r["status"] == "failed" for r in records):
        sys.exit(1)


def _quick_suite_archs() -> set[str]:
    """The architectures the default suite (`infra-bench run` with no SPEC) runs."""
    from .inputs import load_yaml
    from .paths import data_dir

    docs = load_yaml(data_dir("workloads") / DEFAULT_SUITE, "default suite", "reinstall infra-bench", documents=True)
    return {d["arch"] for d in docs if isinstance(d, dict) and d.get("arch")}


def _params_text(n: int | None) -> str:
    if n is None:
        return "-"
    return next(f"{n / scale:.3g}{unit}" for scale, unit in ((1e9, "B"), (1e6, "M"), (1e3, "K"), (1, ""))
                if n >= scale or scale == 1)


@cli.command()
@click.option("--kind", help="Only this kind's architectures (llm, diffusion, tts, embedding, video).")
@click.option("--json", "as_json", is_flag=True, help="Print the architectures as JSON.")
def archs(kind: str | None, as_json: bool) -> None:
    """Built-in architectures for `run --arch`: kind, parameters, quick suite or not, what each is.

    All are built with random weights; `serve --arch` serves them too (video aside)."""
    from .catalog import builtin_archs
    from .kinds import get

    if kind is not None:
        get(kind, "--kind")
    quick = _quick_suite_archs()
    rows = [{"name": a.name, "kind": a.kind, "params": a.params, "quick_suite": a.name in quick,
             "description": a.description, "source": a.source}
            for a in builtin_archs().values() if kind in (None, a.kind)]
    if as_json:
        click.echo(_dump(rows))
        return
    click.echo(_text_table([{**r, "params": _params_text(r["params"]), "quick": "yes" if r["quick_suite"] else ""}
                            for r in rows], ["name", "kind", "params", "quick", "description"]))
    click.echo("params: the whole model, a pipeline's text encoders and VAE included; - where the catalog has no "
               "count (the test shapes: see the description). Run one: `infra-bench run --arch NAME "
               "[--set 'batch_size=[1,4]']`")


RESULTS_OPTION = click.option("--results", "--out", "out", type=click.Path(file_okay=False, path_type=Path),
                              default=Path("results"), show_default=True, help="The results folder to read.")


@cli.group()
def results() -> None:
    """List and show stored runs."""


@results.command("list")
@RESULTS_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the runs as JSON.")
def results_list(out: Path, as_json: bool) -> None:
    """Every run under the results folder."""
    from .results.store import list_runs

    given = click.get_current_context().get_parameter_source("out") != click.core.ParameterSource.DEFAULT
    if given and not out.is_dir():
        raise UserError(f"no results folder {out}; give the folder runs were written to with --results")
    runs = list_runs(out, warn=True)
    if as_json:
        click.echo(_dump(runs))
        return
    if not runs:
        click.echo(f"no runs under {out}; start one with `infra-bench run`")
        return
    rows = [{"run": r["run_id"], "kind": r["kind"], "created": r["created_at"][:19].replace("T", " "),
             "cells": f"{r['ok']} ok, {r['failed']} failed" + (f" of {r['cells_planned']}" if r["cells_planned"] else "")
             + (f"; {r['requests_failed']} of {r['requests_sent']} requests failed" if r["requests_failed"] else ""),
             "specs": ", ".join(str(s) for s in r["specs"])} for r in runs]
    click.echo(_text_table(rows, ["run", "kind", "created", "cells", "specs"]))


@results.command("show")
@click.argument("run_id")
@RESULTS_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the full records.")
def results_show(run_id: str, out: Path, as_json: bool) -> None:
    """A run's records as a table (or JSON)."""
    from .report.table import format_errors, format_notes, format_table
    from .results.store import RunStore

    store = RunStore.open(out, run_id)
    records = store.records()
    if as_json:
        click.echo(_dump(records))
        return
    m = store.manifest()
    click.echo(f"run {store.run_id}, created {m.created_at}, {len(records)} of "
               f"{m.cells_planned if m.cells_planned is not None else '?'} cells recorded")
    if records:
        click.echo(format_table(records))
        for text in (format_errors(records), format_notes(records)):
            if text:
                click.echo(text)


# Commands defined beside the stage they serve.
from .endpoints.commands import loadtest  # noqa: E402
from .report.command import report  # noqa: E402
from .scale.command import sweep as sweep_command  # noqa: E402
from .serving.command import serve  # noqa: E402

for _command in (loadtest, serve, report, sweep_command):
    cli.add_command(_command)


def quiet_libraries() -> None:
    """Keep library warnings and log chatter off the user's terminal: they are about the libraries'
    own futures, not about the measurement, and our notes say what matters. Python's -W option or
    PYTHONWARNINGS still decides when given (CI turns deprecations into errors that way), and
    INFRA_BENCH_DEBUG=1 shows everything."""
    import logging
    import warnings

    if os.environ.get("INFRA_BENCH_DEBUG"):
        return
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # transformers' "Loading weights" bar, diffusers' too
    if not sys.warnoptions:
        warnings.filterwarnings("ignore")
        warnings.filterwarnings("default", module=r"infra_bench(\.|$)")
    for name in ("torch", "onnxruntime", "onnxscript", "root"):
        logging.getLogger(None if name == "root" else name).setLevel(logging.ERROR)


def main(argv: list[str] | None = None) -> None:
    """Entry point: every failure is one line on stderr and a non-zero exit."""
    quiet_libraries()
    try:
        cli.main(args=argv, prog_name="infra-bench", standalone_mode=False)
    except UserError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    except Interrupted as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(130)
    except (click.exceptions.Abort, KeyboardInterrupt):  # click's Abort is its word for Ctrl-C
        click.echo("error: interrupted (Ctrl-C)", err=True)
        sys.exit(130)
    except click.ClickException as e:
        command = e.ctx.command_path if getattr(e, "ctx", None) else "infra-bench"
        click.echo(f"error: {e.format_message()} (see `{command} --help`)", err=True)
        sys.exit(e.exit_code)
    except Exception as e:
        if os.environ.get("INFRA_BENCH_DEBUG"):
            raise
        click.echo(f"internal error: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''} "
                   f"(set INFRA_BENCH_DEBUG=1 for the traceback)", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
