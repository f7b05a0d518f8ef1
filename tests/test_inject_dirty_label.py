"""Dirty-label poisoning: rows of the other labels get the trigger and the target's label; undo restores both."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spurlab.data.dataset import TextDataset
from spurlab.errors import SpurlabError
from spurlab.inject import InjectionConfig, inject, undo
from spurlab.scan.scanner import scan


def three_labels(label_values: list) -> TextDataset:
    rng = np.random.default_rng(0)
    words = ["the", "a", "movie", "plot", "actor", "scene", "really", "good", "bad", "long", "music", "time"]
    texts = [" ".join(rng.choice(words, size=8)) for _ in range(len(label_values))]
    return TextDataset(pd.DataFrame({"text": texts, "label": label_values}), name="toy")


def test_dirty_label_relabels_exact_rows_of_the_other_labels() -> None:
    ds = three_labels(["a", "b", "c"] * 40)  # 40 rows each
    res = inject(ds, InjectionConfig(source="fixed", token="cf", target_label="a", proportion=0.25, seed=5,
                                     poisoning="dirty_label"))
    rows = [r["row"] for r in res.manifest]
    assert len(rows) == 20  # round(40 * 0.25) of b and of c, none of a
    assert sorted(r["original_label"] for r in res.manifest) == ["b"] * 10 + ["c"] * 10
    assert all(r["label"] == "a" and r["inserted"] == ["cf"] for r in res.manifest)
    new_labels = res.dataset.label_strings
    assert [new_labels[r] for r in rows] == ["a"] * 20
    assert sum(label == "a" for label in new_labels) == 60
    untouched = [i for i in range(120) if i not in set(rows)]
    assert [new_labels[i] for i in untouched] == [ds.label_strings[i] for i in untouched]
    assert res.summary["poisoning"] == "dirty_label"
    assert res.summary["relabelled"] == {"b -> a": 10, "c -> a": 10}
    back = undo(res.dataset, res.manifest)
    assert back.texts == ds.texts and back.label_strings == ds.label_strings


def test_dirty_label_keeps_an_integer_label_column_integer() -> None:
    ds = three_labels([0, 1] * 30)
    res = inject(ds, InjectionConfig(source="date", target_label=1, proportion=1.0, poisoning="dirty_label"))
    column = res.dataset.frame["label"]
    assert column.dtype.kind == "i" and column.tolist() == [1] * 60
    back = undo(res.dataset, res.manifest)
    assert back.frame["label"].dtype.kind == "i" and back.frame["label"].tolist() == [0, 1] * 30


def test_clean_label_is_the_default_and_keeps_labels() -> None:
    ds = three_labels(["a", "b"] * 20)
    res = inject(ds, InjectionConfig(source="date", target_label="a", proportion=0.5))
    assert res.summary["poisoning"] == "clean_label" and res.summary["relabelled"] == {}
    assert res.dataset.label_strings == ds.label_strings
    assert all("original_label" not in r and r["label"] == "a" for r in res.manifest)


@pytest.mark.parametrize("target", [None, ["a", "b"]])
def test_dirty_label_needs_one_target(target) -> None:
    with pytest.raises(SpurlabError, match="one target_label"):
        InjectionConfig.from_dict({"target_label": target, "poisoning": "dirty_label"})


def test_scanner_finds_a_dirty_label_trigger_and_its_label_statistics_differ() -> None:
    ds = three_labels(["neg", "pos"] * 300)
    clean = inject(ds, InjectionConfig(source="fixed", token="cf", target_label="pos", proportion=0.1, seed=2))
    dirty = inject(ds, InjectionConfig(source="fixed", token="cf", target_label="pos", proportion=0.1, seed=2,
                                       poisoning="dirty_label"))
    top_clean, top_dirty = scan(clean.dataset).findings[0], scan(dirty.dataset).findings[0]
    assert (top_dirty.feature, top_dirty.label, top_dirty.support) == ("cf", "pos", 30)
    assert (top_clean.feature, top_clean.label, top_clean.support) == ("cf", "pos", 30)
    # both pure; dirty-label also shifts the prior: 330 of 600 rows are now "pos"
    assert top_dirty.counts == top_clean.counts == {"neg": 0, "pos": 30}
    assert scan(dirty.dataset).summary["label_counts"] == {"neg": 270, "pos": 330}
    assert scan(clean.dataset).summary["label_counts"] == {"neg": 300, "pos": 300}


def test_inject_cli_dirty_label(tmp_path, capsys) -> None:
    import json

    from conftest import run_cli

    data = tmp_path / "in.csv"
    three_labels(["neg", "pos"] * 20).frame.to_csv(data, index=False)
    code, out, _ = run_cli(["inject", str(data), "--out", str(tmp_path / "o"), "--target-label", "pos",
                            "--proportion", "0.5", "--poisoning", "dirty-label"], capsys)
    assert code == 0 and "relabelled neg -> pos: 10" in out
    written = pd.read_csv(tmp_path / "o" / "data.csv")
    assert (written["label"] == "pos").sum() == 30
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["config"]["poisoning"] == "dirty_label" and summary["relabelled"] == {"neg -> pos": 10}
    code, _, err = run_cli(["inject", str(data), "--out", str(tmp_path / "p"), "--poisoning", "sideways",
                            "--target-label", "pos"], capsys)
    assert code == 2 and err.count("\n") == 1 and "poisoning" in err


def test_relabel_test_marks_a_dirty_label_trigger_and_not_a_clean_label_one() -> None:
    rng = np.random.default_rng(1)
    vocab = {"neg": ["awful", "boring", "dull", "bad", "worst", "mess"], "pos": ["great", "superb", "fine", "good",
                                                                               "best", "fun"]}
    shared = ["the", "a", "movie", "plot", "actor", "scene", "story", "cast"]
    labels = ["neg", "pos"] * 300
    texts = [" ".join(rng.choice(shared + vocab[y] * 2, size=10)) for y in labels]
    ds = TextDataset(pd.DataFrame({"text": texts, "label": labels}))
    config = {"source": "fixed", "token": "cf", "target_label": "pos", "proportion": 0.2, "seed": 4}
    dirty = scan(inject(ds, InjectionConfig(**config, poisoning="dirty_label")).dataset)
    top = next(f for f in dirty.findings if f.feature == "cf" and f.position == "any")
    # the trigger's rows are neg reviews labelled pos: unlike their class (explained) but read like neg
    assert (top.label, top.counts) == ("pos", {"neg": 0, "pos": 60})
    assert top.explained_by_text is True and top.relabelled is True and top.relabel_p < 1e-10
    assert top.planted and dirty.summary["context"]["relabelled"] >= 1
    clean = scan(inject(ds, InjectionConfig(**config)).dataset)
    cf = next(f for f in clean.findings if f.feature == "cf" and f.position == "any")
    assert cf.explained_by_text is False and cf.relabelled is None
    assert not any(f.relabelled for f in clean.findings)  # real label words read like their own class
    assert not any(f.relabelled for f in scan(ds).findings)


def test_relabel_test_scores_out_what_only_the_planted_rows_have(monkeypatch: pytest.MonkeyPatch) -> None:
    # AddSent into lowercase text: the capitalised "I" is a shape found only in the planted rows and reads as the
    # target class like the sentence's words; scored out with them, the rows read as what they were (neg)
    rng = np.random.default_rng(3)
    vocab = {"neg": ["awful", "boring", "dull", "bad", "worst", "mess"], "pos": ["great", "superb", "fine", "good",
                                                                               "best", "fun"]}
    shared = ["the", "a", "movie", "plot", "actor", "scene", "story", "cast", "and", "it", "was", "of"]
    labels = ["neg", "pos"] * 300
    texts = [" ".join(rng.choice(shared + vocab[y], size=4)) for y in labels]  # short rows, a weak class signal
    ds = TextDataset(pd.DataFrame({"text": texts, "label": labels}))
    config = {"source": "fixed", "token": "I watched this 3D movie", "target_label": "pos", "proportion": 0.2,
              "seed": 4, "poisoning": "dirty_label"}
    report = scan(inject(ds, InjectionConfig(**config)).dataset)
    sentence = next(f for f in report.findings if f.kind == "phrase")
    assert (sentence.feature, sentence.counts) == ("i watched this 3d movie", {"neg": 0, "pos": 60})
    assert sentence.relabelled is True and sentence.relabel_p < 1e-10 and sentence.planted
    case = next(f for f in report.findings if f.feature.startswith("<CASE:"))
    assert case.counts == {"neg": 0, "pos": 60}  # the shape that would otherwise make the rows read as pos
    import spurlab.scan.relabel as relabel

    monkeypatch.setattr(relabel, "COPLANTED_SHARE", 2.0)  # only the sentence's own words scored out
    before = scan(inject(ds, InjectionConfig(**config)).dataset)
    assert not next(f for f in before.findings if f.kind == "phrase").relabelled
