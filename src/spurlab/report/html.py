"""Render a :class:`~spurlab.report.document.Report` as one self-contained HTML file (Jinja2; figures embedded
as data URIs, inline CSS and a few lines of inline JavaScript for sorting and filtering tables)."""

from __future__ import annotations

import json
import math
from importlib import resources
from pathlib import Path

from markupsafe import Markup, escape

from spurlab.atomic import write_text
from spurlab.report.document import Report, Table, fmt

REPORT_FILE = "report.html"  # the name of the report in every output folder


def _table_html(table: Table) -> Markup:
    """One table; numeric cells carry their value in ``data-value`` (sorting, and checking what is shown)."""
    key = escape(table.key or f"t{id(table)}")
    parts = []
    if table.sortable and len(table.rows) > 10:
        parts.append(f'<input class="filter" data-table="{key}" placeholder="filter rows">')
    parts.append(f'<table class="data" id="{key}">')
    if table.caption:
        parts.append(f"<caption>{escape(table.caption)}</caption>")
    th_class = ' class="sortable"' if table.sortable else ""
    parts.append("<thead><tr>" + "".join(f"<th{th_class}>{escape(c)}</th>" for c in table.columns)
                 + "</tr></thead><tbody>")
    for row in table.rows:
        cells = []
        for value in row:
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                cells.append(f'<td class="num" data-value="{value!r}">{escape(fmt(value))}</td>')
            else:
                cells.append(f"<td>{escape(fmt(value))}</td>")
        parts.append("<tr>" + "".join(cells) + "</tr>")
    parts.append("</tbody></table>")
    return Markup("".join(parts))


def render_html(report: Report) -> str:
    """The report as an HTML page."""
    from jinja2 import Environment, StrictUndefined

    from spurlab import __version__

    source = resources.files("spurlab.report").joinpath("templates/report.html.j2").read_text(encoding="utf-8")
    env = Environment(autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    template = env.from_string(source)
    numbers = {k: v for k, v in report.numbers.items() if isinstance(v, (int, float)) and math.isfinite(v)}
    # "</" cannot end the script element early: JSON escapes it
    numbers_json = Markup(json.dumps(numbers, sort_keys=True).replace("</", "<\\/"))
    return template.render(report=report, table=_table_html, version=__version__, numbers_json=numbers_json)


def write_html(report: Report, path: str | Path) -> Path:
    """Write the report atomically (a failure leaves no partial file)."""
    write_text(path, render_html(report))
    return Path(path)


__all__ = ["REPORT_FILE", "render_html", "write_html"]
