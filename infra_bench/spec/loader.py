"""Reading spec files: YAML (one or more documents), validated into spec objects.

Every problem becomes a UserError naming the file, the field and the fix.
"""
from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ValidationError

from ..errors import UserError, explain_validation
from ..inputs import load_yaml
from ..kinds import get as get_kind


def spec_from_dict(data: dict, where: str = "spec") -> BaseModel:
    """Validate one spec mapping; `where` names it in errors (a file path, say)."""
    if not isinstance(data, dict):
        raise UserError(f"{where}: a spec must be a mapping of fields, got {type(data).__name__}")
    cls = get_kind(data.get("kind", "llm"), where).spec_class()
    base = Path(where).parent if where.endswith((".yaml", ".yml")) else Path.cwd()
    if isinstance(data.get("model"), str):  # a relative model folder is relative to the spec file; kept absolute,
        model = Path(data["model"]).expanduser()  # so a resume from elsewhere and a sweep's re-read find it
        data = {**data, "model": str(model if model.is_absolute() else (base / model).resolve())}
    try:
        return cls(**data)
    except ValidationError as err:
        raise UserError(explain_validation(err, where, cls.model_fields)) from None


def load_spec_file(path: str | Path) -> list[BaseModel]:
    p = Path(path)
    docs = load_yaml(p, "spec file", "give the path to a workload YAML (examples in the workloads/ folder)",
                     documents=True)
    if not docs:
        raise UserError(f"{p}: the file holds no spec; see workloads/ for examples")
    return [spec_from_dict(d, str(p)) for d in docs]


def load_specs(paths: list[str | Path]) -> list[BaseModel]:
    specs = [s for path in paths for s in load_spec_file(path)]
    seen: dict[str, int] = {}
    for s in specs:
        seen[s.label] = seen.get(s.label, 0) + 1
    dupes = [k for k, v in seen.items() if v > 1]
    if dupes:
        raise UserError(f"two specs share the name '{dupes[0]}'; give each a distinct 'name' field")
    return specs


def apply_overrides(spec: BaseModel, overrides: dict) -> BaseModel:
    """A new, re-validated spec with CLI values (those not None) replacing the file's; backend
    `options` are merged key by key."""
    given = {k: v for k, v in overrides.items() if v is not None}
    if not given:
        return spec
    data = spec.model_dump(mode="json", exclude_none=True)
    if "backend" in given and given["backend"] != data.get("backend"):  # the file's options were for its backend
        from .common import _option_names

        keep = _option_names(given["backend"])
        data["options"] = {k: v for k, v in data.get("options", {}).items() if k in keep}
    if "options" in given:
        given["options"] = {**data.get("options", {}), **given["options"]}
    return spec_from_dict({**data, **given}, f"spec '{spec.label}'")


def parse_options(pairs: tuple[str, ...] | list[str], flag: str = "--backend-option") -> dict:
    """`key=value` strings from the command line, each value read as a YAML scalar (1, 0.5, true, cpu)."""
    import yaml

    from ..inputs import key_values, parse_yaml

    out = {}
    for key, value in key_values(pairs, flag, "intra_op_threads=2").items():
        try:
            parsed = parse_yaml(value) if value else ""
        except yaml.YAMLError:  # not a YAML scalar ("[1"): the text itself, for the options model to judge
            parsed = value
        out[key] = parsed if isinstance(parsed, (str, int, float, bool)) else value
    return out
