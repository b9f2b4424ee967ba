"""Running a sweep's cells as Ray tasks: placed by resources and node labels, retried when a
worker or node is lost, records streamed back to the driver's store as cells finish.

The driver is the only writer: each record is appended (and fsync'd) the moment its task
returns, so a killed driver loses no finished cell, and `--resume` submits only the cells
without a record. Cells wait for a node that fits; a requirement no alive node can meet is a
one-line error before anything is submitted.
"""
from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from .. import engine
from ..errors import UserError
from ..results.store import RunStore
from ..spec.common import RunSpec
from .matrix import NodeType

ACCELERATOR_DEVICES = {"cuda": "GPU"}
WAIT_S = 30.0  # how often a quiet driver re-checks that pending cells still have a node  # a spec's device -> the Ray resource a cell needs by default


@dataclass(frozen=True)
class Job:
    spec: RunSpec
    node: NodeType | None
    cell: dict
    cell_id: str


def requirement(job: Job) -> tuple[dict[str, float], dict[str, str]]:
    """(Ray resources, node labels) one cell of the job asks for."""
    if job.node:
        return {"CPU": 1.0, **job.node.resources}, dict(job.node.labels)
    accel = ACCELERATOR_DEVICES.get(job.spec.device.split(":")[0])
    return {"CPU": 1.0, **({accel: 1.0} if accel else {})}, {}


def _fits(node: dict, resources: dict[str, float], labels: dict[str, str]) -> bool:
    have, tags = node.get("Resources", {}), node.get("Labels", {})
    return all(have.get(k, 0) >= v for k, v in resources.items()) and all(tags.get(k) == v for k, v in labels.items())


def connect(address: str):
    """ray.init on `address`, as preflight.ray_address checked and resolved it ("local": a new cluster of our
    own, never one that happens to run on this machine); one-line errors."""
    import ray

    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR,
                 ignore_reinit_error=True)
    except (ConnectionError, RuntimeError, ValueError) as e:
        where = "a local cluster" if address == "local" else address
        raise UserError(f"cannot reach the Ray cluster at {where} ({str(e).splitlines()[0]}); start one with "
                        f"`ray start --head` and pass its address, or use --ray alone for a local one") from None
    return ray


def check_placement(ray, jobs: list[Job]) -> int:
    """Every job fits some alive node; returns the number of alive nodes."""
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    for job in jobs:
        resources, labels = requirement(job)
        if not any(_fits(n, resources, labels) for n in nodes):
            offered = sorted({k for n in nodes for k in n.get("Resources", {}) if not k.startswith("node:")})
            want = ", ".join(f"{k}={v:g}" for k, v in resources.items()) + "".join(
                f", label {k}={v}" for k, v in labels.items())
            raise UserError(f"no alive Ray node offers {want} for '{job.spec.label}' (nodes offer "
                            f"{', '.join(offered)}); start one with `ray start --resources '{{\"NAME\": N}}' "
                            f"--labels KEY=VALUE` or fix the matrix's node_types")
    return len(nodes)


def _submit(ray, remote, job: Job, run_id: str, opts: engine.RunOptions, max_retries: int):
    resources, labels = requirement(job)
    custom = {k: v for k, v in resources.items() if k not in ("CPU", "GPU")}
    return remote.options(num_cpus=resources["CPU"], num_gpus=resources.get("GPU", 0), resources=custom or None,
                          label_selector=labels or None, max_retries=max_retries, retry_exceptions=False,
                          scheduling_strategy="SPREAD").remote(
        job.spec.model_dump(mode="json", exclude_none=True), job.cell, job.cell_id, run_id, opts,
        job.node.name if job.node else None)


def execute(ray, jobs: list[Job], store: RunStore, opts: engine.RunOptions, max_retries: int, max_in_flight: int,
            progress: Callable[[str], None] = lambda m: print(m, file=sys.stderr)) -> list[dict]:
    """Run every job without a record yet, at most `max_in_flight` at once; return the records written."""
    from .worker import run_cell

    remote = ray.remote(run_cell)
    done_ids = store.finished_cells()
    todo = [j for j in jobs if j.cell_id not in done_ids]
    total, finished, failed = len(jobs), len(jobs) - len(todo), 0
    pending: dict = {}
    written: list[dict] = []
    t0 = time.perf_counter()
    while todo or pending:
        while todo and len(pending) < max_in_flight:
            job = todo.pop(0)
            pending[_submit(ray, remote, job, store.run_id, opts, max_retries)] = job
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=WAIT_S)
        if not ready:  # nothing finished for a while: fail the cells no alive node can take any more
            alive = [n for n in ray.nodes() if n.get("Alive")]
            lost = [ref for ref, j in pending.items() if not any(_fits(n, *requirement(j)) for n in alive)]
            results = [(ref, pending.pop(ref), "no alive node fits this cell any more (node lost)") for ref in lost]
            for ref in lost:
                ray.cancel(ref, force=True)
        else:
            results = [(ready[0], pending.pop(ready[0]), None)]
        for ref, job, lost_reason in results:
            rec = _collect(ray, ref, job, store.run_id, opts, max_retries, lost_reason)
            store.append(rec)
            written.append(rec)
            finished += 1
            failed += rec["status"] == "failed"
            where = rec["settings"]["executor"].get("node_ip") or "?"
            progress(f"[{finished}/{total}] done {finished}, running {len(pending)}, failed {failed}, "
                     f"{time.perf_counter() - t0:.0f} s | {engine.cell_line(rec)} on {where}")
            engine.stop_if_interrupted()
    return written


def _collect(ray, ref, job: Job, run_id: str, opts: engine.RunOptions, max_retries: int,
             lost_reason: str | None) -> dict:
    """The task's record, or a failed one saying why there is none."""
    error = lost_reason
    if error is None:
        try:
            return ray.get(ref)
        except ray.exceptions.RayError as e:  # retries spent: the worker or node kept dying
            text = str(e).strip().splitlines()
            error = f"{type(e).__name__} after {max_retries} retries: {text[0] if text else ''}"
    rec = engine.failed_record(run_id, job.spec, job.cell, error, {}, opts,
                              {"name": "ray", "node_type": job.node.name if job.node else None})
    return {**rec, "cell_id": job.cell_id}

