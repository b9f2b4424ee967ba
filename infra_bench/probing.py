"""`infra-bench probe`: the local device's measured roofline, stored as records like any run."""
from __future__ import annotations

import time
from pathlib import Path

import torch

from . import __version__
from .devices import select_device
from .devices.roofline import cells, measure, spec_value
from .errors import UserError
from .measure.contention import Contention, busy_words
from .measure.contention import note as contention_note
from .planner.profiles import HardwareProfile, match_device
from .results.schema import Manifest, Record
from .results.store import MANIFEST, RunStore, new_run_id, now_iso


def run_probe(device: str, out: Path, profiles: dict[str, HardwareProfile], environment: dict,
              quick: bool = False, progress=print) -> tuple[RunStore, list[dict]]:
    probe = select_device(device)
    info = probe.describe()
    profile = match_device(profiles, info.get("model"))
    planned = cells(probe)
    run_id = new_run_id()
    store = RunStore.create(out, run_id, Manifest(run_id=run_id, created_at=now_iso(), infra_bench=__version__,
                                                  kind="probe", device=probe.name, quick=quick,
                                                  specs=[{"name": "roofline"}], cells_planned=len(planned)))
    records = []
    for cell in planned:
        t0, started, load = time.perf_counter(), now_iso(), Contention().start()
        result, error = measure(probe, cell, quick)
        share = load.others()  # as `run` records it: a busy machine reads low rates with no error
        spec = spec_value(profile, cell)
        metrics = None if result is None else {
            **result, "profile": profile.id if profile else None, "spec": spec,
            "measured_over_spec": result["value"] / spec if spec else None, "host_others_cpu_frac": share}
        busy = contention_note(share) if result else None
        rec = Record(run_id=run_id, cell_id=f"probe/{probe.name}/{cell['test']}/{cell['dtype']}", kind="probe",
                     workload="roofline", status="ok" if result else "failed", error=error, started_at=started,
                     ended_at=now_iso(), duration_s=time.perf_counter() - t0,
                     spec={"device": probe.name, "quick": quick}, model={"profile": profile.id if profile else None},
                     cell=cell, backend={"name": "torch", "version": torch.__version__}, device=info,
                     settings={"timer": probe.timer, "infra_bench": __version__}, environment=environment,
                     metrics=metrics, notes=[busy] if busy else []).model_dump(mode="json")
        store.append(rec)
        records.append(rec)
        words = busy_words(share) if result else None
        progress(f"{cell['test']} {cell['dtype']}: " + (f"{result['value']:.3g} {result['unit']}" if result else error)
                 + (f" ({words})" if words else ""))
    return store, records


def latest_probe(root: Path, device: str) -> list[dict]:
    """The records of the newest probe run of `device` under `root` (empty if none). Only run
    manifests are read until the run is found: sysinfo calls this, and results folders grow."""
    if not root.is_dir():
        return []
    for folder in sorted((p for p in root.iterdir() if (p / MANIFEST).is_file()), reverse=True):
        try:
            m = RunStore(folder).manifest()
        except UserError:
            continue
        if m.kind == "probe" and m.device == device:
            return RunStore(folder).records(warn=False)
    return []
