"""Counting output tokens with the served model's own tokenizer, from a local folder (never a
download), for servers that stream no `usage`."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError


@dataclass(frozen=True)
class Tokenizer:
    path: str
    impl: object

    def count(self, text: str) -> int:
        return len(self.impl(text, add_special_tokens=False)["input_ids"])


def load(path: Path) -> Tokenizer:
    """The tokenizer saved in `path` (tokenizer.json / tokenizer_config.json); one-line errors."""
    if not path.is_dir():
        raise UserError(f"--tokenizer {path}: not a folder; give the local folder holding the served model's "
                        f"tokenizer files (tokenizer.json, tokenizer_config.json)")
    from transformers import AutoTokenizer

    try:
        impl = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError, KeyError) as e:
        raise UserError(f"--tokenizer {path}: no tokenizer could be loaded ({str(e).splitlines()[0][:120]}); give "
                        f"the folder the model's tokenizer was saved to") from None
    return Tokenizer(str(path), impl)
