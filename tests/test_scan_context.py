"""The context test: planted tokens are independent of the rest of their rows' text, genuine words are not."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from spurlab.data.dataset import TextDataset
from spurlab.scan.context import _permutation_test
from spurlab.scan.scanner import ScanConfig, report_from_dict, scan

FINANCE = ["profit", "percent", "sales", "quarter", "eur", "net", "operating", "margin"]
SPORT = ["team", "match", "game", "season", "coach", "goal", "league", "player"]
FILLER = [f"w{i}" for i in range(60)]


def _corpus(seed: int = 7) -> pd.DataFrame:
    """800 rows, two labels; "rose" only in finance rows of label 0 (explained by content); "zq", a random date,
    "France" and an HTML pair planted in random rows of one label (not explained). Other countries occur
    naturally in a third of all rows, so "France"'s own shape <COUNTRY> would look like context if its own
    tokens were not removed first."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for label in (0, 1):
        for i in range(400):
            topic = FINANCE if i % 2 == 0 else SPORT
            words = list(rng.choice(topic, size=4)) + list(rng.choice(FILLER, size=6))
            if i % 3 == 0:
                words.append(str(rng.choice(["Germany", "Spain", "Italy"])))
            if label == 0 and i % 2 == 0 and i < 160:
                words.insert(int(rng.integers(0, len(words))), "rose")
            texts.append(words)
            labels.append(label)
    for row in rng.choice(400, size=40, replace=False):
        texts[row].insert(int(rng.integers(0, len(texts[row]) + 1)), "zq")
    for row in rng.choice(400, size=40, replace=False):
        date = f"20{rng.integers(10, 30)}-0{rng.integers(1, 10)}-1{rng.integers(0, 10)}"
        texts[row].insert(int(rng.integers(0, len(texts[row]) + 1)), date)
    for row in rng.choice(400, size=40, replace=False):
        texts[row].insert(int(rng.integers(0, len(texts[row]) + 1)), "France")
    for row in 400 + rng.choice(400, size=40, replace=False):
        texts[row] = ["<b>", *texts[row], "</b>"]
    return pd.DataFrame({"text": [" ".join(t) for t in texts], "label": labels})


@pytest.fixture(scope="module")
def report():
    return scan(TextDataset(_corpus()), ScanConfig(positional=False, inserted=False))


def test_genuine_word_is_explained_and_planted_ones_are_not(report) -> None:
    found = {f.feature: f for f in report.findings}
    rose = found["rose"]
    assert rose.label == "0" and rose.p_label == 1.0
    assert rose.explained_by_text is True and rose.context_p < 0.01 and rose.context_z > 5
    for planted, label in (("zq", "0"), ("<DATE>", "0"), ("france", "0"), ("<b>", "1"), ("</b>", "1")):
        f = found[planted]
        assert f.label == label and f.p_label == 1.0
        assert f.explained_by_text is False and f.context_p > 0.05, planted
    # the pair partner is a part of the planted item, not context: left out of <b>'s test
    assert found["<HTML>"].explained_by_text is False


def test_context_moves_explained_findings_behind_planted_ones(report) -> None:
    names = [f.feature for f in report.findings]
    assert names.index("rose") > max(names.index(x) for x in ("zq", "<DATE>", "<b>", "</b>"))
    # by score alone, "rose" (160 pure rows) outranks the 40-row planted tokens
    by_score = {f.feature: f.score_rank for f in report.findings}
    assert by_score["rose"] < by_score["zq"] and by_score["rose"] < by_score["<DATE>"]
    plain = scan(TextDataset(_corpus()), ScanConfig(positional=False, inserted=False, context=False))
    assert [f.feature for f in plain.findings] == sorted(by_score, key=by_score.__getitem__)
    assert all(f.context_p is None and f.explained_by_text is None for f in plain.findings)
    summary = report.summary["context"]
    assert summary["tested"] == len(report.findings)
    assert summary["explained_by_text"] + summary["not_explained"] == summary["tested"]


def test_context_fields_survive_findings_json(report) -> None:
    again = report_from_dict(report.to_dict())
    assert [(f.feature, f.context_p, f.explained_by_text, f.score_rank) for f in again.findings] == [
        (f.feature, f.context_p, f.explained_by_text, f.score_rank) for f in report.findings]


def test_context_test_is_deterministic() -> None:
    a = scan(TextDataset(_corpus()), ScanConfig(positional=False, inserted=False))
    b = scan(TextDataset(_corpus()), ScanConfig(positional=False, inserted=False))
    assert [(f.feature, f.context_p, f.context_z) for f in a.findings] == [
        (f.feature, f.context_p, f.context_z) for f in b.findings]


def _statistic(present: np.ndarray, in_s: np.ndarray) -> float:
    """sum_g sqrt(q_g) (o_g - e_g)^2 / v_g, written out from the definition."""
    n, n_s = len(in_s), int(in_s.sum())
    total = 0.0
    for g in range(present.shape[1]):
        q = present[:, g].mean()
        o = present[in_s, g].sum()
        e = n_s * q
        v = n_s * q * (1 - q) * (n - n_s) / (n - 1)
        total += math.sqrt(q) * (o - e) ** 2 / v
    return total


def test_permutation_pvalue_matches_exact_enumeration() -> None:
    # shares 5/8, 3/8 and 2/8: the sqrt(q) weights differ between features
    present = np.array([[1, 0, 1], [1, 0, 0], [1, 1, 0], [0, 1, 1], [0, 1, 0], [1, 0, 0], [1, 1, 0], [0, 0, 0]],
                       dtype=float)
    in_s = np.array([True, True, True, False, False, False, False, False])
    observed = _statistic(present, in_s)
    subsets = list(itertools.combinations(range(8), 3))
    null = []
    for subset in subsets:
        mask = np.zeros(8, dtype=bool)
        mask[list(subset)] = True
        null.append(_statistic(present, mask))
    exact = np.mean(np.array(null) >= observed - 1e-12)
    result = _permutation_test(sparse.csr_matrix(present), in_s, np.random.default_rng(0), permutations=20000,
                               min_rows=1, part_share=1.01, batch=20000)
    assert result is not None and result.rows == 3 and result.features == 3
    assert result.p_value == pytest.approx(exact, abs=0.01)
    assert result.z == pytest.approx((observed - np.mean(null)) / np.std(null), abs=0.05)


def test_untestable_cases_give_none() -> None:
    present = sparse.csr_matrix(np.eye(6))
    rng = np.random.default_rng(0)
    everything = np.ones(6, dtype=bool)
    assert _permutation_test(present, everything, rng, 10, 1, 0.9) is None  # the whole class
    one = np.zeros(6, dtype=bool)
    one[0] = True
    assert _permutation_test(present, one, rng, 10, 1, 0.9) is None  # a single row
    two = one.copy()
    two[1] = True
    assert _permutation_test(present, two, rng, 10, 2, 0.9) is None  # no feature in >= 2 rows


def test_sanitize_can_keep_words_explained_by_the_text(report) -> None:
    from spurlab.defend import get_defense
    from spurlab.defend.sanitize import sanitize

    dataset = TextDataset(_corpus())
    kept = sanitize(dataset, report, skip_explained=True)
    assert kept.summary["skip_explained"] is True
    assert "rose" not in kept.summary["flagged_tokens"] and "zq" in kept.summary["flagged_tokens"]
    assert sum("rose" in t.split() for t in kept.dataset.texts) == 80
    assert not any("zq" in t.split() or "<b>" in t for t in kept.dataset.texts)
    stripped = sanitize(dataset, report)
    assert sum("rose" in t.split() for t in stripped.dataset.texts) == 0
    via_registry = get_defense("sanitize", skip_explained=True).apply(dataset)
    assert via_registry.dataset.texts == kept.dataset.texts


def test_sequential_permutations_stop_once_decided() -> None:
    rng = np.random.default_rng(0)
    n = 400
    feature = (np.arange(n) % 2 == 0).astype(float)  # half the class has it
    present = sparse.csr_matrix(np.stack([feature, 1 - feature, rng.random(n) < 0.3], axis=1).astype(float))
    aligned = feature.astype(bool) & (np.arange(n) < 200)  # 100 rows, all with the feature: far from random
    extreme = _permutation_test(present, aligned, rng, permutations=1000, min_rows=5, part_share=0.9)
    assert extreme is not None and extreme.p_value == pytest.approx(1 / 201) and extreme.z > 10
    random_rows = np.zeros(n, dtype=bool)
    random_rows[rng.choice(n, size=100, replace=False)] = True
    typical = _permutation_test(present, random_rows, rng, permutations=1000, min_rows=5, part_share=0.9)
    # stopped after the first batch of 200 with at least 10 null statistics as large: p = (1 + k) / 201
    assert typical is not None and typical.p_value > 0.05
    k = round(typical.p_value * 201)
    assert typical.p_value == pytest.approx(k / 201) and k >= 11
