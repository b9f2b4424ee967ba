"""Reading specs: YAML files (one or more documents), or one spec named on the command line (`run --arch` /
`--model`, `--set KEY=VALUE`), validated into spec objects by the same path.

Every problem becomes a UserError naming the file (or flag), the field and the fix.
"""
from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ValidationError

from ..errors import UserError, explain_validation
from ..inputs import load_yaml
from ..kinds import KINDS
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


def check_set_fields(specs: list[BaseModel], fields: dict, suite: bool) -> None:
    """`--set KEY=...` over several specs where only some have KEY (prompt_len over the default suite, whose
    diffusion specs have none): one line that says --set reaches every spec and how to run the others apart,
    rather than the field being unknown to one spec. A KEY no spec has is left to each spec's own error."""
    for key in fields:
        takes = {s.kind for s in specs if key in type(s).model_fields}
        lacking = next((s for s in specs if key not in type(s).model_fields), None)
        if takes and lacking is not None:
            given = "the default suite's specs (no SPEC file given)" if suite else "every spec of the files"
            raise UserError(f"--set {key}: spec '{lacking.label}' ({lacking.kind}) has no field '{key}', which only "
                            f"{' and '.join(sorted(takes))} specs have; --set applies to {given}: run the one you "
                            f"mean alone, with --arch NAME or a spec file of its own")


def parse_options(pairs: tuple[str, ...] | list[str], flag: str = "--backend-option") -> dict:
    """`key=value` strings from the command line, each value read as a YAML scalar (1, 0.5, true, cpu)."""
    return _parse_values(pairs, flag, "intra_op_threads=2", (str, int, float, bool))


def parse_sets(pairs: tuple[str, ...] | list[str]) -> dict:
    """`--set key=value` spec fields, each value read as YAML: a scalar, or a list (batch_size=[1,4]) or mapping
    as a spec's fields hold them."""
    return _parse_values(pairs, "--set", "batch_size=[1,4]", (str, int, float, bool, list, dict))


def _parse_values(pairs, flag: str, example: str, types: tuple[type, ...]) -> dict:
    """Each value read as YAML; one that is not of `types` (or not YAML: "[1") stays the text itself, for
    the model that takes it to judge in its own error."""
    import yaml

    from ..inputs import key_values, parse_yaml

    out = {}
    for key, value in key_values(pairs, flag, example).items():
        try:
            parsed = parse_yaml(value) if value else ""
        except yaml.YAMLError:
            parsed = value
        out[key] = parsed if isinstance(parsed, types) else value
    return out


def local_kind(path: Path) -> str:
    """The kind of a local model (`run --model PATH`) as its files tell it: the one kind whose local_model hook
    claims it; none or several is a one-line error asking for --kind."""
    from ..kinds.base import load_ref
    from ..workloads.files import config_fields

    takes = [k.name for k in KINDS.values() if k.local_model]
    claims = [name for name in takes if load_ref(KINDS[name].local_model)(path)]
    if len(claims) == 1:
        return claims[0]
    if claims:
        raise UserError(f"--model {path}: it could be {' or '.join(claims)}; say which with --kind "
                        f"{' or --kind '.join(claims)}")
    if path.is_dir():  # what is wrong with the folder itself, which --kind would not fix
        if not (path / "config.json").is_file():
            raise UserError(f"--model {path}: no config.json (a Hugging Face model folder) or model_index.json (a "
                            f"diffusers pipeline folder); give the folder save_pretrained wrote")
        config_fields(path)
    raise UserError(f"--model {path}: its kind cannot be told from its files (a diffusers model_index.json, a "
                    f"sentence-transformers modules.json, or a causal-LM or encoder class under config.json's "
                    f"architectures); say which with --kind, one of {', '.join(takes)}")


def spec_from_flags(arch: str | None, model: str | None, kind: str | None, fields: dict,
                    settings: dict | None = None) -> BaseModel:
    """The one spec `run --arch NAME` or `--model PATH` names: the mapping a YAML `{kind: K, arch: NAME}` (or
    `model: PATH`) with the `--set` fields and the run's other flags (`settings`: backend, dtype ...) would hold,
    validated by spec_from_dict as a file's is, so its records and its resume cannot tell the two apart. The
    kind is the catalog's for an arch; for a path, --kind or what its files tell (`kind` goes with `model` only);
    an .onnx file runs on onnxruntime unless --backend says otherwise (and is then refused as a spec's is)."""
    from ..catalog import arch_kind

    named = [k for k in ("kind", "arch", "model") if k in fields]
    if named:
        raise UserError(f"--set {named[0]}: name the model with --arch NAME or --model PATH (and --kind K), "
                        f"not with --set")
    if arch is not None:
        data, where = {"kind": arch_kind(arch), "arch": arch}, f"--arch {arch}"
    else:
        if kind is not None:
            get_kind(kind, "--kind")
        path = Path(model).expanduser()
        if not path.exists():
            raise UserError(f"--model: model path not found: {path}; give a local Hugging Face or diffusers "
                            f"folder, or an .onnx file")
        data, where = {"kind": kind or local_kind(path), "model": str(path)}, f"--model {model}"
        if path.suffix == ".onnx":  # only ONNX Runtime runs the file: named on the command line, that says it
            data["backend"] = "onnxruntime"
    return spec_from_dict({**data, **fields, **(settings or {})}, where + (" with --set" if fields else ""))
