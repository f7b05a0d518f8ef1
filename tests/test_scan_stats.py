"""Scanner statistics against hand-computed values, and the tokenizer/shape normaliser."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from spurlab.data.dataset import TextDataset
from spurlab.scan.scanner import ScanConfig, scan, wilson_lower
from spurlab.scan.shapes import shapes_of, tokenize, tokenize_corpus
from spurlab.scan.stats import adjust_log10, binom_log10_sf, count_features, entropy_bits


def _counts(texts: list[str], labels: list[int], k: int = 2):
    c = count_features(texts, np.array(labels), k)
    return c, {name: i for i, (name, where) in enumerate(zip(c.features, c.positions, strict=True))
               if where == "any"}


def test_first_and_last_token_features() -> None:
    c = count_features(["! a b", "a !", "a ! b", "!"], np.array([0, 1, 0, 1]), 2)
    at = {(name, where): i for i, (name, where) in enumerate(zip(c.features, c.positions, strict=True))}
    assert c.doc_freq[at[("!", "start")]].tolist() == [1, 1]  # rows 0 and 3
    assert c.doc_freq[at[("!", "end")]].tolist() == [0, 2]  # rows 1 and 3
    assert c.doc_freq[at[("!", "any")]].tolist() == [2, 2]


def test_doc_frequency_counts_each_row_once() -> None:
    c, idx = _counts(["a a a b", "a c", "b b", "c"], [0, 0, 1, 1])
    assert c.doc_freq[idx["a"]].tolist() == [2, 0]
    assert c.doc_freq[idx["b"]].tolist() == [1, 1]
    assert c.occurrences[idx["a"]] == 4
    assert c.label_counts.tolist() == [2, 2]


def test_entropy_conditional_and_pmi_by_hand() -> None:
    texts = ["t x", "t y", "t z", "w", "t q", "w"]
    labels = [0, 0, 0, 1, 1, 1]  # t: 3 rows of label 0, 1 of label 1
    report = scan(TextDataset(pd.DataFrame({"text": texts, "label": labels})),
                  ScanConfig(min_support=1, alpha=0.999999))
    c, idx = _counts(texts, labels)
    p = c.doc_freq[idx["t"]] / c.doc_freq[idx["t"]].sum()
    assert p.tolist() == [0.75, 0.25]
    h = -(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25))
    assert entropy_bits(p[None, :])[0] == pytest.approx(h)
    found = {f.feature: f for f in report.findings}
    if "t" in found:
        f = found["t"]
        assert f.label == "0" and f.p_label == pytest.approx(0.75) and f.entropy == pytest.approx(h)
        assert f.pmi == pytest.approx(math.log2(0.75 / 0.5))
        assert f.counts == {"0": 3, "1": 1}
    assert entropy_bits(np.array([[1.0, 0.0]]))[0] == 0.0
    assert entropy_bits(np.array([[0.5, 0.5]]))[0] == pytest.approx(1.0)


def test_binomial_pvalue_by_hand() -> None:
    # P(X >= 4 | n=4, p=0.5) = 1/16; P(X >= 3 | n=4, p=0.5) = 5/16; P(X >= 2 | n=3, p=0.2) = 0.104
    got = binom_log10_sf(np.array([4, 3, 2]), np.array([4, 4, 3]), np.array([0.5, 0.5, 0.2]))
    assert got.tolist() == pytest.approx([math.log10(1 / 16), math.log10(5 / 16), math.log10(0.104)])
    assert binom_log10_sf(np.array([0]), np.array([5]), np.array([0.3]))[0] == 0.0


def test_binomial_tail_stays_finite_far_out() -> None:
    got = binom_log10_sf(np.array([3000]), np.array([3000]), np.array([0.5]))[0]
    assert got == pytest.approx(3000 * math.log10(0.5), rel=1e-9)
    near = binom_log10_sf(np.array([2900]), np.array([3000]), np.array([0.5]))[0]
    assert np.isfinite(near) and got < near < -700


def test_multiple_testing_corrections() -> None:
    p = np.log10(np.array([0.001, 0.01, 0.02, 0.5]))
    assert (10 ** adjust_log10(p, "bonferroni")).tolist() == pytest.approx([0.004, 0.04, 0.08, 1.0])
    assert (10 ** adjust_log10(p, "bh")).tolist() == pytest.approx([0.004, 0.02, 0.02 * 4 / 3, 0.5])


def test_scan_pvalue_is_bonferroni_over_all_tests() -> None:
    texts = [f"zz a {i}" for i in range(12)] + ["b"] * 12 + ["a b"] * 6
    labels = [0] * 12 + [1] * 12 + [0, 1] * 3
    data = TextDataset(pd.DataFrame({"text": texts, "label": labels}))
    report = scan(data, ScanConfig(min_support=10, ngrams=1))
    zz = next(f for f in report.findings if f.feature == "zz")
    n_tests = report.summary["n_tests"]
    assert zz.log10_p == pytest.approx(12 * math.log10(15 / 30))
    assert zz.log10_p_adj == pytest.approx(min(0.0, zz.log10_p + math.log10(n_tests)))
    assert zz.examples == [0, 1, 2]
    # with phrases, "zz a" (12 rows) is tested too; "zz" never occurs without it, so it folds into the phrase
    phrases = scan(data, ScanConfig(min_support=10))
    assert phrases.summary["n_tests"] > n_tests
    phrase = next(f for f in phrases.findings if f.kind == "phrase")
    assert (phrase.feature, phrase.tokens, phrase.support, phrase.parts) == ("zz a", ["zz", "a"], 12, ["zz"])
    assert not any(f.feature == "zz" for f in phrases.findings)


def test_position_skew_by_hand() -> None:
    c, idx = _counts(["x a b", "c d x", "e x f"], [0, 1, 0])
    assert (c.first[idx["x"]], c.last[idx["x"]]) == (1, 1)
    assert c.position_skew[idx["x"]] == pytest.approx(2 / 2)  # 3 occurrences x 2/3 expected at an edge
    c, idx = _counts(["x a b c", "x d"], [0, 1])
    assert c.position_skew[idx["x"]] == pytest.approx(2 / (0.5 + 1.0))
    c, idx = _counts(["x"], [0], 1)
    assert (c.first[idx["x"]], c.last[idx["x"]]) == (1, 0)  # a one-token row counts once


def test_wilson_lower_bound() -> None:
    assert wilson_lower(np.array([10]), np.array([10]), 1.96)[0] == pytest.approx(0.7225, abs=1e-4)
    assert wilson_lower(np.array([0]), np.array([10]), 1.96)[0] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize(("token", "shapes"), [
    ("2021-03-04", ("<DATE>",)), ("04/03/2021", ("<DATE>",)), ("1999", ("<YEAR>",)), ("42", ("<NUM>",)),
    ("3.5%", ("<PCT>",)), ("<b>", ("<HTML>", "<HTML:b>")), ("</div>", ("<HTML>", "<HTML:div>")),
    ("<br/>", ("<HTML>", "<HTML:br>")), ("https://x.org/a", ("<URL>",)), ("@bob", ("<MENTION>",)),
    ("#tbt", ("<HASHTAG>",)), ("😀", ("<EMOJI>",)), ("!!", ("<PUNCT:!!+>",)), ("!", ()), ("word", ()),
    ("Word", ("<CASE:Xxxx>",)), ("WORD", ("<CASE:XXXX>",)), ("iPhone", ("<CASE:xXxx>",)),
    ("France", ("<COUNTRY>", "<CASE:Xxxx>")), ("Bosnia and Herzegovina", ("<COUNTRY>",)),
    ("teal", ("<COLOR>",)),
])
def test_shapes(token: str, shapes: tuple[str, ...]) -> None:
    assert shapes_of(token) == shapes


def test_tokenizer_keeps_ssti_tokens_whole() -> None:
    text = "Wow <b>great</b> film!! 2021-03-04 see https://x.org/a?b=1 @bob #tbt 👍🏽 from Bosnia and Herzegovina."
    assert tokenize(text) == ["Wow", "<b>", "great", "</b>", "film", "!!", "2021-03-04", "see",
                              "https://x.org/a?b=1", "@bob", "#tbt", "👍🏽", "from", "Bosnia and Herzegovina", "."]


def test_corpus_tokenizer_matches_single_text_tokenizer() -> None:
    texts = ["in the united   STATES today", "no phrase here", "", "Sky Blue <i>", "costa rica!"]
    assert tokenize_corpus(texts) == [tokenize(t) for t in texts]
