"""What a workload kind is: one object naming everything the run engine, serving, reports and the
planner need to know about it, so none of them branches on a kind's name.

Heavy parts (the workload module that imports torch, the backends' executors, the planner's demand
service) are named as "module:attribute" references and imported on first use, so reading a spec,
drawing a report or ranking a plan never imports torch for a kind it does not touch.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import UserError

MIB = 1024 * 1024

Column = tuple[str, Callable[[dict, dict, dict], str]]  # header, (record, metrics, cell) -> text


def load_ref(ref: str) -> Any:
    """The object a "package.module:attribute" reference names."""
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


def fixed(v: float, fmt: str) -> str:
    """`v` in a column's fixed format ('.2f'), or two significant digits where that format would print a measured
    figure that is not zero as zero (0.004 images/s read '0.00', a goodput of 0.004 req/s read as none)."""
    text = format(v, fmt)
    return f"{v:.2g}" if v and not float(text) else text


def stat_text(summary: dict | None, scale: float, fmt: str, stat: str = "p50") -> str:
    """A summary statistic of a latency metric, scaled and formatted; '-' when absent."""
    return fixed(summary[stat] * scale, fmt) if summary else "-"


def num_text(v, fmt: str) -> str:
    return fixed(v, fmt) if v is not None else "-"


@dataclass(frozen=True)
class Latency:
    metric: str
    label: str      # axis or column label, with its unit
    scale: float    # from the record's unit (seconds) to the label's


@dataclass(frozen=True)
class KindMetrics:
    """The headline throughput metric of a kind and the latencies reports chart for it."""
    throughput: str
    throughput_label: str
    latencies: tuple[Latency, ...]


@dataclass(frozen=True)
class Route:
    """A served HTTP route: its path, and the handler factory serving/app.py mounts there."""
    path: str
    handler: str  # ref of handler(api) -> async (request) -> response; `api` is serving.app.Api


@dataclass(frozen=True)
class Kind:
    """Everything about one workload kind.

    - spec: ref of the RunSpec subclass (`kind: <name>` in YAML); its `cells()` is the grid.
    - workload: ref of the module with resolve(spec, trust), check_cells(spec, resolved),
      measure(spec, resolved, built, cell, window, rule) and catalog().
    - executors: backend name -> ref of build(spec, resolved, probe, trust_remote_code) -> Built.
    - cell_keys: grid field -> the short prefix it has in cell ids (b2-p16-o8).
    - energy_unit: the unit of work energy is divided by (`j_per_<unit>` in records).
    - columns, metrics: how records of this kind are shown; charts: (section title, ref of
      chart(records, names) -> Image | None) the run report draws for this kind's records.
    - served: ref of served(spec, planned, built, card) -> serving.models.Served; routes: its HTTP routes.
    - service: ref of the planner's demand service (a planner.demand.Service subclass);
      planner_models: ref of (kind name) -> the model ids predict and plan know for this kind;
      planner_paths: ref of (model) -> whether the string names a local model of this kind that predict and
      plan read from its files (a path), beside the ids;
      predict: ref of (model, hardware, options, calibration data, its file) -> (prediction, text);
      predict_options: the `predict` flags that hook reads (a flag given for another kind is an error);
      calibration_point: ref of (metrics, cell) -> (FLOPs, seconds, prior fixed seconds) of a record,
      or the reason it cannot calibrate (`calibrate` fits the kind's MFU from these).
    - plan_latency: the plan chart's latency field and label.
    - catalogs: the workloads/architectures/<name>.yaml files that hold its built-in architectures (`run --arch`,
      `serve --arch` and `archs` find an architecture's kind there, without importing the workload).
    - local_model: ref of (path) -> whether a local model path is one of this kind, read from its files alone
      and cheaply (no torch); `run --model PATH` takes the one kind that claims it.
    """
    name: str
    description: str
    spec: str
    workload: str
    executors: Mapping[str, str]
    cell_keys: Mapping[str, str]
    energy_unit: str
    columns: tuple[Column, ...]
    metrics: KindMetrics
    served: str | None = None
    routes: tuple[Route, ...] = ()
    service: str | None = None
    planner_models: str | None = None
    planner_paths: str | None = None
    predict: str | None = None
    predict_options: tuple[str, ...] = ()  # the `predict` flags its hook reads; others given are refused
    calibration_point: str | None = None
    plan_latency: tuple[str, str] | None = None
    charts: tuple[tuple[str, str], ...] = ()
    catalogs: tuple[str, ...] = ()
    local_model: str | None = None

    def spec_class(self):
        return load_ref(self.spec)

    def workload_module(self):
        return importlib.import_module(self.workload)

    def require_backend(self, backend: str) -> None:
        """A one-line error when this kind has no executor on `backend`, naming those it has."""
        if backend not in self.executors:
            raise UserError(f"the {backend} backend does not run {self.name} workloads; "
                            f"use backend: {' or '.join(self.executors)}")

    def executor(self, backend: str) -> Callable:
        """The builder of this kind's executor on `backend`: (spec, resolved, probe, trust) -> Built."""
        self.require_backend(backend)
        return load_ref(self.executors[backend])

    def service_class(self):
        return load_ref(self.service) if self.service else None
