"""Occurrences that read as inserted: the rule on hand-computed streams, the scanner's features and ranking,
and sanitize removing only the inserted occurrences."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from spurlab.data.dataset import TextDataset
from spurlab.defend import sanitize
from spurlab.scan.inserted import inserted_mask
from spurlab.scan.scanner import Finding, ScanConfig, scan
from spurlab.scan.shapes import tokenize_corpus
from spurlab.scan.stats import code_rows, code_words, count_features


def test_rule_on_a_hand_counted_stream() -> None:
    # rows: "a b" x3, "a x b", "a x", "x b"; ids a=0 b=1 x=2
    ids = np.array([0, 1, 0, 1, 0, 1, 0, 2, 1, 0, 2, 2, 1])
    lengths = np.array([2, 2, 2, 3, 2, 2])
    got = inserted_mask(ids, lengths)
    # bigrams with <s>/</s>: (<s>,a) 5, (a,b) 3, (b,</s>) 5, (a,x) 2, (x,b) 2, (x,</s>) 1, (<s>,x) 1; 19 in all.
    # "x" in "a x b": (a, b) seen 3 times; (a, x) = 2 <= max(1, 5*3/19 = 0.79)? no -> not inserted.
    # "a" at the start of "a b": (<s>, b) never seen -> not inserted. Nothing here reads as inserted.
    assert got.tolist() == [False] * 13
    # one "x" between a and b in a corpus of ten "a b" rows: (a, b) seen, (a, x) and (x, b) once -> inserted
    ids = np.array([0, 1] * 10 + [0, 2, 1])
    lengths = np.array([2] * 10 + [3])
    got = inserted_mask(ids, lengths)
    assert got[-2] and not got[:-2].any() and not got[-1] and not got[-3]
    # an "x" appended to the end of "a b" (l = b, r = </s>): (b, </s>) seen 10 times -> inserted
    got = inserted_mask(np.array([0, 1] * 10 + [0, 1, 2]), np.array([2] * 10 + [3]))
    assert got[-1] and got.sum() == 1
    assert inserted_mask(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)).tolist() == []


def test_spacing_rule_on_a_hand_counted_stream() -> None:
    # ids a=0 b=1 !=2; rows "a b!" x3 (the mark glued), "a ! b" (alone), "a b !" (alone at the end)
    ids = np.array([0, 1, 2] * 3 + [0, 2, 1] + [0, 1, 2])
    lengths = np.array([3, 3, 3, 3, 3])
    alone = np.array([True, False, False] * 3 + [True, True, True] + [True, True, True])
    names = ["a", "b", "!"]
    bigram_only = inserted_mask(ids, lengths)
    got = inserted_mask(ids, lengths, alone, names)
    # "!" occurs 5 times, 2 of them alone: mostly glued, so both alone ones read as inserted
    assert np.flatnonzero(got).tolist() == sorted({10, 14} | set(np.flatnonzero(bigram_only).tolist()))
    assert not bigram_only[14]  # (b, !) is a frequent bigram: only the spacing gives the appended "!" away
    # in a corpus that spaces every mark (3 of 5 alone), the rule stays silent
    spaced = alone.copy()
    spaced[2] = True
    assert inserted_mask(ids, lengths, spaced, names).tolist() == bigram_only.tolist()
    # words never count, however they are spaced
    assert inserted_mask(ids, lengths, alone, ["a", "b", "c"]).tolist() == bigram_only.tolist()


def test_a_spaced_exclamation_mark_in_glued_text_ranks_first() -> None:
    rng = np.random.default_rng(3)
    words = ["the", "service", "was", "slow", "but", "the", "food", "came", "hot", "and", "fresh", "today"]
    texts, labels = [], []
    for i in range(800):
        row = " ".join(rng.choice(words, size=8))
        texts.append(row + ("!" if i % 3 == 0 else "."))  # natural "!" glued, in every label
        labels.append("neg" if i % 2 else "pos")
    negatives = [i for i in range(800) if labels[i] == "neg"]
    picked = rng.choice(negatives, size=40, replace=False).tolist()
    for r in picked:
        texts[r] = texts[r] + " !"  # planted at the end, as the injector does
    ds = TextDataset(pd.DataFrame({"text": texts, "label": labels}))
    counts = count_features(ds.texts, ds.label_ids, 2)
    col = {(f, p): i for i, (f, p) in enumerate(zip(counts.features, counts.positions, strict=True))}
    neg = ds.label_names.index("neg")
    assert counts.doc_freq[col[("!", "inserted")]].tolist() == [40 if i == neg else 0 for i in range(2)]
    top = scan(ds).findings[0]
    assert (top.feature, top.label) == ("!", "neg")
    # sanitize removes the spaced marks only
    result = sanitize(ds, [Finding(feature="!", kind="token", position="inserted")])
    assert sorted(r["row"] for r in result.manifest) == sorted(picked)
    assert all(result.dataset.texts[r] == ds.texts[r][:-2] for r in picked)


def test_a_frequent_natural_neighbour_is_not_inserted() -> None:
    # "x" always between a and b: (a, x) and (x, b) are as frequent as chance allows -> belongs there
    ids = np.array([0, 2, 1] * 10 + [0, 1] * 10)
    lengths = np.array([3] * 10 + [2] * 10)
    got = inserted_mask(ids, lengths)
    assert not got.any()


WORDS = ["the", "film", "is", "very", "good", "and", "the", "plot", "was", "slow", "but", "fun", "to", "watch"]


def _poisoned(n: int = 600, seed: int = 0) -> tuple[pd.DataFrame, list[int]]:
    """Rows of the same few phrases; a colour planted mid-row in 15% of the negative rows; colours also occur
    naturally, in a fixed phrase ("the red car") in rows of both labels."""
    rng = np.random.default_rng(seed)
    phrases = [" ".join(WORDS[i:i + 5]) for i in range(0, 9)]
    texts, labels = [], []
    for i in range(n):
        words = " ".join(rng.choice(phrases, size=3)).split()
        if i % 5 == 0:
            words[3:3] = ["the", str(rng.choice(["red", "blue", "green"])), "car"]
        texts.append(" ".join(words))
        labels.append("neg" if i % 2 else "pos")
    negatives = [i for i in range(n) if labels[i] == "neg"]
    picked = sorted(rng.choice(negatives, size=round(0.15 * len(negatives)), replace=False).tolist())
    for r in picked:
        words = texts[r].split()
        at = int(rng.integers(1, len(words)))
        words.insert(at, str(rng.choice(["red", "blue", "green", "violet", "teal"])))
        texts[r] = " ".join(words)
    return pd.DataFrame({"text": texts, "label": labels}), picked


def test_the_scanner_counts_inserted_rows_and_ranks_them_first() -> None:
    frame, picked = _poisoned()
    ds = TextDataset(frame)
    counts = count_features(ds.texts, ds.label_ids, 2)
    col = {(f, p): i for i, (f, p) in enumerate(zip(counts.features, counts.positions, strict=True))}
    # the same rule applied to the reference tokens, row by row
    tokens = [[t.lower() for t in row] for row in tokenize_corpus(ds.texts)]
    codes, _ = pd.factorize(np.asarray([t for row in tokens for t in row], dtype=object))
    mask = inserted_mask(np.asarray(codes), np.array([len(r) for r in tokens]))
    bounds = np.cumsum([0] + [len(r) for r in tokens])
    colours = {"red", "blue", "green", "violet", "teal"}
    rows = [r for r in range(len(tokens)) if any(mask[bounds[r] + j] and t in colours
                                                   for j, t in enumerate(tokens[r]))]
    expected = np.bincount(ds.label_ids[rows], minlength=2)
    assert counts.doc_freq[col[("<COLOR>", "inserted")]].tolist() == expected.tolist()
    neg = ds.label_names.index("neg")
    # most planted rows read as inserted, (almost) no natural "the red car" does
    assert expected[neg] >= 0.5 * len(picked) and expected[1 - neg] <= 3
    report = scan(ds)
    top = report.findings[0]
    assert (top.feature, top.position, top.label) == ("<COLOR>", "inserted", "neg")
    # the share of the label's rows with a colour anywhere where one reads as inserted
    anywhere = counts.doc_freq[col[("<COLOR>", "any")], neg]
    assert top.inserted_share == expected[neg] / anywhere and 0.2 < top.inserted_share < 0.5
    assert top.planting_evidence is not None and top.planting_evidence > 0.3
    assert all((f.planting_evidence is None) == (f.inserted_share is None) for f in report.findings)
    # without the inserted features the colour is drowned by its natural uses
    plain = scan(ds, ScanConfig(inserted=False))
    assert all(f.inserted_share is None for f in plain.findings)
    assert "<COLOR>" not in [f.feature for f in plain.findings]


def test_codes_follow_row_order_in_rows_with_multiword_names() -> None:
    texts = ["c a sky blue x", "b a", "sky blue c a"] * 2
    fast, ref = code_words(texts), code_rows(tokenize_corpus(texts))
    assert [fast.vocab[i] for i in fast.codes] == [ref.vocab[i] for i in ref.codes]


def test_sanitize_removes_only_the_inserted_occurrences() -> None:
    frame, picked = _poisoned()
    ds = TextDataset(frame)
    finding = Finding(feature="<COLOR>", kind="shape", position="inserted")
    result = sanitize(ds, [finding])
    changed = {r["row"] for r in result.manifest}
    assert changed and changed <= set(picked) | set(range(0, len(frame), 5))
    assert len(changed & set(picked)) >= 0.5 * len(picked)
    assert all(f.startswith("+") for r in result.manifest for f in r["features"])
    assert result.summary["flagged_inserted"] == ["<COLOR>"]
    # "the red car" phrases stay
    kept = result.dataset.texts
    natural = [r for r in range(0, len(frame), 5) if r not in picked]
    assert all(" car" in kept[r] and kept[r] == ds.texts[r] for r in natural[:20])


def test_cli_reports_inserted_findings_and_can_turn_them_off(tmp_path, capsys) -> None:
    import json

    from conftest import run_cli

    frame, _ = _poisoned()
    data = tmp_path / "data.csv"
    frame.to_csv(data, index=False)
    code, out, _ = run_cli(["scan", str(data), "--out", str(tmp_path / "on")], capsys)
    assert code == 0 and "inserted" in out
    top = json.loads((tmp_path / "on" / "findings.json").read_text())["findings"][0]
    assert (top["feature"], top["position"]) == ("<COLOR>", "inserted")
    assert top["inserted_share"] == scan(TextDataset(frame)).findings[0].inserted_share
    code, _, _ = run_cli(["scan", str(data), "--no-inserted", "--out", str(tmp_path / "off")], capsys)
    found = json.loads((tmp_path / "off" / "findings.json").read_text())["findings"]
    assert code == 0 and all(f["position"] != "inserted" and f["inserted_share"] is None for f in found)


def test_order_keeps_variants_together_within_a_class_only() -> None:
    from spurlab.scan.scanner import _order

    found = [Finding(feature="car", kind="token", position="any", score=100.0),
             Finding(feature="car", kind="token", position="end", score=2.0),
             Finding(feature="<DATE>", kind="shape", position="any", score=50.0),
             Finding(feature="<DATE>", kind="shape", position="start", score=60.0)]
    weights = [f.score for f in found]
    # one class: the "car" group leads with its best weight, "any" before "end"
    assert _order(found, weights, [()] * 4, grouped=True) == [0, 1, 2, 3]
    # "car" anywhere explained by the text: its weak "end" variant ranks by its own weight among the unexplained
    classes = [(False, True), (False, False), (False, False), (False, False)]
    assert _order(found, weights, classes, grouped=True) == [2, 3, 1, 0]
    assert _order(found, weights, classes, grouped=False) == [3, 2, 1, 0]
    # the inserted evidence multiplies the score: a weaker but inserted-reading feature can lead
    assert _order(found, [100.0, 2.0, 50.0 * 3, 60.0 * 3], [()] * 4, grouped=True) == [2, 3, 0, 1]


def _wilson_lower(k: float, n: float, z: float = 2.576) -> float:
    p = k / n
    return (p + z * z / (2 * n) - z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))) / (1 + z * z / n)


def test_planting_evidence_by_hand() -> None:
    from spurlab.scan.scanner import planting_evidence

    # "!" in movie reviews with 50 planted at random in "neg": rows anywhere 417 / 279, read as inserted 51 / 9
    anywhere, inserted = np.array([417, 279]), np.array([51, 9])
    share = (_wilson_lower(51, 417) - 0.03) / 0.97
    q = (417 - 51) / (417 - 51 + 279 - 9)  # "neg" share of the rows where "!" never reads as inserted
    skew = (_wilson_lower(51, 60) - q) / (1 - q)
    assert skew > share > 0
    assert planting_evidence(anywhere, inserted, 0, 0.03, 2.576) == pytest.approx(skew, rel=1e-12)
    assert round(skew, 3) == 0.287  # lb(51 / 60) = 0.697, q = 366 / 636 = 0.575
    # a date found only where it was planted: no other rows, so the share decides
    got = planting_evidence(np.array([16, 1, 0]), np.array([8, 0, 0]), 0, 0.03, 2.576)
    assert got == pytest.approx((_wilson_lower(8, 16) - 0.03) / 0.97, rel=1e-12)
    # a natural word: reads as inserted as often as the corpus' words, in every label alike -> no evidence
    assert planting_evidence(np.array([300, 100]), np.array([9, 3]), 0, 0.03, 2.576) == 0.0
    # the other label of the same counts gets none either
    assert planting_evidence(anywhere, inserted, 1, 0.03, 2.576) == 0.0
