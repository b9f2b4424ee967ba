"""A Document as Markdown: pipe tables, notes as block quotes, and each chart as a PNG file in a
`<name>_files/` folder next to the .md (relative links, so the pair can be moved together and
read in any Markdown viewer or code-review tool, none of which agree on data URIs)."""
from __future__ import annotations

from pathlib import Path

from .document import Block, Document, Image, Table, Text


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ") or " "


def _table(t: Table) -> list[str]:
    lines = ["| " + " | ".join(map(_cell, t.header)) + " |", "|" + "---|" * len(t.header)]
    lines += ["| " + " | ".join(map(_cell, row)) + " |" for row in t.rows]
    return lines + (["", f"*{t.caption}*"] if t.caption else [])  # a line right after a table would join it


def files_folder(out: Path) -> Path:
    """Where the charts of a Markdown report go: report.md -> report_files/."""
    return out.with_name(f"{out.stem}_files")


def write(doc: Document, out: Path) -> list[Path]:
    """Write `out` and its charts; returns the chart files. Old charts in the folder are replaced. The text is
    written before the charts, so a report file that cannot be written leaves the old charts alone."""
    folder = files_folder(out)
    charts: list[tuple[Path, bytes]] = []

    def block(b: Block) -> list[str]:
        if isinstance(b, Text):
            return [f"> **Note:** {b.text}" if b.note else b.text]
        if isinstance(b, Table):
            return _table(b)
        if isinstance(b, Image):
            path = folder / f"chart-{len(charts) + 1:02d}.png"
            charts.append((path, b.png))
            return [f"![{b.alt}]({folder.name}/{path.name})", "", f"*{b.caption}*"]
        raise TypeError(f"unknown block {type(b).__name__}")

    lines = [f"# {doc.title}", "", doc.subtitle, ""]
    for s in doc.sections:
        lines += ["#" * s.level + " " + s.title, ""]
        for b in s.blocks:
            lines += [*block(b), ""]
    folder.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines), encoding="utf-8")
    for old in folder.glob("chart-*.png"):
        old.unlink()
    for path, png in charts:
        path.write_bytes(png)
    return [path for path, _ in charts]
