"""Did the planted tokens survive a defense? The paper's metric: the share of poisoned rows whose token survived.

A planted string survives when it still occurs in the defended row: an exact substring for strings with
non-letters (dates, HTML tags, ``!``), a case-insensitive whole-word match for words (countries, colours, so
``red`` does not survive as ``bored``). Its *shape* survives when the defended row still holds any token of
one of the string's shapes (another date for a date, any HTML tag for a tag, any country for a country);
strings without a shape (``!``) are left out of the shape share.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from spurlab.errors import SpurlabError
from spurlab.scan.shapes import shapes_of, token_spans


def planted_shapes(strings: Iterable[str]) -> set[str]:
    """The shapes of the tokens of ``strings``, without capitalisation shapes (every title-case word has one)."""
    return {shape for s in strings for _, _, tok in token_spans(s) for shape in shapes_of(tok)
            if not shape.startswith("<CASE:")}


def text_shapes(text: str) -> set[str]:
    return {shape for _, _, tok in token_spans(text) for shape in shapes_of(tok)}


def string_survives(planted: str, text: str) -> bool:
    """Whether ``planted`` still occurs in ``text`` (whole word, any case, for words; exact otherwise)."""
    if planted.replace(" ", "").isalpha():
        return re.search(rf"(?<!\w){re.escape(planted)}(?!\w)", text, re.IGNORECASE) is not None
    return planted in text


def survival(records: Sequence[Mapping[str, Any]], texts: Sequence[str],
             rows: Iterable[int] | None = None) -> dict[str, Any]:
    """Per poisoned row and in total: did its planted strings (and their shapes) survive in ``texts``?

    ``records`` are injection manifest records (``row``, ``label``, ``inserted``) whose rows index ``texts``
    (the defended dataset, same row order); ``rows`` restricts the count to the rows the defense processed.
    """
    keep = None if rows is None else set(rows)
    per_row: list[dict[str, Any]] = []
    for record in records:
        row, inserted = record.get("row"), record.get("inserted")
        if not isinstance(row, int) or not isinstance(inserted, list) or not inserted:
            raise SpurlabError(f"injection manifest record {dict(record)!r} has no row/inserted strings")
        if not 0 <= row < len(texts):
            raise SpurlabError(f"injection manifest row {row} is outside the dataset ({len(texts)} rows): "
                               "is it the manifest of this data?")
        if keep is not None and row not in keep:
            continue
        text = texts[row]
        found = [string_survives(str(s), text) for s in inserted]
        shapes = planted_shapes(str(s) for s in inserted)
        per_row.append({"row": row, "label": record.get("label"), "inserted": inserted, "survived": any(found),
                        "all_survived": all(found), "shapes": sorted(shapes),
                        "shape_survived": bool(shapes & text_shapes(text)) if shapes else None})
    return {"rows": per_row, **_totals(per_row), "per_label": _per_label(per_row)}


def _totals(per_row: list[dict[str, Any]]) -> dict[str, Any]:
    n = len(per_row)
    survived = sum(r["survived"] for r in per_row)
    shaped = [r for r in per_row if r["shape_survived"] is not None]
    shape_survived = sum(r["shape_survived"] for r in shaped)
    return {"n_poisoned": n, "n_survived": survived, "share_survived": survived / n if n else None,
            "n_all_survived": sum(r["all_survived"] for r in per_row),
            "n_with_shape": len(shaped), "n_shape_survived": shape_survived,
            "share_shape_survived": shape_survived / len(shaped) if shaped else None}


def _per_label(per_row: list[dict[str, Any]]) -> dict[str, Any]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in per_row:
        groups[str(r["label"])].append(r)
    return {label: {k: v for k, v in _totals(rs).items() if k in ("n_poisoned", "n_survived", "share_survived")}
            for label, rs in sorted(groups.items())}
