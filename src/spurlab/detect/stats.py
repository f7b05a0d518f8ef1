"""Vectorised per-label statistics of tokens and token shapes.

One pass over the texts builds a sparse row x vocabulary count matrix; every feature (a normalised token or a
shape) is a column of ``X @ F`` where ``F`` maps each surface token to its features. Document frequency per
label is then ``presence.T @ onehot(labels)``: a row counts once however often the feature occurs in it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain

import numpy as np
import pandas as pd
from scipy import sparse

from spurlab.detect.shapes import normalize_token, shapes_of, tokenize_corpus

LN10 = math.log(10.0)


@dataclass
class Encoded:
    """A tokenised corpus: ``counts`` is rows x vocab (occurrences), plus the first/last token of each row."""

    counts: sparse.csr_matrix
    vocab: list
    first: np.ndarray  # vocab id of each non-empty row's first token
    last: np.ndarray
    single: np.ndarray  # vocab ids of rows with exactly one token
    lengths: np.ndarray  # tokens per row


@dataclass
class FeatureCounts:
    """Counts behind every statistic, one entry per feature (column)."""

    features: list[str]
    kinds: list[str]  # "token", "subword" or "shape"
    positions: list[str]  # "any" (anywhere in the row), "start" (the row's first token) or "end" (its last)
    doc_freq: np.ndarray  # features x labels: rows of each label containing the feature
    occurrences: np.ndarray  # total occurrences (not rows)
    first: np.ndarray  # rows whose first token is (or has the shape of) the feature
    last: np.ndarray
    edge_expected: np.ndarray  # expected first/last occurrences if positions were uniform within rows
    presence: sparse.csr_matrix  # rows x features, 1 where the row contains the feature
    label_counts: np.ndarray
    n_tokens: int

    @property
    def support(self) -> np.ndarray:
        return self.doc_freq.sum(axis=1)

    @property
    def position_skew(self) -> np.ndarray:
        """Observed / expected share of occurrences at a row's first or last position (1 = no skew)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.edge_expected > 0, (self.first + self.last) / self.edge_expected, np.nan)


def encode(token_lists: Sequence[Sequence]) -> Encoded:
    """Build the rows x vocab occurrence matrix of tokenised rows (tokens may be strings or ids)."""
    n = len(token_lists)
    lengths = np.fromiter((len(t) for t in token_lists), dtype=np.int64, count=n)
    flat = list(chain.from_iterable(token_lists))
    if flat:
        codes, uniques = pd.factorize(np.array(flat, dtype=object))
        vocab = list(uniques)
    else:
        codes, vocab = np.zeros(0, dtype=np.int64), []
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    counts = sparse.csr_matrix((np.ones(len(codes), dtype=np.int64), codes.astype(np.int32), indptr),
                               shape=(n, len(vocab)))
    counts.sum_duplicates()
    nonempty = lengths > 0
    first = codes[indptr[:-1][nonempty]]
    last = codes[indptr[1:][nonempty] - 1]
    single = codes[indptr[:-1][lengths == 1]]
    return Encoded(counts, vocab, first, last, single, lengths)


def _feature_map(vocab: list[str], *, tokens: bool, shapes: bool, lowercase: bool,
                 token_kind: str) -> tuple[sparse.csr_matrix, list[str], list[str]]:
    """The 0/1 vocab x features matrix: each surface token to its normalised token and its shapes."""
    rows: list[int] = []
    names: dict[str, int] = {}
    kinds: list[str] = []
    cols: list[int] = []

    def col(name: str, kind: str) -> int:
        idx = names.get(name)
        if idx is None:
            idx = names[name] = len(names)
            kinds.append(kind)
        return idx

    for i, surface in enumerate(vocab):
        if tokens:
            rows.append(i)
            cols.append(col(normalize_token(surface, lowercase), token_kind))
        if shapes:
            for shape in shapes_of(surface):
                rows.append(i)
                cols.append(col(shape, "shape"))
    fmap = sparse.csr_matrix((np.ones(len(rows), dtype=np.int64), (rows, cols)), shape=(len(vocab), len(names)))
    fmap.data[:] = 1  # a surface token mapped twice to one feature still counts once
    return fmap, list(names), kinds


def _project(enc: Encoded, fmap: sparse.csr_matrix) -> tuple[sparse.csr_matrix, np.ndarray, np.ndarray,
                                                            np.ndarray]:
    """Feature occurrence matrix, first/last counts and expected edge counts for one encoding."""
    z = (enc.counts @ fmap).tocsr()
    v = len(enc.vocab)
    first_v = np.bincount(enc.first, minlength=v)
    last_v = np.bincount(enc.last, minlength=v) - np.bincount(enc.single, minlength=v)
    first = fmap.T @ first_v
    last = fmap.T @ last_v
    with np.errstate(divide="ignore", invalid="ignore"):
        edge_rate = np.where(enc.lengths > 0, np.minimum(enc.lengths, 2) / np.maximum(enc.lengths, 1), 0.0)
    expected = z.T @ edge_rate
    return z, np.asarray(first).ravel(), np.asarray(last).ravel(), np.asarray(expected).ravel()


def _positional(enc: Encoded, fmap: sparse.csr_matrix) -> tuple[sparse.csr_matrix, sparse.csr_matrix]:
    """Rows x features presence of each row's first token's features and of its last token's features."""
    n, v = enc.counts.shape
    rows = np.flatnonzero(enc.lengths > 0)
    ones = np.ones(len(rows), dtype=np.int64)
    start = sparse.csr_matrix((ones, (rows, enc.first)), shape=(n, v)) @ fmap
    end = sparse.csr_matrix((ones, (rows, enc.last)), shape=(n, v)) @ fmap
    return start.tocsr(), end.tocsr()


def count_features(texts: Sequence[str], label_ids: np.ndarray, n_labels: int, *, lowercase: bool = True,
                   shapes: bool = True, subword_tokens: Sequence[Sequence[int]] | None = None,
                   subword_vocab: Sequence[str] | None = None, positional: bool = True) -> FeatureCounts:
    """Count every token and shape per label in one vectorised pass.

    With ``subword_tokens`` (token ids per row from a Hugging Face tokenizer, ``subword_vocab`` their strings),
    token features are those subwords and shapes still come from the word tokenizer. With ``positional``,
    every word-level feature also has a ``start`` and an ``end`` variant: present when the row's first (last)
    token is, or has the shape of, the feature.
    """
    label_ids = np.asarray(label_ids, dtype=np.int64)
    n = len(texts)
    words = encode(tokenize_corpus(list(texts)))
    parts = []
    if subword_tokens is None:
        fmap, names, kinds = _feature_map(words.vocab, tokens=True, shapes=shapes, lowercase=lowercase,
                                          token_kind="token")
        parts.append((_project(words, fmap), names, kinds, "any"))
        n_tokens = int(words.lengths.sum())
        word_map, word_names, word_kinds = fmap, names, kinds
    else:
        sub = encode(subword_tokens)
        surface = [str(subword_vocab[i]) if subword_vocab is not None else str(i) for i in sub.vocab]
        sub.vocab = surface
        fmap, names, kinds = _feature_map(surface, tokens=True, shapes=False, lowercase=False,
                                          token_kind="subword")
        parts.append((_project(sub, fmap), names, kinds, "any"))
        word_map, word_names, word_kinds = _feature_map(words.vocab, tokens=False, shapes=shapes,
                                                        lowercase=lowercase, token_kind="token")
        if shapes:
            parts.append((_project(words, word_map), word_names, word_kinds, "any"))
        n_tokens = int(sub.lengths.sum())
    if positional and word_names:
        start, end = _positional(words, word_map)
        zeros = np.zeros(len(word_names))
        for mat, where in ((start, "start"), (end, "end")):
            count = np.asarray(mat.sum(axis=0)).ravel()
            parts.append(((mat, count if where == "start" else zeros, count if where == "end" else zeros,
                           count.astype(float)), word_names, word_kinds, where))
    occ = sparse.hstack([p[0][0] for p in parts], format="csr")
    presence = occ.copy()
    presence.data = np.ones_like(presence.data)
    onehot = sparse.csr_matrix((np.ones(n, dtype=np.int64), (np.arange(n), label_ids)), shape=(n, n_labels))
    doc_freq = np.asarray((presence.T @ onehot).toarray(), dtype=np.int64)
    return FeatureCounts(
        features=[name for p in parts for name in p[1]],
        kinds=[kind for p in parts for kind in p[2]],
        positions=[p[3] for p in parts for _ in p[1]],
        doc_freq=doc_freq,
        occurrences=np.asarray(occ.sum(axis=0)).ravel().astype(np.int64),
        first=np.concatenate([p[0][1] for p in parts]).astype(np.int64),
        last=np.concatenate([p[0][2] for p in parts]).astype(np.int64),
        edge_expected=np.concatenate([p[0][3] for p in parts]),
        presence=presence,
        label_counts=np.bincount(label_ids, minlength=n_labels).astype(np.int64),
        n_tokens=n_tokens,
    )


# ---------------------------------------------------------------------------------------------- statistics


def conditional(doc_freq: np.ndarray) -> np.ndarray:
    """p(y | t) for every feature (rows) and label (columns); rows of zero support give zeros."""
    support = doc_freq.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(support > 0, doc_freq / np.maximum(support, 1), 0.0)


def entropy_bits(p: np.ndarray) -> np.ndarray:
    """Row-wise Shannon entropy in bits (0 log 0 = 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log2(np.where(p > 0, p, 1.0)), 0.0)
    return terms.sum(axis=1)


def pmi_bits(p_y_given_t: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """PMI(t, y) = log2 p(y|t) / p(y); -inf where the feature never occurs with the label."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log2(p_y_given_t / prior[None, :])


def binom_log10_sf(k: np.ndarray, n: np.ndarray, p: np.ndarray) -> np.ndarray:
    """log10 P(X >= k) for X ~ Binomial(n, p), elementwise; stays finite far into the tail.

    Uses scipy's exact ``binom.sf``; where that underflows to 0 it uses the log pmf at ``k`` times the
    geometric bound of the tail, ``pmf(k) / (1 - r)`` with ``r = (n-k) p / ((k+1)(1-p))`` (an upper bound
    that is tight there). Without scipy it sums the tail exactly in log space.
    """
    k, n, p = np.broadcast_arrays(np.asarray(k, float), np.asarray(n, float), np.asarray(p, float))
    try:
        from scipy.stats import binom
    except ImportError:  # pragma: no cover - scipy ships with scikit-learn
        return np.vectorize(_log10_sf_exact)(k, n, p)
    with np.errstate(divide="ignore", invalid="ignore"):
        sf = binom.sf(k - 1, n, p)
        out = np.log10(np.where(sf > 0, sf, 1.0))
        tiny = ~(sf > 0)
        if tiny.any():
            kk, nn, pp = k[tiny], n[tiny], p[tiny]
            r = np.clip((nn - kk) * pp / ((kk + 1) * (1 - pp)), 0.0, 1 - 1e-12)
            out[tiny] = (binom.logpmf(kk, nn, pp) - np.log1p(-r)) / LN10
    out[k <= 0] = 0.0
    return np.minimum(out, 0.0)


def _log10_sf_exact(k: float, n: float, p: float) -> float:
    """Exact log10 P(X >= k) by a log-space sum over the tail (fallback without scipy)."""
    if k <= 0:
        return 0.0
    if k > n:
        return -math.inf
    if p <= 0:
        return -math.inf
    if p >= 1:
        return 0.0
    terms = [math.lgamma(n + 1) - math.lgamma(j + 1) - math.lgamma(n - j + 1) + j * math.log(p)
             + (n - j) * math.log1p(-p) for j in range(int(k), int(n) + 1)]
    top = max(terms)
    return (top + math.log(sum(math.exp(t - top) for t in terms))) / LN10


def adjust_log10(log10_p: np.ndarray, method: str) -> np.ndarray:
    """Multiple-testing correction of log10 p-values over all entries: ``bonferroni`` or ``bh``.

    Bonferroni: ``min(1, m p)``. Benjamini–Hochberg: ``min_{j >= i} m p_(j) / j`` over the sorted p-values
    (controls the false discovery rate). Both are computed in log space so tiny p-values keep their order.
    """
    flat = np.asarray(log10_p, dtype=float).ravel()
    m = flat.size
    if m == 0:
        return np.asarray(log10_p, dtype=float)
    if method == "bonferroni":
        adj = flat + math.log10(m)
    elif method == "bh":
        order = np.argsort(flat, kind="stable")
        ranked = flat[order] + math.log10(m) - np.log10(np.arange(1, m + 1))
        ranked = np.minimum.accumulate(ranked[::-1])[::-1]
        adj = np.empty_like(flat)
        adj[order] = ranked
    else:
        raise ValueError(f"unknown correction {method!r} (use bonferroni or bh)")
    return np.minimum(adj, 0.0).reshape(np.shape(log10_p))
