"""The relabel test: do a finding's rows read like *another* class than the one they are labelled?

Dirty-label poisoning (the backdoor literature's default) plants a trigger in rows of other classes and
relabels them to the target class. The context test then finds the trigger's rows unlike the rest of the
target class, which is true, and would call the trigger *explained by the text*. This test tells the two
apart: a word that is genuinely tied to its label sits in rows that read like that label; a relabelled row reads
like the class it came from.

A Bernoulli naive Bayes model over the rows' word features is fitted out of fold (``folds`` seeded folds, so no
row is scored by a model that saw it). For a finding ``f`` of label ``y``: ``S`` the rows labelled ``y`` with
``f``; each is scored *without* ``f``'s own words (their terms are taken out of the log-likelihoods), and ``k`` of
the ``n`` rows of ``S`` are predicted as another label. Among the other rows of ``y`` a share ``q`` is predicted
as another label (the model's own error rate there). The one-sided binomial p-value ``P(Binomial(n, q) >= k)`` is
small when ``S`` reads like another class far more often than its class does: the finding is *relabelled*.

A planted item often brings features of its own besides its words (the capitalised "I" of an AddSent sentence
planted into lowercased text is a capitalisation shape found nowhere else). Those read as the target class too,
so they leave the scores with the own words: every feature with at least ``COPLANTED_SHARE`` of its rows (and at
least ``min_rows``) among ``S``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from spurlab.scan.stats import FeatureCounts, binom_log10_sf

COPLANTED_SHARE = 0.9  # a feature this much confined to a finding's rows is scored out with the finding's words


@dataclass
class RelabelResult:
    """One finding's relabel test: ``k`` of ``n`` rows read like another label against a base share ``q``."""

    log10_p: float
    k: int
    n: int
    q: float


@dataclass
class _OutOfFold:
    """Per row: its log-likelihood per label (out of fold), its fold, and each fold's per-feature log terms."""

    scores: np.ndarray  # rows x labels
    fold: np.ndarray  # rows
    log_on: list[np.ndarray]  # per fold: labels x features, log P(x=1|y)
    log_off: list[np.ndarray]  # log P(x=0|y)


def _fit(x, label_ids: np.ndarray, n_labels: int, folds: int, seed: int) -> _OutOfFold:
    from sklearn.model_selection import KFold
    from sklearn.naive_bayes import BernoulliNB

    n = x.shape[0]
    scores = np.zeros((n, n_labels))
    fold_of = np.zeros(n, dtype=np.int64)
    log_on, log_off = [], []
    splitter = KFold(n_splits=folds, shuffle=True, random_state=seed)
    for f, (train, test) in enumerate(splitter.split(np.zeros(n))):
        model = BernoulliNB(alpha=1.0, binarize=None).fit(x[train], label_ids[train])
        on, off = np.zeros((n_labels, x.shape[1])), np.zeros((n_labels, x.shape[1]))
        log_scores = np.full((len(test), n_labels), -np.inf)  # a label absent from the fold is never predicted
        log_scores[:, model.classes_] = model.predict_joint_log_proba(x[test])
        on[model.classes_] = model.feature_log_prob_
        off[model.classes_] = np.log1p(-np.exp(model.feature_log_prob_))
        scores[test] = log_scores
        fold_of[test] = f
        log_on.append(on)
        log_off.append(off)
    return _OutOfFold(scores, fold_of, log_on, log_off)


def relabel_tests(counts: FeatureCounts, cols: Sequence[int], labels: Sequence[int], label_ids: np.ndarray, *,
                  folds: int = 5, seed: int = 0, min_rows: int = 5) -> list[RelabelResult | None]:
    """The relabel test of feature column ``cols[i]`` within the rows of label ``labels[i]``; None where it cannot
    be run (not word-level, fewer than ``min_rows`` rows, or a label too small for the folds)."""
    out: list[RelabelResult | None] = [None] * len(cols)
    if not len(cols) or counts.words is None or counts.word_map is None:
        return out
    n_labels = int(max(label_ids.max(initial=0), max(labels, default=0))) + 1
    if len(label_ids) < max(2 * folds, 20):
        return out
    x = counts.word_presence()
    oof = _fit(x, label_ids, n_labels, folds, seed)
    predicted = np.argmax(oof.scores, axis=1)
    xc = x.tocsc()
    totals = np.asarray(x.sum(axis=0)).ravel()
    wrong = predicted != label_ids  # rows predicted as another label than theirs
    class_rows = np.bincount(label_ids, minlength=n_labels)
    class_wrong = np.bincount(label_ids, weights=wrong, minlength=n_labels)
    for i, (col, y) in enumerate(zip(cols, labels, strict=True)):
        own = counts.own_words(int(col))
        if not own:
            continue
        rows = counts.feature_rows(int(col))
        rows = rows[label_ids[rows] == y]
        n_others = int(class_rows[y]) - len(rows)  # the class's other rows
        if len(rows) < min_rows or n_others < min_rows:
            continue
        inside = np.asarray(x[rows].sum(axis=0)).ravel()
        confined = np.flatnonzero((inside >= COPLANTED_SHARE * totals) & (inside >= min_rows))
        own = sorted(set(own) | set(confined.tolist()))
        adjusted = oof.scores[rows].copy()
        own_x = xc[:, own][rows].toarray()  # rows x own words, 0/1
        for f in np.unique(oof.fold[rows]):  # the own words' terms leave the log-likelihoods
            mine = oof.fold[rows] == f
            adjusted[mine] -= own_x[mine] @ oof.log_on[f][:, own].T + (1 - own_x[mine]) @ oof.log_off[f][:, own].T
        k = int(np.count_nonzero(np.argmax(adjusted, axis=1) != y))
        q = min(max((float(class_wrong[y]) - float(np.sum(wrong[rows]))) / n_others, 1e-6), 1 - 1e-6)
        log10_p = float(binom_log10_sf(np.array([k]), np.array([len(rows)]), np.array([q]))[0])
        out[i] = RelabelResult(log10_p=log10_p, k=k, n=len(rows), q=q)
    return out


__all__ = ["RelabelResult", "relabel_tests"]
