"""What a Ray worker runs for one cell: plan the spec on this node, build (or reuse) the model,
measure the cell, and return the record. The driver alone writes records, so a retried or
abandoned task never writes twice.

A worker process keeps the last model it built: consecutive cells of one spec on the same
worker skip the build, as cells of one spec do in a local run.
"""
from __future__ import annotations

import json

from .. import engine
from ..errors import UserError
from ..spec.loader import spec_from_dict
from ..system import collect

_last: dict = {}          # spec key -> (planned, built, build error); one entry
_environment: dict = {}   # this node's fingerprint, collected once per worker process


def _executor(node_type: str | None) -> dict:
    import ray

    ctx = ray.get_runtime_context()
    return {"name": "ray", "node_id": ctx.get_node_id(), "node_ip": ray.util.get_node_ip_address(),
            "node_type": node_type}


def run_cell(spec_data: dict, cell: dict, cell_id: str, run_id: str, opts: engine.RunOptions,
             node_type: str | None) -> dict:
    """The cell's record, named `cell_id` as the driver planned it."""
    if not _environment:
        _environment.update(collect())
    spec = spec_from_dict(spec_data, "sweep matrix")
    executor = _executor(node_type)
    key = json.dumps(spec_data, sort_keys=True)
    if key not in _last:
        _last.clear()
        try:
            (planned,) = engine.plan([spec], opts)
        except UserError as e:  # this node cannot run the spec (no such device, a missing extra)
            rec = engine.failed_record(run_id, spec, cell, f"on node {executor['node_ip']}: {e}", _environment, opts,
                                      executor)
            return {**rec, "cell_id": cell_id}
        _last[key] = (planned, *engine.build(planned, opts))
    planned, built, build_error = _last[key]
    rec = engine.measure_cell(planned, built, build_error, cell, run_id, _environment, opts, executor)
    return {**rec, "cell_id": cell_id}
