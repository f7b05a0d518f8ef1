"""Where items go in one text, and how to put them there (and take them out) exactly.

A text with ``n`` whitespace-separated words has ``n + 1`` word boundaries: 0 is before the first word,
``b`` (1..n) is right after word ``b``. An item at boundary 0 is written as ``item + " "`` at offset 0; an
item at boundary ``b >= 1`` as ``" " + item`` right after the end of word ``b``, so an item "at the end" is
the last word even when the text ends with whitespace. In an empty text the items are joined by single spaces.
Every insertion is recorded as the item's span and the span to cut (item plus its one separator space) in
the new text; cutting all those spans restores the original exactly.
"""

from __future__ import annotations

import re

import numpy as np

from spurlab.errors import SpurlabError
from spurlab.inject.sources import Item

WORD = re.compile(r"\S+")

Span = list[int]  # [start, end), as written to the manifest


def word_ends(text: str) -> list[int]:
    """End offsets of the whitespace-separated words of ``text`` (``len`` equals ``len(text.split())``)."""
    return [m.end() for m in WORD.finditer(text)]


def n_items(n_words: int, token_proportion: float, insertions: int | None = None) -> int:
    """Items per modified row: ``insertions`` when given, 1 for light SSTI, else
    ``max(1, int(n_words * token_proportion))``."""
    if insertions is not None:
        return insertions
    if token_proportion == 0:
        return 1
    return max(1, int(n_words * token_proportion))


def place(items: list[Item], n_words: int, location: str, rng: np.random.Generator) -> list[tuple[int, str]]:
    """Boundaries for each item, in order; a tag pair becomes two entries with the closing one after.

    ``start``: items at boundary 0 (a pair's closing tag at a random later boundary); ``end``: items at
    boundary ``n_words`` (a pair's opening tag at a random earlier boundary); ``random``: each item at a
    uniform boundary (a pair takes two uniform boundaries, opening at the smaller).
    """
    placed: list[tuple[int, str]] = []
    last = n_words
    for item in items:
        if isinstance(item, str):
            if location == "start":
                placed.append((0, item))
            elif location == "end":
                placed.append((last, item))
            else:
                placed.append((int(rng.integers(0, last + 1)), item))
            continue
        opening, closing = item
        if location == "start":
            b_open, b_close = 0, int(rng.integers(1, last + 1)) if last else 0
        elif location == "end":
            b_open, b_close = (int(rng.integers(0, last)) if last else 0), last
        else:
            first, second = int(rng.integers(0, last + 1)), int(rng.integers(0, last + 1))
            b_open, b_close = min(first, second), max(first, second)
        placed.append((b_open, opening))
        placed.append((b_close, closing))
    return placed


def render(text: str, placed: list[tuple[int, str]], ends: list[int] | None = None
           ) -> tuple[str, list[str], list[Span], list[Span]]:
    """Insert placed strings; return the new text, the strings in text order, their spans and cut spans.

    Strings at the same boundary keep their order in ``placed``. ``ends`` are ``word_ends(text)`` if known.
    """
    ends = word_ends(text) if ends is None else ends
    groups: dict[int, list[str]] = {}
    for boundary, string in placed:
        if not 0 <= boundary <= len(ends):
            raise SpurlabError(f"internal: boundary {boundary} outside 0..{len(ends)}")
        groups.setdefault(boundary, []).append(string)
    pieces: list[str] = []
    strings: list[str] = []
    spans: list[Span] = []
    cuts: list[Span] = []
    pos = 0
    if not text:
        for i, string in enumerate(groups.get(0, [])):
            if i:
                pieces.append(" ")
                pos += 1
            strings.append(string)
            spans.append([pos, pos + len(string)])
            cuts.append([pos - 1 if i else pos, pos + len(string)])
            pieces.append(string)
            pos += len(string)
        return "".join(pieces), strings, spans, cuts
    for string in groups.pop(0, []):
        strings.append(string)
        spans.append([pos, pos + len(string)])
        cuts.append([pos, pos + len(string) + 1])
        pieces += [string, " "]
        pos += len(string) + 1
    cursor = 0
    for boundary in sorted(groups):
        end = ends[boundary - 1]
        pieces.append(text[cursor:end])
        pos += end - cursor
        cursor = end
        for string in groups[boundary]:
            strings.append(string)
            spans.append([pos + 1, pos + 1 + len(string)])
            cuts.append([pos, pos + 1 + len(string)])
            pieces += [" ", string]
            pos += 1 + len(string)
    pieces.append(text[cursor:])
    return "".join(pieces), strings, spans, cuts


def _pairs(values: list[Span], where: str) -> list[tuple[int, int]]:
    try:
        return [(int(a), int(b)) for a, b in values]
    except (TypeError, ValueError):
        raise SpurlabError(f"{where}: malformed offsets in the manifest") from None


def cut(text: str, strings: list[str], spans: list[Span], cuts: list[Span], where: str = "text") -> str:
    """Remove recorded insertions from ``text``; checks each span holds its string and each cut one space."""
    if not len(strings) == len(spans) == len(cuts):
        raise SpurlabError(f"{where}: manifest lists {len(strings)} strings, {len(spans)} offsets, "
                           f"{len(cuts)} cuts")
    spans_, cuts_ = _pairs(spans, where), _pairs(cuts, where)
    for string, (start, end), (c_start, c_end) in zip(strings, spans_, cuts_, strict=True):
        if not 0 <= c_start <= start <= end <= c_end <= len(text) or text[start:end] != string:
            raise SpurlabError(f"{where}: expected {string!r} at {start}..{end}, found {text[start:end]!r}")
        extra = text[c_start:start] + text[end:c_end]
        if extra not in ("", " "):
            raise SpurlabError(f"{where}: cut {c_start}..{c_end} does not wrap {string!r} and one space")
    pieces: list[str] = []
    cursor = 0
    for c_start, c_end in sorted(cuts_):
        if c_start < cursor:
            raise SpurlabError(f"{where}: overlapping cuts in the manifest")
        pieces.append(text[cursor:c_start])
        cursor = c_end
    pieces.append(text[cursor:])
    return "".join(pieces)
