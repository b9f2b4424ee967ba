"""Assemble and write a report: runs and plans in, one HTML file (or Markdown + chart files) out.

`write_report` is the entry point for `infra-bench report` and for `run --report` / `plan --report`,
which pass their run folder or their plan dict directly.
"""
from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from itertools import takewhile
from pathlib import Path

from .. import __version__
from ..errors import UserError
from ..results.store import now_iso
from . import charts
from .document import Document
from .loaders import PlanData, RunData, load_inputs


def _title(runs: list[RunData], plans: list[PlanData]) -> str:
    parts = []
    if runs:
        parts.append(f"run {runs[0].run_id}" if len(runs) == 1 else f"{len(runs)} runs compared")
    parts += [f"plan for '{p.plan.demand}'" for p in plans]
    return "infra-bench report: " + " and ".join(parts)


def build_document(runs: list[RunData], plans: list[PlanData]) -> Document:
    from .plan_report import plan_sections
    from .run_report import run_sections

    charts.require()
    sections = run_sections(runs) if runs else []
    for p in plans:
        sections += plan_sections(p)
    sources = [str(r.folder) for r in runs] + [p.source for p in plans]
    return Document(_title(runs, plans), f"Generated {now_iso()} by infra-bench {__version__} from "
                                         f"{', '.join(sources)}. Nothing in it is loaded from a network.", sections)


def is_markdown(out: Path, option: str = "--report") -> bool:
    """Whether `out` names a Markdown report (.md) rather than an HTML one (.html, .htm); any other name is
    an error, so that a report is never written into a file whose name says it is something else."""
    suffix = out.suffix.lower()
    if suffix not in (".md", ".html", ".htm"):
        raise UserError(f"{option} {out}: a report is HTML or Markdown; name the file .html or .md")
    return suffix == ".md"


def can_write(out: Path, option: str = "--report") -> None:
    """Fail now, before a run or a plan is made, if the report asked for cannot be written: a name that is
    neither HTML nor Markdown, no matplotlib, or a path where no file can be made (an unwritable or missing
    place: found only after every cell was measured, and then said as bad input). The probe file is removed."""
    is_markdown(out, option)
    charts.require()
    made = _Made.before(out)
    above = next((d for d in out.parents if d.exists()), None)
    if above is not None and not above.is_dir():  # mkdir would say only "File exists"
        raise UserError(f"cannot write the report to {out}: {above} is a file, not a folder; choose another path "
                        f"with {option}")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, "a"):
            pass
    except OSError as e:
        raise UserError(_unwritable(out, e, option)) from None
    finally:  # the run or plan may still fail on bad input: it made no folder then
        made.undo()


@dataclass
class _Made:
    """What writing `out` may create: the file, unless something was there (a link to nowhere is the user's),
    and the folders above it that do not exist yet, deepest first."""
    out: Path
    existed: bool
    folders: list[Path]

    @classmethod
    def before(cls, out: Path) -> _Made:
        return cls(out, os.path.lexists(out), list(takewhile(lambda d: not d.exists(), out.parents)))

    def undo(self) -> None:
        """Remove what was made; a folder something else has filled stays."""
        if not self.existed:
            self.out.unlink(missing_ok=True)
        for d in self.folders:
            with suppress(OSError):
                d.rmdir()


def _unwritable(out: Path, e: OSError, option: str) -> str:
    return f"cannot write the report to {out}: {e.strerror or e}; choose another path with {option}"


def write_report(inputs: Sequence[str | Path | dict], out: Path, markdown: bool | None = None,
                 results: Path = Path("results"), option: str = "--report") -> Path:
    """Write a report of `inputs` (run ids or folders, plan files, or a plan dict) to `out`: HTML, or
    Markdown with its charts in `<name>_files/` when `markdown` is set (default: `out` ends in .md).
    `option` is the flag that named `out`, for the error that asks for another path."""
    as_md = is_markdown(out, option) if markdown is None else markdown
    runs, plans = load_inputs(inputs, results)
    doc = build_document(runs, plans)
    from .render_markdown import files_folder, write

    made = _Made.before(out)
    chart_folder = files_folder(out) if as_md and not files_folder(out).exists() else None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        if as_md:
            write(doc, out)
        else:
            from .render_html import render

            out.write_text(render(doc), encoding="utf-8")
    except OSError as e:  # a failed write leaves nothing it made: no empty <name>_files/ or folders above
        if chart_folder is not None:
            shutil.rmtree(chart_folder, ignore_errors=True)
        made.undo()
        raise UserError(_unwritable(out, e, option)) from None
    return out
