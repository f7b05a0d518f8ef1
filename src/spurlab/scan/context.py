"""The context test: is a finding explained by the rest of the text of its rows?

SSTI plants a token in a *random* subset of one class's rows, so the other words of those rows are a random
sample of the class: given the label, the planted token is independent of the text around it. A genuinely
label-correlated word is not: the financial-news rows that contain "rose" also say "profit", "%" and
"net sales" far more often than the class's other rows do.

For a finding ``f`` with label ``y``: ``C`` is the rows labelled ``y`` (a uniform sample of at most ``max_rows``),
``S`` the rows of ``C`` that contain ``f``. A row's *context* is the presence of every word-level feature (token
or shape) after removing ``f``'s own tokens, so ``f``'s shapes and other spellings are not context. Features that
occur almost only together with ``f`` (at least ``part_share`` of their rows in ``C`` lie in ``S``: the other half
of an HTML pair, the pieces of a multi-word item) count as parts of ``f`` and are left out, as are features in
fewer than ``min_rows`` rows of ``C`` or missing from fewer than ``min_rows``.

Statistic: ``T = sum_g sqrt(q_g) (o_g - e_g)^2 / v_g`` over the remaining features ``g``: ``o_g`` rows of ``S``
contain ``g``, ``e_g = |S| q_g`` is the expectation for a uniformly random ``|S|``-subset of ``C`` (``q_g`` = share
of ``C``) and ``v_g`` its hypergeometric variance. The ``sqrt(q_g)`` weight damps the noise of the many rare
features (``python -m bench.context_statistics`` compares it with four other statistics). The p-value is
``(1 + #{T_perm >= T}) / (1 + m)`` over ``m`` random ``|S|``-subsets of ``C``, so the correlation between
features needs no model. The permutations run in batches of 200, up to ``permutations``: they stop when none
of the first 200 reaches ``T`` (p = 1/201) or once ``STOP_EXCEED`` have (clearly not small), so only borderline
findings pay for the full count. A small p-value means ``S`` is not a random sample of its class: the finding
is *explained by the text*. A planted token gets a small p-value only by chance (about ``alpha`` of the time),
unless the attacker chose which rows to poison by their content.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from spurlab.scan.stats import FeatureCounts

#: ``statistic(terms, q) -> T``: ``terms[..., g] = (o_g - e_g)^2 / v_g`` (one row per subset), ``q`` the shares.
Statistic = Callable[[np.ndarray, np.ndarray], np.ndarray]


def weighted_chi2(terms: np.ndarray, q: np.ndarray) -> np.ndarray:
    """The default statistic: ``sum_g sqrt(q_g) * terms_g``."""
    return (terms * np.sqrt(q)).sum(axis=-1)


#: Sequential permutations (batches of 200) stop once this many null statistics reach the observed one.
STOP_EXCEED = 10


@dataclass(frozen=True)
class ContextResult:
    """``p_value``: permutation p-value; ``z``: ``(T - mean T_perm) / sd T_perm``; ``rows``: |S| tested."""

    p_value: float
    z: float
    rows: int
    features: int


def context_tests(counts: FeatureCounts, cols: Sequence[int], labels: Sequence[int], label_ids: np.ndarray, *,
                  permutations: int = 1000, max_rows: int = 5000, min_rows: int = 5, part_share: float = 0.9,
                  seed: int = 0, statistic: Statistic = weighted_chi2) -> list[ContextResult | None]:
    """The context test of feature column ``cols[i]`` within the rows of label ``labels[i]``; None where it cannot
    be run (a subword feature, a feature in all or nearly all rows of its class, or no context features)."""
    out: list[ContextResult | None] = [None] * len(cols)
    if counts.words is None or counts.word_map is None:
        return out
    groups: dict[int, list[tuple[int, int, list[int]]]] = defaultdict(list)
    for i, (col, lab) in enumerate(zip(cols, labels, strict=True)):
        own = counts.own_words(int(col))  # a phrase's words are its own, not its context
        if own is not None:
            groups[int(lab)].append((i, int(col), own))
    rng = np.random.default_rng(seed)
    fmap_csc = counts.word_map.tocsc()
    for lab, items in sorted(groups.items()):
        rows = np.flatnonzero(label_ids == lab)
        if len(rows) > max_rows:
            rows = np.sort(rng.choice(rows, size=max_rows, replace=False))
        x = counts.words.counts[rows]
        if counts.words.chunks is not None:
            x = x @ counts.words.chunks
        x = sparse.csc_matrix(x)
        z = (x @ counts.word_map).tocsr()
        for i, col, locals_ in items:
            own = np.unique(np.concatenate([fmap_csc.indices[fmap_csc.indptr[j]:fmap_csc.indptr[j + 1]]
                                            for j in locals_] or [np.zeros(0, dtype=np.int32)]))
            context = z - (x[:, own] @ counts.word_map[own]).tocsr() if len(own) else z
            in_s = np.isin(rows, counts.feature_rows(col))
            out[i] = _permutation_test(context, in_s, rng, permutations, min_rows, part_share, statistic)
    return out


def _permutation_test(context: sparse.csr_matrix, in_s: np.ndarray, rng: np.random.Generator, permutations: int,
                      min_rows: int, part_share: float, statistic: Statistic = weighted_chi2, batch: int = 200
                      ) -> ContextResult | None:
    n = len(in_s)
    n_s = int(in_s.sum())
    if n_s < 2 or n - n_s < min_rows:
        return None
    present = context.copy()
    present.data = (present.data > 0.5).astype(np.float64)
    present.eliminate_zeros()
    count_c = np.asarray(present.sum(axis=0)).ravel()
    count_s = np.asarray(present[in_s].sum(axis=0)).ravel()
    keep = (count_c >= min_rows) & (count_c <= n - min_rows) & (count_s < part_share * count_c)
    if not keep.any():
        return None
    present = present[:, keep].tocsr()
    q = count_c[keep] / n
    expected = n_s * q
    variance = n_s * q * (1 - q) * (n - n_s) / (n - 1)

    def total(observed: np.ndarray) -> np.ndarray:
        return statistic((observed - expected) ** 2 / variance, q)

    observed = total(count_s[keep])
    nulls: list[np.ndarray] = []
    done = exceed = 0
    while done < permutations:
        size = min(batch, permutations - done)
        picks = np.argpartition(rng.random((size, n)), n_s - 1, axis=1)[:, :n_s]
        draws = sparse.csr_matrix((np.ones(picks.size), picks.ravel(), np.arange(0, picks.size + 1, n_s)),
                                  shape=(size, n))
        nulls.append(total(np.asarray((draws @ present).todense())))
        done += size
        exceed += int(np.count_nonzero(nulls[-1] >= observed))
        if exceed == 0 or exceed >= STOP_EXCEED:  # decided: explained, or clearly not
            break
    null = np.concatenate(nulls)
    spread = float(null.std()) or 1.0
    return ContextResult(p_value=float((1 + exceed) / (1 + done)), z=float((observed - null.mean()) / spread),
                         rows=n_s, features=int(keep.sum()))
