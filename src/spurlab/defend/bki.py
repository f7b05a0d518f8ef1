"""BKI (Chen & Dai, 2021), backdoor keyword identification: the words that move a poisoned model's
representation most are the trigger; drop the training rows that hold it.

A model is finetuned on the (poisoned) data (:mod:`spurlab.defend.suspect_model`). For every row of words
``w_1..w_n`` (the first ``max_words``), word ``i``'s importance is ``max |r(x) - r(x without w_i)|`` (the
L-infinity distance of the mean-pooled last hidden layer). A row's ``top_words`` most important words are its
suspects; over the dataset each suspect word gets its count ``c`` and mean importance ``m``, and the keyword is
the word with the largest ``log10(c) * m`` (a word suspected once scores 0). Rows that have the keyword among
their suspects are dropped. All leave-one-out variants of ``rows_per_chunk`` rows are encoded together.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from pydantic import Field

from spurlab.data.dataset import TextDataset
from spurlab.data.transform import TransformResult, drop_rows
from spurlab.defend.base import register_defense
from spurlab.defend.suspect_model import SuspectModelParams, finetune_on, representations

Represent = Callable[[Sequence[str]], np.ndarray]


def word_importance(words_per_row: list[list[str]], represent: Represent) -> list[np.ndarray]:
    """Per row, per word: the L-infinity distance between the row's representation and that without the word
    (a one-word row: 0)."""
    variants, starts = [], []
    for words in words_per_row:
        starts.append(len(variants))
        variants.append(" ".join(words))
        if len(words) > 1:
            variants += [" ".join(words[:i] + words[i + 1:]) for i in range(len(words))]
    reps = represent(variants)
    out = []
    for words, start in zip(words_per_row, starts, strict=True):
        if len(words) <= 1:
            out.append(np.zeros(len(words)))
            continue
        out.append(np.abs(reps[start + 1:start + 1 + len(words)] - reps[start]).max(axis=1))
    return out


def keyword_scores(suspects: list[list[tuple[str, float]]]) -> dict[str, float]:
    """``log10(count) * mean importance`` of every suspect word over the rows."""
    totals: dict[str, list[float]] = {}
    for row in suspects:
        for word, value in row:
            totals.setdefault(word, []).append(value)
    return {w: math.log10(len(v)) * float(np.mean(v)) for w, v in totals.items()}


def bki(dataset: TextDataset, represent: Represent, *, top_words: int = 5, max_words: int = 64,
        rows_per_chunk: int = 32) -> TransformResult:
    """BKI with a given representation function (see the module docstring)."""
    texts = dataset.texts
    suspects: list[list[tuple[str, float]]] = []
    for start in range(0, len(texts), rows_per_chunk):
        words = [t.split()[:max_words] for t in texts[start:start + rows_per_chunk]]
        for row_words, importance in zip(words, word_importance(words, represent), strict=True):
            order = np.argsort(-importance, kind="stable")[:top_words]
            suspects.append([(row_words[i], float(importance[i])) for i in order])
    scores = keyword_scores(suspects)
    ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
    keyword = ranked[0][0] if ranked else None
    hits = {i: next(v for w, v in row if w == keyword) for i, row in enumerate(suspects)
            if keyword is not None and any(w == keyword for w, _ in row)}
    summary: dict[str, Any] = {"dataset": dataset.name, "defense": "bki", "keyword": keyword,
                               "top_keywords": {w: round(v, 4) for w, v in ranked[:10]}, "top_words": top_words}
    return drop_rows(dataset, hits, {r: {"keyword": keyword, "importance": round(v, 4)} for r, v in hits.items()},
                     summary)


@register_defense("bki")
class Bki(SuspectModelParams):
    """BKI: finetune on the data, find the word that moves the model's representation most, drop its rows."""

    top_words: int = Field(5, ge=1, description="suspect words kept per row")
    max_words: int = Field(64, ge=1, description="words of a row that are scored")
    rows_per_chunk: int = Field(32, ge=1)

    def apply(self, dataset: TextDataset) -> TransformResult:
        suspect = finetune_on(dataset, self.model, self.finetune)
        result = bki(dataset, lambda texts: representations(suspect, texts), top_words=self.top_words,
                     max_words=self.max_words, rows_per_chunk=self.rows_per_chunk)
        result.summary["model"] = self.model
        return result


__all__ = ["Bki", "bki", "keyword_scores", "word_importance"]
