"""The local run engine: a list of specs run in this process; check everything, then measure cell
by cell (`run`, a `sweep` without Ray, and each Ray worker's cells go through it).

All input is checked before the run folder is created, so a bad spec costs nothing. Each
cell's record is appended and fsync'd as the cell ends; an exception inside a cell (out of
memory included) becomes a failed record and the run goes on. `resume` re-reads the
manifest and measures only the cells that have no record yet.
"""
from __future__ import annotations

import gc
import importlib
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from . import __version__
from .backends.base import Built, check_backend
from .devices.base import DeviceProbe
from .errors import Interrupted, MissingDependency, UserError
from .kinds import get as get_kind
from .measure.contention import Contention, busy_words
from .measure.contention import note as contention_note
from .measure.stopping import StoppingRule
from .results.cells import cell_name, setup_name
from .results.schema import Manifest, Record, RunSettings, SweepSettings
from .results.store import RunStore, new_run_id, now_iso
from .spec.common import RunSpec
from .spec.loader import spec_from_dict

RANDOM_WEIGHTS_NOTE = "weights: random; timing depends on shapes for dense models, but outputs are meaningless"
FORCED = {"llm": "generated lengths are forced", "tts": "audio lengths are forced"}  # what stands in for trained weights


def random_weights_note(kind: str) -> str:
    """The note of a random-weight record, with what stands in for what trained weights would decide where the
    kind has such a thing (an image's steps and size are the spec's either way)."""
    return f"{RANDOM_WEIGHTS_NOTE} ({FORCED[kind]})" if kind in FORCED else RANDOM_WEIGHTS_NOTE
NO_OWN_CODE_NOTE = ("--trust-remote-code had no effect: this model has no code of its own to run (a built-in "
                    "architecture, a .onnx file, or a folder whose config.json has no auto_map)")


LOCAL_EXECUTOR = {"name": "local", "node_id": None, "node_ip": None, "node_type": None}


@dataclass(frozen=True)
class RunOptions:
    out: Path = Path("results")
    cpu_watts_per_core: float | None = None
    trust_remote_code: bool = False


@dataclass
class Planned:
    spec: RunSpec
    probe: DeviceProbe | None  # None where the cells run on other nodes
    resolved: object
    cells: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # run options given that change nothing for this spec

    def cell_id(self, cell: dict) -> str:
        return cell_id(self.spec, cell)


def cell_id(s: RunSpec, cell: dict) -> str:
    """A cell's stable name: spec label, backend, device (as pinned or given), dtype and shape."""
    return cell_name(s.label, s.kind, s.model_dump(mode="json"), cell)


def backend_module(name: str) -> ModuleType:
    """The backend's build module: check(spec) -> the device probe the spec's cells run on."""
    return importlib.import_module(f"infra_bench.backends.{check_backend(name)}.build")


def build_executor(spec: RunSpec, resolved, probe: DeviceProbe, trust_remote_code: bool) -> Built:
    """The executor the spec's kind registers for its backend, built on `probe`'s device."""
    return get_kind(spec.kind).executor(spec.backend)(spec, resolved, probe, trust_remote_code)


def plan(specs: list[RunSpec], opts: RunOptions,
         skip: Callable[[RunSpec, MissingDependency], None] | None = None, probe_devices: bool = True) -> list[Planned]:
    """Resolve devices and models and check every cell; raises UserError before anything runs.
    With `skip`, a spec whose optional backend is not installed is reported to it and left out.
    Without `probe_devices` (a driver whose cells run on other nodes) devices stay as given."""
    planned: list[Planned] = []
    given: dict[str, str] = {}  # each planned spec's setup (label/backend/device/dtype) -> the device it gave
    for spec in specs:
        kind = get_kind(spec.kind)
        workload = kind.workload_module()
        try:
            kind.require_backend(check_backend(spec.backend))
            probe = backend_module(spec.backend).check(spec) if probe_devices else None
            resolved = workload.resolve(spec, opts.trust_remote_code)
        except MissingDependency as e:
            if skip is None:
                raise
            skip(spec, e)
            continue
        if probe is not None:  # pin `auto` to the device it resolved to, so a resume measures the same device
            asked, spec = spec.device, spec.model_copy(update={"device": probe.name})
            setup = setup_name(spec.label, spec.model_dump(mode="json"))
            if setup in given:  # its cells would share ids with the earlier spec's (sweep `devices: [cpu, auto]`)
                raise UserError(f"spec '{spec.label}' would run twice on {spec.backend} {spec.device}: devices "
                                f"'{given[setup]}' and '{asked}' both resolve to {spec.device} here; list one of them")
            given[setup] = asked
        workload.check_cells(spec, resolved)  # on the device `auto` resolved to
        planned.append(Planned(spec, probe, resolved, spec.cells(), unused_options(resolved, probe, opts)))
    return planned


def unused_options(resolved, probe: DeviceProbe | None, opts: RunOptions) -> list[str]:
    """Notes for the run options given that change nothing for this spec, so that its records, which list
    the options, do not read as if they had applied."""
    from .measure.energy import unused_watts_note

    notes = [NO_OWN_CODE_NOTE] if opts.trust_remote_code and not resolved.info.get("own_code") else []
    if opts.cpu_watts_per_core is not None and probe is not None:
        notes += [n] if (n := unused_watts_note(probe.energy_meter(opts.cpu_watts_per_core))) else []
    return notes


def _cell_record(run_id: str, p: Planned, cell: dict, environment: dict, opts: RunOptions,
                 status: str, started: str, t0: float, built: Built | None, executor: dict, metrics=None,
                 samples=None, error=None, stop_reason=None, compile=None, extra_notes=()) -> dict:
    s = p.spec
    notes = [random_weights_note(s.kind)] if p.resolved.info["weights"] == "random" else []
    notes += (built.notes if built else []) + p.notes + list(extra_notes)
    rec = Record(
        run_id=run_id, cell_id=p.cell_id(cell), kind=s.kind, workload=s.label, status=status, error=error,
        started_at=started, ended_at=now_iso(), duration_s=time.perf_counter() - t0,
        spec=s.model_dump(mode="json"), model={**p.resolved.info, "params": built.params if built else None},
        cell=cell, backend=built.info if built else {"name": s.backend}, device=p.probe.describe(),
        settings={**_settings(s, p.probe.timer, opts, executor, stop_reason),
                  **({"compile": compile} if compile else {})},
        environment=environment, metrics=metrics, samples=samples, notes=notes)
    return rec.model_dump(mode="json")


def _settings(s: RunSpec, timer: str | None, opts: RunOptions, executor: dict, stop_reason: str | None) -> dict:
    return {"warmup": s.warmup, "min_iters": s.min_iters, "min_time_s": s.min_time_s, "max_time_s": s.max_time_s,
            "seed": s.seed, "timer": timer, "scenario": "offline", "stop_reason": stop_reason,
            "infra_bench": __version__, "cpu_watts_per_core": opts.cpu_watts_per_core, "executor": executor}


def failed_record(run_id: str, s: RunSpec, cell: dict, error: str, environment: dict, opts: RunOptions,
                  executor: dict) -> dict:
    """A cell that failed before it could be planned or measured (no device there, a lost node)."""
    now = now_iso()
    return Record(run_id=run_id, cell_id=cell_id(s, cell), kind=s.kind, workload=s.label, status="failed",
                  error=error, started_at=now, ended_at=now, duration_s=0.0, spec=s.model_dump(mode="json"),
                  model={}, cell=cell, backend={"name": s.backend}, device={"name": s.device},
                  settings=_settings(s, None, opts, executor, None), environment=environment).model_dump(mode="json")


def _error_text(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}".strip().rstrip(":")


def _measure(p: Planned, built: Built, cell: dict, opts: RunOptions) -> dict:
    """Run one cell under the stopping rule; return the fields of its ok record."""
    from .measure.window import MeasurementWindow

    s = p.spec
    rule = StoppingRule(s.warmup, s.min_iters, s.min_time_s, s.max_time_s)
    window = MeasurementWindow(p.probe, p.probe.energy_meter(opts.cpu_watts_per_core))
    return get_kind(s.kind).workload_module().measure(s, p.resolved, built, cell, window, rule)


def _release(probe: DeviceProbe) -> None:
    gc.collect()
    probe.release_cached_memory()


def build(p: Planned, opts: RunOptions) -> tuple[Built | None, str | None]:
    """The spec's model on its device, or why it could not be built (each of its cells then fails)."""
    try:
        built = build_executor(p.spec, p.resolved, p.probe, opts.trust_remote_code)
        return built, built.error
    except UserError as e:
        return None, str(e)
    except Exception as e:  # a model that cannot be built (or exported) fails each of its cells
        if "INFRA_BENCH_DEBUG" in os.environ:
            traceback.print_exc()
        return None, f"model build failed: {_error_text(e)}"


def measure_cell(p: Planned, built: Built | None, build_error: str | None, cell: dict, run_id: str,
                 environment: dict, opts: RunOptions, executor: dict | None = None) -> dict:
    """One cell's record, ok or failed; an exception inside the cell (OOM included) is recorded."""
    started, t0 = now_iso(), time.perf_counter()
    error, fields = build_error, {}
    if error is None:
        try:
            load = Contention().start()
            fields = _measure(p, built, cell, opts)
            share = load.others()
            fields["metrics"]["host_others_cpu_frac"] = share
            fields["extra_notes"] = [*fields.get("extra_notes", ()), *filter(None, [contention_note(share)])]
            iters = fields["metrics"].get("iterations")
            if fields.get("stop_reason") == "max_time" and iters is not None and iters < p.spec.min_iters:
                fields["extra_notes"].append(
                    f"cut short: max_time_s {p.spec.max_time_s:g} s ended it after {iters} of min_iters "
                    f"{p.spec.min_iters} iterations; its statistics rest on few samples")
        except Exception as e:
            if "INFRA_BENCH_DEBUG" in os.environ:
                traceback.print_exc()
            error = _error_text(e)
    if error is not None:
        _release(p.probe)  # after the except block, so the failed frame's tensors are gone
    return _cell_record(run_id, p, cell, environment, opts, "failed" if error else "ok", started, t0, built,
                        executor or LOCAL_EXECUTOR, error=error, **fields)


def cell_line(rec: dict) -> str:
    """A progress line's tail for a finished cell."""
    words = busy_words((rec.get("metrics") or {}).get("host_others_cpu_frac"))
    busy = f"; {words}" if words else ""
    return f"{rec['cell_id']} ... {rec['status']} ({rec['duration_s']:.1f} s{busy})" + (
        f": {rec['error']}" if rec["error"] else "")


def execute(planned: list[Planned], store: RunStore, environment: dict, opts: RunOptions,
            progress: Callable[[str], None] = lambda m: print(m, file=sys.stderr)) -> list[dict]:
    """Measure every planned cell without a record yet; return the records written now."""
    done = store.finished_cells()
    total = sum(len(p.cells) for p in planned)
    written: list[dict] = []
    k = 0
    for p in planned:
        todo = [c for c in p.cells if p.cell_id(c) not in done]
        k += len(p.cells) - len(todo)
        if not todo:
            continue
        built, build_error = build(p, opts)
        for cell in todo:
            k += 1
            rec = measure_cell(p, built, build_error, cell, store.run_id, environment, opts)
            store.append(rec)
            written.append(rec)
            progress(f"[{k}/{total}] {cell_line(rec)}")
            stop_if_interrupted()
        del built
        _release(p.probe)
    return written


def resume_command(store: RunStore, command: str = "run", extra: str = "") -> str:
    """The exact command line that finishes `store`'s run."""
    out = store.folder.parent
    where = "" if out == Path("results") else f" --out {out}"
    return f"infra-bench {command} --resume {store.run_id}{extra}{where}"


@contextmanager
def resumable(store: RunStore, command: str):
    """Ctrl-C inside becomes Interrupted, naming the run, what it keeps and `command` to finish it.
    The press is also remembered, and `stop_if_interrupted` (called between cells) acts on it, so a
    KeyboardInterrupt that library code swallows mid-cell still stops the run when the cell ends
    (a loaded test run once saw a run go on to its last cell after SIGINT)."""
    def on_sigint(signum, frame):
        _PRESSED.set()
        raise KeyboardInterrupt

    main = threading.current_thread() is threading.main_thread()
    # SIGTERM (a scheduler's stop, `kill`) as Ctrl-C: it ended the run with 143 and no word of how to finish it
    previous = {sig: signal.signal(sig, on_sigint) for sig in (signal.SIGINT, signal.SIGTERM)} if main else {}
    _PRESSED.clear()
    try:
        yield
    except KeyboardInterrupt:
        kept = len(store.finished_cells())
        raise Interrupted(f"interrupted: run {store.run_id} keeps its {kept} finished cell(s) in {store.folder}; "
                          f"finish it with `{command}`") from None
    finally:
        _PRESSED.clear()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


_PRESSED = threading.Event()


def stop_if_interrupted() -> None:
    """Raise KeyboardInterrupt if Ctrl-C was pressed inside `resumable`, even if the exception it
    raised then was swallowed."""
    if _PRESSED.is_set():
        raise KeyboardInterrupt


def manifest(run_id: str, planned: list[Planned], opts: RunOptions, matrix: SweepSettings | None = None) -> Manifest:
    return Manifest(run_id=run_id, created_at=now_iso(), infra_bench=__version__,
                    specs=[p.spec.model_dump(mode="json") for p in planned],
                    cells_planned=sum(len(p.cells) for p in planned),
                    options=RunSettings(cpu_watts_per_core=opts.cpu_watts_per_core,
                                        trust_remote_code=opts.trust_remote_code), matrix=matrix)


def start_run(specs: list[RunSpec], opts: RunOptions,
              skip: Callable[[RunSpec, MissingDependency], None] | None = None) -> tuple[RunStore, list[Planned]]:
    planned = plan(specs, opts, skip)
    run_id = new_run_id()
    return RunStore.create(opts.out, run_id, manifest(run_id, planned, opts)), planned


def resume_run(run_id: str, root: Path, cpu_watts_per_core: float | None) -> tuple[RunStore, list[Planned], RunOptions]:
    """The run's store (locked), its specs planned again and its options; no plans where every cell has a record."""
    store = RunStore.open(root, run_id)
    m = store.manifest()
    if m.kind != "run":
        what = "a loadtest" if m.kind == "endpoint" else "a probe"
        raise UserError(f"{run_id} is {what} run; --resume finishes `infra-bench run` runs: run the "
                        f"{'loadtest' if m.kind == 'endpoint' else 'probe'} again")
    if m.matrix is not None:  # a Ray sweep's cells keep device `auto` in their ids: here they would all run again
        ray = " --ray" if m.matrix.executor == "ray" else ""
        raise UserError(f"{run_id} is a sweep; finish it with `{resume_command(store, 'sweep', ray)}`"
                        + (" (with the cluster's address as needed)" if ray else ""))
    store = store.lock()
    opts = RunOptions(out=store.folder.parent,
                      cpu_watts_per_core=cpu_watts_per_core if cpu_watts_per_core is not None
                      else m.options.cpu_watts_per_core,
                      trust_remote_code=m.options.trust_remote_code)
    specs = [spec_from_dict(s, f"{store.folder}/run.json") for s in m.specs]
    done = store.finished_cells()
    if all(cell_id(s, c) in done for s in specs for c in s.cells()):  # told from the manifest's pinned specs, before
        return store, [], opts  # planning imports the backends and resolves every model (seconds) to measure nothing
    planned = plan(specs, opts)
    check_same_models(store, planned)
    return store, planned, opts


def check_same_models(store: RunStore, planned: list[Planned]) -> None:
    """A resumed run measures the models its finished cells measured: a local folder or file whose content
    changed since (weights saved again, another config) put two models under one spec's cells, the records'
    weights_hash alone telling them apart."""
    was = {}
    for r in store.records(warn=False):
        if digest := (r.get("model") or {}).get("weights_hash"):
            was.setdefault(r["workload"], digest)
    for p in planned:
        before, now = was.get(p.spec.label), p.resolved.info.get("weights_hash")
        if before and now and before != now:
            where = p.resolved.info.get("path") or p.spec.model
            raise UserError(f"spec '{p.spec.label}': {where} changed since the run measured it (weights_hash "
                            f"{before[:19]}... now {now[:19]}...); put the model back as it was to finish the run, "
                            f"or measure it in a new run")
