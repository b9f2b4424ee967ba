"""Text <-> token ids for served LLMs.

A local checkpoint with a tokenizer uses it. Built-in architectures have none (no network, no
tokenizer files): each whitespace-separated word becomes one token id (a stable hash into the
vocabulary) and each generated id comes back as the text piece " <id>". So a prompt of I words
is exactly I prompt tokens, and a client counting words or chunks counts tokens; the text
itself means nothing (random weights).

A pair (a reranker's query and passage) is encoded as the model was trained to read one: the
tokenizer's own pair template (BERT: `[CLS] q [SEP] d [SEP]` with token types 0 then 1; XLM-RoBERTa:
`<s> q </s></s> d </s>`), or, without a tokenizer, the two id lists joined.
"""
from __future__ import annotations

import zlib
from pathlib import Path
from typing import Protocol


class Codec(Protocol):
    description: str    # what a served model's card says of its text, input (and output for an LLM)
    reads: str          # the input half of it: what an embedder's or reranker's card says

    def encode(self, text: str) -> list[int]: ...

    def encode_chat(self, messages: list[dict]) -> list[int]: ...

    def encode_pair(self, first: str, second: str) -> tuple[list[int], list[int] | None]: ...

    def piece(self, token: int) -> str: ...


class WordCodec:
    reads = "no tokenizer: one token per whitespace-separated word"
    description = f"{reads}; output token ids as text ' <id>'"

    def __init__(self, vocab_size: int):
        self.vocab_size = vocab_size

    def encode(self, text: str) -> list[int]:
        return [zlib.crc32(w.encode()) % self.vocab_size for w in text.split()]

    def encode_chat(self, messages: list[dict]) -> list[int]:
        return self.encode(" ".join(m["content"] for m in messages))

    def encode_pair(self, first: str, second: str) -> tuple[list[int], list[int] | None]:
        """The two texts' ids joined, one per word; no token types."""
        return self.encode(first) + self.encode(second), None

    def piece(self, token: int) -> str:
        return f" {token}"


class HfCodec:
    description = reads = "the checkpoint's tokenizer"

    def __init__(self, tokenizer):
        self.tok = tokenizer

    def encode(self, text: str) -> list[int]:
        return list(self.tok(text)["input_ids"])

    def encode_chat(self, messages: list[dict]) -> list[int]:
        if not getattr(self.tok, "chat_template", None):
            return self.encode("\n".join(m["content"] for m in messages))
        ids = self.tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        return list(ids["input_ids"] if hasattr(ids, "keys") else ids)

    def encode_pair(self, first: str, second: str) -> tuple[list[int], list[int] | None]:
        """(ids, token type ids or None) from the tokenizer's own pair call, special tokens as it places
        them; token types only where the tokenizer makes them (BERT's, not XLM-RoBERTa's)."""
        enc = self.tok(first, text_pair=second)
        types = enc.get("token_type_ids")
        return list(enc["input_ids"]), None if types is None else list(types)

    def piece(self, token: int) -> str:
        return self.tok.decode([token])


def codec_for(model_path: Path | None, vocab_size: int) -> Codec:
    """The checkpoint folder's tokenizer when it has one that loads offline, else WordCodec."""
    if model_path is not None and Path(model_path).is_dir():
        try:
            from transformers import AutoTokenizer
            return HfCodec(AutoTokenizer.from_pretrained(model_path, local_files_only=True))
        except Exception:  # no tokenizer files, or ones that need the network: fall back, say so in the card
            pass
    return WordCodec(vocab_size)
