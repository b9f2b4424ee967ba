"""Running a list of specs in this process: check everything, then measure cell by cell.

All input is checked before the run folder is created, so a bad spec costs nothing. Each
cell's record is appended and fsync'd as the cell ends; an exception inside a cell (out of
memory included) becomes a failed record and the sweep goes on. `resume` re-reads the
manifest and measures only the cells that have no record yet.
"""
from __future__ import annotations

import gc
import os
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import __version__
from .backends.base import check_backend
from .devices import check_dtype, select_device
from .devices.base import DeviceProbe
from .errors import UserError
from .measure.stopping import StoppingRule
from .results.schema import Record
from .results.store import RunStore, new_run_id, now_iso
from .spec.llm import LlmSpec
from .spec.loader import spec_from_dict
from .workloads import llm as llm_workload

RANDOM_WEIGHTS_NOTE = ("weights: random; timing depends on shapes for dense models, but outputs are "
                       "meaningless and output length is forced")


@dataclass(frozen=True)
class RunOptions:
    out: Path = Path("results")
    cpu_watts_per_core: float | None = None
    trust_remote_code: bool = False


@dataclass
class Planned:
    spec: LlmSpec
    probe: DeviceProbe
    resolved: llm_workload.ResolvedModel
    cells: list[dict] = field(default_factory=list)

    def cell_id(self, cell: dict) -> str:
        s = self.spec
        return (f"{s.label}/{s.backend}/{self.probe.name}/{s.dtype}/"
                f"b{cell['batch_size']}-p{cell['prompt_len']}-o{cell['output_len']}")


def apply_overrides(spec: LlmSpec, overrides: dict) -> LlmSpec:
    """A new, re-validated spec with CLI values (those not None) replacing the file's."""
    given = {k: v for k, v in overrides.items() if v is not None}
    return spec_from_dict({**spec.model_dump(mode="json", exclude_none=True), **given}, f"spec '{spec.label}'") \
        if given else spec


def plan(specs: list[LlmSpec], opts: RunOptions) -> list[Planned]:
    """Resolve devices and models and check every cell; raises UserError before anything runs."""
    planned = []
    probes: dict[str, DeviceProbe] = {}
    for spec in specs:
        check_backend(spec.backend)
        probe = probes.get(spec.device) or select_device(spec.device)
        probes[spec.device] = probe
        check_dtype(probe, spec.dtype)
        resolved = llm_workload.resolve(spec, opts.trust_remote_code)
        llm_workload.check_cells(spec, resolved)
        # Pin `auto` to the device it resolved to, so a resume measures the same device.
        spec = spec.model_copy(update={"device": probe.name})
        planned.append(Planned(spec, probe, resolved, spec.cells()))
    return planned


def _cell_record(run_id: str, p: Planned, cell: dict, environment: dict, opts: RunOptions,
                 status: str, started: str, t0: float, metrics=None, samples=None, error=None,
                 runner_info=None, params=None, stop_reason=None) -> dict:
    s = p.spec
    notes = [RANDOM_WEIGHTS_NOTE] if p.resolved.info["weights"] == "random" else []
    rec = Record(
        run_id=run_id, cell_id=p.cell_id(cell), kind=s.kind, status=status, error=error,
        started_at=started, ended_at=now_iso(), duration_s=time.perf_counter() - t0,
        spec=s.model_dump(mode="json"), model={**p.resolved.info, "params": params},
        cell=cell, backend=runner_info or {"name": s.backend}, device=p.probe.describe(),
        settings={"warmup": s.warmup, "min_iters": s.min_iters, "min_time_s": s.min_time_s,
                  "max_time_s": s.max_time_s, "seed": s.seed, "timer": p.probe.timer,
                  "scenario": "offline", "stop_reason": stop_reason, "infra_bench": __version__,
                  "cpu_watts_per_core": opts.cpu_watts_per_core},
        environment=environment, metrics=metrics, samples=samples, notes=notes)
    return rec.model_dump(mode="json")


def _error_text(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}".strip().rstrip(":")


def _measure(p: Planned, runner, vocab_size: int, cell: dict, opts: RunOptions) -> dict:
    """Run one cell under the stopping rule; return the fields of its ok record."""
    from .measure.window import MeasurementWindow
    from .scenarios.offline import run_offline

    s = p.spec
    ids = llm_workload.prompt_tokens(cell["batch_size"], cell["prompt_len"], vocab_size, s.seed,
                                     p.probe.torch_device)
    rule = StoppingRule(s.warmup, s.min_iters, s.min_time_s, s.max_time_s)
    window = MeasurementWindow(p.probe, p.probe.energy_meter(opts.cpu_watts_per_core))
    result = run_offline(runner, ids, cell["output_len"], rule, window)
    return {"metrics": result.metrics(), "runner_info": runner.describe(), "stop_reason": result.stop_reason,
            "samples": [{"ttft_s": t.ttft_s, "e2e_s": t.e2e_s, "itl_s": t.itl_s} for t in result.timings]}


def _release(probe: DeviceProbe) -> None:
    gc.collect()
    probe.release_cached_memory()


def execute(planned: list[Planned], store: RunStore, environment: dict, opts: RunOptions,
            progress: Callable[[str], None] = lambda m: print(m, file=sys.stderr)) -> list[dict]:
    """Measure every planned cell without a record yet; return the records written now."""
    from .backends.torch import TorchLlmRunner

    done = store.finished_cells()
    total = sum(len(p.cells) for p in planned)
    written: list[dict] = []
    k = 0
    for p in planned:
        todo = [c for c in p.cells if p.cell_id(c) not in done]
        k += len(p.cells) - len(todo)
        if not todo:
            continue
        runner = build_error = params = vocab_size = None
        try:
            model = llm_workload.build(p.spec, p.resolved, p.probe.torch_device, opts.trust_remote_code)
            params, vocab_size = llm_workload.param_count(model), model.config.get_text_config().vocab_size
            runner = TorchLlmRunner(model, p.probe)
            del model
        except Exception as e:  # a model that cannot be built fails each of its cells
            build_error = f"model build failed: {_error_text(e)}"
        for cell in todo:
            k += 1
            started, t0 = now_iso(), time.perf_counter()
            error, fields = build_error, {}
            if error is None:
                try:
                    fields = _measure(p, runner, vocab_size, cell, opts)
                except Exception as e:  # OOM or any failure inside the cell: record it, go on
                    if "INFRA_BENCH_DEBUG" in os.environ:
                        traceback.print_exc()
                    error = _error_text(e)
            if error is not None:
                _release(p.probe)  # after the except block, so the failed frame's tensors are gone
            rec = _cell_record(store.run_id, p, cell, environment, opts, "failed" if error else "ok",
                               started, t0, error=error, params=params, **fields)
            store.append(rec)
            written.append(rec)
            progress(f"[{k}/{total}] {p.spec.label} {p.spec.backend} {p.probe.name} {p.spec.dtype} "
                     f"b={cell['batch_size']} p={cell['prompt_len']} o={cell['output_len']} ... "
                     f"{rec['status']} ({rec['duration_s']:.1f} s)" + (f": {error}" if error else ""))
        del runner
        _release(p.probe)
    return written


def manifest(run_id: str, planned: list[Planned], opts: RunOptions) -> dict:
    return {"run_id": run_id, "created_at": now_iso(), "infra_bench": __version__,
            "specs": [p.spec.model_dump(mode="json") for p in planned],
            "cells_planned": sum(len(p.cells) for p in planned),
            "options": {"cpu_watts_per_core": opts.cpu_watts_per_core,
                        "trust_remote_code": opts.trust_remote_code}}


def start_run(specs: list[LlmSpec], opts: RunOptions) -> tuple[RunStore, list[Planned]]:
    planned = plan(specs, opts)
    run_id = new_run_id()
    return RunStore.create(opts.out, run_id, manifest(run_id, planned, opts)), planned


def resume_run(run_id: str, root: Path, cpu_watts_per_core: float | None) -> tuple[RunStore, list[Planned], RunOptions]:
    store = RunStore.open(root, run_id)
    m = store.manifest()
    o = m.get("options", {})
    opts = RunOptions(out=store.folder.parent,
                      cpu_watts_per_core=cpu_watts_per_core if cpu_watts_per_core is not None
                      else o.get("cpu_watts_per_core"),
                      trust_remote_code=bool(o.get("trust_remote_code")))
    try:
        specs = [spec_from_dict(s, f"{store.folder}/run.json") for s in m["specs"]]
    except KeyError:
        raise UserError(f"{store.folder}/run.json has no specs; the run cannot be resumed") from None
    return store, plan(specs, opts), opts
