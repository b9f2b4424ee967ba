"""The built-in architecture catalogs under workloads/architectures/: `architectures(name)` reads a
kind's YAML catalog, and the one LLM architecture catalog is llm_reference.csv.

Both sides read it: the runner builds a published model's Hugging Face config from its row (random
weights), and the planner prices it from the same row, so a shared model id has one source of truth.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import lru_cache

from .errors import UserError, closest
from .paths import data_dir

# Hugging Face config fields by model family, from catalog columns (`None`: omit when the cell is empty).
_FIELDS = {
    "gpt2": {"n_embd": "hidden_size", "n_layer": "num_layers", "n_head": "num_attention_heads",
             "vocab_size": "vocab_size", "n_positions": "max_position_embeddings"},
    "default": {"hidden_size": "hidden_size", "intermediate_size": "intermediate_size",
                "num_hidden_layers": "num_layers", "num_attention_heads": "num_attention_heads",
                "num_key_value_heads": "num_kv_heads", "head_dim": "head_dim", "vocab_size": "vocab_size",
                "max_position_embeddings": "max_position_embeddings", "tie_word_embeddings": "tie_word_embeddings",
                "rope_theta": "rope_theta"},
}


@lru_cache(maxsize=16)
def architectures(name: str) -> dict:
    """workloads/architectures/<name>.yaml as parsed (ids to entries; keys starting with `_` are shared
    YAML anchors, not models, and are left out)."""
    from .inputs import parse_yaml

    raw = parse_yaml((data_dir("workloads") / "architectures" / f"{name}.yaml").read_text())
    return {k: v for k, v in raw.items() if not k.startswith("_")}


@dataclass(frozen=True)
class BuiltinArch:
    """One built-in architecture as `archs` lists it: its kind, what it stands for, and its parameter count
    where the catalog has one (None for the test shapes, whose descriptions give their size)."""
    name: str
    kind: str
    description: str
    params: int | None
    source: str


def _params(catalog: str, name: str, entry: dict) -> int | None:
    """The entry's `params`; a pipeline's, the sum of its components' where each has one; a published LLM's,
    its row in llm_reference.csv."""
    if catalog == "llm" and name in llm_rows():
        return int(llm_rows()[name]["total_params_exact"])
    if isinstance(entry.get("params"), int):
        return entry["params"]
    counts = [c.get("params") for c in (entry.get("components") or {}).values()]
    return sum(counts) if counts and all(isinstance(c, int) for c in counts) else None


@lru_cache(maxsize=1)
def builtin_archs() -> dict[str, BuiltinArch]:
    """Every built-in architecture of every kind, by name, read from the kinds' YAML catalogs (no torch)."""
    from .kinds import KINDS

    out = {}
    for kind in KINDS.values():
        for catalog in kind.catalogs:
            for name, entry in architectures(catalog).items():
                source = " ".join(str(entry.get("source") or (llm_rows().get(name) or {}).get("source", "")).split())
                out[name] = BuiltinArch(name, kind.name, str(entry.get("description", "")),
                                        _params(catalog, name, entry), source)
    return out


def arch_kind(name: str, where: str = "--arch") -> str:
    """The kind whose catalog holds the built-in architecture `name`, or a one-line error suggesting the
    closest name and the command that lists them."""
    archs = builtin_archs()
    if name not in archs:
        raise UserError(f"{where}: unknown architecture '{name}'{closest(name, archs)}; `infra-bench archs` lists "
                        f"the built-in ones")
    return archs[name].kind


@lru_cache(maxsize=1)
def llm_rows() -> dict[str, dict]:
    """id -> the catalog row (strings, as in the CSV)."""
    text = (data_dir("workloads") / "architectures" / "llm_reference.csv").read_text()
    rows = csv.DictReader(io.StringIO("".join(l for l in text.splitlines(True) if not l.startswith("#"))))
    return {r["id"]: r for r in rows}


def _value(text: str):
    t = text.strip()
    if t.lower() in ("true", "false"):
        return t.lower() == "true"
    number = float(t)
    return int(number) if number.is_integer() and "." not in t and "e" not in t.lower() else number


def hf_config(model_id: str, model_type: str) -> dict:
    """The config fields that set a published model's compute and memory shapes, from its row."""
    row = llm_rows()[model_id]
    fields = _FIELDS.get(model_type, _FIELDS["default"])
    return {key: _value(row[column]) for key, column in fields.items() if row.get(column, "").strip()}


def build_component(component: dict, device="meta"):
    """A pipeline component of a YAML catalog entry (`class` and `config`), built on `device` (the meta
    device: no memory) with random weights from the global torch seed, in eval mode. `class` names a
    diffusers model (built from config keywords) or a transformers model (built from its config class).
    A local pipeline folder's component (`path`: its folder) is built from the config.json there, as
    the library reads it."""
    import torch

    cls, path = component["class"], component.get("path")
    with torch.device(device):
        import transformers
        if hasattr(transformers, cls):
            model = getattr(transformers, cls)
            config = model.config_class.from_pretrained(path) if path else model.config_class(**component["config"])
            return model(config).eval()
        import diffusers
        model = getattr(diffusers, cls)
        return (model.from_config(model.load_config(path)) if path else model(**component["config"])).eval()
