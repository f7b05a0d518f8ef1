"""Reports on what was injected: subword token counts and collisions with the clean data."""

from __future__ import annotations

import bisect
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from spurlab.data.dataset import TextDataset
from spurlab.inject.config import InjectionConfig
from spurlab.inject.sources import DateSource, TokenSource, build_source

MAX_LISTED = 50
SAMPLE = 5


def _distinct(strings: Iterable[str]) -> list[str]:
    """Distinct strings in order of first appearance."""
    return list(dict.fromkeys(strings))


def tokenizer_report(tokenizer: Any, strings: Iterable[str]) -> dict[str, Any]:
    """How many subword tokens (no special tokens) each distinct inserted string becomes.

    Strings are tokenized on their own; in running text a BPE tokenizer may split a space-prefixed string
    slightly differently.
    """
    from spurlab.models.tokenizer import load_tokenizer  # torch-heavy package: import only when asked

    tok = load_tokenizer(tokenizer)
    distinct = _distinct(strings)
    name = str(tokenizer) if isinstance(tokenizer, (str, os.PathLike)) else str(getattr(tok, "name_or_path", ""))
    if name and Path(name).exists():
        name = Path(name).name  # a local path: keep summaries free of machine paths
    if not distinct:
        return {"name": name, "n_distinct": 0, "min": None, "mean": None, "max": None, "sample": {},
                "n_with_unknown": 0}
    ids = tok(distinct, add_special_tokens=False)["input_ids"]
    counts = [len(i) for i in ids]
    unk = getattr(tok, "unk_token_id", None)
    return {
        "name": name,
        "n_distinct": len(distinct),
        "min": min(counts),
        "mean": round(sum(counts) / len(counts), 4),
        "max": max(counts),
        "sample": {s: tok.convert_ids_to_tokens(i) for s, i in list(zip(distinct, ids, strict=True))[:SAMPLE]},
        "n_with_unknown": sum(1 for i in ids if unk is not None and unk in i),
    }


def _is_word_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def string_pattern(string: str) -> re.Pattern[str]:
    """Lower-cased ``string``, not followed by a word character if it ends with one.

    The mirror check (not preceded by a word character) is done by :func:`_rows_matching`, because a
    leading look-behind would stop ``re`` from using its fast literal search.
    """
    after = r"(?!\w)" if _is_word_char(string[-1:]) else ""
    return re.compile(re.escape(string.lower()) + after)


def _rows_matching(rx: re.Pattern[str], big: str, starts: list[int], word_start: bool = False) -> list[int]:
    """Rows (by start offset in the joined text) holding at least one match of ``rx``.

    ``word_start``: ignore matches preceded by a word character.
    """
    rows: set[int] = set()
    for match in rx.finditer(big):
        begin = match.start()
        if word_start and begin and _is_word_char(big[begin - 1]):
            continue
        rows.add(bisect.bisect_right(starts, begin) - 1)
    return sorted(rows)


def collision_report(dataset: TextDataset, configs: Iterable[InjectionConfig],
                     strings: Iterable[str]) -> dict[str, Any]:
    """Clean rows (per label) that already contain an inserted string, or a date for date sources.

    Matching is case-insensitive and respects word boundaries on word-character ends (``red`` does not
    match ``bored``; ``!`` matches ``great!``). Such rows weaken the planted correlation.
    """
    texts = [t.lower() if isinstance(t, str) else "" for t in dataset.frame[dataset.text_col].tolist()]
    labels = dataset.label_strings
    # One string with a NUL between rows: each pattern is one regex scan, matches map back to rows.
    starts, offset = [], 0
    for text in texts:
        starts.append(offset)
        offset += len(text) + 1
    big = "\x00".join(texts)
    sources: list[TokenSource] = [build_source(c) for c in configs]
    shapes = sorted({s.shape for s in sources if s.shape})
    listed = [s for s in _distinct(strings) if not (shapes and any(re.fullmatch(p, s) for p in shapes))]
    hit_rows: set[int] = set()

    def per_label(rows: list[int]) -> dict[str, int]:
        out: dict[str, int] = {}
        for row in rows:
            out[labels[row]] = out.get(labels[row], 0) + 1
        return out

    shape_hits = {}
    for shape in shapes:
        rows = _rows_matching(re.compile(shape), big, starts)
        hit_rows.update(rows)
        shape_hits["date" if shape == DateSource.shape else shape] = per_label(rows)
    string_hits: dict[str, dict[str, int]] = {}
    for string in listed:
        rows = _rows_matching(string_pattern(string), big, starts, _is_word_char(string[:1]))
        if rows:
            hit_rows.update(rows)
            string_hits[string] = per_label(rows)
    ranked = sorted(string_hits.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
    return {
        "case_sensitive": False,
        "n_strings_checked": len(listed),
        "shapes": shape_hits,
        "strings": dict(ranked[:MAX_LISTED]),
        "n_strings_colliding": len(string_hits),
        "rows_with_any": per_label(sorted(hit_rows)),
    }
