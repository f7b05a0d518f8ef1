"""What an HTML report holds, as plain data: every result kind (run, sweep, scan, diagnose) is turned into one
:class:`Report` by the stage that owns it, and :mod:`spurlab.report.html` renders any of them."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Table:
    """A table of display cells (strings or numbers; :func:`fmt` formats them)."""

    columns: list[str]
    rows: list[list[Any]]
    caption: str = ""
    key: str = ""  # the HTML id; also marks the headline table
    sortable: bool = True


@dataclass
class Figure:
    """A PNG embedded in the page (the report loads nothing from elsewhere)."""

    title: str
    png: bytes
    caption: str = ""

    @classmethod
    def from_file(cls, path: Path, title: str, caption: str = "") -> Figure:
        return cls(title, Path(path).read_bytes(), caption)

    @property
    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


@dataclass
class Example:
    """A text row with character spans to highlight (a finding in its context)."""

    text: str
    spans: list[tuple[int, int]]
    note: str = ""

    def pieces(self) -> list[tuple[str, bool]]:
        """The text cut into (piece, highlighted) in order; overlapping spans are merged."""
        merged: list[list[int]] = []
        for start, end in sorted(self.spans):
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        out, at = [], 0
        for start, end in merged:
            if start > at:
                out.append((self.text[at:start], False))
            out.append((self.text[start:end], True))
            at = end
        if at < len(self.text):
            out.append((self.text[at:], False))
        return out


@dataclass
class Section:
    title: str
    key: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    examples: list[Example] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)  # (text, relative href)
    code: str = ""  # preformatted text (a config file)


@dataclass
class Report:
    """One result, ready to render: a title, where it came from, the headline table and sections."""

    title: str
    kind: str  # run, sweep, scan, diagnose
    provenance: dict[str, str]
    headline: Table | None
    sections: list[Section]
    numbers: dict[str, float] = field(default_factory=dict)  # headline numbers by name, also in the page


def fmt(value: Any, digits: int = 3) -> str:
    """A cell: floats rounded, None as a dash."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


__all__ = ["Example", "Figure", "Report", "Section", "Table", "fmt"]
