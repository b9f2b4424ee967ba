"""What each request asks for: random prompts, prompts from a file, or lengths drawn from a file
or a built-in distribution; optionally with shared prefixes.

A remote server tokenizes with its own tokenizer, which the load generator does not have. So a
random prompt is `I` words drawn from common English words that are single tokens in the usual
BPE vocabularies (GPT-2, Llama, Qwen): about `I` tokens, plus what the server's chat template
adds. The server's own count (`usage.prompt_tokens`) is what the records keep. For speech, `I`
is characters of text; for images, words of prompt.

Every random word comes from a generator seeded by (salt, load point, request index), so no two
requests of a run share their first words except by chance (1 in 108^16 for the first 16, a KV
block on vLLM), a new run gets a new salt, and the same salt (`--seed`) gives the same requests.
A shared prefix is the one place where requests share text, on purpose: `prefix_groups` fixed
texts of `prefix_len` words, each request starting with one of them, then its own words.
"""
from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..errors import UserError, closest, explain_validation
from ..inputs import load_yaml, read_text
from .target import LLM_APIS

WORDS = ("the of and to in is for on that with as it at by from this be are was or an not but "
         "all can has have will one time new more some about out up so what when which there their "
         "they we you he she his her its them other than then also into only over after first "
         "just like make know take see come think look want give use find tell ask work seem feel "
         "try call good great little own old right big high small large next early young few "
         "people year way day man thing woman life child world school state family group").split()
DEFAULT_INPUT_LEN = {"completions": 128, "chat": 128, "tgi": 128, "speech": 120, "images": 20, "embeddings": 128,
                     "rerank": 128}
DEFAULT_OUTPUT_LEN = 128
DISTRIBUTIONS_FILE = Path(__file__).resolve().parents[2] / "workloads" / "reference" / "length_distributions.yaml"

# The streams of a run's generator, kept apart so that no two draws share a seed.
_PREFIX, _REQUEST, _WARMUP, _LENGTHS = 0, 1, 2, 3


@dataclass(frozen=True)
class RequestInput:
    """One request's content: a prompt (completions, images), chat messages, or text to speak."""
    text: str | None = None
    messages: tuple[dict, ...] | None = None
    output_len: int | None = None


class DatasetLine(BaseModel):
    """One dataset entry: {"prompt": ...} or {"messages": [...]} (chat) or {"input": ...} (speech),
    with an optional "output_len"; or only lengths, {"input_len": I, "output_len": O}."""
    model_config = ConfigDict(extra="forbid")
    prompt: str | None = None
    messages: list[dict] | None = None
    input: str | None = None
    input_len: int | None = Field(default=None, ge=1)
    output_len: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _one_content(self):
        given = [f for f in ("prompt", "messages", "input", "input_len") if getattr(self, f) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of 'prompt', 'messages' (chat), 'input' (speech) or 'input_len' "
                             "(with 'output_len': lengths only)")
        if self.input_len is not None and self.output_len is None:
            raise ValueError("a lengths-only line needs both 'input_len' and 'output_len'")
        for m in self.messages or []:
            if not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
                raise ValueError("each message needs a 'role' and a 'content' string")
        # an empty text is refused by servers (every request of it fails) or sends nothing to measure
        texts = [m["content"] for m in self.messages] if self.messages is not None else [self.prompt or self.input]
        if self.input_len is None and not any(t and t.strip() for t in texts):
            field = next(f for f in ("prompt", "messages", "input") if getattr(self, f) is not None)
            raise ValueError(f"'{field}' has no text; give the text to send, or remove the line")
        return self


@dataclass(frozen=True)
class LengthDistribution:
    """Input and output lengths (tokens) drawn from log-normals given by their median and p90,
    clipped to [1, max]; `source` says whose published statistics they follow."""
    name: str
    description: str
    input_median: float
    input_p90: float
    output_median: float
    output_p90: float
    input_max: int
    output_max: int
    source: str
    stats: dict = field(default_factory=dict)   # the trace's own mean and p99, for comparison

    def __post_init__(self):
        for side in ("input", "output"):
            median, p90, top = (getattr(self, f"{side}_{k}") for k in ("median", "p90", "max"))
            if not 0 < median <= p90 or top < 1:
                raise ValueError(f"length distribution {self.name}: {side} needs 0 < median <= p90 and max >= 1, "
                                 f"not {median} / {p90} / {top}")

    def draw(self, rng: np.random.Generator) -> tuple[int, int]:
        inp, out = self._at(rng.standard_normal(2)[None, :])
        return int(inp[0]), int(out[0])

    def sample(self, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Input and output lengths of `n` requests, request i drawn as `draw` from the generator seeded
        [seed, i] (what `predict --num-prompts N --lengths NAME` runs)."""
        z = np.array([np.random.default_rng([seed, i]).standard_normal(2) for i in range(n)]).reshape(n, 2)
        return self._at(z)

    def scaled(self, input_factor: float, output_factor: float) -> LengthDistribution:
        """The same shape (log-normal widths) with input and output medians, p90s and maxima multiplied by
        the factors; the trace's own statistics are dropped, since they no longer describe it."""
        return replace(self, name=f"{self.name} x{input_factor:.3g} in, x{output_factor:.3g} out",
                       input_median=self.input_median * input_factor, input_p90=self.input_p90 * input_factor,
                       input_max=max(1, round(self.input_max * input_factor)),
                       output_median=self.output_median * output_factor, output_p90=self.output_p90 * output_factor,
                       output_max=max(1, round(self.output_max * output_factor)), stats={})

    def _at(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Lengths at standard-normal deviates z[:, 0] (input) and z[:, 1] (output): whole tokens in [1, max]."""
        def one(median: float, p90: float, top: int, zs: np.ndarray) -> np.ndarray:
            sigma = max(np.log(p90 / median) / 1.2815515655446004, 1e-6)
            return np.clip(np.round(median * np.exp(sigma * zs)), 1, top).astype(np.int64)
        return one(self.input_median, self.input_p90, self.input_max, z[:, 0]), \
            one(self.output_median, self.output_p90, self.output_max, z[:, 1])


def distributions() -> dict[str, LengthDistribution]:
    """The built-in length distributions (workloads/reference/length_distributions.yaml)."""
    data = load_yaml(DISTRIBUTIONS_FILE, "length distributions", "reinstall infra-bench")
    return {name: LengthDistribution(name=name, **d) for name, d in data.items()}


@dataclass(frozen=True)
class SharedPrefix:
    """`groups` texts of `length` words; each request starts with one, chosen at random."""
    length: int
    groups: int


@dataclass(frozen=True)
class Prompts:
    """Where a run's request contents come from; `request(step, index)` is a pure function of the
    salt, the load point's step and the request's index in it (dataset prompts: of the running
    count of requests instead, which the caller passes as `index` with step 0)."""
    api: str
    salt: int
    input_len: int | None = None
    output_len: int | None = None
    prefix: SharedPrefix | None = None
    lines: tuple[DatasetLine, ...] = ()
    distribution: LengthDistribution | None = None
    source: dict | None = None      # what the records say: kind, name, sha256, lines

    def __post_init__(self):
        if self.prefix and self.api not in LLM_APIS:
            raise UserError(f"--shared-prefix-len applies to the chat and completions APIs, not {self.api}")
        if self.prefix and self.input_len is not None and self.prefix.length >= self.input_len:
            raise UserError(f"--shared-prefix-len {self.prefix.length} must be below --input-len {self.input_len} "
                            f"(the prompt is the prefix, then the request's own words)")

    @property
    def one_output_len(self) -> int | None:
        """The output length every request asks for, as the records state it; None when they vary
        (a length distribution, a lengths file, or dataset lines with output lengths of their own)."""
        if self.distribution or (self.lines and self.lines[0].input_len is not None):
            return None
        asked = {line.output_len or self.output_len for line in self.lines} or {self.output_len}
        return asked.pop() if len(asked) == 1 else None

    @property
    def fixed_texts(self) -> bool:
        """Dataset prompts: the same texts come round again once the file is used up."""
        return bool(self.lines) and self.lines[0].input_len is None

    def request(self, step: int, index: int) -> RequestInput:
        rng = np.random.default_rng([self.salt, _REQUEST, step, index])
        if self.fixed_texts:
            return _from_line(self.lines[index % len(self.lines)], self.api, self.output_len)
        if self.lines:
            line = self.lines[np.random.default_rng([self.salt, _LENGTHS, step, index]).integers(len(self.lines))]
            in_len, out_len = line.input_len, line.output_len
        elif self.distribution:
            in_len, out_len = self.distribution.draw(np.random.default_rng([self.salt, _LENGTHS, step, index]))
        else:
            in_len, out_len = self.input_len, self.output_len
        return self._random(rng, in_len, out_len)

    def warmup(self, index: int) -> RequestInput:
        """Warm-up request `index`, never one a point sends later (a prefix cache would serve that one
        from memory). The first has the test's longest shape (`longest`), as vLLM's initial test run
        sends a real request: a server that refuses that length says so before anything is measured.
        The others are random and short (up to 32 words for LLM APIs, the API's default length else)."""
        rng = np.random.default_rng([self.salt, _WARMUP, index])
        if index == 0:
            return self.longest()[0]
        in_len = min(self.input_len or 32, 32) if self.api in LLM_APIS else DEFAULT_INPUT_LEN[self.api]
        return RequestInput(text=random_text(rng, in_len)) if self.api == "speech" else \
            self._content(random_words(rng, in_len), self.output_len or DEFAULT_OUTPUT_LEN)

    def longest(self) -> tuple[RequestInput, str, str]:
        """The first warm-up request, its shape in words, and what to change when a server refuses it.

        Random prompts: `input_len` words (speech: characters) from the warm-up stream, no shared prefix,
        with the test's output length. A lengths file: its line of most input plus output tokens (what
        vLLM checks against max_model_len). A distribution: its p90 input and p90 output (one request in
        ten is longer; its longest draws are rare enough to count as failures, not to stop the run).
        A prompts file: its longest entry with its first word moved to the end (same length, not the
        same prefix)."""
        rng = np.random.default_rng([self.salt, _WARMUP, 0])
        if self.fixed_texts:
            def chars(x: DatasetLine) -> int:
                return sum(len(m["content"]) for m in x.messages) if x.messages else len(x.prompt or x.input or "")
            line = max(self.lines, key=chars)
            inp = _from_line(line, self.api, self.output_len)
            out = f", {inp.output_len} output tokens" if inp.output_len else ""
            return _rotated(inp), f"the --dataset's longest prompt{out}", "shorten the --dataset's longest prompts"
        if self.lines:
            line = max(self.lines, key=lambda x: (x.input_len + x.output_len, x.input_len))
            in_len, out_len = line.input_len, line.output_len
            what, fix = "the --dataset's longest line: ", "drop or shorten the --dataset's longest lines"
        elif self.distribution:
            d = self.distribution
            in_len, out_len = min(round(d.input_p90), d.input_max), min(round(d.output_p90), d.output_max)
            what, fix = f"the p90 of --lengths {d.name}: ", "choose another --lengths"
        else:
            in_len, out_len = self.input_len, self.output_len
            what, fix = "", "lower --input-len" + (" or --output-len" if self.api in LLM_APIS else "")
        what += f"{in_len} input {'characters' if self.api == 'speech' else 'words'}"
        what += f", {out_len} output tokens" if out_len else ""
        if self.api == "speech":
            return RequestInput(text=random_text(rng, in_len)), what, fix
        return self._content(random_words(rng, in_len), out_len), what, fix

    def _random(self, rng: np.random.Generator, in_len: int, out_len: int | None) -> RequestInput:
        if self.api == "speech":
            return RequestInput(text=random_text(rng, in_len))
        words = random_words(rng, in_len)
        if self.prefix:
            group = int(rng.integers(self.prefix.groups))
            head = random_words(np.random.default_rng([self.salt, _PREFIX, group]), self.prefix.length)
            tail = words.split(" ")[self.prefix.length:] or [random_words(rng, 1)]
            words = head + " " + " ".join(tail)
        return self._content(words, out_len)

    def _content(self, words: str, out_len: int | None) -> RequestInput:
        if self.api == "chat":
            return RequestInput(messages=({"role": "user", "content": words},), output_len=out_len)
        return RequestInput(text=words, output_len=out_len if self.api in LLM_APIS else None)


def random_words(rng: np.random.Generator, n: int) -> str:
    return " ".join(WORDS[i] for i in rng.integers(0, len(WORDS), n))


def random_text(rng: np.random.Generator, chars: int) -> str:
    """Words joined up to exactly `chars` characters (a sentence-like text to speak)."""
    text = ""
    while len(text) < chars:
        text += random_words(rng, 16) + ". "
    text = text[:chars]
    return text[:-1] + "." if text.endswith(" ") else text


def load_dataset(path: Path, api: str) -> tuple[tuple[DatasetLine, ...], dict]:
    """Every entry of a JSONL or CSV file, checked for `api`, and what the records say of the file
    (its name, sha256 and number of lines). CSV: a header row naming the same fields."""
    raw = read_text(path, "dataset file", "give --dataset a JSONL or CSV file (see docs/endpoints.md)")
    rows = _csv_rows(raw, path) if path.suffix.lower() == ".csv" else _jsonl_rows(raw, path)
    lines = []
    for where, fields in rows:
        try:
            line = DatasetLine(**fields)
        except TypeError:
            raise UserError(f"{where}: each entry must be an object like {{\"prompt\": \"...\"}}") from None
        except ValidationError as e:
            raise UserError(explain_validation(e, where, DatasetLine.model_fields)) from None
        _check_for_api(line, api, where)
        lines.append(line)
    if not lines:
        raise UserError(f"--dataset {path}: no entries; give one JSON object per line (or CSV rows under a header)")
    if len({line.input_len is None for line in lines}) > 1:
        raise UserError(f"--dataset {path}: mixes prompts and lengths-only entries; give one kind per file")
    return tuple(lines), {"kind": "lengths file" if lines[0].input_len else "prompts file", "name": str(path),
                          "sha256": hashlib.sha256(raw.encode()).hexdigest(), "lines": len(lines)}


def _jsonl_rows(raw: str, path: Path):
    for n, text in enumerate(raw.splitlines(), 1):
        if not text.strip():
            continue
        try:
            fields = json.loads(text)
        except json.JSONDecodeError as e:
            raise UserError(f"{path}:{n}: not JSON ({e.msg}); each line must be one JSON object") from None
        if not isinstance(fields, dict):
            raise UserError(f"{path}:{n}: each line must be a JSON object like {{\"prompt\": \"...\"}}")
        yield f"{path}:{n}", fields


def _csv_rows(raw: str, path: Path):
    reader = csv.DictReader(raw.splitlines())
    known = set(DatasetLine.model_fields) - {"messages"}
    unknown = [h for h in reader.fieldnames or [] if h not in known]
    if unknown:
        raise UserError(f"{path}: unknown CSV column '{unknown[0]}'{closest(unknown[0], known)}; the header names "
                        f"prompt (or input) and/or input_len, output_len")
    for n, row in enumerate(reader, 2):
        fields = {k: v for k, v in row.items() if v not in (None, "")}
        for k in ("input_len", "output_len"):
            if k in fields:
                try:
                    fields[k] = int(fields[k])
                except ValueError:
                    raise UserError(f"{path}:{n}: {k} '{fields[k]}' is not a whole number") from None
        yield f"{path}:{n}", fields


def _check_for_api(line: DatasetLine, api: str, where: str) -> None:
    if line.messages is not None and api != "chat":
        raise UserError(f"{where}: 'messages' needs --api chat; give 'prompt' for the {api} API")
    if api not in LLM_APIS and line.output_len is not None:
        raise UserError(f"{where}: 'output_len' applies to the chat and completions APIs, not {api}")


def _rotated(inp: RequestInput) -> RequestInput:
    """`inp` with the first word of its (first message's) text moved to the end: as long, to the
    character, but starting otherwise, so a prefix cache does not serve the real request from it."""
    def rotate(text: str) -> str:
        words = text.split(" ")
        return " ".join(words[1:] + words[:1])
    if inp.messages:
        first = {**inp.messages[0], "content": rotate(inp.messages[0]["content"])}
        return RequestInput(messages=(first, *inp.messages[1:]), output_len=inp.output_len)
    return RequestInput(text=rotate(inp.text or ""), output_len=inp.output_len)


def _from_line(line: DatasetLine, api: str, default_output_len: int | None) -> RequestInput:
    out_len = line.output_len or default_output_len
    if api == "chat":
        messages = line.messages or [{"role": "user", "content": line.prompt or line.input}]
        return RequestInput(messages=tuple(messages), output_len=out_len)
    text = line.input if line.input is not None else line.prompt
    return RequestInput(text=text, output_len=out_len if api in LLM_APIS else None)
