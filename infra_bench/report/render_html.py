"""A Document as one self-contained HTML page: inline CSS, charts as base64 PNG data URIs, no
scripts, fonts or links to anywhere else, so it opens offline and travels as a single file."""
from __future__ import annotations

import base64
import re
import struct
from html import escape

from .document import Block, Document, Image, Section, Table, Text

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",sans-serif;color:#1c1c1c;
 max-width:1180px;margin:0 auto;padding:24px 28px 60px;background:#fff}
h1{font-size:26px;margin:0 0 4px}h2{font-size:21px;margin:34px 0 8px;border-bottom:2px solid #d8dee6;padding-bottom:4px}
h3{font-size:17px;margin:26px 0 6px}
.meta{color:#555;margin:0 0 14px}
nav{background:#f5f7fa;border:1px solid #e1e6ec;border-radius:6px;padding:8px 16px;margin:12px 0 18px}
nav ul{margin:4px 0;padding-left:18px}nav li.l2{list-style:square}nav li.l3{margin-left:20px;list-style:circle}
nav a{color:#1f4e8c;text-decoration:none}
.note{background:#fff6db;border-left:4px solid #e0a800;padding:8px 12px;margin:10px 0}
.scroll{overflow-x:auto;margin:8px 0}
table{border-collapse:collapse;font-size:12.5px}
th,td{border:1px solid #d5dbe2;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#eef2f6}tr:nth-child(even) td{background:#fafbfc}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.caption,figcaption{color:#444;font-size:12.5px;margin:4px 0 14px}
figure{margin:12px 0}figure img{max-width:100%;height:auto;border:1px solid #e4e8ee}
"""
NUMERIC = re.compile(r"^[~\-+]?\d[\d,]*(\.\d+)?(e[+-]?\d+)?[kx%]?$")  # 1,234.5k, 0.98x; not 3.11.7


def _slug(title: str, used: set[str]) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "section"
    slug, n = base, 2
    while slug in used:
        slug, n = f"{base}-{n}", n + 1
    used.add(slug)
    return slug


def _size(png: bytes) -> tuple[int, int]:
    """Width and height from the PNG header (IHDR)."""
    return struct.unpack(">II", png[16:24])


def _table(t: Table) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in t.header)
    body = "".join("<tr>" + "".join(f'<td class="num">{escape(c)}</td>' if NUMERIC.match(c) else f"<td>{escape(c)}</td>"
                                    for c in row) + "</tr>" for row in t.rows)
    caption = f'<p class="caption">{escape(t.caption)}</p>' if t.caption else ""
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>{caption}'


def _block(b: Block) -> str:
    if isinstance(b, Text):
        if b.note:
            return f'<div class="note"><strong>Note:</strong> {escape(b.text)}</div>'
        return f"<p>{escape(b.text)}</p>"
    if isinstance(b, Table):
        return _table(b)
    if isinstance(b, Image):
        w, h = _size(b.png)
        data = base64.b64encode(b.png).decode("ascii")
        return (f'<figure><img src="data:image/png;base64,{data}" alt="{escape(b.alt)}" width="{w}" height="{h}">'
                f"<figcaption>{escape(b.caption)}</figcaption></figure>")
    raise TypeError(f"unknown block {type(b).__name__}")


def render(doc: Document) -> str:
    used: set[str] = set()
    ids = [_slug(s.title, used) for s in doc.sections]
    toc = "".join(f'<li class="l{s.level}"><a href="#{i}">{escape(s.title)}</a></li>'
                  for s, i in zip(doc.sections, ids))

    def section(s: Section, i: str) -> str:
        return f'<section id="{i}"><h{s.level}>{escape(s.title)}</h{s.level}>' + "".join(map(_block, s.blocks)) + \
            "</section>"

    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{escape(doc.title)}</title>"
            f"<style>{CSS}</style></head><body><header><h1>{escape(doc.title)}</h1>"
            f"<p class=\"meta\">{escape(doc.subtitle)}</p></header><nav><strong>Contents</strong><ul>{toc}</ul></nav>"
            + "".join(section(s, i) for s, i in zip(doc.sections, ids)) + "</body></html>\n")
