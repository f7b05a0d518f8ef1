"""Find tokens and token shapes that are spuriously tied to one label, before any training.

The test is the one-sided binomial test of Gardner et al. (2021, "Competency Problems"): for feature ``t`` seen
in ``n_t`` rows, of which ``k`` carry label ``y``, H0 is ``p(y|t) = p(y)`` (the label prior) and the p-value is
``P(Binomial(n_t, p(y)) >= k)``. Every feature with support ``>= min_support`` is tested against every label;
the p-values are corrected over all those tests (Bonferroni by default, Benjamini–Hochberg on request).

A *finding* is a feature whose best label has a corrected p-value below ``alpha``. Findings are ranked by
``score``: ``-log10(corrected p)`` (``rank_by="significance"``, the default) or excess purity (``"purity"``).
Each finding's ``score`` is then weighted by ``1 + inserted_boost * evidence``, ``evidence`` how far its feature
reads as inserted (:mod:`spurlab.scan.inserted`) more often than the corpus' words do, and a feature's findings
(its position variants) move together, ranked by their best weight. Then the context test
(:mod:`spurlab.scan.context`) runs on the top ``context_top`` findings: those whose rows differ in content from
the rest of their class (context p-value below ``context_alpha``) are *explained by the text* and move behind
the unexplained ones, which is where a token planted in random rows of a class stays; the unexplained ones are
ranked again by their own weights, so an explained variant does not carry its feature's other variants up.
"""

from __future__ import annotations

import gc
import math
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from spurlab.data.dataset import TextDataset, label_to_str
from spurlab.errors import SpurlabError
from spurlab.scan.context import context_tests
from spurlab.scan.relabel import relabel_tests
from spurlab.scan.stats import (
    FeatureCounts,
    adjust_log10,
    binom_log10_sf,
    conditional,
    count_features,
    entropy_bits,
    pmi_bits,
)

FORMAT = "spurlab.scan"
FORMAT_VERSION = 2  # 2: findings carry ``planted``; the summary ``n_planted``
#: The kinds of features a finding can be.
KINDS = ("token", "subword", "shape", "phrase")
#: Default minimum number of rows a feature must appear in to be tested (see docs/scan.md).
DEFAULT_MIN_SUPPORT = 10
#: The paper's diagnostic: H(y|t) over tokens seen in more than this many rows.
HISTOGRAM_MIN_SUPPORT = 50
#: When an unexplained finding reads as planted (see ``ScanConfig``): planting evidence at least
#: ``PLANTED_EVIDENCE``, or a share of its label's rows at least ``PLANTED_SHARE`` with a purity lower bound at
#: least ``PLANTED_PURITY``. Chosen on the gate benchmark's dev datasets only (``python -m bench.gate``).
PLANTED_EVIDENCE = 0.2
PLANTED_SHARE = 0.04
PLANTED_PURITY = 0.85


@dataclass
class ScanConfig:
    """How to scan. ``min_support=None`` means ``DEFAULT_MIN_SUPPORT``."""

    alpha: float = 0.01
    min_support: int | None = None
    correction: Literal["bonferroni", "bh"] = "bonferroni"
    lowercase: bool = True
    shapes: bool = True
    tokenizer: str | None = None  # a Hugging Face tokenizer name or folder: subword tokens instead of words
    max_examples: int = 3
    histogram_min_support: int = HISTOGRAM_MIN_SUPPORT
    histogram_bins: int = 20
    rank_by: Literal["purity", "significance"] = "significance"
    positional: bool = True  # also test "first token is t" / "last token is t" features
    ngrams: int = 4  # also test phrases of 2..ngrams consecutive words (1: words only); not with a tokenizer
    ngram_min_support: int | None = None  # rows a phrase needs to be counted at all (None: min_support)
    inserted: bool = True  # also test "t occurs where it reads as inserted" features (spurlab.scan.inserted)
    inserted_boost: float = 7.0  # ranking weight of the inserted-reading evidence (see _inserted_weights)
    z: float = 2.576  # normal quantile of the purity lower bound (two-sided 99%)
    context: bool = True  # run the context test and rank findings explained by the text last
    context_top: int = 300  # how many top findings get the context test
    context_alpha: float = 0.01
    relabel: bool = True  # run the relabel test on the explained findings (dirty-label poisoning)
    # ... on those at least this pure (share of their rows in their label): relabelled rows all carry the target
    # label, and a less pure word is a sentiment word whose rows merely lose their sentiment without it
    relabel_purity: float = PLANTED_PURITY
    context_permutations: int = 1000  # at most; sequential, see spurlab.scan.context
    context_max_rows: int = 5000  # rows of a class sampled for the test
    # a finding *reads as planted* when the context test did not explain it and either its planting evidence is
    # at least planted_evidence, or it is in at least planted_share of its label's rows with a purity lower
    # bound of at least planted_purity (docs/scan.md, "The data gate")
    planted_evidence: float = PLANTED_EVIDENCE
    planted_share: float = PLANTED_SHARE
    planted_purity: float = PLANTED_PURITY
    seed: int = 0

    def validate(self) -> None:
        for name, value in asdict(self).items():
            if isinstance(value, float) and not math.isfinite(value):
                raise SpurlabError(f"{name.replace('_', ' ')} must be a finite number, got {value}")
        if not (0.0 < float(self.alpha) < 1.0):
            raise SpurlabError(f"alpha must be between 0 and 1 (exclusive), got {self.alpha}")
        if self.min_support is not None and self.min_support < 1:
            raise SpurlabError(f"min support must be at least 1, got {self.min_support}")
        if self.correction not in ("bonferroni", "bh"):
            raise SpurlabError(f"unknown correction {self.correction!r} (use bonferroni or bh)")
        if self.max_examples < 0:
            raise SpurlabError("max examples must be >= 0")
        if not 1 <= int(self.ngrams) <= 8:
            raise SpurlabError(f"ngrams must be between 1 and 8, got {self.ngrams}")
        if self.ngram_min_support is not None and self.ngram_min_support < 1:
            raise SpurlabError(f"ngram min support must be at least 1, got {self.ngram_min_support}")
        if not float(self.inserted_boost) >= 0.0:
            raise SpurlabError(f"inserted boost must be >= 0, got {self.inserted_boost}")
        if self.context_top < 0 or self.context_permutations < 1 or self.context_max_rows < 10:
            raise SpurlabError("context test: top must be >= 0, permutations >= 1 and max rows >= 10")
        if not (0.0 < float(self.context_alpha) < 1.0):
            raise SpurlabError(f"context alpha must be between 0 and 1 (exclusive), got {self.context_alpha}")
        for name in ("planted_evidence", "planted_share", "planted_purity", "relabel_purity"):
            if not (0.0 <= float(getattr(self, name)) <= 1.0):
                raise SpurlabError(f"{name.replace('_', ' ')} must be between 0 and 1, got {getattr(self, name)}")

    @property
    def effective_min_support(self) -> int:
        return DEFAULT_MIN_SUPPORT if self.min_support is None else int(self.min_support)

    @property
    def effective_ngram_min_support(self) -> int:
        return self.effective_min_support if self.ngram_min_support is None else int(self.ngram_min_support)


@dataclass
class Finding:
    """One token or shape whose label distribution departs significantly from the prior."""

    feature: str
    kind: str  # "token", "subword", "shape" or "phrase" (consecutive word tokens)
    position: str = "any"  # "any"; "start"/"end": only as the row's first/last token; "inserted": only where
    # an occurrence reads as inserted (spurlab.scan.inserted)
    support: int = 0  # rows containing it
    label: str = ""  # the label it points to (smallest p-value)
    label_id: int = -1
    p_label: float = 0.0  # p(label | feature)
    entropy: float = 0.0  # H(y | feature), bits
    pmi: float | None = None  # log2 p(label|feature) / p(label)
    log10_p: float = 0.0  # raw one-sided binomial log10 p-value for that label
    log10_p_adj: float = 0.0  # after the multiple-testing correction
    p_value: float = 1.0  # 10 ** log10_p_adj (may underflow to 0.0; use log10_p_adj)
    purity_lb: float = 0.0  # Wilson lower confidence bound of p(label | feature)
    score: float = 0.0  # the ranking score (see the module docstring)
    score_rank: int = 0  # 1-based rank by score alone, before the context test reorders
    position_skew: float | None = None  # observed / expected share at a row's first or last token (1 = none)
    first_share: float = 0.0  # share of occurrences that are a row's first token
    last_share: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)  # rows per label
    context_p: float | None = None  # context test p-value (None: not tested); small = explained by the text
    context_z: float | None = None  # its statistic in null standard deviations above the null mean
    explained_by_text: bool | None = None  # context_p < context_alpha
    # relabel test (on explained findings): p-value that the rows read like another class no more often than the
    # class's other rows do; relabelled: significant, the dirty-label signature, ranked with the unexplained
    relabel_p: float | None = None
    relabelled: bool | None = None
    # share of the feature's rows of that label (anywhere) where an occurrence of it reads as inserted; the same
    # for all its position variants; None without the inserted features or for subwords
    inserted_share: float | None = None
    # how strongly the feature's inserted occurrences point to planting (planting_evidence), in [0, 1]; the
    # ranking weight is score * (1 + inserted_boost * planting_evidence); None where inserted_share is None
    planting_evidence: float | None = None
    # reads as planted: context-tested and not explained by the text, planting evidence >= the configured level
    planted: bool = False
    tokens: list[str] | None = None  # a phrase's word tokens (as counted: normalised), None for other kinds
    # features folded into this one: a phrase's words (or shorter phrases) it explains, or for a word the phrases
    # that only carry it (see _fold_phrases)
    parts: list[str] = field(default_factory=list)
    examples: list[int] = field(default_factory=list)  # row indices with the feature and that label

    def to_dict(self) -> dict[str, Any]:
        return _clean(asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        """Rebuild from ``to_dict`` output; unknown keys are ignored, missing ones take their defaults."""
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class ScanReport:
    """Ranked findings plus a dataset summary; ``entropies`` holds H(y|t) of tokens above histogram support."""

    findings: list[Finding]
    summary: dict[str, Any]
    config: dict[str, Any]
    entropies: np.ndarray = field(default_factory=lambda: np.zeros(0))
    flagged_entropies: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": FORMAT_VERSION, "config": self.config, "summary": self.summary,
                "findings": [f.to_dict() for f in self.findings]}


def _clean(obj: Any) -> Any:
    """JSON-safe copy: numpy scalars to Python, non-finite floats to None."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def wilson_lower(k: np.ndarray, n: np.ndarray, z: float) -> np.ndarray:
    """Wilson score lower confidence bound of a proportion ``k / n``."""
    k = np.asarray(k, dtype=float)
    n = np.maximum(np.asarray(n, dtype=float), 1.0)
    phat = k / n
    z2 = z * z
    centre = phat + z2 / (2 * n)
    spread = z * np.sqrt(phat * (1 - phat) / n + z2 / (4 * n * n))
    return (centre - spread) / (1 + z2 / n)


def _subword_tokens(texts: list[str], name: str) -> tuple[list[list[int]], list[str]]:
    """Token ids per row and the id -> string table of a Hugging Face tokenizer (loaded offline-first)."""
    from spurlab.models.tokenizer import load_tokenizer

    tok = load_tokenizer(name)
    ids = tok(texts, add_special_tokens=False)["input_ids"]
    vocab_size = max(len(tok), max((max(r) for r in ids if r), default=0) + 1)
    table = tok.convert_ids_to_tokens(list(range(vocab_size)))
    return ids, [str(t) for t in table]


def scan(dataset: TextDataset, config: ScanConfig | None = None,
         timings: dict[str, float] | None = None) -> ScanReport:
    """Count, test and rank every token and shape of ``dataset``; see the module docstring.

    ``timings``, if given, gets the seconds spent per stage: ``tokenize_s`` (word tokens of every row),
    ``count_s`` (features and per-label counts) and ``stats_s`` (tests, ranking, examples, summary)."""
    with _gc_paused():
        return _scan(dataset, config, timings)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector: the scan builds hundreds of thousands of small acyclic containers
    (token lists, findings), and collections triggered by them cost up to a third of the statistics stage."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _scan(dataset: TextDataset, config: ScanConfig | None, timings: dict[str, float] | None) -> ScanReport:
    config = config or ScanConfig()
    config.validate()
    if len(dataset) == 0:
        raise SpurlabError(f"{dataset.name}: the dataset has no rows")
    labels = dataset.label_names
    if len(labels) < 2:
        raise SpurlabError(f"{dataset.name}: needs at least two labels to scan, found {len(labels)}")
    texts = _texts(dataset)
    label_ids = _label_ids(dataset)
    sub_ids = sub_vocab = None
    if config.tokenizer:
        sub_ids, sub_vocab = _subword_tokens(dataset.texts, config.tokenizer)
    stage: dict[str, float] = {}
    counts = count_features(texts, label_ids, len(labels), lowercase=config.lowercase, shapes=config.shapes,
                            subword_tokens=sub_ids, subword_vocab=sub_vocab, positional=config.positional,
                            inserted=config.inserted, ngrams=config.ngrams,
                            ngram_min_support=config.effective_ngram_min_support, timings=stage)
    clock = time.perf_counter()
    report = _report(dataset, counts, config, label_ids)
    stage["stats_s"] = time.perf_counter() - clock
    if timings is not None:
        timings.update(stage)
    return report


def _texts(dataset: TextDataset) -> Any:
    """``dataset.texts``, or the same strings as an Arrow array when the column already is one (pandas' Arrow
    string dtype without missing values): no round trip through a million Python strings."""
    column = dataset.frame[dataset.text_col]
    if isinstance(column.dtype, pd.StringDtype) and column.dtype.storage == "pyarrow" and not column.isna().any():
        try:
            import pyarrow as pa

            return pa.array(column)
        except Exception:  # pragma: no cover - fall back to Python strings
            pass
    return dataset.texts


def _label_ids(dataset: TextDataset) -> np.ndarray:
    """``dataset.label_ids`` (same values, same errors), from the distinct label values when that is exact:
    string or integer labels, where equal values always have the same canonical name."""
    column = dataset.frame[dataset.label_col]
    codes, uniques = pd.factorize(column, use_na_sentinel=False)
    exact = column.dtype.kind in "iu" or all(type(u) is str for u in uniques)
    index = {name: i for i, name in enumerate(dataset.label_names)}
    names = [label_to_str(u) for u in uniques]
    if not exact or any(name not in index for name in names):
        return dataset.label_ids
    return np.asarray([index[name] for name in names], dtype=np.int64)[codes]


@dataclass
class _Tests:
    """The one-sided binomial tests of every tested feature x label, and the significant ones in ranked order."""

    tested: np.ndarray  # feature columns tested
    log10_p: np.ndarray  # (tested, labels)
    best: np.ndarray  # per tested feature: its most significant label
    best_adj: np.ndarray  # its corrected log10 p
    hit: np.ndarray  # the significant features' columns
    purity: np.ndarray  # per hit: Wilson lower bound of P(label | feature)
    excess: np.ndarray  # per hit: purity above the label prior, scaled to [0, 1]
    order: np.ndarray  # ranking of the hits
    significant: np.ndarray  # per tested feature


def _run_tests(c: FeatureCounts, config: ScanConfig, n_rows: int, prior: np.ndarray, ent: np.ndarray) -> _Tests:
    support = c.support
    tested = np.flatnonzero((support >= config.effective_min_support) & (support < n_rows))
    # one-sided binomial tests, every tested feature x every label with a non-zero prior
    log10_p = binom_log10_sf(c.doc_freq[tested], support[tested][:, None], prior[None, :])
    log10_p[:, prior <= 0] = 0.0
    log10_adj = adjust_log10(log10_p, config.correction) if log10_p.size else log10_p
    best = np.argmin(log10_adj, axis=1) if tested.size else np.zeros(0, dtype=int)
    best_adj = log10_adj[np.arange(tested.size), best] if tested.size else np.zeros(0)
    significant = best_adj < math.log10(config.alpha)
    hit = tested[significant]
    purity = wilson_lower(c.doc_freq[hit, best[significant]], support[hit], config.z)
    hit_prior = prior[best[significant]]
    excess = (purity - hit_prior) / np.maximum(1.0 - hit_prior, 1e-12)
    names = np.array([c.features[i] for i in hit], dtype=object).astype(str)
    if config.rank_by == "purity":
        order = np.lexsort((names, ent[hit], -support[hit], best_adj[significant], -np.round(excess, 6)))
    else:
        order = np.lexsort((names, ent[hit], -support[hit], best_adj[significant]))
    return _Tests(tested, log10_p, best, best_adj, hit, purity, excess, order, significant)


def _findings(c: FeatureCounts, t: _Tests, labels: list[str], p_y: np.ndarray, ent: np.ndarray, prior: np.ndarray,
              purity_rank: bool) -> tuple[list[Finding], list[int]]:
    """One :class:`Finding` per significant feature in ranked order, and the features' columns."""
    occ = np.maximum(c.occurrences, 1)
    # every per-finding value gathered in ranked order first (plain Python numbers, same values as indexing)
    sig_rows = np.flatnonzero(t.significant)[t.order]
    feats = t.hit[t.order]
    labs = t.best[sig_rows]
    cols = {
        "f": feats, "lab": labs, "adj": t.best_adj[sig_rows], "support": c.support[feats],
        "p_label": p_y[feats, labs], "entropy": ent[feats], "pmi": pmi_bits(p_y, prior)[feats, labs],
        "log10_p": t.log10_p[sig_rows, labs], "purity": t.purity[t.order], "excess": t.excess[t.order],
        "skew": c.position_skew[feats], "first": c.first[feats] / occ[feats], "last": c.last[feats] / occ[feats],
        "counts": c.doc_freq[feats],
    }
    v = {key: value.tolist() for key, value in cols.items()}
    findings = [
        Finding(
            feature=c.features[f], kind=c.kinds[f], position=c.positions[f], support=sup,
            label=labels[lab], label_id=lab, p_label=p_lab, entropy=h, pmi=pm,
            log10_p=l10, log10_p_adj=adj, p_value=float(10.0 ** adj),
            purity_lb=pur, score=exc if purity_rank else -adj,
            position_skew=None if not math.isfinite(sk) or c.positions[f] != "any" else sk,
            first_share=fs, last_share=ls, counts=dict(zip(labels, cnt, strict=True)),
        )
        for f, lab, adj, sup, p_lab, h, pm, l10, pur, exc, sk, fs, ls, cnt in zip(
            v["f"], v["lab"], v["adj"], v["support"], v["p_label"], v["entropy"], v["pmi"], v["log10_p"],
            v["purity"], v["excess"], v["skew"], v["first"], v["last"], v["counts"], strict=True)
    ]
    for rank, (finding, col) in enumerate(zip(findings, v["f"], strict=True), start=1):
        finding.score_rank = rank
        if col in c.phrase_tokens:
            finding.tokens = list(c.phrase_tokens[col])
    return findings, feats.tolist()


def _histogram(c: FeatureCounts, t: _Tests, ent: np.ndarray, n_labels: int, config: ScanConfig
               ) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """The H(y|t) histogram of word tokens in more than ``histogram_min_support`` rows, all and flagged."""
    token_cols = np.array([k in ("token", "subword") and w == "any" for k, w in zip(c.kinds, c.positions,
                                                                                  strict=True)], dtype=bool)
    hist_mask = token_cols & (c.support > config.histogram_min_support)
    flagged = np.zeros(len(c.features), dtype=bool)
    flagged[t.hit] = True
    entropies, flagged_entropies = ent[hist_mask], ent[hist_mask & flagged]
    edges = np.linspace(0.0, math.log2(n_labels), config.histogram_bins + 1)
    summary = {
        "min_support": config.histogram_min_support, "n_tokens": int(hist_mask.sum()),
        "bin_edges": edges.tolist(),
        "counts": np.histogram(np.clip(entropies, 0, edges[-1]), bins=edges)[0].tolist(),
        "flagged_counts": np.histogram(np.clip(flagged_entropies, 0, edges[-1]), bins=edges)[0].tolist(),
        "max_entropy_bits": float(edges[-1]),
    }
    return summary, entropies, flagged_entropies


def _report(dataset: TextDataset, c: FeatureCounts, config: ScanConfig,
            label_ids: np.ndarray | None = None) -> ScanReport:
    labels = dataset.label_names
    n_rows = len(dataset)
    prior = c.label_counts / n_rows
    p_y = conditional(c.doc_freq)
    ent = entropy_bits(p_y)
    t = _run_tests(c, config, n_rows, prior, ent)
    findings, feat_cols = _findings(c, t, labels, p_y, ent, prior, config.rank_by == "purity")
    label_ids = dataset.label_ids if label_ids is None else label_ids
    if c.phrase_tokens:
        findings, feat_cols = _fold_phrases(findings, feat_cols, prior, int(t.log10_p.size), config.alpha)
    if findings:
        findings, feat_cols = _rank(findings, feat_cols, c, label_ids, config)
    _add_examples(findings, feat_cols, c, label_ids, config.max_examples)
    for f in findings:
        f.planted = reads_as_planted(f, int(c.label_counts[f.label_id]), config)
    histogram, entropies, flagged_entropies = _histogram(c, t, ent, len(labels), config)
    by_kind = Counter(f.kind for f in findings)
    summary = {
        "dataset": dataset.name, "n_rows": n_rows, "n_tokens": c.n_tokens, "labels": list(labels),
        "label_counts": {labels[i]: int(c.label_counts[i]) for i in range(len(labels))},
        "label_prior": {labels[i]: float(prior[i]) for i in range(len(labels))},
        "n_features": len(c.features), "n_tested_features": int(t.tested.size),
        "n_tests": int(t.log10_p.size), "min_support": config.effective_min_support, "alpha": config.alpha,
        "correction": config.correction, "n_findings": len(findings),
        "n_planted": sum(f.planted for f in findings),
        "n_findings_by_kind": {kind: by_kind[kind] for kind in KINDS},
        "context": {
            "tested": sum(f.context_p is not None for f in findings),
            "explained_by_text": sum(bool(f.explained_by_text) for f in findings),
            "not_explained": sum(f.explained_by_text is False for f in findings),
            "relabelled": sum(bool(f.relabelled) for f in findings),
        },
        "histogram": histogram,
    }
    return ScanReport(findings, _clean(summary), _clean(asdict(config)), entropies, flagged_entropies)


def _fold_phrases(findings: list[Finding], cols: list[int], prior: np.ndarray, n_tests: int, alpha: float
                  ) -> tuple[list[Finding], list[int]]:
    """Where a phrase and its parts (its words, its shorter phrases) are all findings of one label, keep the one
    that explains the rows best; the other is listed in its ``parts`` and leaves the findings.

    A phrase's rows are a subset of each part's rows, so the part's rows *without* the phrase are a clean test of
    the part on its own: when they are no longer significant (Bonferroni over the scan's ``n_tests``), the part
    was significant only through the phrase (a planted "by the way" drags "way" along) and folds into it. When
    they still are, the phrase folds into the part unless the phrase is itself purer than the part's rows
    (a planted "cf" drags "cf the" along)."""
    bonferroni = math.log10(max(n_tests, 1))
    threshold = math.log10(alpha)
    index: dict[tuple[str, str, int], list[int]] = {}
    for i, f in enumerate(findings):
        index.setdefault((f.kind, f.feature, f.label_id), []).append(i)
    dropped: set[int] = set()
    phrases = sorted((i for i, f in enumerate(findings) if f.kind == "phrase" and f.position == "any"),
                     key=lambda i: (-len(findings[i].tokens or ()), i))
    for i in phrases:
        if i in dropped:
            continue
        phrase = findings[i]
        words = phrase.tokens or []
        parts = [("token", w) for w in dict.fromkeys(words)] + [
            ("phrase", " ".join(words[a:a + n])) for n in range(len(words) - 1, 1, -1)
            for a in range(len(words) - n + 1)]
        y, k_p, n_p = phrase.label_id, phrase.counts[phrase.label], phrase.support
        for kind, feature in parts:
            group = [j for j in index.get((kind, feature, y), []) if j not in dropped]
            anywhere = next((j for j in group if findings[j].position == "any"), None)
            if anywhere is None:
                continue
            part = findings[anywhere]
            k_w, n_w = part.counts[part.label], part.support
            alone = _log10_sf(k_w - k_p, n_w - n_p, prior[y]) + bonferroni
            if alone >= threshold:  # the part is significant only through the phrase
                dropped.update(group)
                phrase.parts.append(feature)
                continue
            purer = _log10_sf(k_p, n_p, k_w / n_w) + bonferroni
            if purer >= threshold:  # the phrase only carries the part
                dropped.add(i)
                part.parts.append(phrase.feature)
                break
    keep = [i for i in range(len(findings)) if i not in dropped]
    return [findings[i] for i in keep], [cols[i] for i in keep]


def _log10_sf(k: float, n: float, p: float) -> float:
    """One ``binom_log10_sf`` value."""
    return float(binom_log10_sf(np.array([k]), np.array([n]), np.array([p]))[0])


def reads_as_planted(finding: Finding, label_rows: int, config: ScanConfig) -> bool:
    """Whether a finding reads as planted: the context test did not explain it (or its rows read like another
    class: relabelled), and either its occurrences read as inserted (planting evidence) or it sits in a sizeable
    share of its label's rows almost only there."""
    if finding.explained_by_text is not False and not finding.relabelled:
        return False
    if (finding.planting_evidence or 0.0) >= config.planted_evidence:
        return True
    share = finding.counts.get(finding.label, 0) / max(label_rows, 1)
    return share >= config.planted_share and finding.purity_lb >= config.planted_purity


def _inserted_weights(findings: list[Finding], cols: list[int], c: FeatureCounts, boost: float, z: float
                      ) -> list[float]:
    """Set every finding's ``inserted_share`` and return its ranking weight ``score * (1 + boost * evidence)``.

    ``evidence`` is :func:`planting_evidence` with ``base`` the share of all word-row pairs that read as inserted;
    the largest over the feature's position variants. A planted token reads as inserted in many of its rows (up to
    96% in the detection benchmark), a word that belongs to its sentences about as often as any word, so among
    findings of similar significance planted tokens come first, while a far more significant finding keeps its
    place; the lower bound keeps a rare word that reads as inserted in 4 of its 15 rows by chance from jumping
    ahead."""
    offsets = c.word_offsets or {}
    if "inserted" not in offsets or "any" not in offsets or c.word_map is None:
        return [f.score for f in findings]
    size = c.word_map.shape[1]
    words = [i for i in range(size) if c.kinds[offsets["any"] + i] == "token"]
    seen = float(c.doc_freq[[offsets["any"] + i for i in words]].sum()) if words else 0.0
    base = float(c.doc_freq[[offsets["inserted"] + i for i in words]].sum()) / seen if seen else 0.0
    evidence: dict[tuple[str, str], float] = {}
    for finding, col in zip(findings, cols, strict=True):
        local = c.word_feature(col)
        if local is None:
            continue
        anywhere = c.doc_freq[offsets["any"] + local]
        inserted = c.doc_freq[offsets["inserted"] + local]
        y = finding.label_id
        finding.inserted_share = float(inserted[y] / anywhere[y]) if anywhere[y] else 0.0
        key = (finding.kind, finding.feature)
        evidence[key] = max(evidence.get(key, 0.0), planting_evidence(anywhere, inserted, y, base, z))
    for f in findings:
        if f.inserted_share is not None:
            f.planting_evidence = evidence.get((f.kind, f.feature), 0.0)
    return [f.score * (1.0 + boost * evidence.get((f.kind, f.feature), 0.0)) for f in findings]


def planting_evidence(anywhere: np.ndarray, inserted: np.ndarray, label: int, base: float, z: float) -> float:
    """How strongly a feature's occurrences that read as inserted point to planting in ``label``, in [0, 1].

    ``anywhere[y]`` / ``inserted[y]``: rows of label ``y`` with the feature anywhere / with an occurrence that reads
    as inserted. The larger of two excesses, each measured with the Wilson lower bound ``lb`` (``z``) of a share:

    * *share*: the label's rows read as inserted more often than the corpus' words do (``base``):
      ``(lb(inserted[label] / anywhere[label]) - base) / (1 - base)``. Catches a token found almost only where it
      was planted (a date in financial news).
    * *label skew*: the label is more frequent among the feature's inserted rows than among its other rows:
      ``(lb(inserted[label] / sum(inserted)) - q) / (1 - q)`` with ``q`` the label's share of the rows where the
      feature occurs but never reads as inserted. Without planting, whether an occurrence reads as inserted
      does not depend on the row's label; planting in one class adds inserted occurrences there only. Catches a
      token that also occurs naturally in every class (``!`` in movie reviews).
    """
    def excess(k: float, n: float, floor: float) -> float:
        if n <= 0 or floor >= 1.0:
            return 0.0
        return max(0.0, float(wilson_lower(np.array(k), np.array(n), z)) - floor) / (1.0 - floor)

    share = excess(inserted[label], anywhere[label], base)
    plain = np.maximum(np.asarray(anywhere, dtype=float) - inserted, 0.0)
    skew = excess(inserted[label], inserted.sum(), plain[label] / plain.sum()) if plain.sum() > 0 else 0.0
    return max(share, skew)


_VARIANT_ORDER = {"any": 0, "start": 1, "end": 2, "inserted": 3}


def _order(findings: list[Finding], weights: list[float], classes: list[tuple], grouped: bool) -> list[int]:
    """Indices of ``findings`` sorted by class (``classes[i]``, ascending), then by weight. With ``grouped``, a
    feature's findings of one class (its position variants) stay together, "anywhere" first, the group ranked by
    its best weight in that class: that is what sanitizing should remove."""
    if not grouped:
        return sorted(range(len(findings)), key=lambda i: (classes[i], -weights[i], i))
    best: dict[tuple, float] = {}
    for i, f in enumerate(findings):
        key = (classes[i], f.kind, f.feature)
        best[key] = max(best.get(key, -math.inf), weights[i])
    return sorted(range(len(findings)), key=lambda i: (
        classes[i], -best[(classes[i], findings[i].kind, findings[i].feature)], findings[i].feature,
        findings[i].kind, _VARIANT_ORDER.get(findings[i].position, 4), i))


def _rank(findings: list[Finding], cols: list[int], c: FeatureCounts, label_ids: np.ndarray, config: ScanConfig
          ) -> tuple[list[Finding], list[int]]:
    """The final order: by weight (inserted evidence, if on), then the context test on the top findings moves
    the explained ones behind the rest. Order: tested and not explained, tested and explained, untested; within
    each, by weight, a feature's variants together (with the inserted features)."""
    grouped = config.inserted
    weights = _inserted_weights(findings, cols, c, config.inserted_boost, config.z) if grouped \
        else [f.score for f in findings]
    order = _order(findings, weights, [()] * len(findings), grouped)
    findings, cols, weights = [findings[i] for i in order], [cols[i] for i in order], [weights[i] for i in order]
    if not config.context:
        return findings, cols
    top = min(config.context_top, len(findings))
    results = context_tests(c, cols[:top], [f.label_id for f in findings[:top]], label_ids,
                            permutations=config.context_permutations, max_rows=config.context_max_rows,
                            seed=config.seed)
    for finding, result in zip(findings, results, strict=False):
        if result is not None:
            finding.context_p, finding.context_z = result.p_value, result.z
            finding.explained_by_text = result.p_value < config.context_alpha
    if config.relabel:
        _relabel(findings[:top], cols[:top], c, label_ids, config)
    classes = [(i >= top, bool(f.explained_by_text) and not f.relabelled) for i, f in enumerate(findings)]
    order = _order(findings, weights, classes, grouped)
    return [findings[i] for i in order], [cols[i] for i in order]


def _relabel(findings: list[Finding], cols: list[int], c: FeatureCounts, label_ids: np.ndarray,
             config: ScanConfig) -> None:
    """The relabel test (:mod:`spurlab.scan.relabel`) on the findings the context test explained that are at least
    ``relabel_purity`` pure: those whose rows read like another class (Bonferroni over the tested ones, at
    ``context_alpha``) are ``relabelled``."""
    explained = [i for i, f in enumerate(findings) if f.explained_by_text
                 and f.counts[f.label] >= config.relabel_purity * f.support]
    if not explained:
        return
    results = relabel_tests(c, [cols[i] for i in explained], [findings[i].label_id for i in explained], label_ids,
                            seed=config.seed)
    bonferroni = math.log10(len(explained))
    for i, result in zip(explained, results, strict=True):
        if result is not None:
            findings[i].relabel_p = float(10.0 ** result.log10_p)
            findings[i].relabelled = result.log10_p + bonferroni < math.log10(config.context_alpha)


def _add_examples(findings: list[Finding], cols: list[int], c: FeatureCounts, label_ids: np.ndarray,
                  max_examples: int) -> None:
    if not findings or max_examples == 0:
        return
    rows = c.first_rows(cols, [f.label_id for f in findings], label_ids, max_examples)
    for finding, examples in zip(findings, rows, strict=True):
        finding.examples = examples


def report_from_dict(data: Any) -> ScanReport:
    """Rebuild a report from ``findings.json`` (as written by ``scan``); one-line error if malformed."""
    if not isinstance(data, dict) or not isinstance(data.get("findings"), list):
        raise SpurlabError("not a spurlab findings file (expected an object with a 'findings' list)")
    findings = []
    for item in data["findings"]:
        if not isinstance(item, dict) or not isinstance(item.get("feature"), str) \
                or item.get("kind") not in KINDS \
                or item.get("position", "any") not in ("any", "start", "end", "inserted"):
            raise SpurlabError(f"malformed finding in findings file: {str(item)[:120]}")
        try:
            findings.append(Finding.from_dict(item))
        except TypeError as exc:
            raise SpurlabError(f"malformed finding in findings file: {exc}") from exc
    summary = data.get("summary") if isinstance(data.get("summary"), dict) else {}
    config = data.get("config") if isinstance(data.get("config"), dict) else {}
    return ScanReport(findings, summary, config)
