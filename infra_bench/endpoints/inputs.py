"""What each request asks for: seeded random prompts of a given length, or a JSONL dataset.

A remote server tokenizes with its own tokenizer, which the load generator does not have. So a
random prompt is `I` words drawn (seeded) from common English words that are single tokens in
the usual BPE vocabularies (GPT-2, Llama, Qwen): about `I` tokens, plus what the server's chat
template adds. The server's own count (`usage.prompt_tokens`) is what the records keep.
For speech, `I` is characters of text; for images, words of prompt.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..errors import UserError, explain_validation

WORDS = ("the of and to in is for on that with as it at by from this be are was or an not but "
         "all can has have will one time new more some about out up so what when which there their "
         "they we you he she his her its them other than then also into only over after first").split()
DEFAULT_INPUT_LEN = {"completions": 128, "chat": 128, "speech": 120, "images": 20}
DEFAULT_OUTPUT_LEN = 128


@dataclass(frozen=True)
class RequestInput:
    """One request's content: a prompt (completions, images), chat messages, or text to speak."""
    text: str | None = None
    messages: tuple[dict, ...] | None = None
    output_len: int | None = None


class DatasetLine(BaseModel):
    """One JSONL line: {"prompt": ...} or {"messages": [...]} (chat) or {"input": ...} (speech),
    with an optional "output_len" (LLM APIs)."""
    model_config = ConfigDict(extra="forbid")
    prompt: str | None = None
    messages: list[dict] | None = None
    input: str | None = None
    output_len: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _one_content(self):
        given = [f for f in ("prompt", "messages", "input") if getattr(self, f) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of 'prompt', 'messages' (chat) or 'input' (speech)")
        for m in self.messages or []:
            if not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
                raise ValueError("each message needs a 'role' and a 'content' string")
        return self


def random_words(rng: np.random.Generator, n: int) -> str:
    return " ".join(WORDS[i] for i in rng.integers(0, len(WORDS), n))


def random_text(rng: np.random.Generator, chars: int) -> str:
    """Words joined up to exactly `chars` characters (a sentence-like text to speak)."""
    text = ""
    while len(text) < chars:
        text += random_words(rng, 16) + ". "
    text = text[:chars]
    return text[:-1] + "." if text.endswith(" ") else text


def random_inputs(api: str, count: int, input_len: int, output_len: int | None, seed: int) -> list[RequestInput]:
    """`count` distinct seeded inputs (distinct prompts keep prefix caches honest)."""
    rng = np.random.default_rng(seed)
    if api == "speech":
        return [RequestInput(text=random_text(rng, input_len)) for _ in range(count)]
    if api == "chat":
        return [RequestInput(messages=({"role": "user", "content": random_words(rng, input_len)},),
                             output_len=output_len) for _ in range(count)]
    return [RequestInput(text=random_words(rng, input_len), output_len=output_len if api != "images" else None)
            for _ in range(count)]


def load_dataset(path: Path, api: str, default_output_len: int) -> list[RequestInput]:
    """Every line of a JSONL file, checked for `api`; requests cycle through them in file order."""
    if not path.is_file():
        raise UserError(f"--dataset {path}: file not found; give a JSONL file (one JSON object per line)")
    out: list[RequestInput] = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            where = f"{path}:{n}"
            try:
                line = DatasetLine(**json.loads(raw))
            except json.JSONDecodeError as e:
                raise UserError(f"{where}: not JSON ({e.msg}); each line must be one JSON object") from None
            except TypeError:
                raise UserError(f"{where}: each line must be a JSON object like {{\"prompt\": \"...\"}}") from None
            except ValidationError as e:
                raise UserError(explain_validation(e, where, DatasetLine.model_fields)) from None
            out.append(_for_api(line, api, default_output_len, where))
    if not out:
        raise UserError(f"--dataset {path}: no lines; give one JSON object per line")
    return out


def _for_api(line: DatasetLine, api: str, default_output_len: int, where: str) -> RequestInput:
    out_len = line.output_len or default_output_len
    if api == "chat":
        messages = line.messages or [{"role": "user", "content": line.prompt or line.input}]
        return RequestInput(messages=tuple(messages), output_len=out_len)
    if line.messages is not None:
        raise UserError(f"{where}: 'messages' needs --api chat; give 'prompt' for the {api} API")
    if api in ("speech", "images") and line.output_len is not None:
        raise UserError(f"{where}: 'output_len' applies to the chat and completions APIs, not {api}")
    text = line.input if line.input is not None else line.prompt
    return RequestInput(text=text, output_len=out_len if api == "completions" else None)
