"""`infra-bench report`: runs, comparisons and plans as one self-contained HTML file or Markdown.

Only click is imported here; matplotlib loads when a report is drawn.
"""
from __future__ import annotations

from pathlib import Path

import click

from ..errors import UserError


@click.command()
@click.argument("inputs", nargs=-1, required=True, metavar="RUN_ID|RUN_DIR|PLAN.json...")
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path),
              help="The report file [default: report.html, or report.md with --md].")
@click.option("--md", "markdown", is_flag=True,
              help="Markdown, with the charts as PNG files in <name>_files/ next to it (also chosen by -o X.md).")
@click.option("--results", type=click.Path(file_okay=False, path_type=Path), default=Path("results"),
              show_default=True, help="Where run ids are looked up.")
def report(inputs: tuple[str, ...], out: Path | None, markdown: bool, results: Path) -> None:
    """Charts and tables of runs (several runs: compared side by side) and of plans from `plan --json`."""
    from .build import is_markdown, write_report

    out = out or Path("report.md" if markdown else "report.html")
    if markdown and out.suffix.lower() != ".md":  # a .txt written as Markdown put its charts beside another report's
        raise UserError(f"--md with -o {out}: name the Markdown file .md, or drop --md for HTML")
    path = write_report(list(inputs), out, is_markdown(out, "-o"), results, option="-o")
    click.echo(f"report: {path} ({path.stat().st_size / 1024:.0f} KiB)")
