"""A finished run's records on stdout, as `run` and `sweep` end: JSON, or the tables with their notes."""
from __future__ import annotations

import json

import click

from .table import format_notes, format_table


def show_records(store, as_json: bool) -> list[dict]:
    """The store's records, printed as JSON or as tables with their notes and where they are kept."""
    records = store.records()
    if as_json:
        click.echo(json.dumps(records, indent=1, default=str))
        return records
    click.echo(format_table(records))
    notes = format_notes(records)
    if notes:
        click.echo(notes)
    click.echo(f"records: {store.folder / 'records.jsonl'}")
    return records
