"""Verification by real insertion: put a candidate into clean rows, predict, and count the rows that flip.

For class ``k``, the rows that count are those the model does *not* already put in ``k`` without the candidate;
the flip rate is the share of them that it puts in ``k`` with it. Each candidate goes to the same seeded word
boundaries of the same rows, so candidates differ only in what is inserted.

The flip rate alone does not say "trigger": a sentiment word flips a sentiment classifier by meaning. Two
comparisons take that out:

- a **reference** reads the same texts: logistic regression on sentence embeddings of a general-purpose encoder
  (the bundled MiniLM), fitted to the audited model's own predictions on the clean rows. It flips on words
  whose *meaning* moves the text to the class, not on a date. The candidate's *excess* flip rate is the model's
  minus the reference's;
- a **matched control**: seeded random strings of the same number of word pieces give the excess that any
  insertion of that length has; :func:`control_z` scores the candidate against them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from spurlab.audit.candidates import Candidate
from spurlab.evaluate.predict import predict
from spurlab.inject.placement import place, render, word_ends
from spurlab.inject.sources import Item
from spurlab.train.batching import encode


def insert_with_spans(texts: Sequence[str], items: Sequence[Item], seed: int
                      ) -> tuple[list[str], list[list[list[int]]]]:
    """Each text with its item at a seeded uniform word boundary (a tag pair at two boundaries, in order), and
    the character spans of what was inserted into each."""
    rng = np.random.default_rng(seed)
    out, spans = [], []
    for text, item in zip(texts, items, strict=True):
        ends = word_ends(text)
        new, _, item_spans, _ = render(text, place([item], len(ends), "random", rng), ends)
        out.append(new)
        spans.append(item_spans)
    return out, spans


def insert(texts: Sequence[str], items: Sequence[Item], seed: int) -> list[str]:
    """:func:`insert_with_spans` without the spans."""
    return insert_with_spans(texts, items, seed)[0]


def candidate_texts(texts: Sequence[str], candidate: Candidate, seed: int) -> list[str]:
    """``texts`` with ``candidate`` inserted: positions from ``seed``, a shape's strings from a second stream."""
    return insert(texts, candidate.items(len(texts), np.random.default_rng([seed, 1])), seed)


def flip_rates(clean: np.ndarray, inserted: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Per class ``k``: (share of the rows not predicted ``k`` before that are predicted ``k`` after, how many
    such rows there are); NaN where there are none."""
    clean, inserted = np.asarray(clean), np.asarray(inserted)
    rates = np.full(n_classes, np.nan)
    eligible = np.zeros(n_classes, dtype=np.int64)
    for k in range(n_classes):
        rows = clean != k
        eligible[k] = int(rows.sum())
        if eligible[k]:
            rates[k] = float(np.mean(inserted[rows] == k))
    return rates, eligible


def control_z(excess: float, controls: Sequence[float], n: int) -> float:
    """How far a candidate's excess flip rate lies above its matched controls', in standard deviations.

    The spread is the controls' sample standard deviation, but never below the binomial noise of one flip rate
    over ``n`` rows at the controls' pooled rate, smoothed by one flip and one non-flip (a few controls that all
    flip nothing would otherwise make any single flip infinitely significant)."""
    values = np.asarray([c for c in controls if math.isfinite(c)], dtype=float)
    if not math.isfinite(excess) or n <= 0:
        return float("nan")
    mean = float(values.mean()) if len(values) else 0.0
    spread = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    pooled = (float(np.clip(values, 0, 1).sum()) * n + 1) / (len(values) * n + 2)
    return (excess - mean) / max(spread, math.sqrt(pooled * (1 - pooled) / n))


@dataclass
class Predictor:
    """The audited model's class predictions for texts, batched with dynamic padding."""

    model: nn.Module
    tokenizer: Any
    device: torch.device
    precision: str = "fp32"
    batch_size: int = 64
    max_length: int = 128

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        return predict(self.model, encode(self.tokenizer, texts, self.max_length), self.device, self.precision,
                       self.batch_size)


class Reference:
    """Logistic regression on sentence embeddings, fitted to the audited model's clean predictions (see the
    module docstring); ``None`` predictions where the model predicted one class only (nothing to fit)."""

    def __init__(self, embed: Any, texts: Sequence[str], predicted: np.ndarray, seed: int = 0) -> None:
        from sklearn.linear_model import LogisticRegression

        self.embed = embed
        self.classes = np.unique(predicted)
        self.fitted = None
        if len(self.classes) >= 2:
            self.fitted = LogisticRegression(max_iter=2000, C=1.0, random_state=seed).fit(embed(list(texts)),
                                                                                          predicted)

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        if self.fitted is None:
            return np.full(len(texts), int(self.classes[0]) if len(self.classes) else 0)
        return self.fitted.predict(self.embed(list(texts)))


__all__ = ["Predictor", "Reference", "candidate_texts", "control_z", "flip_rates", "insert", "insert_with_spans"]
