"""The report's sections for runs: what was run, the measured tables and charts per workload kind,
memory and energy, a comparison when several setups measured the same model and shape, the
environment, and the labels (random weights, estimated energy, units, definitions).

Tables of known kinds reuse the terminal columns of report.table; a record of a kind this module
does not know (an endpoint load test, say) gets a generic table of its metrics instead of a chart.
"""
from __future__ import annotations

from collections import Counter, defaultdict

from ..kinds import KINDS
from ..kinds.base import Latency, load_ref
from ..results.store import RunStore
from . import run_charts
from .document import Section, Table, Text
from .labels import Names, energy_label, energy_metric, stat
from .loaders import RunData, finish_hint
from .table import columns_for, format_notes, status_label

UNITS = ("Units: ms milliseconds, s seconds, MiB 2^20 bytes, J joules, W watts; tok/s output tokens per "
         "second. Formulas for every metric: docs/metrics.md in the infra-bench repository.")


def _num(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _slo(entries: list[dict]) -> str:
    """A load point's SLO entries: 'ttft_p99 0.263 s (limit 0.05 s) missed'; a value on a failed request is null."""
    def one(e: dict) -> str:
        unit = "" if e["slo"].startswith("rtf") else " s"
        value = "a failed request" if e.get("value") is None else f"{_num(float(e['value']))}{unit}"
        return f"{e['slo']} {value} (limit {_num(float(e['limit']))}{unit}) {'met' if e['met'] else 'missed'}"
    return "; ".join(one(e) for e in entries)


# a load point's metrics that are neither scalars nor summaries, as text
SHOWN = {"slo": _slo, "errors": lambda errors: "; ".join(f"{n} x {text}" for text, n in errors.items()) or "-"}


def _machine(env: dict) -> str:
    """'hostname: CPU model' from a run's fingerprint (a load generator's has no host section)."""
    host = env.get("host") or {}
    return f"{host.get('hostname') or env.get('hostname', '?')}: {host.get('cpu_model') or env.get('role', '?')}"


def _machines(records: list[dict]) -> list[str]:
    """Every machine a run's records were measured on: a Ray sweep's nodes, or a run resumed elsewhere, which the
    report named by its first record's machine alone."""
    return list(dict.fromkeys(_machine(r["environment"]) for r in records if r.get("environment"))) or ["?"]


def _runs_table(runs: list[RunData], names: Names) -> Table:
    rows = []
    for run in runs:
        status = Counter(r["status"] for r in run.records)
        m = run.manifest
        specs = ", ".join(m.labels()) or m.kind
        rows.append([names.letter(run.run_id) or "-", run.run_id, m.created_at, "; ".join(_machines(run.records)),
                     str(status["ok"]), str(status["failed"]), "?" if m.cells_planned is None else str(m.cells_planned),
                     specs])
    return Table(["run", "id", "created (UTC)", "machine", "ok", "failed", "planned", "specs"], rows,
                 f"Folders: {', '.join(str(r.folder) for r in runs)}")


def _generic_table(records: list[dict], names: Names) -> Table:
    """Every record's cell and its scalar metrics, and p50/p95/p99 of its latency-like metrics."""
    cells = list(dict.fromkeys(k for r in records for k in r["cell"]))
    metrics: dict[str, bool] = {}  # name -> has percentiles
    for r in records:
        for k, v in (r.get("metrics") or {}).items():
            if isinstance(v, dict) and "p50" in v:
                metrics.setdefault(k, True)
            elif isinstance(v, (int, float)) or (isinstance(v, str) and len(v) <= 40) or k in SHOWN:
                metrics.setdefault(k, False)
    header = ["cell", *cells, *(f"{k} p50 / p95 / p99" if pct else k for k, pct in metrics.items()), "status"]
    rows = []
    for r in records:
        m = r.get("metrics") or {}
        vals = [" / ".join(_num(stat(m, k, p)) for p in ("p50", "p95", "p99")) if pct
                else SHOWN[k](m[k]) if k in SHOWN and m.get(k) is not None else _num(m.get(k))
                for k, pct in metrics.items()]
        rows.append([names.cell(r), *(_num(r["cell"].get(k)) for k in cells), *vals,
                     status_label(r)])
    charted = ("a series of two or more load points is charted under Latency vs throughput"
               if all(r["kind"] == "endpoint" for r in records) else "no chart is drawn for this kind of record")
    return Table(header, rows, "Units as in the metric names (_s seconds, _per_s per second, _bytes, _j joules, "
                               f"_w watts); {charted}.")


def _server_value(v) -> str:
    """A server metric as the report shows it: a histogram's 'mean / p50 / p99' (the percentiles within their
    buckets), a gauge's 'mean / max', a counter or rate as is."""
    if isinstance(v, dict):
        keys = ("mean", "p50", "p99") if "p50" in v else ("mean", "max")
        return " / ".join(_num(v.get(k)) for k in keys)
    return _num(v)


def _server_table(records: list[dict], names: Names) -> Table | None:
    """The server's own view of each load point (its /metrics deltas and gauges: preemptions, queue, KV cache use,
    prefix-cache hits), which the report left out as a nested dict."""
    rows = [(r, r["metrics"]["server"]) for r in records if isinstance((r.get("metrics") or {}).get("server"), dict)]
    keys = list(dict.fromkeys(k for _, m in rows for k in m if k != "names"))
    if not keys:
        return None
    def label(k: str) -> str:
        v = next((m[k] for _, m in rows if m.get(k) is not None), None)
        return k if not isinstance(v, dict) else f"{k} mean / p50 / p99" if "p50" in v else f"{k} mean / max"

    return Table(["cell", *map(label, keys)], [[names.cell(r), *(_server_value(m.get(k)) for k in keys)] for r, m in rows],
                 "The server's own metrics over each point (docs/endpoints.md, 'The server's metrics'): counters as "
                 "deltas, histograms as mean / p50 / p99 in seconds (percentiles only as fine as the engine's "
                 "buckets), gauges as mean / max of the polls.")


def _kind_table(kind: str, records: list[dict], names: Names) -> Table:
    if kind not in KINDS and kind != "probe":
        return _generic_table(records, names)
    cols = columns_for(kind)
    lead = ["run"] if names.letters else []
    rows = [[names.letter(r["run_id"])] * len(lead) + [f(r, r.get("metrics") or {}, r["cell"]) for _, f in cols]
            for r in records]
    caption = (f"{kind}: medians (p50) of the recorded iterations; n = iterations measured. J/unit and energy "
               f"source: see Labels; 'estimated' is not a measurement." if kind in KINDS else
               f"{kind}: measured figures next to the matched profile's spec.")
    return Table(lead + [h for h, _ in cols], rows, caption)


def _errors_table(records: list[dict], names: Names) -> Table | None:
    """Each failed cell's whole error: the tables' status keeps 60 characters, which cut an out-of-memory error
    before it said so ('RuntimeError: [enforce fail at alloc_cpu.cpp:127] err == 0.')."""
    rows = [[names.cell(r), " ".join((r.get("error") or "-").split())] for r in records if r["status"] == "failed"]
    return Table(["failed cell", "error"], rows, "The whole error each failed cell recorded; it has no figures: "
                                                 "charts leave it out, comparisons list it as failed.") if rows else None


def _energy_table(ok: list[dict], names: Names) -> Table | None:
    rows = []
    for r in ok:
        m = r["metrics"]
        key, unit = energy_metric(r["kind"])
        if m.get("energy_source") is None:
            continue
        rows.append([names.cell(r), _num(m.get("energy_j")), _num(m.get("avg_power_w")),
                     f"{_num(m.get(key))} {unit}", energy_label(m.get("energy_source")), m.get("energy_scope") or "-"])
    return Table(["cell", "energy (J)", "average power (W)", "per unit", "label (source)", "scope"], rows,
                 "Energy over the measured window. Measured: nvml_counter, rapl, power_integrated; anything "
                 "else is an estimate (its basis is under Labels).") if rows else None


def _scaled(m: dict, lat: Latency) -> float | None:
    v = stat(m, lat.metric)
    return None if v is None else v * lat.scale


# spec fields that say how or where a cell ran, not what it computed; every other one changes the work
NOT_WORK = {"name", "kind", "arch", "model", "backend", "device", "dtype", "options", "compile", "warmup", "min_iters",
            "min_time_s", "max_time_s", "seed", "ep", "ep_options", "trust_remote_code"}


def _work(r: dict) -> dict:
    return {k: v for k, v in r["spec"].items() if k not in NOT_WORK and k not in r["cell"]}


def _same_work(records: list[dict]) -> dict[str, list[dict]]:
    """Records of one model and cell shape that computed the same thing, by label: where the model and shape
    agree but another field of the work differs (a guidance scale doubling the UNet passes, the frames per
    token of speech), the label says which, so the two are not compared as setups of one measurement."""
    by_shape: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        by_shape[run_charts.category(r)].append(r)
    groups: dict[str, list[dict]] = {}
    for cat, rs in by_shape.items():
        works = [_work(r) for r in rs]
        differ = sorted({k for w in works for k in w if len({repr(x.get(k)) for x in works}) > 1})
        for r, w in zip(rs, works):
            label = cat + (" (" + ", ".join(f"{k} {w.get(k)}" for k in differ) + ")" if differ else "")
            groups.setdefault(label, []).append(r)
    return groups


def _ratio(v: float) -> str:
    """'0.47x'; two significant digits below 0.01, where 0.00x hid a setup 600 times slower (torch against ONNX
    Runtime on a tiny embedder)."""
    return f"{v:.2f}x" if v >= 0.01 else f"{v:.2g}x"


def _setups(rs: list[dict], names: Names) -> list[str]:
    """Each record's setup, with its spec's name where two would read alike: specs of one run that differ only in
    their backend options (ONNX Runtime's intra_op_threads, say) were two rows of one name, or not compared at all."""
    labels = [names.setup(r) for r in rs]
    return [f"{s} [{r['workload']}]" if labels.count(s) > 1 else s for s, r in zip(labels, rs)]


def _comparison(records: list[dict], names: Names, several: bool) -> Section | None:
    """Cells whose model and shape were measured on two or more setups, side by side; a setup whose cell failed
    stays in as a failed row (left out, a shape one setup could not run read as compared on the others alone)."""
    blocks = []
    for kind, km in ((name, k.metrics) for name, k in KINDS.items()):
        same = _same_work([r for r in records if r["kind"] == kind and (r["status"] == "failed" or r.get("metrics"))])
        groups = {c: list(zip(_setups(rs, names), rs)) for c, rs in same.items()}
        groups = {c: pairs for c, pairs in groups.items() if len({s for s, _ in pairs}) > 1}
        if not groups:
            continue
        key, unit = energy_metric(kind)
        header = ["model and shape", "setup", km.throughput_label, "vs first setup",
                  *(f"{lat.label} p50" for lat in km.latencies), f"energy ({unit})", "energy label", "status"]
        rows = []
        for cat, pairs in groups.items():
            first = next((v for _, r in pairs if (v := (r.get("metrics") or {}).get(km.throughput))), None)
            for setup, r in pairs:
                m = r.get("metrics") or {}
                ratio = _ratio(m[km.throughput] / first) if first and m.get(km.throughput) else "-"
                rows.append([cat, setup, _num(m.get(km.throughput)), ratio,
                             *(_num(_scaled(m, lat)) for lat in km.latencies),
                             _num(m.get(key)), energy_label(m.get("energy_source")) if m else "-", status_label(r)])
        blocks.append(Table(header, rows, f"{kind}: measured; the same model and cell shape on each setup; 'busy': "
                                          f"other processes used the CPU meanwhile, so its ratio is not the setups'; "
                                          f"ratios to the first setup that measured the cell; a failed cell has none."))
        blocks.append(run_charts.comparison_bars(kind, [(c, s, r) for c, pairs in groups.items() for s, r in pairs]))
    if not blocks and not several:
        return None
    if not blocks:
        blocks.append(Text("No model and cell shape was measured by more than one of these runs' setups, so there "
                           "is nothing to set side by side; the tables above list every cell with its run letter."))
    return Section("Comparison across runs, machines and backends", blocks, 3)


def _measuring(records: list[dict]) -> str:
    keys = ("timer", "warmup", "min_iters", "min_time_s", "max_time_s", "seed")
    rules = {tuple(r["settings"].get(k) for k in keys) for r in records if r["kind"] != "endpoint"} - \
        {(None,) * len(keys)}
    loads = {tuple(r["settings"].get(k) for k in ("timer", "warmup", "num_requests", "duration_s", "seed"))
             for r in records if r["kind"] == "endpoint"}
    return "; ".join([f"timer {t}, warmup {_num(w)}, at least {_num(i)} iterations and {_num(s)} s"
                      + (f", at most {mx:g} s" if mx else "") + f", seed {_num(seed)}"
                      for t, w, i, s, mx, seed in sorted(rules, key=str)]
                     + [f"load test: timer {t}, {_num(w)} warm-up request(s), per point "
                        + " or ".join(x for x in (f"{n} requests" if n else "", f"{d:g} s" if d else "") if x)
                        + f", seed {_num(seed)}" for t, w, n, d, seed in sorted(loads, key=str)]) or "-"


def _device(r: dict) -> str:
    """The device a record measured; a load test's is the endpoint, whose hardware is what --hardware said."""
    d = r["device"]
    if r["kind"] != "endpoint":
        return f"{d.get('name')} ({d.get('model')})"
    url = r["backend"].get("url") or r["spec"].get("endpoint") or "?"
    return f"endpoint {url} ({d.get('model') or 'hardware not given: loadtest --hardware ID names it'})"


def _env_column(run: RunData) -> list[str]:
    env = run.records[0].get("environment") or {}
    host, acc, ort, py = env.get("host") or {}, env.get("accelerators") or {}, env.get("onnxruntime") or {}, \
        env.get("python")
    nvml = acc.get("nvml") or {}
    fams = [f"{f}: {e['count']} ({', '.join(str(d.get('model')) for d in e.get('devices', []))})" if e.get("count")
            else f"{f}: none" for f, e in acc.items() if f != "nvml"]
    machines = _machines(run.records)
    return [
        run.run_id, run.manifest.infra_bench,
        f"{len(machines)} machines: {'; '.join(machines)}" if len(machines) > 1 else
        _machine(env) + (f", {host.get('cpu_logical_cores', '?')} logical cores, "
                         f"{(host.get('memory_total_bytes') or 0) / 2**30:.1f} GiB RAM" if host else ""),
        str(host.get("os") or env.get("os", "-")), str((py.get("version") if isinstance(py, dict) else py) or "-"),
        ", ".join(f"{k} {v}" for k, v in (env.get("libraries") or {}).items() if v) or "-",
        ", ".join(ort.get("providers", [])) if ort.get("available") else "absent",
        "; ".join(fams) or "-",
        f"driver {nvml.get('driver_version')}" if nvml.get("available") else f"absent ({nvml.get('reason', '?')})",
        ", ".join(sorted({_device(r) for r in run.records})),
        _measuring(run.records)]


def _environment(runs: list[RunData], names: Names) -> Table:
    labels = ["run", "infra-bench", "host", "OS", "Python", "libraries", "ONNX Runtime providers", "accelerators",
              "NVML", "devices measured", "measuring"]
    cols = [_env_column(run) for run in runs]
    lead = [names.letter(r.run_id) for r in runs]
    return Table(["", *lead] if names.letters else ["", "value"],
                 [[label, *(c[i] for c in cols)] for i, label in enumerate(labels)],
                 "From each run's environment fingerprint (the first record's, and the host of every record; "
                 "`infra-bench sysinfo` shows the same).")


def _labels(records: list[dict]) -> list:
    blocks: list = [Text(UNITS)]
    sources = Counter((energy_label(r["metrics"]["energy_source"]), r["metrics"].get("energy_note") or "-")
                      for r in records if (r.get("metrics") or {}).get("energy_source"))
    if sources:
        blocks.append(Table(["energy label", "basis", "cells"], [[a, b, str(n)] for (a, b), n in sources.items()],
                            "How each energy figure was obtained."))
    weights = Counter((r["model"].get("weights") or "unknown",
                       str(r["model"].get("source") or r["model"].get("path") or r["model"].get("name") or "-"))
                      for r in records)
    blocks.append(Table(["weights", "model source", "cells"], [[w, s, str(n)] for (w, s), n in weights.items()],
                        "random: built from an architecture config with random weights (timing only, outputs "
                        "meaningless); checkpoint or real: weights loaded from files; unknown: a server that does not "
                        "say (loadtest of an engine other than infra-bench serve)."))
    notes = Counter(n for r in records for n in r.get("notes", []))
    if notes:
        blocks.append(Table(["note carried by the records", "cells"], [[n, str(c)] for n, c in notes.items()]))
    return blocks


def _curves(ok: list[dict], failed: list[dict], names: Names) -> list:
    """A latency-throughput chart per kind whose series span two or more batch sizes, else why not: the spec gave
    one, or the others failed (which read as 'give the spec several' to a spec that had)."""
    kinds = [k for k in KINDS if any(r["kind"] == k for r in ok)]
    images = [run_charts.latency_throughput([r for r in ok if r["kind"] == k], k, names) for k in kinds]
    flat = [k for k, img in zip(kinds, images) if img is None]
    lost = [k for k in flat if any(r["kind"] == k for r in failed)]
    single = [k for k in flat if k not in lost]
    why = [Text(f"{', '.join(single)}: one batch size per workload, so no curve; give the spec several "
                f"(batch_size: [1, 4, 16]) to see latency against throughput.")] if single else []
    if lost:
        why.append(Text(f"{', '.join(lost)}: one batch size per workload was measured, so no curve; the others "
                        f"failed (their errors are under Results)."))
    return [img for img in images if img] + why


def _unfinished(run: RunData) -> str | None:
    """A note for a run with fewer records than cells planned: the page showed it only as 'ok 1, planned 2'."""
    planned, have = run.manifest.cells_planned, len(run.records)
    if planned is None or have >= planned:
        return None
    return (f"run {run.run_id}: {planned - have} of {planned} planned cells have no record (it stopped before them, "
            f"or an unreadable line was skipped); {finish_hint(RunStore(run.folder), started=True)}")


def run_sections(runs: list[RunData]) -> list[Section]:
    names = Names([r.run_id for r in runs])
    records = [rec for run in runs for rec in run.records]
    ok = [r for r in records if r["status"] == "ok" and r.get("metrics")]
    kinds = list(dict.fromkeys(r["kind"] for r in records))
    notes = format_notes(records)
    head = [Text(n, note=True) for n in filter(None, map(_unfinished, runs))]
    head += [Text(n.removeprefix("note: "), note=True) for n in notes.splitlines()] if notes else []
    sections = [Section("Runs" if len(runs) > 1 else f"Run {runs[0].run_id}", [*head, _runs_table(runs, names)]),
                Section("Results", [*(_kind_table(k, [r for r in records if r["kind"] == k], names) for k in kinds),
                                    *filter(None, [_server_table(records, names), _errors_table(records, names)])],
                        3)]
    charted = [(title, img) for title, img in [
        ("Latency vs throughput", [*_curves(ok, [r for r in records if r["status"] == "failed"], names),
                                   run_charts.endpoint_points(ok, names)]),
        *((title, [load_ref(ref)([r for r in ok if r["kind"] == name], names)])
          for name, k in KINDS.items() for title, ref in k.charts),
        ("Memory and energy per unit of work", [run_charts.memory(ok, names), run_charts.energy(ok, names),
                                                _energy_table(ok, names)]),
    ]]
    sections += [Section(title, [b for b in blocks if b is not None], 3) for title, blocks in charted
                 if any(b is not None for b in blocks)]
    comparison = _comparison(records, names, len(runs) > 1)
    if comparison:
        sections.append(comparison)
    sections.append(Section("Environment", [_environment(runs, names)], 3))
    sections.append(Section("Labels, units and sources (runs)", _labels(records), 3))
    return sections
