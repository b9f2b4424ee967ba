"""A report as plain data: titled sections of paragraphs, notes, tables and images.

Builders (run_report, plan_report) produce it; renderers (render_html, render_markdown) write it,
so both formats always carry the same content.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Text:
    """A paragraph; `note` makes it a call-out for labels a reader must not miss (random weights ...)."""
    text: str
    note: bool = False


@dataclass(frozen=True)
class Table:
    header: list[str]
    rows: list[list[str]]
    caption: str = ""


@dataclass(frozen=True)
class Image:
    """A chart as PNG bytes; the caption says what is measured or estimated, the units and sources."""
    png: bytes
    alt: str
    caption: str


Block = Text | Table | Image


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)
    level: int = 2


@dataclass
class Document:
    title: str
    subtitle: str
    sections: list[Section]

    def images(self) -> list[Image]:
        return [b for s in self.sections for b in s.blocks if isinstance(b, Image)]
