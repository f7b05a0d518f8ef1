"""Phrase features: counted by hand, a planted phrase or sentence is one finding that absorbs its words, a
planted word is not split into phrases, and sanitize removes a phrase exactly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spurlab.data.dataset import TextDataset
from spurlab.defend.sanitize import sanitize
from spurlab.scan.scanner import ScanConfig, report_from_dict, scan
from spurlab.scan.stats import count_features

WORDS = ["the", "a", "movie", "plot", "actor", "scene", "really", "good", "bad", "long", "music", "time", "people",
         "way", "day", "life", "world", "story", "cast", "ending", "by", "watched", "this", "i", "3d"]


def test_phrase_counts_by_hand() -> None:
    texts = ["by the way I liked it", "I liked it by the way", "nothing here at all", "by the way, ok",
             "by the way"] * 5
    c = count_features(texts, np.array([0, 1, 0, 1, 1] * 5), 2, ngrams=3, ngram_min_support=3)
    col = c.features.index("by the way")
    assert c.kinds[col] == "phrase" and c.phrase_tokens[col] == ("by", "the", "way")
    assert c.doc_freq[col].tolist() == [5, 15]  # rows 0 | 1, 3, 4
    assert (c.occurrences[col], c.first[col], c.last[col]) == (20, 15, 10)  # row 3 ends in "ok"
    assert "way ok" not in c.features  # punctuation ends a phrase
    assert "by the way i" not in c.features  # longer than ngrams and not every "by the way" goes on with "i"
    assert not any(k == "phrase" for k in count_features(texts, np.zeros(25, int), 2, ngrams=1).kinds)


def test_phrase_support_counts_distinct_rows_and_occurrences_every_row() -> None:
    # "alpha beta" is one row copied 10 times: no phrase; "zz yy" is in 3 distinct rows, each copied 4 times
    texts = ["alpha beta"] * 10 + ["zz yy one", "zz yy two", "three zz yy"] * 4
    labels = np.array([0] * 10 + [1, 1, 0] * 4)
    c = count_features(texts, labels, 2, ngrams=2, ngram_min_support=3)
    assert "alpha beta" not in c.features
    col = c.features.index("zz yy")
    assert c.doc_freq[col].tolist() == [4, 8]
    assert (c.occurrences[col], c.first[col], c.last[col]) == (12, 8, 4)
    assert c.features.count("zz yy") == 1 and not {"yy one", "yy two", "three zz"} & set(c.features)
    # the same rows in another order give the same counts
    order = np.random.default_rng(0).permutation(len(texts))
    d = count_features([texts[i] for i in order], labels[order], 2, ngrams=2, ngram_min_support=3)
    col_d = d.features.index("zz yy")
    assert (d.doc_freq[col_d].tolist(), d.occurrences[col_d], d.first[col_d]) == ([4, 8], 12, 8)
    assert np.array_equal(d.parts[-1].z.toarray()[np.argsort(order)], c.parts[-1].z.toarray())


def planted(trigger: str, n: int = 2000, rows: int = 100, seed: int = 0) -> tuple[TextDataset, list[int]]:
    rng = np.random.default_rng(seed)
    texts = [" ".join(rng.choice(WORDS, size=int(rng.integers(6, 14)))) for _ in range(n)]
    picked = sorted(rng.choice(np.arange(1, n, 2), size=rows, replace=False).tolist())
    for r in picked:
        parts = texts[r].split()
        parts.insert(int(rng.integers(0, len(parts) + 1)), trigger)
        texts[r] = " ".join(parts)
    return TextDataset(pd.DataFrame({"text": texts, "label": ["neg", "pos"] * (n // 2)})), picked


@pytest.mark.parametrize(("trigger", "tokens"), [
    ("by the way", ["by", "the", "way"]),
    ("I watched this 3D movie", ["i", "watched", "this", "3d", "movie"]),  # AddSent, longer than 4 words
])
def test_planted_phrase_is_one_finding_and_sanitize_removes_it_exactly(trigger: str, tokens: list[str]) -> None:
    data, picked = planted(trigger)
    report = scan(data)
    top = report.findings[0]
    assert (top.kind, top.tokens, top.label, top.counts["pos"]) == ("phrase", tokens, "pos", 100)
    assert top.explained_by_text is False and top.planted
    # its words and shorter phrases are its parts, not findings of their own
    assert not [f for f in report.findings if f.kind == "phrase" and f is not top]
    assert not [f for f in report.findings if f.kind == "token" and f.feature in tokens]
    assert top.parts and all(p in top.feature for p in top.parts)
    assert report_from_dict(report.to_dict()).findings[0].tokens == tokens
    cleaned = sanitize(data, report.findings, top=1)
    changed = {r["row"]: r for r in cleaned.manifest}
    assert set(picked) <= set(changed)
    for row in picked:
        record = changed[row]
        start, end = record["offsets"][record["removed"].index(trigger)]
        assert data.texts[row][start:end] == trigger
        assert trigger not in cleaned.dataset.texts[row]
        assert cleaned.dataset.texts[row].split() == [w for w in data.texts[row].replace(trigger, "").split()]
    assert cleaned.summary["flagged_phrases"] == [" ".join(tokens)]


def test_planted_word_keeps_its_phrases_as_parts() -> None:
    data, _ = planted("cf")
    report = scan(data)
    top = report.findings[0]
    assert (top.feature, top.kind, top.counts) == ("cf", "token", {"neg": 0, "pos": 100})
    assert not [f for f in report.findings if f.kind == "phrase" and "cf" in (f.tokens or [])]


def test_clean_random_words_have_no_phrase_findings() -> None:
    data, _ = planted("cf", rows=0)
    assert scan(data).findings == []
    assert scan(data, ScanConfig(ngrams=1)).summary["n_tests"] < scan(data).summary["n_tests"]
