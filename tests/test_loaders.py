"""Loaders: local formats, presets on the real shared datasets, the bundled corpus, splits, bad input."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from spurlab.data import load_splits, load_table, write_table
from spurlab.data.presets import format_commonsense_qa
from spurlab.errors import SpurlabError

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="the real datasets (../shared/data) are absent")


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame({
        "id": [10, 11, 12, 13, 14, 15],
        "review": ["good film", "bad, film", 'said "ok"', "fine\nmultiline", "meh", "great"],
        "stars": ["pos", "neg", "pos", "neg", "neg", "pos"],
    })


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".parquet"])
def test_every_local_format_round_trips(tmp_path: Path, frame: pd.DataFrame, suffix: str) -> None:
    path = tmp_path / f"data{suffix}"
    fmt = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".parquet": "parquet"}[suffix]
    from spurlab.data.formats import write_table as write_frame

    write_frame(frame, path, fmt)
    loaded = load_table(str(path), text_col="review", label_col="stars")
    assert loaded.source_format == fmt
    assert loaded.texts == frame["review"].tolist()
    assert loaded.label_names == ["neg", "pos"]
    assert loaded.label_ids.tolist() == [1, 0, 1, 0, 0, 1]
    ids = loaded.frame["id"].tolist()  # other columns kept: CSV/TSV cells as the strings they are
    assert ids == (["10", "11", "12", "13", "14", "15"] if fmt in ("csv", "tsv") else [10, 11, 12, 13, 14, 15])
    # writing it back gives the same bytes (deterministic output)
    write_table(loaded, tmp_path / f"again{suffix}")
    assert (tmp_path / f"again{suffix}").read_bytes() == path.read_bytes()


def test_integer_labels_are_ordered_numerically(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("text,label\na,10\nb,2\nc,1\nd,2\n")
    loaded = load_table(str(path))
    assert loaded.label_names == ["1", "2", "10"]  # numeric, not lexicographic ("1","10","2")
    assert loaded.label_ids.tolist() == [2, 1, 0, 1]
    assert loaded.label_id(10) == 2 and loaded.label_id("2") == 1


def test_label_filter_keeps_only_those_classes() -> None:
    tweets = load_table("bundled:tweets", labels=["positive", "negative"])
    assert tweets.label_names == ["negative", "positive"]
    assert set(tweets.label_strings) == {"negative", "positive"}
    assert len(tweets) == 16186 + 6954


def test_bundled_tweets_corpus() -> None:
    tweets = load_table("bundled:tweets")
    assert len(tweets) == 38158
    assert tweets.label_names == ["negative", "neutral", "positive"]
    assert np.bincount(tweets.label_ids).tolist() == [16186, 15018, 6954]
    assert tweets.texts[1] == "self-driving cars just seem lazy and a waste of money"


def test_split_is_stratified_seeded_and_keeps_order() -> None:
    a = load_splits("bundled:tweets", seed=3)
    b = load_splits("bundled:tweets", seed=3)
    c = load_splits("bundled:tweets", seed=4)
    assert a.train.frame.equals(b.train.frame) and a.test.frame.equals(b.test.frame)
    assert not a.test.frame.equals(c.test.frame)
    counts = np.bincount(a.test.label_ids)
    assert counts.tolist() == [round(16186 * 0.3), round(15018 * 0.3), round(6954 * 0.3)]
    assert len(a.train) + len(a.test) == 38158
    # rows keep the corpus order inside each split: the confidence column is a row fingerprint
    full = load_table("bundled:tweets").frame
    positions = full.reset_index().merge(a.test.frame, on=["text", "label", "confidence"])["index"]
    assert positions.is_monotonic_increasing


def test_subsample_is_stratified() -> None:
    s = load_splits("bundled:tweets", labels=["negative", "positive"], max_train=1000, max_test=300)
    assert len(s.train) == 1000 and len(s.test) == 300
    share = np.bincount(s.train.label_ids) / 1000
    assert abs(share[1] - 6954 / (16186 + 6954)) < 0.01


@needs_shared
def test_financial_phrasebank_preset_reads_latin1_original() -> None:
    table = load_table(f"preset:financial:{SHARED / 'financial_phrasebank' / 'Sentences_AllAgree.txt'}")
    assert len(table) == 2264
    assert table.label_names == ["negative", "neutral", "positive"]
    assert np.bincount(table.label_ids).tolist() == [303, 1391, 570]
    assert any("\u00e4" in t or "\u00f6" in t for t in table.texts)  # latin-1 umlauts decoded, not mangled
    fifty = load_table(f"preset:financial_phrasebank:{SHARED / 'financial_phrasebank' / 'Sentences_50Agree.txt'}")
    assert len(fifty) == 4846


@needs_shared
def test_commonsense_qa_preset_formats_question_and_letters() -> None:
    splits = load_splits(f"preset:commonsense_qa:{SHARED / 'commonsense_qa'}")
    assert (len(splits.train), len(splits.test)) == (9741, 1221)
    assert splits.label_names == ["A", "B", "C", "D", "E"]
    first = splits.test.texts[0]
    assert first == ("A revolving door is convenient for two direction travel, but it also serves as a security "
                     "measure at a what? (A) bank (B) library (C) department store (D) mall (E) new york")
    assert splits.test.label_strings[0] == "A"


@needs_shared
def test_sst2_preset_uses_its_own_splits() -> None:
    splits = load_splits(f"preset:sst2:{SHARED / 'sst2'}")
    assert (len(splits.train), len(splits.test)) == (6920, 1821)
    assert splits.train.label_strings[0] == "positive"
    assert splits.train.texts[0].startswith("a stirring , funny and finally transporting")


@needs_shared
def test_movie_reviews_zip_preset() -> None:
    table = load_table(f"preset:movie_reviews:{SHARED / 'movie_reviews' / 'movie_reviews.zip'}")
    assert len(table) == 2000
    assert np.bincount(table.label_ids).tolist() == [1000, 1000]
    splits = load_splits(f"preset:movie_reviews:{SHARED / 'movie_reviews' / 'movie_reviews.zip'}", seed=42)
    assert (len(splits.train), len(splits.test)) == (1400, 600)


def test_commonsense_format_helper() -> None:
    text = format_commonsense_qa("Q?", [{"label": "A", "text": "x"}, {"label": "B", "text": "y z"}])
    assert text == "Q? (A) x (B) y z"


def test_class_folder_reader_handles_imdb_layout(tmp_path: Path) -> None:
    for split in ("train", "test"):
        for label in ("neg", "pos"):
            folder = tmp_path / "aclImdb" / split / label
            folder.mkdir(parents=True)
            for i in range(3):
                (folder / f"{i}_1.txt").write_text(f"{split} {label} review {i}")
    splits = load_splits(f"preset:imdb:{tmp_path / 'aclImdb'}")
    assert (len(splits.train), len(splits.test)) == (6, 6)
    assert splits.train.texts[0] == "train neg review 0"
    assert splits.test.label_strings == ["neg"] * 3 + ["pos"] * 3


def test_hub_spec_offline_fails_fast_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    start = time.monotonic()
    with pytest.raises(SpurlabError) as info:
        load_table("hf:stanfordnlp/imdb")
    assert time.monotonic() - start < 10
    message = str(info.value)
    assert "hf:stanfordnlp/imdb" in message and "\n" not in message


BAD_INPUTS = [
    ("missing.csv", None, "no such file"),
    ("data.xlsx", "x", "unknown file type"),
    ("latin.csv", b"text,label\ncaf\xe9,a\n", "line 2 is not valid utf-8"),
    ("empty.csv", "", "empty"),
    ("header_only.csv", "text,label\n", "empty"),
    ("nolabel.csv", "text,stars\nhi,1\n", "no column 'label'"),
    ("blank_label.csv", "text,label\nhi,\nyo,a\n", "have no label"),
    ("broken.jsonl", '{"text": "a", "label": 1}\n{"text": "b", "lab', "line 2 is not JSON"),
    ("broken.parquet", b"PAR1 not really parquet", "malformed parquet"),
]


@pytest.mark.parametrize(("name", "content", "needle"), BAD_INPUTS)
def test_bad_files_give_one_clear_line(tmp_path: Path, name: str, content, needle: str) -> None:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(SpurlabError) as info:
        load_table(str(path))
    assert needle in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(("spec", "needle"), [
    ("preset:nope", "unknown preset"),
    ("bundled:nope", "unknown bundled dataset"),
    ("", "empty data spec"),
    ("preset:movie_reviews", "has no hub copy"),
])
def test_bad_specs(spec: str, needle: str) -> None:
    with pytest.raises(SpurlabError, match=needle):
        load_table(spec)


def test_unknown_label_filter_and_split() -> None:
    with pytest.raises(SpurlabError, match="unknown label"):
        load_table("bundled:tweets", labels=["happy"])
    with pytest.raises(SpurlabError, match="unknown split"):
        load_table("bundled:tweets", split="dev")


def test_latin1_file_loads_with_encoding(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes(b"text,label\ncaf\xe9,a\nthe,b\n")
    assert load_table(str(path), encoding="latin-1").texts == ["café", "the"]


def test_table_split_matches_load_splits_for_data_without_splits() -> None:
    splits = load_splits("bundled:tweets", labels=["negative", "positive"], seed=5)
    train = load_table("bundled:tweets", labels=["negative", "positive"], split="train", seed=5)
    test = load_table("bundled:tweets", labels=["negative", "positive"], split="test", seed=5)
    assert train.frame.equals(splits.train.frame) and test.frame.equals(splits.test.frame)


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".parquet"])
def test_awkward_text_round_trips(tmp_path: Path, suffix: str) -> None:
    texts = ["a\rb", "c\r\nd", 'q"uote, comma\ttab', "", "  spaced  ", "e\nf", "123"]
    frame = pd.DataFrame({"text": texts, "label": ["x", "y"] * 3 + ["x"]})
    from spurlab.data.formats import write_table as write_frame

    fmt = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".parquet": "parquet"}[suffix]
    write_frame(frame, tmp_path / f"d{suffix}", fmt)
    loaded = load_table(str(tmp_path / f"d{suffix}"))
    assert loaded.texts == texts
    assert loaded.label_strings == frame["label"].tolist()


def test_json_lines_keep_texts_with_other_line_breaks(tmp_path: Path) -> None:
    texts = ["a\x85b", "c\u2028d", "e\u2029f", "g\x1ch", "plain"]
    from spurlab.data.dataset import TextDataset

    frame = pd.DataFrame({"text": texts, "label": ["x", "y", "x", "y", "x"]})
    path = tmp_path / "d.jsonl"
    write_table(TextDataset(frame, source_format="jsonl"), path)
    assert load_table(str(path)).texts == texts
    path.write_text(path.read_text(encoding="utf-8").replace("\n", "\r\n"), encoding="utf-8")
    assert load_table(str(path)).texts == texts
