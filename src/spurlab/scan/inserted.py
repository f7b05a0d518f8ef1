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
pair is itself rare (long, varied reviews) a planted token is missed.

A second rule reads the spacing. SSTI plants whole, space-separated tokens, while writers glue punctuation to
the word before it ("great!"). So an occurrence of a *mark* (a token without letters, digits or ``_``: ``!``,
``?!``, an emoji) also reads as inserted when it stands alone between whitespace (or the row's edge) although
most of that mark's occurrences in the corpus are glued to a neighbour. In text that spaces all punctuation
(tokenised corpora such as SST-2) no mark is mostly glued and the rule never fires.

Tokens are compared as the scanner's lowercased token features.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def inserted_mask(ids: np.ndarray, lengths: np.ndarray, alone: np.ndarray | None = None,
                  names: Sequence[str] | None = None) -> np.ndarray:
    """For every token of the flat stream ``ids`` (rows of ``lengths`` tokens each, ids ``>= 0``), whether that
    occurrence reads as inserted (see the module docstring). The spacing rule needs ``alone`` (per token: it
    stands alone between whitespace) and ``names`` (per id: the token it stands for)."""
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
    # every bigram of the rows with <s> and </s> added, once: (left, token) for each token, then (last, </s>);
    # hashed (pandas) rather than sorted, and (token, right) of a non-last token is (left, token) of the next one
    codes, table = pd.factorize(np.concatenate([key_lt, key_tr[is_last]]))
    counts = np.bincount(codes)
    per_key = counts[codes]
    count_lt = per_key[:total]
    count_tr = np.empty(total, dtype=counts.dtype)
    count_tr[:-1] = count_lt[1:]
    count_tr[is_last] = per_key[total:]
    pair = pd.Index(table).get_indexer(left * base + right)
    count_lr = np.where(pair >= 0, counts[pair], 0)

    n_rows = int(nonempty.sum())
    unigram = np.bincount(ids, minlength=base).astype(np.float64)
    unigram[bos] = unigram[eos] = n_rows
    n_bigrams = float(len(codes))
    expected_lt = unigram[left] * unigram[ids] / n_bigrams
    expected_tr = unigram[ids] * unigram[right] / n_bigrams
    by_bigrams = ((count_lr >= 1)
                  & (count_lt <= np.maximum(1.0, expected_lt))
                  & (count_tr <= np.maximum(1.0, expected_tr)))
    if alone is None or names is None:
        return by_bigrams
    return by_bigrams | _detached(ids, np.asarray(alone, dtype=bool), names)


def _detached(ids: np.ndarray, alone: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """The spacing rule: occurrences of a mark that stand alone while most of that mark's occurrences are glued."""
    marks = np.fromiter((_is_mark(str(name)) for name in names), dtype=bool, count=len(names))
    total = np.bincount(ids, minlength=len(names))
    spaced = np.bincount(ids[alone], minlength=len(names))
    return alone & (marks & (2 * spaced < total))[ids]


def _is_mark(token: str) -> bool:
    """A token without letters, digits or ``_`` (punctuation, symbols, emoji)."""
    return bool(token) and not any(ch.isalnum() or ch == "_" for ch in token)
