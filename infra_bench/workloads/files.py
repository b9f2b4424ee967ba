"""Content hashes of model files, for the record (streamed: checkpoints can be large)."""
from __future__ import annotations

import hashlib
import re
from pathlib import Path


def hash_files(files: list[Path]) -> str:
    h = hashlib.sha256()
    for f in sorted(files):
        h.update(f.name.encode())
        with open(f, "rb") as fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
    return "sha256:" + h.hexdigest()


def safetensors_problem(path: Path) -> str | None:
    """Why a .safetensors file cannot be loaded (a truncated copy, a file that is not safetensors),
    read from its header and size alone; None when it is whole."""
    import json

    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            return f"{size} bytes, shorter than a safetensors header"
        n = int.from_bytes(head, "little")
        if n > size - 8:
            return f"its header claims {n} bytes but the file has {size}: not a safetensors file, or cut short"
        try:
            header = json.loads(fh.read(n))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return "its header is not valid JSON: not a safetensors file"
    ends = [v["data_offsets"][1] for k, v in header.items()
            if k != "__metadata__" and isinstance(v, dict) and "data_offsets" in v]
    need = 8 + n + max(ends, default=0)
    if size < need:
        return f"{size} bytes of the {need} its header describes: cut short"
    return None


def json_file(path: Path) -> object:
    """A JSON file's content; one that cannot be read or parsed (not UTF-8, cut short) is a one-line UserError."""
    import json

    from ..errors import UserError

    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"{path}: unreadable ({type(e).__name__}: {e}); fix or replace the file") from None


def config_fields(folder: Path) -> dict:
    """A model folder's config.json, which must hold a JSON object of fields (as save_pretrained writes it)."""
    from ..errors import UserError

    raw = json_file(folder / "config.json")
    if not isinstance(raw, dict):
        raise UserError(f"{folder / 'config.json'}: holds a JSON {type(raw).__name__}, not the object of fields "
                        f"save_pretrained writes; fix or replace the file")
    return raw


def hf_folder(folder: Path, trust_remote_code: bool = False, what: str = "(config.json + *.safetensors)"):
    """A local Hugging Face model folder checked before anything is built: it exists, has a config.json
    that transformers loads, whole *.safetensors weights (pickled ones are refused), and no code of its own
    unless `trust_remote_code`. Returns (config, config.json as a dict, the weight files); every problem is
    a one-line UserError naming the fix."""
    from transformers import AutoConfig

    from ..errors import UserError

    if not folder.is_dir():
        raise UserError(f"model path not found: {folder}; give a local Hugging Face folder {what}")
    if not (folder / "config.json").is_file():
        raise UserError(f"{folder}: no config.json; a Hugging Face model folder is expected")
    weights = sorted(folder.glob("*.safetensors"))
    if not weights:
        pickled = sorted(p.name for p in folder.glob("*.bin")) + sorted(p.name for p in folder.glob("*.pt"))
        found = f" (found {', '.join(pickled[:3])}, which are pickle files)" if pickled else ""
        raise UserError(f"{folder}: no *.safetensors weights{found}; pickled weights are not loaded "
                        f"for safety; convert them with save_pretrained(..., safe_serialization=True)")
    for w in weights:
        if why := safetensors_problem(w):
            raise UserError(f"{w}: {why}; copy the file again (or re-save the model with save_pretrained)")
    raw = config_fields(folder)
    if raw.get("auto_map") and not trust_remote_code:
        raise UserError(f"{folder}: this model needs its own Python code (auto_map in config.json); "
                        f"read that code, then pass --trust-remote-code if you accept running it")
    if isinstance(raw.get("auto_map"), dict):
        _check_own_code(folder, raw["auto_map"])
    try:
        cfg = AutoConfig.from_pretrained(folder, local_files_only=True, trust_remote_code=trust_remote_code)
    except Exception as e:
        said = re.sub(r"[^.;]*https?://\S+", "", str(e).splitlines()[0] if str(e) else "").strip()  # no Hub links
        fix = "check the folder's own code (auto_map in config.json)" if raw.get("auto_map") else "check model_type"
        raise UserError(f"{folder}: config.json cannot be loaded by transformers ({type(e).__name__}: "
                        f"{said}); {fix}") from None
    return cfg, raw, weights


def config_json(folder: Path) -> dict:
    """A folder's config.json as a dict, or {} where it is absent or unreadable: for telling a folder's kind,
    cheaply; the kind's own checks (hf_folder) then say what is wrong with it."""
    import json

    try:
        raw = json.loads((folder / "config.json").read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return raw if isinstance(raw, dict) else {}


def check_loaded(folder: Path, model: object, missing: list[str]) -> None:
    """Refuse a checkpoint that lacks weights its model needs (`missing`, from transformers' loading info):
    transformers fills them with random values, and the run would time them labelled as the checkpoint."""
    from ..errors import UserError

    if missing:
        raise UserError(f"{folder}: the checkpoint lacks {len(missing)} of {type(model).__name__}'s weights "
                        f"(such as {min(missing)}); it was not saved from a model of this kind")


def own_code(raw: dict) -> dict:
    """The record's model field for a folder that runs its own Python code (auto_map in its config.json, run
    under --trust-remote-code); {} for one that transformers' own classes run."""
    return {"own_code": True} if raw.get("auto_map") else {}


def _check_own_code(folder: Path, auto_map: dict) -> None:
    """Refuse a folder whose auto_map names code it does not hold: transformers would look for the file
    on the Hugging Face Hub (there is no network here) and its error points at model_type."""
    from ..errors import UserError

    for key, refs in auto_map.items():
        for ref in refs if isinstance(refs, list) else [refs]:
            if not isinstance(ref, str):
                continue
            if "--" in ref:
                repo, ref = ref.split("--", 1)
                raise UserError(f"{folder}: config.json's auto_map gives {key} as code from the repository {repo}, "
                                f"which is not read (no downloads); copy its {ref.rsplit('.', 1)[0]}.py into the "
                                f"folder and write the entry as '{ref}'")
            file = ref.rsplit(".", 1)[0].replace(".", "/") + ".py"
            if not (folder / file).is_file():
                raise UserError(f"{folder}: config.json's auto_map names {key} '{ref}', but {file} is not in the "
                                f"folder; copy {file} from where the model was published into {folder}")
