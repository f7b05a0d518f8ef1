"""Which token occurrences read as *inserted*: the text around them reads on without them.

SSTI plants a token at a word boundary of an existing text, so the two words it separates were adjacent before:
the pair (left neighbour, right neighbour) is an ordinary bigram of the corpus, while the two bigrams the
planted token makes with them are not. An occurrence of token ``t`` between ``l`` and ``r`` (row starts and ends
count as the neighbours ``<s>`` and ``</s>``) is *inserted* when

- the bigram ``l r`` occurs in the corpus (elsewhere: this occurrence separates it), and
- each of ``l t`` and ``t r`` occurs no more often than independence predicts (``count(a) count(b) / N``, with
  ``N`` the corpus' bigram count) or just once (this occurrence).

A word that belongs where it stands forms frequent bigrams with its neighbours ("the red car": ``the red`` is
common); a colour planted in "the film red is" forms ``film red`` and ``red is``, rarer than chance, while
``film is`` is common. Measured on the benchmark data (``python -m bench.detection``; ``docs/scan.md``) about
a third to a half of planted occurrences read as inserted against 1-5% of natural ones; where the left-right
pair is itself rare (long, varied reviews) a planted token is missed. Tokens are compared as the scanner's
lowercased token features.
"""

from __future__ import annotations

import numpy as np


def inserted_mask(ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """For every token of the flat stream ``ids`` (rows of ``lengths`` tokens each, ids ``>= 0``), whether that
    occurrence reads as inserted (see the module docstring)."""
    ids = np.asarray(ids, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    total = len(ids)
    if total == 0:
        return np.zeros(0, dtype=bool)
    bos = int(ids.max()) + 1
    eos, base = bos + 1, bos + 2
    ends = np.cumsum(lengths)
    starts = ends - lengths
    nonempty = lengths > 0
    is_first = np.zeros(total, dtype=bool)
    is_first[starts[nonempty]] = True
    is_last = np.zeros(total, dtype=bool)
    is_last[ends[nonempty] - 1] = True
    left = np.empty(total, dtype=np.int64)
    left[1:] = ids[:-1]
    left[is_first] = bos
    right = np.empty(total, dtype=np.int64)
    right[:-1] = ids[1:]
    right[is_last] = eos
    key_lt = left * base + ids
    key_tr = ids * base + right
    # every bigram of the rows with <s> and </s> added, once: (left, token) for each token, then (last, </s>)
    table, counts = np.unique(np.concatenate([key_lt, key_tr[is_last]]), return_counts=True)

    def count(keys: np.ndarray) -> np.ndarray:
        at = np.minimum(np.searchsorted(table, keys), len(table) - 1)
        return np.where(table[at] == keys, counts[at], 0)

    n_rows = int(nonempty.sum())
    unigram = np.bincount(ids, minlength=base).astype(np.float64)
    unigram[bos] = unigram[eos] = n_rows
    n_bigrams = float(len(table) and counts.sum())
    expected_lt = unigram[left] * unigram[ids] / n_bigrams
    expected_tr = unigram[ids] * unigram[right] / n_bigrams
    return ((count(left * base + right) >= 1)
            & (count(key_lt) <= np.maximum(1.0, expected_lt))
            & (count(key_tr) <= np.maximum(1.0, expected_tr)))
