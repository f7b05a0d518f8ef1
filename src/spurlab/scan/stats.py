"""Vectorised per-label statistics of tokens and token shapes.

Tokenisation (``fasttok.encode_texts``) gives every row's token ids over the corpus vocabulary; that builds a
sparse row x vocabulary count matrix ``X``. Every feature (a normalised token or a shape) is a column of
``Z = X @ F``, where the 0/1 matrix ``F`` maps each surface token to its features (shapes are computed once per
vocabulary entry, not per occurrence). Document frequency per label counts the non-zeros of ``Z`` per
(feature, label) with one ``np.bincount``: a row counts once however often the feature occurs in it. The
first/last-token features need no row matrix at all: their per-label counts are ``F.T`` times a vocabulary x
label count of the rows' first (last) token ids.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import chain

import numpy as np
import pandas as pd
from scipy import sparse

from spurlab.scan.fasttok import chunk_texts
from spurlab.scan.inserted import inserted_mask
from spurlab.scan.shapes import alone_flags, normalize_token, shapes_of, token_spans

LN10 = math.log(10.0)
#: The longest phrase counted (by extension beyond the configured n-gram length only; see ``_ngram_part``).
MAX_PHRASE_WORDS = 16


@dataclass
class CodedRows:
    """A tokenised corpus: ``counts`` is rows x vocab (occurrences), plus the first/last token of each row.

    With ``chunks`` (chunks x vocab), ``counts`` is rows x chunks instead and the occurrences are
    ``counts @ chunks`` (never built: features are ``counts @ (chunks @ F)``)."""

    counts: sparse.csr_matrix
    vocab: list
    first: np.ndarray  # vocab id of each non-empty row's first token
    last: np.ndarray
    single: np.ndarray  # vocab ids of rows with exactly one token
    lengths: np.ndarray  # tokens per row
    chunks: sparse.csr_matrix | None = None
    codes: np.ndarray | None = None  # every token's vocab id, row after row
    alone: np.ndarray | None = None  # per token of ``codes``: whitespace or the row's edge on both sides


@dataclass
class _Part:
    """One block of feature columns: ``z`` (rows x features occurrences) or, for first/last-token features,
    ``edge`` (each row's first/last vocabulary id, -1 for an empty row) through ``fmap``."""

    offset: int
    size: int
    n_rows: int
    z: sparse.csr_matrix | None = None
    edge: np.ndarray | None = None
    fmap: sparse.csr_matrix | None = None
    _csc: sparse.csc_matrix | None = None

    def entries(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """(row, local column) of every present feature in rows ``start:stop``, row by row."""
        if self.z is not None:
            ptr = self.z.indptr[start:stop + 1]
            rows = np.repeat(np.arange(start, stop, dtype=np.int64), np.diff(ptr))
            return rows, self.z.indices[ptr[0]:ptr[-1]].astype(np.int64)
        edge = self.edge[start:stop]
        rows = np.flatnonzero(edge >= 0)
        tokens = edge[rows]
        counts = np.diff(self.fmap.indptr)[tokens]
        ends = np.cumsum(counts)
        src = np.repeat(self.fmap.indptr[tokens] - (ends - counts), counts) + np.arange(int(ends[-1]) if len(ends)
                                                                                        else 0)
        return np.repeat(rows + start, counts), self.fmap.indices[src].astype(np.int64)

    def csc(self) -> sparse.csc_matrix:
        """Rows x features presence (1 where present) in CSC form, row indices sorted; cached."""
        if self._csc is None:
            if self.z is not None:
                mat = self.z.tocsc()
            else:
                rows = np.flatnonzero(self.edge >= 0)
                onehot = sparse.csr_matrix((np.ones(len(rows), dtype=np.int64), (rows, self.edge[rows])),
                                           shape=(self.n_rows, self.fmap.shape[0]))
                mat = (onehot @ self.fmap).tocsc()
            mat.sort_indices()
            self._csc = sparse.csc_matrix((np.ones(mat.nnz, dtype=np.int64), mat.indices, mat.indptr),
                                          shape=mat.shape)
        return self._csc


@dataclass
class FeatureCounts:
    """Counts behind every statistic, one entry per feature (column)."""

    features: list[str]
    kinds: list[str]  # "token", "subword" or "shape"
    positions: list[str]  # "any" (anywhere in the row), "start" (the row's first token), "end" (its last) or
    # "inserted" (an occurrence that reads as inserted, see spurlab.scan.inserted)
    doc_freq: np.ndarray  # features x labels: rows of each label containing the feature
    occurrences: np.ndarray  # total occurrences (not rows)
    first: np.ndarray  # rows whose first token is (or has the shape of) the feature
    last: np.ndarray
    edge_expected: np.ndarray  # expected first/last occurrences if positions were uniform within rows
    parts: list[_Part]  # what presence is built from, one entry per block of columns
    label_counts: np.ndarray
    n_tokens: int
    words: CodedRows | None = None  # the word tokens behind the word-level features (for the context test)
    word_map: sparse.csr_matrix | None = None  # their vocab x word-feature map
    word_offsets: dict[str, int] | None = None  # position -> first column of that block of word features
    phrase_tokens: dict[int, tuple[str, ...]] = field(default_factory=dict)  # phrase column -> its word tokens
    _word_index: dict[str, int] | None = field(default=None, repr=False)

    def word_feature(self, col: int) -> int | None:
        """The word-feature index (a column of ``word_map``) of feature column ``col``; None for subwords."""
        if self.word_map is None or not self.word_offsets:
            return None
        offset = self.word_offsets.get(self.positions[col])
        if offset is None or not offset <= col < offset + self.word_map.shape[1]:
            return None
        return col - offset

    def own_words(self, col: int) -> list[int] | None:
        """The word features (columns of ``word_map``) that are feature ``col``'s own: the feature itself, or a
        phrase's words; None for a feature that is not word-level (a subword)."""
        local = self.word_feature(col)
        if local is not None:
            return [local]
        if col not in self.phrase_tokens or self.word_offsets is None or "any" not in self.word_offsets:
            return None
        if self._word_index is None:
            start, size = self.word_offsets["any"], self.word_map.shape[1] if self.word_map is not None else 0
            self._word_index = {name: j for j, (name, kind) in enumerate(zip(
                self.features[start:start + size], self.kinds[start:start + size], strict=True)) if kind == "token"}
        return [self._word_index[w] for w in self.phrase_tokens[col] if w in self._word_index]

    def word_presence(self) -> sparse.csr_matrix:
        """Rows x word features, 1 where the row has the feature anywhere (what context and relabel tests read)."""
        if self.words is None or self.word_map is None:
            raise ValueError("no word-level features")
        x = self.words.counts if self.words.chunks is None else self.words.counts @ self.words.chunks
        z = (x @ self.word_map).tocsr()
        z.data[:] = 1.0
        return z

    @property
    def presence(self) -> sparse.csr_matrix:
        """Rows x features, 1 where the row contains the feature (built on demand: it is big)."""
        return self.presence_columns(np.arange(len(self.features))).tocsr()

    def presence_columns(self, cols: Sequence[int]) -> sparse.csc_matrix:
        """``presence[:, cols]`` as a CSC matrix."""
        n_rows = self.parts[0].n_rows if self.parts else 0
        if not self.parts:
            return sparse.csc_matrix((n_rows, len(cols)), dtype=np.int64)
        full = sparse.hstack([part.csc() for part in self.parts], format="csc")
        return full[:, np.asarray(cols, dtype=np.int64)].tocsc()

    def feature_rows(self, col: int) -> np.ndarray:
        """Sorted indices of the rows that contain feature ``col`` (for start/end features: at that position)."""
        for part in self.parts:
            if part.offset <= col < part.offset + part.size:
                local = col - part.offset
                if part.z is not None:
                    mat = part.csc()
                    return mat.indices[mat.indptr[local]:mat.indptr[local + 1]].astype(np.int64)
                column = part.fmap.tocsc()[:, local]
                return np.flatnonzero(np.isin(part.edge, column.indices) & (part.edge >= 0))
        raise IndexError(f"no feature column {col}")

    def first_rows(self, cols: Sequence[int], labels: Sequence[int], label_ids: np.ndarray, k: int
                   ) -> list[list[int]]:
        """For each ``(cols[i], labels[i])``: the first ``k`` rows (in row order) that contain feature ``cols[i]``
        and carry label ``labels[i]``. Scans rows in growing blocks and stops once every pair has ``k``, so it
        seldom touches the whole corpus."""
        cols = np.asarray(cols, dtype=np.int64)
        labels = np.asarray(labels, dtype=np.int64)
        out: list[list[int]] = [[] for _ in range(len(cols))]
        n_labels = int(max(label_ids.max(initial=0), labels.max(initial=0))) + 1
        for part in self.parts:
            mine = np.flatnonzero((cols >= part.offset) & (cols < part.offset + part.size))
            if not mine.size or k <= 0:
                continue
            keys = (cols[mine] - part.offset) * n_labels + labels[mine]
            remaining = np.zeros(part.size * n_labels, dtype=np.int64)
            remaining[keys] = k
            found_keys, found_rows = [], []
            start, step, active = 0, 4096, len(mine)
            while start < part.n_rows and active:
                stop = min(start + step, part.n_rows)
                rows, local = part.entries(start, stop)
                key = local * n_labels + label_ids[rows]
                hit = np.flatnonzero(remaining[key] > 0)
                if hit.size:
                    key, rows = key[hit], rows[hit]
                    order = np.argsort(key, kind="stable")
                    key, rows = key[order], rows[order]
                    first = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]]))
                    rank = np.arange(len(key)) - np.repeat(first, np.diff(np.append(first, len(key))))
                    take = rank < remaining[key]
                    found_keys.append(key[take])
                    found_rows.append(rows[take])
                    remaining -= np.bincount(key[take], minlength=len(remaining))
                    active = int(np.count_nonzero(remaining[keys]))
                start, step = stop, step * 2
            if found_keys:
                key = np.concatenate(found_keys)
                rows = np.concatenate(found_rows)
                order = np.argsort(key, kind="stable")
                key, rows = key[order], rows[order]
                bounds = np.searchsorted(key, keys, side="left"), np.searchsorted(key, keys, side="right")
                for i, lo, hi in zip(mine.tolist(), bounds[0].tolist(), bounds[1].tolist(), strict=True):
                    out[i] = rows[lo:hi].tolist()
        return out

    @property
    def support(self) -> np.ndarray:
        return self.doc_freq.sum(axis=1)

    @property
    def position_skew(self) -> np.ndarray:
        """Observed / expected share of occurrences at a row's first or last position (1 = no skew)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.edge_expected > 0, (self.first + self.last) / self.edge_expected, np.nan)


def code_rows(token_lists: Sequence[Sequence]) -> CodedRows:
    """Build the rows x vocab occurrence matrix of tokenised rows (tokens may be strings or ids)."""
    n = len(token_lists)
    lengths = np.fromiter((len(t) for t in token_lists), dtype=np.int64, count=n)
    flat = list(chain.from_iterable(token_lists))
    if flat:
        codes, uniques = pd.factorize(np.array(flat, dtype=object))
        vocab = list(uniques)
    else:
        codes, vocab = np.zeros(0, dtype=np.int64), []
    return _coded_rows(np.asarray(codes, dtype=np.int64), lengths, vocab)


def code_words(texts: Sequence[str]) -> CodedRows:
    """``code_rows(tokenize_corpus(texts))`` without per-row Python, at the level of whitespace chunks
    (``fasttok.chunk_texts``): the same vocabulary (first-occurrence order), first/last tokens and lengths, and
    occurrences ``counts @ chunks``."""
    if not hasattr(texts, "to_pylist"):  # a list of strings, or an Arrow array
        texts = list(texts)
    chunked = chunk_texts(texts)
    if chunked is None:  # pragma: no cover - only without pyarrow or with an odd Arrow whitespace set
        return code_words_reference(texts if isinstance(texts, list) else texts.to_pylist())
    # both before token_matrix(): its sum_duplicates sorts token_ids within chunks in place
    codes, alone = chunked.codes_and_alone()
    counts = chunked.chunk_matrix()
    lengths = chunked.lengths(counts)
    first, last = chunked.edge_tokens()
    single = first[lengths[lengths > 0] == 1]
    return CodedRows(counts, chunked.vocab, first.astype(np.int64), last.astype(np.int64),
                   single.astype(np.int64), lengths, chunks=chunked.token_matrix(), codes=codes, alone=alone)


def code_words_reference(texts: list[str]) -> CodedRows:
    """``code_words`` the slow, obvious way: the reference tokenizer row by row (for tests and fallback)."""
    spans = [token_spans(text) for text in texts]
    enc = code_rows([[tok for _, _, tok in row] for row in spans])
    enc.alone = np.fromiter(chain.from_iterable(alone_flags(t, row) for t, row in zip(texts, spans, strict=True)),
                            dtype=bool, count=int(enc.lengths.sum()))
    return enc


def _coded_rows(codes: np.ndarray, lengths: np.ndarray, vocab: list) -> CodedRows:
    n = len(lengths)
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    counts = sparse.csr_matrix((np.ones(len(codes), dtype=np.int64), codes.astype(np.int32), indptr),
                               shape=(n, len(vocab)))
    counts.sum_duplicates()
    nonempty = lengths > 0
    first = codes[indptr[:-1][nonempty]]
    last = codes[indptr[1:][nonempty] - 1]
    single = codes[indptr[:-1][lengths == 1]]
    return CodedRows(counts, vocab, first, last, single, lengths, codes=codes)


def _feature_map(vocab: list[str], *, tokens: bool, shapes: bool, lowercase: bool,
                 token_kind: str) -> tuple[sparse.csr_matrix, list[str], list[str]]:
    """The 0/1 vocab x features matrix: each surface token to its normalised token and its shapes.

    Columns are numbered in order of first appearance over (token feature, then shapes) per vocabulary entry."""
    rows: list[int] = []
    seq: list[str] = []  # feature names, one per (vocab entry, feature)
    seq_kinds: list[str] = []
    for i, surface in enumerate(vocab):
        if tokens:
            rows.append(i)
            seq.append(normalize_token(surface, lowercase))
            seq_kinds.append(token_kind)
        if shapes:
            for shape in shapes_of(surface):
                rows.append(i)
                seq.append(shape)
                seq_kinds.append("shape")
    if seq:
        cols, uniques = pd.factorize(np.asarray(seq, dtype=object))
        names = [str(u) for u in uniques]
        first = np.full(len(names), len(seq), dtype=np.int64)
        np.minimum.at(first, cols, np.arange(len(seq)))
        kinds = [seq_kinds[j] for j in first.tolist()]
    else:
        cols, names, kinds = np.zeros(0, dtype=np.int64), [], []
    fmap = sparse.csr_matrix((np.ones(len(rows), dtype=np.int64), (rows, cols)), shape=(len(vocab), len(names)))
    fmap.data[:] = 1  # a surface token mapped twice to one feature still counts once
    return fmap, names, kinds


def _by_label(ids: np.ndarray, label_ids: np.ndarray, size: int, n_labels: int, block: int = 1 << 22) -> np.ndarray:
    """size x labels counts of (id, label) pairs (in blocks: one small reused buffer instead of a copy of ``ids``)."""
    out = np.zeros(size * n_labels, dtype=np.int64)
    buf = np.empty(min(block, len(ids)), dtype=np.int64)
    for start in range(0, len(ids), block):
        key = buf[:min(block, len(ids) - start)]
        np.multiply(ids[start:start + len(key)], n_labels, out=key)
        key += label_ids[start:start + len(key)]
        out += np.bincount(key, minlength=size * n_labels)
    return out.reshape(size, n_labels)


def _any_part(enc: CodedRows, fmap: sparse.csr_matrix, label_ids: np.ndarray, n_labels: int) -> dict:
    """Occurrences, rows per label, first/last counts and expected edge counts of every feature anywhere."""
    # rows x features occurrences; on chunks: counts @ (chunks @ F), in float64 holding exact integer counts
    z = (enc.counts @ (fmap if enc.chunks is None else (enc.chunks @ fmap).tocsr())).tocsr()
    v, n_feat = fmap.shape
    first_v = np.bincount(enc.first, minlength=v)
    last_v = np.bincount(enc.last, minlength=v) - np.bincount(enc.single, minlength=v)
    with np.errstate(divide="ignore", invalid="ignore"):
        edge_rate = np.where(enc.lengths > 0, np.minimum(enc.lengths, 2) / np.maximum(enc.lengths, 1), 0.0)
    small = np.int8 if n_labels <= 127 else np.int64
    row_of = np.repeat(label_ids.astype(small), np.diff(z.indptr))  # the label of each non-zero's row
    return {
        "z": z,
        "doc_freq": _by_label(z.indices, row_of, n_feat, n_labels),
        "occurrences": _occurrences(enc, fmap, z),
        "first": np.asarray(fmap.T @ first_v).ravel(),
        "last": np.asarray(fmap.T @ last_v).ravel(),
        "expected": np.asarray(z.T @ edge_rate).ravel(),
    }


def _occurrences(enc: CodedRows, fmap: sparse.csr_matrix, z: sparse.csr_matrix) -> np.ndarray:
    """Total occurrences of every feature: column sums of ``z``, or on chunks ``F.T @ chunks.T @ chunk counts``
    (the same integers without a pass over ``z``)."""
    if enc.chunks is None:
        return np.asarray(z.sum(axis=0)).ravel().astype(np.int64)
    per_chunk = np.rint(enc.counts.T @ np.ones(enc.counts.shape[0], dtype=enc.counts.dtype)).astype(np.int64)
    per_token = np.rint(enc.chunks.T @ per_chunk.astype(np.float64)).astype(np.int64)
    return np.asarray(fmap.T @ per_token).ravel().astype(np.int64)


def _inserted_part(enc: CodedRows, fmap: sparse.csr_matrix, label_ids: np.ndarray, n_labels: int,
                   lowercase: bool) -> dict:
    """Rows x features occurrences read as inserted (``spurlab.scan.inserted``), and their rows per label."""
    n = len(enc.lengths)
    norm, uniques = pd.factorize(np.asarray([normalize_token(str(v), lowercase) for v in enc.vocab], dtype=object))
    codes = enc.codes if enc.codes is not None else np.zeros(0, dtype=np.int64)
    mask = inserted_mask(np.asarray(norm, dtype=np.int64)[codes], enc.lengths, enc.alone, uniques) if len(codes) \
        else np.zeros(0, dtype=bool)
    rows = np.repeat(np.arange(n, dtype=np.int64), enc.lengths)[mask]
    occ = sparse.csr_matrix((np.ones(len(rows)), (rows, codes[mask])), shape=(n, fmap.shape[0]))
    z = (occ @ fmap).tocsr()
    z.sum_duplicates()
    small = np.int8 if n_labels <= 127 else np.int64
    row_of = np.repeat(label_ids.astype(small), np.diff(z.indptr))
    return {"z": z, "doc_freq": _by_label(z.indices, row_of, fmap.shape[1], n_labels),
            "count": np.rint(np.asarray(z.sum(axis=0)).ravel()).astype(np.int64)}


def _edge_part(edge: np.ndarray, rows: np.ndarray, fmap: sparse.csr_matrix, label_ids: np.ndarray,
               n_labels: int) -> dict:
    """Rows per label whose first (last) token is, or has the shape of, each feature: ``F.T`` times a
    vocabulary x label count of the rows' first (last) token ids."""
    per_token = _by_label(edge, label_ids[rows], fmap.shape[0], n_labels)
    doc_freq = np.asarray(fmap.T @ per_token, dtype=np.int64)
    return {"doc_freq": doc_freq, "count": doc_freq.sum(axis=1)}


def _ngram_part(words: CodedRows, label_ids: np.ndarray, n_labels: int, lowercase: bool, max_n: int,
                min_support: int, max_features: int) -> dict | None:
    """Rows x phrases occurrences of every run of 2..``max_n`` consecutive word tokens (tokens that start with a
    letter, digit or ``_``; punctuation ends a phrase) in at least ``min_support`` rows, with their rows per label.
    Longer runs (up to ``MAX_PHRASE_WORDS``) are counted only where every row of the shorter phrase continues
    with the same word: a planted sentence becomes one phrase, not overlapping pieces of it.

    Support counts *distinct* rows (same word tokens, in order): copies of one row are one piece of evidence that
    its words form a phrase, and a dataset of repeated rows would otherwise make every run of every row a phrase.
    Phrases are found on the distinct rows and their occurrences then counted on every row.

    Apriori pruning keeps memory bounded: an n-gram is only extended when it has the support itself (a longer
    phrase is never in more rows than its prefix). At most ``max_features`` phrases, the most supported."""
    if words.codes is None or max_n < 2 or not len(words.codes):
        return None
    all_starts = np.concatenate([[0], np.cumsum(words.lengths)[:-1]]).astype(np.int64)
    key, rep = _distinct_rows(words.codes, words.lengths, all_starts)
    multiplicity = np.bincount(key, minlength=len(rep))
    lengths = words.lengths[rep]
    n_rows, total = len(rep), int(lengths.sum())
    row_starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    codes = words.codes[np.repeat(all_starts[rep] - row_starts, lengths) + np.arange(total, dtype=np.int64)]
    norm, uniques = pd.factorize(np.asarray([normalize_token(str(v), lowercase) for v in words.vocab],
                                            dtype=object))
    names = [str(u) for u in uniques]
    wordlike = np.fromiter((u[:1].isalnum() or u[:1] == "_" for u in names), dtype=bool, count=len(names))
    tok = np.asarray(norm, dtype=np.int64)[codes]
    row_of = np.repeat(np.arange(n_rows, dtype=np.int64), lengths)
    prev, alive = tok, wordlike[tok]  # the (n-1)-gram code starting at each position, and whether it counts
    prev_support = np.full(len(names), np.iinfo(np.int64).max)  # (n-1)-gram code -> its rows (words: no limit)
    found: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = []  # (n, start positions, codes, support)
    for n in range(2, MAX_PHRASE_WORDS + 1):
        m = total - n + 1
        if m <= 0:
            break
        ok = alive[:m] & wordlike[tok[n - 1:]] & (row_of[:m] == row_of[n - 1:])
        starts = np.flatnonzero(ok)
        if not starts.size:
            break
        gram, _ = pd.factorize(prev[starts] * (len(names) + 1) + tok[starts + n - 1])
        gram = np.asarray(gram, dtype=np.int64)
        pairs = np.unique(row_of[starts] * (int(gram.max()) + 1) + gram) % (int(gram.max()) + 1)
        support = np.bincount(pairs, minlength=int(gram.max()) + 1)
        counted = support >= min_support
        if n > max_n:  # beyond max_n a phrase only grows where every row of its prefix continues it (AddSent)
            prefix = np.zeros(len(support), dtype=np.int64)
            prefix[gram] = prev_support[prev[starts]]
            counted &= support == prefix
        found.append((n, starts, gram, np.where(counted, support, 0)))
        prev = np.full(m, -1, dtype=np.int64)
        prev[starts] = gram
        prev_support = support
        alive = np.zeros(m, dtype=bool)
        alive[starts] = counted[gram]
    kept: list[tuple[int, int, np.ndarray, int]] = []  # (n, first start, occurrence starts, support)
    for n, starts, gram, support in found:
        order = np.argsort(gram, kind="stable")
        bounds = np.searchsorted(gram[order], np.arange(len(support) + 1))
        for g in np.flatnonzero(support >= min_support).tolist():
            occ = starts[order[bounds[g]:bounds[g + 1]]]
            kept.append((n, int(occ[0]), occ, int(support[g])))
    if not kept:
        return None
    if len(kept) > max_features:
        kept = sorted(kept, key=lambda k: (-k[3], k[0], k[1]))[:max_features]
    kept.sort(key=lambda k: (k[0], k[1]))  # by length, then first occurrence: a stable column order
    cols = np.repeat(np.arange(len(kept), dtype=np.int64), [len(k[2]) for k in kept])
    occ_starts = np.concatenate([k[2] for k in kept])
    lens = np.repeat(np.asarray([k[0] for k in kept], dtype=np.int64), [len(k[2]) for k in kept])
    rows = row_of[occ_starts]
    z = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_rows, len(kept)))
    z.sum_duplicates()
    z = z[key]  # every row gets its distinct row's occurrences
    copies = multiplicity[rows].astype(float)  # each distinct row's occurrences count once per copy
    at_first = occ_starts == row_starts[rows]
    at_last = occ_starts + lens == row_starts[rows] + lengths[rows]
    first = np.rint(np.bincount(cols[at_first], weights=copies[at_first], minlength=len(kept))).astype(np.int64)
    last = np.rint(np.bincount(cols[at_last], weights=copies[at_last], minlength=len(kept))).astype(np.int64)
    slots = lengths[rows] - lens + 1  # positions the phrase could take in its row
    expected = np.bincount(cols, weights=copies * np.minimum(slots, 2) / slots, minlength=len(kept))
    occurrences = np.rint(np.bincount(cols, weights=copies, minlength=len(kept))).astype(np.int64)
    small = np.int8 if n_labels <= 127 else np.int64
    row_label = np.repeat(label_ids.astype(small), np.diff(z.indptr))
    phrase_tokens = [tuple(names[t] for t in tok[k[1]:k[1] + k[0]]) for k in kept]
    return {"z": z, "doc_freq": _by_label(z.indices, row_label, len(kept), n_labels),
            "occurrences": occurrences, "first": first, "last": last, "expected": expected, "tokens": phrase_tokens}


def _distinct_rows(codes: np.ndarray, lengths: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct-row index of every row, first row of each distinct row): rows are the same when their token ids
    are, compared by length and two independent 64-bit polynomial hashes (a collision needs ~2**64 rows)."""
    total = len(codes)
    position = np.arange(total, dtype=np.int64) - np.repeat(starts, lengths)
    rng = np.random.default_rng(0x5EED)
    width = int(lengths.max()) + 1 if len(lengths) else 1
    value = codes.astype(np.uint64) + np.uint64(1)
    nonempty = np.flatnonzero(lengths > 0)
    hashes = np.zeros((len(lengths), 3), dtype=np.uint64)
    hashes[:, 0] = lengths.astype(np.uint64)
    for column in (1, 2):
        weights = rng.integers(1, 2**63, size=width, dtype=np.uint64) | np.uint64(1)
        with np.errstate(over="ignore"):
            terms = value * weights[position]
        if total:
            hashes[nonempty, column] = np.add.reduceat(terms, starts[nonempty])
    _, rep, key = np.unique(hashes, axis=0, return_index=True, return_inverse=True)
    order = np.argsort(rep, kind="stable")  # distinct rows in order of first appearance
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank[key.ravel()].astype(np.int64), rep[order].astype(np.int64)


@dataclass
class _Blocks:
    """Feature blocks (the same feature names at one position: any, start, end, inserted) as they are counted."""

    n_rows: int
    features: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    positions: list[str] = field(default_factory=list)
    parts: list[_Part] = field(default_factory=list)
    arrays: dict[str, list[np.ndarray]] = field(
        default_factory=lambda: {k: [] for k in ("doc_freq", "occurrences", "first", "last", "expected")})

    def add(self, names: list[str], kinds: list[str], position: str, part: _Part, **arrays: np.ndarray) -> None:
        self.parts.append(part)
        self.features += names
        self.kinds += kinds
        self.positions += [position] * len(names)
        for key, value in arrays.items():
            self.arrays[key].append(value)

    def joined(self, key: str, n_labels: int) -> np.ndarray:
        values = self.arrays[key]
        if key == "expected":
            return np.concatenate(values) if values else np.zeros(0)
        if not values:
            return np.zeros((0, n_labels) if key == "doc_freq" else 0, np.int64)
        return np.concatenate(values).astype(np.int64)


def _token_parts(words: CodedRows, lowercase: bool, shapes: bool, subword_tokens: Sequence[Sequence[int]] | None,
                 subword_vocab: Sequence[str] | None) -> tuple[list[tuple], tuple, int]:
    """The ``any``-position feature sets to count (coded rows, feature map, names, kinds), the word-level one
    (map, names, kinds: what positional and inserted variants are made of) and the number of tokens."""
    if subword_tokens is None:
        fmap, names, kinds = _feature_map(words.vocab, tokens=True, shapes=shapes, lowercase=lowercase,
                                          token_kind="token")
        return [(words, fmap, names, kinds)], (fmap, names, kinds), int(words.lengths.sum())
    sub = code_rows(subword_tokens)
    sub.vocab = [str(subword_vocab[i]) if subword_vocab is not None else str(i) for i in sub.vocab]
    fmap, names, kinds = _feature_map(sub.vocab, tokens=True, shapes=False, lowercase=False, token_kind="subword")
    word = _feature_map(words.vocab, tokens=False, shapes=shapes, lowercase=lowercase, token_kind="token")
    parts = [(sub, fmap, names, kinds)] + ([(words, *word)] if shapes else [])
    return parts, word, int(sub.lengths.sum())


def count_features(texts: Sequence[str], label_ids: np.ndarray, n_labels: int, *, lowercase: bool = True,
                   shapes: bool = True, subword_tokens: Sequence[Sequence[int]] | None = None,
                   subword_vocab: Sequence[str] | None = None, positional: bool = True,
                   inserted: bool = True, ngrams: int = 1, ngram_min_support: int = 10,
                   ngram_max_features: int = 200_000, timings: dict[str, float] | None = None) -> FeatureCounts:
    """Count every token and shape per label in one vectorised pass.

    With ``subword_tokens`` (token ids per row from a Hugging Face tokenizer, ``subword_vocab`` their strings),
    token features are those subwords and shapes still come from the word tokenizer. With ``positional``,
    every word-level feature also has a ``start`` and an ``end`` variant: present when the row's first (last)
    token is, or has the shape of, the feature. With ``inserted``, every word-level feature also has an
    ``inserted`` variant: present when one of the row's occurrences of it reads as inserted
    (:mod:`spurlab.scan.inserted`). With ``ngrams >= 2`` (word tokens only), every run of 2..``ngrams``
    consecutive words in at least ``ngram_min_support`` rows is a ``phrase`` feature (:func:`_ngram_part`).
    ``texts`` may also be an Arrow string array without nulls.
    ``timings``, if given, gets ``tokenize_s`` and ``count_s`` (seconds).
    """
    clock = time.perf_counter()
    label_ids = np.asarray(label_ids, dtype=np.int64)
    n = len(texts)
    words = code_words(texts)
    if timings is not None:
        timings["tokenize_s"] = time.perf_counter() - clock
    any_parts, (word_map, word_names, word_kinds), n_tokens = _token_parts(words, lowercase, shapes, subword_tokens,
                                                                           subword_vocab)
    blocks = _Blocks(n)
    word_offsets: dict[str, int] = {}
    for enc, fm, names, kinds in any_parts:
        if fm is word_map:
            word_offsets["any"] = len(blocks.features)
        got = _any_part(enc, fm, label_ids, n_labels)
        blocks.add(names, kinds, "any", _Part(len(blocks.features), len(names), n, z=got["z"]),
                   doc_freq=got["doc_freq"], occurrences=got["occurrences"], first=got["first"], last=got["last"],
                   expected=got["expected"])
    zeros = np.zeros(len(word_names))
    if positional and word_names:
        rows = np.flatnonzero(words.lengths > 0)
        for edge_ids, where in ((words.first, "start"), (words.last, "end")):
            got = _edge_part(edge_ids, rows, word_map, label_ids, n_labels)
            edge = np.full(n, -1, dtype=np.int64)
            edge[rows] = edge_ids
            word_offsets[where] = len(blocks.features)
            count = got["count"]
            blocks.add(word_names, word_kinds, where, _Part(len(blocks.features), len(word_names), n, edge=edge,
                                                            fmap=word_map),
                       doc_freq=got["doc_freq"], occurrences=count, first=count if where == "start" else zeros,
                       last=count if where == "end" else zeros, expected=count.astype(float))
    if inserted and word_names:
        got = _inserted_part(words, word_map, label_ids, n_labels, lowercase)
        word_offsets["inserted"] = len(blocks.features)
        blocks.add(word_names, word_kinds, "inserted", _Part(len(blocks.features), len(word_names), n, z=got["z"]),
                   doc_freq=got["doc_freq"], occurrences=got["count"], first=zeros, last=zeros,
                   expected=got["count"].astype(float))
    phrase_tokens: dict[int, tuple[str, ...]] = {}
    got_ngrams = _ngram_part(words, label_ids, n_labels, lowercase, ngrams, ngram_min_support,
                             ngram_max_features) if subword_tokens is None else None
    if got_ngrams is not None:
        offset, size = len(blocks.features), len(got_ngrams["tokens"])
        phrase_tokens = {offset + i: t for i, t in enumerate(got_ngrams["tokens"])}
        blocks.add([" ".join(t) for t in got_ngrams["tokens"]], ["phrase"] * size, "any",
                   _Part(offset, size, n, z=got_ngrams["z"]), doc_freq=got_ngrams["doc_freq"],
                   occurrences=got_ngrams["occurrences"], first=got_ngrams["first"], last=got_ngrams["last"],
                   expected=got_ngrams["expected"])
    if timings is not None:
        timings["count_s"] = time.perf_counter() - clock - timings["tokenize_s"]
    return FeatureCounts(
        features=blocks.features,
        kinds=blocks.kinds,
        positions=blocks.positions,
        doc_freq=blocks.joined("doc_freq", n_labels),
        occurrences=blocks.joined("occurrences", n_labels),
        first=blocks.joined("first", n_labels),
        last=blocks.joined("last", n_labels),
        edge_expected=blocks.joined("expected", n_labels),
        parts=blocks.parts,
        label_counts=np.bincount(label_ids, minlength=n_labels).astype(np.int64),
        n_tokens=n_tokens,
        words=words,
        word_map=word_map,
        word_offsets=word_offsets,
        phrase_tokens=phrase_tokens,
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
    that is tight there).
    """
    from scipy.stats import binom  # scipy.stats takes most of a second to import: only when testing

    k, n, p = np.broadcast_arrays(np.asarray(k, float), np.asarray(n, float), np.asarray(p, float))
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
