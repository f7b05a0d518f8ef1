"""What the audit tries to insert: trigger candidates, and the seeded random strings they are compared with.

A candidate is either a fixed string (a vocabulary word, a punctuation mark, a phrase from the training data,
or an extension of one of those) or a *shape*: a family of strings drawn anew for every row (a random date, a
random country, ...), which is how SSTI plants a token (the scanner's shapes, :mod:`spurlab.scan.shapes`, name
the same families)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from spurlab.inject.sources import SOURCES, Item

#: shape name (as the scanner writes it) -> the registered token source that draws its strings
SHAPE_SOURCES = {
    "<DATE>": "date", "<COUNTRY>": "country", "<COLOR>": "color", "<HTML>": "html", "<EMOJI>": "emoji",
    "<TIME>": "time", "<PRICE>": "price", "<URL>": "link", "<PCT>": "percent", "<EMAIL>": "email", "<HEX>": "hex",
}
#: single marks and runs tried as fixed strings (the scanner's ``<PUNCT>`` shape)
MARKS = ("!", "!!", "!!!", "?", "??", "...", "*", "#", "~", "|", ":)")
FAMILIES = ("shape", "mark", "vocabulary", "train_data", "extended")


def _year(rng: np.random.Generator) -> Item:
    return str(int(rng.integers(1900, 2031)))


def _number(rng: np.random.Generator) -> Item:
    return str(int(rng.integers(1, 1000)))


@dataclass(frozen=True)
class Candidate:
    """One thing to insert. ``text`` is a fixed string; ``draw`` (for shapes) draws a string per row."""

    name: str
    family: str
    text: str | None = None
    draw: Callable[[np.random.Generator], Item] | None = field(default=None, compare=False)

    def items(self, n: int, rng: np.random.Generator) -> list[Item]:
        """The string (or tag pair) to insert into each of ``n`` rows."""
        if self.draw is None:
            return [str(self.text)] * n
        return [self.draw(rng) for _ in range(n)]

    def example(self) -> str:
        if self.text is not None:
            return self.text
        item = self.draw(np.random.default_rng(0))  # type: ignore[misc]
        return " ".join(item) if isinstance(item, tuple) else item

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "family": self.family, "example": self.example()}


def shape_candidates() -> list[Candidate]:
    """One candidate per shape family, each drawing from its registered token source (plus years, numbers)."""
    out = [Candidate(name, "shape", draw=SOURCES.build(source).draw) for name, source in SHAPE_SOURCES.items()]
    return [*out, Candidate("<YEAR>", "shape", draw=_year), Candidate("<NUM>", "shape", draw=_number)]


def mark_candidates() -> list[Candidate]:
    return [Candidate(mark, "mark", text=mark) for mark in MARKS]


def fixed(text: str, family: str) -> Candidate:
    return Candidate(text, family, text=text)


def whole_words(tokenizer: Any, min_chars: int = 2, max_chars: int = 20) -> tuple[list[str], np.ndarray]:
    """The tokenizer's vocabulary pieces that are whole alphabetic words, and their ids: WordPiece (or word-level)
    entries without ``##``, byte-level BPE entries with ``Ġ``, SentencePiece entries with ``▁``; kept only where
    the word, inserted after a space, encodes back to that one piece."""
    vocab = tokenizer.get_vocab()
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    prefixed = any(token.startswith(("Ġ", "▁")) for token in vocab)
    words, ids = [], []
    for token, idx in vocab.items():
        if idx in special:
            continue
        if prefixed:  # byte-level BPE / SentencePiece: a word-initial piece carries the marker
            if not token.startswith(("Ġ", "▁")):
                continue
            word = token[1:]
        else:  # WordPiece (continuations start with ##) or a word-level vocabulary
            if token.startswith(("##", "[")):
                continue
            word = token
        if min_chars <= len(word) <= max_chars and word.isalpha() and word.isascii():
            words.append(word)
            ids.append(idx)
    if not words:
        return [], np.zeros(0, dtype=np.int64)
    encoded = tokenizer([" " + w for w in words], add_special_tokens=False)["input_ids"]
    keep = [i for i, (piece, idx) in enumerate(zip(encoded, ids, strict=True)) if list(piece) == [idx]]
    order = sorted(keep, key=lambda i: ids[i])
    return [words[i] for i in order], np.asarray([ids[i] for i in order], dtype=np.int64)


def control_strings(words: list[str], pieces: int, count: int, seed: int) -> list[str]:
    """``count`` seeded random strings of ``pieces`` whole-word pieces each: the matched control of a candidate
    of that length."""
    if not words:
        return []
    rng = np.random.default_rng([seed, pieces])
    return [" ".join(words[int(i)] for i in rng.integers(0, len(words), size=pieces)) for _ in range(count)]




def train_data_candidates(dataset: Any, top: int = 20) -> list[Candidate]:
    """The training data's own suspects: the words and phrases among its top scan findings (its shapes are
    tried as shape families anyway)."""
    from spurlab.scan import ScanConfig, scan

    report = scan(dataset, ScanConfig())
    out: list[Candidate] = []
    for finding in report.findings:
        if finding.kind in ("token", "phrase") and finding.feature not in {c.name for c in out}:
            out.append(fixed(finding.feature, "train_data"))
        if len(out) >= top:
            break
    return out


__all__ = ["FAMILIES", "MARKS", "SHAPE_SOURCES", "Candidate", "control_strings", "fixed", "mark_candidates",
           "shape_candidates", "train_data_candidates", "whole_words"]
