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

from .errors import UserError

DEFAULT_SUITE = "quick.yaml"


def _dump(obj) -> str:
    return json.dumps(obj, indent=1, default=str)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="infra-bench")
def cli() -> None:
    """Measure LLM inference on this machine and keep every result.

    Start with `infra-bench run` (a quick suite sized for a small CPU machine).
    """


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the full inventory as JSON.")
def sysinfo(as_json: bool) -> None:
    """Host, libraries, ONNX Runtime providers and accelerators."""
    from .system import collect

    info = collect()
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


@cli.command()
@click.argument("specs", nargs=-1)
@click.option("--backend", help="torch or onnxruntime, for every spec (default: the spec's, torch).")
@click.option("--device", help="torch: cpu, cuda, cuda:1, npu, mlu, musa or auto (default: the spec's, auto).")
@click.option("--ep", help="onnxruntime: execution provider, e.g. cpu, cuda, tensorrt, openvino, cann.")
@click.option("--ep-option", "ep_options", multiple=True, metavar="KEY=VALUE",
              help="onnxruntime: a provider option (repeatable), e.g. device_id=1.")
@click.option("--precision", type=click.Choice(["fp32", "fp16", "bf16", "int8"]),
              help="Sets the spec's dtype: fp32/fp16/bf16, or int8 (onnxruntime dynamic quantization, cpu).")
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
def run(specs, backend, device, ep, ep_options, precision, out, as_json, resume_id, warmup, min_iters, min_time,
        max_time, cpu_watts_per_core, trust_remote_code) -> None:
    """Measure the workloads in SPEC files (default: the quick suite)."""
    from . import sweep
    from .backends.onnxruntime.providers import parse_ep_options
    from .paths import data_dir
    from .report.table import format_notes, format_table
    from .spec.loader import load_specs
    from .system import collect

    overrides = {"backend": backend, "device": device, "ep": ep, "dtype": precision,
                 "ep_options": parse_ep_options(ep_options) or None, "warmup": warmup, "min_iters": min_iters,
                 "min_time_s": min_time, "max_time_s": max_time}
    if resume_id:
        if specs or any(v is not None for v in overrides.values()):
            raise UserError("--resume takes the specs and settings from the run itself; "
                            "give only --resume RUN_ID (and --out if the run is elsewhere)")
        store, planned, opts = sweep.resume_run(resume_id, out, cpu_watts_per_core)
    else:
        paths = list(specs) or [str(data_dir("workloads") / DEFAULT_SUITE)]
        loaded = [sweep.apply_overrides(s, overrides) for s in load_specs(paths)]
        opts = sweep.RunOptions(out=out, cpu_watts_per_core=cpu_watts_per_core, trust_remote_code=trust_remote_code)

        def skip(spec, err) -> None:  # the default suite adapts to the backends installed
            click.echo(f"note: skipping '{spec.label}' from the default suite: {err}", err=True)
        store, planned = sweep.start_run(loaded, opts, None if specs else skip)
    click.echo(f"run {store.run_id}: {sum(len(p.cells) for p in planned)} cell(s), records in "
               f"{store.folder / 'records.jsonl'}", err=True)
    sweep.execute(planned, store, collect(), opts)
    records = store.records()
    if as_json:
        click.echo(_dump(records))
    else:
        click.echo(format_table(records))
        notes = format_notes(records)
        if notes:
            click.echo(notes)
        click.echo(f"records: {store.folder / 'records.jsonl'}")
    if any(r["status"] == "failed" for r in records):
        sys.exit(1)


@cli.group()
def results() -> None:
    """List and show stored runs."""


@results.command("list")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("results"), show_default=True)
@click.option("--json", "as_json", is_flag=True)
def results_list(out: Path, as_json: bool) -> None:
    """Every run under the results folder."""
    from .results.store import list_runs

    runs = list_runs(out)
    if as_json:
        click.echo(_dump(runs))
        return
    if not runs:
        click.echo(f"no runs under {out}; start one with `infra-bench run`")
        return
    for r in runs:
        planned = r["cells_planned"] if r["cells_planned"] is not None else "?"
        click.echo(f"{r['run_id']}  {r['created_at']}  {r['ok']} ok, {r['failed']} failed of {planned}  "
                   f"{', '.join(str(s) for s in r['specs'])}")


@results.command("show")
@click.argument("run_id")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("results"), show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the full records.")
def results_show(run_id: str, out: Path, as_json: bool) -> None:
    """A run's records as a table (or JSON)."""
    from .report.table import format_notes, format_table
    from .results.store import RunStore

    store = RunStore.open(out, run_id)
    records = store.records()
    if as_json:
        click.echo(_dump(records))
        return
    m = store.manifest()
    click.echo(f"run {store.run_id}, created {m.get('created_at')}, {len(records)} of "
               f"{m.get('cells_planned', '?')} cells recorded")
    if records:
        click.echo(format_table(records))
        notes = format_notes(records)
        if notes:
            click.echo(notes)


def main(argv: list[str] | None = None) -> None:
    """Entry point: every failure is one line on stderr and a non-zero exit."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    try:
        cli.main(args=argv, prog_name="infra-bench", standalone_mode=False)
    except UserError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("error: aborted", err=True)
        sys.exit(130)
    except click.ClickException as e:
        command = e.ctx.command_path if getattr(e, "ctx", None) else "infra-bench"
        click.echo(f"error: {e.format_message()} (see `{command} --help`)", err=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        click.echo("error: interrupted; finished cells are kept, continue with --resume RUN_ID", err=True)
        sys.exit(130)
    except Exception as e:
        if os.environ.get("INFRA_BENCH_DEBUG"):
            raise
        click.echo(f"internal error: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''} "
                   f"(set INFRA_BENCH_DEBUG=1 for the traceback)", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
