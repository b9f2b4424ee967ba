"""OpenAI request bodies (validated; unknown sampling fields are accepted and ignored: decoding
is greedy) and the response objects and stream chunks we send back."""
from __future__ import annotations

import json
import time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .. import __version__
from ..spec.tts import SPEECH_INPUT_MAX_CHARS

DEFAULT_MAX_TOKENS = 16  # OpenAI's default for completions


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool = False


class _Generation(_Body):
    max_tokens: int | None = Field(default=None, ge=1)
    min_tokens: int = Field(default=0, ge=0)
    ignore_eos: bool = False  # always true in effect: no EOS stops generation here
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = 1

    @model_validator(mode="after")
    def _checks(self):
        if self.n != 1:
            raise ValueError("n must be 1 here (one completion per request)")
        if self.min_tokens > self.tokens:
            raise ValueError(f"min_tokens ({self.min_tokens}) exceeds max_tokens ({self.tokens})")
        return self

    @property
    def tokens(self) -> int:
        return self.max_tokens or DEFAULT_MAX_TOKENS

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


class CompletionRequest(_Generation):
    prompt: str | list[int] | list[str]


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    content: str | list[dict] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return " ".join(str(p.get("text", "")) for p in self.content if p.get("type") == "text")
        return self.content or ""


class ChatRequest(_Generation):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)

    @property
    def tokens(self) -> int:
        return self.max_completion_tokens or self.max_tokens or DEFAULT_MAX_TOKENS


class SpeechRequest(_Body):
    input: str = Field(min_length=1, max_length=SPEECH_INPUT_MAX_CHARS)
    voice: str | None = None
    response_format: Literal["wav"] = "wav"


class ImagesRequest(_Body):
    prompt: str = ""
    n: int = Field(default=1, ge=1, le=4)
    size: str | None = None
    response_format: Literal["b64_json"] = "b64_json"


def sse(obj: dict | str) -> bytes:
    return b"data: " + (obj if isinstance(obj, str) else json.dumps(obj, separators=(",", ":"))).encode() + b"\n\n"


def usage(prompt: int, completion: int) -> dict:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def fingerprint(weights: str | None) -> str:
    """system_fingerprint: who answered, and with which kind of weights (random ones say so)."""
    return f"infra-bench-{__version__}-{weights or 'unknown'}-weights"


def chunk(rid: str, model: str, chat: bool, text: str, first: bool, finish: str | None, fp: str) -> dict:
    if chat:
        delta = {"role": "assistant", "content": text} if first else {"content": text}
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
    else:
        choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish}
    return {"id": rid, "object": "chat.completion.chunk" if chat else "text_completion", "created": int(time.time()),
            "model": model, "system_fingerprint": fp, "choices": [choice]}


def usage_chunk(rid: str, model: str, chat: bool, prompt: int, completion: int, fp: str) -> dict:
    return {"id": rid, "object": "chat.completion.chunk" if chat else "text_completion", "created": int(time.time()),
            "model": model, "system_fingerprint": fp, "choices": [], "usage": usage(prompt, completion)}


def completion(rid: str, model: str, chat: bool, text: str, prompt: int, completion_tokens: int, fp: str) -> dict:
    choice = ({"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": None,
               "finish_reason": "length"} if chat else
              {"index": 0, "text": text, "logprobs": None, "finish_reason": "length"})
    return {"id": rid, "object": "chat.completion" if chat else "text_completion", "created": int(time.time()),
            "model": model, "system_fingerprint": fp, "choices": [choice],
            "usage": usage(prompt, completion_tokens)}


def error(message: str, status: int, kind: str = "invalid_request_error") -> dict:
    return {"error": {"message": message, "type": kind, "code": status}}
