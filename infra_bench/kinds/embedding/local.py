"""A local embedder or reranker folder (`model: PATH`): a Hugging Face folder, optionally in the
sentence-transformers layout, checked as kind llm checks its folders (workloads/files.py:hf_folder).

What the folder is, read from its files alone:
- a reranker: config.json's `architectures` is a `*ForSequenceClassification` with one label; it is built
  with AutoModelForSequenceClassification and its one logit is the score;
- otherwise an embedder, built with AutoModel. Its pooling comes from sentence-transformers' `modules.json`
  and the Pooling module's `config.json` (`pooling_mode_cls_token` -> cls, `pooling_mode_mean_tokens` ->
  mean, `pooling_mode_lasttoken` -> last_token), L2-normalized when a Normalize module is listed. Without a
  Pooling module the default is sentence-transformers' own for a plain folder: mean pooling, not normalized.

A causal LM folder (`*ForCausalLM`) is an embedder only when its modules.json says how to pool it (as
Qwen3-Embedding ships); without that it is refused rather than timed as a guess.
"""
from __future__ import annotations

from pathlib import Path

from ...errors import UserError
from ...workloads.files import hash_files, hf_folder, json_file, own_code

POOLING_MODES = {"pooling_mode_cls_token": "cls", "pooling_mode_mean_tokens": "mean",
                 "pooling_mode_lasttoken": "last_token"}
DEFAULT_POOLING = ("mean", False, "default (no sentence-transformers Pooling module): mean, not normalized")
RUN_MODULES = ("Transformer", "Pooling", "Normalize")
LM_HEADS = ("ForCausalLM", "LMHeadModel", "ForConditionalGeneration")


def _modules(folder: Path) -> list[dict] | None:
    """sentence-transformers' module list, or None without modules.json."""
    path = folder / "modules.json"
    if not path.is_file():
        return None
    mods = json_file(path)
    if not isinstance(mods, list) or not all(isinstance(m, dict) and isinstance(m.get("type"), str) for m in mods):
        raise UserError(f"{path}: not a sentence-transformers module list (a JSON list of {{type, path}}); "
                        f"fix the file or remove it")
    for m in mods:
        m["short"] = m["type"].rsplit(".", 1)[-1]
    return mods


def _pooling(folder: Path, mods: list[dict] | None) -> tuple[str, bool, str, list[Path]]:
    """(pooling, normalize, where it came from, the files read)."""
    if mods is None:
        return (*DEFAULT_POOLING, [])
    other = [m["type"] for m in mods if m["short"] not in RUN_MODULES]
    if other:
        raise UserError(f"{folder / 'modules.json'}: module {other[0]} is not run by kind: embedding (it runs "
                        f"{', '.join(RUN_MODULES)}); remove it from modules.json to time the model without it")
    pool = [m for m in mods if m["short"] == "Pooling"]
    normalize = any(m["short"] == "Normalize" for m in mods)
    if not pool:
        said = "default (no Pooling module in modules.json): mean" + (" + Normalize" if normalize else ", not normalized")
        return "mean", normalize, said, [folder / "modules.json"]
    path = folder / pool[0].get("path", "") / "config.json"
    if not path.is_file():
        raise UserError(f"{path}: not found, though modules.json lists a Pooling module there; "
                        f"copy the folder again with its {pool[0].get('path')} subfolder")
    cfg = json_file(path)
    on = [k for k, v in cfg.items() if k.startswith("pooling_mode_") and v is True] if isinstance(cfg, dict) else []
    if len(on) != 1 or on[0] not in POOLING_MODES:
        raise UserError(f"{path}: pooling {' + '.join(on) or 'none set'} is not supported; kind: embedding pools by "
                        f"exactly one of {', '.join(POOLING_MODES)}")
    rel = path.relative_to(folder)
    return POOLING_MODES[on[0]], normalize, f"{rel}" + (" + Normalize" if normalize else ""), \
        [folder / "modules.json", path]


def is_local_embedder(path: Path) -> bool:
    """A folder in the sentence-transformers layout (modules.json), or one whose config.json names a sequence
    classifier (a reranker) or an encoder's base model (BertModel, XLMRobertaModel: what AutoModel saves)."""
    from ...workloads.files import config_json

    if not path.is_dir():
        return False
    if (path / "modules.json").is_file():
        return True
    raw = config_json(path)
    saved = [str(a) for a in raw.get("architectures") or []]
    return not raw.get("is_encoder_decoder") and any(
        a.endswith("ForSequenceClassification") or (a.endswith("Model") and not a.endswith(LM_HEADS)) for a in saved)


def resolve_folder(folder: Path, trust_remote_code: bool) -> tuple[Path, object, dict]:
    """(the transformers folder, its config, the record's model fields) of a local embedder or reranker;
    every problem is a one-line UserError."""
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES as classifiers,
    )
    from transformers.models.auto.modeling_auto import MODEL_MAPPING_NAMES as bases

    if folder.suffix == ".onnx":
        raise UserError(f"{folder}: an .onnx file is not taken by kind: embedding; give the Hugging Face folder "
                        f"it was exported from (backend onnxruntime exports and parity-checks it)")
    mods = _modules(folder) if folder.is_dir() else None
    transformer = next((m for m in mods or [] if m["short"] == "Transformer"), None)
    hf = folder / transformer["path"] if transformer and transformer.get("path") else folder
    cfg, raw, weights = hf_folder(hf, trust_remote_code, "(config.json + *.safetensors, as sentence-transformers "
                                                         "or save_pretrained writes it)")
    saved = [str(a) for a in (getattr(cfg, "architectures", None) or [])]
    runs_own_code = bool(raw.get("auto_map"))
    if getattr(cfg, "is_encoder_decoder", False):
        raise UserError(f"{hf}: model_type '{cfg.model_type}' is an encoder-decoder model; kind: embedding runs "
                        f"encoder or decoder embedders (BERT, XLM-RoBERTa, Qwen3 ...) and cross-encoders")
    if any(a.endswith("ForSequenceClassification") for a in saved):
        task, pooling, normalize, said, read = "rerank", "none", False, "the checkpoint's classifier head", []
        if cfg.num_labels != 1:
            raise UserError(f"{hf}: {saved[0]} has {cfg.num_labels} labels; a reranker (cross-encoder) scores with "
                            f"one, so this is a classifier, not a reranker")
        if not runs_own_code and cfg.model_type not in classifiers:
            raise UserError(f"{hf}: model_type '{cfg.model_type}' has no sequence classifier in transformers; "
                            f"kind: embedding cannot score with it")
    else:
        task = "embed"
        pooling, normalize, said, read = _pooling(folder, mods)
        lm = [a for a in saved if a.endswith(LM_HEADS)]
        if lm and not any(m["short"] == "Pooling" for m in mods or []):
            raise UserError(f"{hf}: config.json's architectures {', '.join(lm)} is a language model, not an "
                            f"embedder: nothing says how to pool it; an LLM-based embedder ships sentence-transformers' "
                            f"modules.json and 1_Pooling/config.json (as Qwen3-Embedding does), or use kind: llm")
        if not runs_own_code and cfg.model_type not in bases:
            raise UserError(f"{hf}: model_type '{cfg.model_type}' has no base model in transformers (AutoModel); "
                            f"kind: embedding cannot embed with it")
    info = {"path": str(folder.resolve()), "model_type": cfg.model_type, "architectures": saved, "task": task,
            "pooling": pooling, "normalize": normalize, "pooling_from": said, "weights": "checkpoint",
            "weights_hash": hash_files(weights + [hf / "config.json"] + read), **own_code(raw)}
    return hf, cfg, info
