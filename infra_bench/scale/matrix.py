"""A sweep matrix: spec files x backends x devices (x node types), expanded into run specs.

    name: rack-a
    specs: [quick.yaml, llama.yaml]    # spec files, relative to this file (or inline spec mappings)
    backends: [torch, onnxruntime]     # optional axis; default: each spec's own
    devices: [cuda]                    # optional axis; default: each spec's own
    node_types:                        # optional, Ray only: where each cell runs
      - {name: h100, resources: {GPU: 1}, labels: {node-type: h100}}
      - {name: ascend, resources: {NPU: 1}}
    max_retries: 3                     # Ray: re-runs of a cell whose worker or node was lost
    max_in_flight: null                # Ray: cells running at once (default: one per alive node)

A node type's `resources` are what each cell asks Ray for (CPU, GPU, or a custom resource the
nodes declare with `ray start --resources`); `labels` select nodes started with
`ray start --labels`. Expanded specs are named `<spec>@<node type>` so their cells stay distinct.
"""
from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import UserError, explain_validation, first_repeat
from ..inputs import load_yaml
from ..spec.common import RunSpec
from ..spec.loader import load_spec_file, spec_from_dict


class NodeType(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    resources: dict[str, float] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)

    @field_validator("resources")
    @classmethod
    def _positive(cls, v: dict[str, float]) -> dict[str, float]:
        bad = [k for k, n in v.items() if n <= 0]
        if bad:
            raise ValueError(f"resource {bad[0]} must be a positive amount")
        return v


class Matrix(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    specs: list[str | dict] = Field(min_length=1)
    backends: list[str] | None = Field(default=None, min_length=1)
    devices: list[str] | None = Field(default=None, min_length=1)
    node_types: list[NodeType] | None = Field(default=None, min_length=1)
    max_retries: int = Field(default=3, ge=0)
    max_in_flight: int | None = Field(default=None, ge=1)

    @field_validator("specs", "backends", "devices")
    @classmethod
    def _each_once(cls, v: list | None) -> list | None:
        """An axis value (or spec file) listed twice would expand to the same cells twice: say which."""
        if (twice := first_repeat(v)) is not None:
            raise ValueError(f"{twice!r} is listed more than once; list each once")
        return v


def load_matrix(path: str | Path) -> tuple[Matrix, list[tuple[RunSpec, NodeType | None]]]:
    """The matrix and its expanded (spec, node type) jobs; every problem a one-line UserError."""
    p = Path(path)
    docs = load_yaml(p, "matrix file", "give a sweep matrix YAML (see docs/scale-out.md)", documents=True)
    if len(docs) > 1 or (docs and isinstance(docs[0], dict) and {"kind", "arch", "model"} & set(docs[0])):
        raise UserError(f"{p} is a workload spec, not a sweep matrix; a matrix lists spec files, e.g. "
                        f"`specs: [{p}]` (see docs/scale-out.md), or run the spec with `infra-bench run {p}`")
    data = docs[0] if docs else None
    if not isinstance(data, dict):
        raise UserError(f"{p}: a matrix is a mapping with at least `specs:`; see docs/scale-out.md")
    try:
        m = Matrix(**data)
    except ValidationError as err:
        raise UserError(explain_validation(err, str(p), Matrix.model_fields)) from None
    if m.node_types and len({n.name for n in m.node_types}) < len(m.node_types):
        raise UserError(f"{p}: two node types share a name; give each a distinct `name`")
    return m, expand(m, p.parent, str(p))


def expand(m: Matrix, base: Path, where: str) -> list[tuple[RunSpec, NodeType | None]]:
    specs: list[RunSpec] = []
    for item in m.specs:
        specs += load_spec_file(base / item) if isinstance(item, str) else [spec_from_dict(item, where)]
    jobs, seen = [], set()
    for spec in specs:
        for backend in m.backends or [spec.backend]:
            for device in m.devices or [spec.device]:
                for node in m.node_types or [None]:
                    data = {**spec.model_dump(mode="json", exclude_none=True), "backend": backend, "device": device}
                    if node:
                        data["name"] = f"{spec.label}@{node.name}"
                    s = spec_from_dict(data, where)
                    key = (s.label, s.backend, s.device)
                    if key in seen:
                        raise UserError(f"{where}: spec '{s.label}' appears twice for {backend} on {device}; "
                                        f"give each spec a distinct `name`")
                    seen.add(key)
                    jobs.append((s, node))
    return jobs
