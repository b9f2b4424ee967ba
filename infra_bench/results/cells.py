"""A cell's name, `workload/backend/device/dtype/shape` (llama-tiny/onnxruntime-cpu/cpu/fp32/b4-p64-o32),
built from its fields in one place: the run engine names records with it, and reports rebuild any part
of it from a record's fields instead of parsing the string."""
from __future__ import annotations


def execution_provider(spec: dict) -> str:
    """An onnxruntime spec's execution provider, from its options (or the top level of records written
    before options existed); cpu when none is named."""
    return (spec.get("options") or {}).get("ep") or spec.get("ep") or "cpu"


def setup_name(label: str, spec: dict) -> str:
    """`workload/backend/device/dtype`: the backend with its execution provider or compile mode."""
    backend = spec.get("backend", "torch")
    if backend == "onnxruntime":
        backend = f"onnxruntime-{execution_provider(spec)}"
    if (spec.get("compile") or "none") != "none":
        backend += f"+compile-{spec['compile']}"
    return f"{label}/{backend}/{spec.get('device', '?')}/{spec.get('dtype', '?')}"


def shape_name(kind: str, cell: dict, without: tuple[str, ...] = ()) -> str:
    """`b2-p16-o8`: each grid field by its kind's prefix, leaving out `without`."""
    from ..kinds import KINDS

    keys = KINDS[kind].cell_keys if kind in KINDS else {}
    return "-".join(f"{keys.get(k, k)}{v}" for k, v in cell.items() if k not in without)


def cell_name(label: str, kind: str, spec: dict, cell: dict) -> str:
    return f"{setup_name(label, spec)}/{shape_name(kind, cell)}"
