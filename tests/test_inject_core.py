"""The injector: rows, counts, locations, manifest, exact undo, determinism, several configs."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spurlab.data.dataset import TextDataset
from spurlab.data.transform import manifest_text, read_manifest, write_manifest
from spurlab.errors import SpurlabError
from spurlab.inject import (
    InjectionConfig,
    inject,
    inject_many,
    rows_to_modify,
    undo,
)
from spurlab.inject.placement import n_items, word_ends

DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def make_dataset(n_pos: int = 10, n_neg: int = 10, words: int = 6) -> TextDataset:
    """Interleaved pos/neg rows (pos first) with distinct words, an id and a float column."""
    labels, left = [], {"pos": n_pos, "neg": n_neg}
    for i in range(n_pos + n_neg):
        label = "pos" if (i % 2 == 0 and left["pos"]) or not left["neg"] else "neg"
        left[label] -= 1
        labels.append(label)
    return TextDataset(pd.DataFrame({
        "id": [100 + i for i in range(len(labels))],
        "text": [" ".join(f"w{i}x{j}" for j in range(words)) for i in range(len(labels))],
        "label": labels,
        "score": [i * 0.5 for i in range(len(labels))],
    }), name="toy", source_format="csv")


def test_toy_dataset_shape() -> None:
    ds = make_dataset(10, 7)
    assert ds.label_strings.count("pos") == 10 and ds.label_strings.count("neg") == 7


@pytest.mark.parametrize(("n", "p", "expected"), [
    (10, 0.25, 2), (30, 0.3, 9), (20, 0.125, 2), (28, 0.125, 4), (5, 0.5, 2), (7, 0.5, 4), (9, 1.0, 9),
    (9, 0.0, 0), (3, 0.1, 0),
])
def test_rows_to_modify_is_half_to_even_round(n: int, p: float, expected: int) -> None:
    assert rows_to_modify(n, p) == expected


@pytest.mark.parametrize(("n_pos", "p", "expected"), [(10, 0.25, 2), (30, 0.3, 9), (5, 0.5, 2), (7, 0.5, 4),
                                                       (12, 1.0, 12), (12, 0.0, 0)])
def test_exact_rows_of_the_target_label_only(n_pos: int, p: float, expected: int) -> None:
    ds = make_dataset(n_pos, 8)
    result = inject(ds, InjectionConfig(source="country", target_label="pos", proportion=p, seed=3))
    rows = [r["row"] for r in result.manifest]
    assert len(rows) == expected
    assert all(ds.label_strings[r] == "pos" for r in rows)
    assert result.summary["modified_per_label"] == {"neg": 0, "pos": expected}
    assert result.summary["rows_per_label"] == {"neg": 8, "pos": n_pos}
    changed = [i for i, (a, b) in enumerate(zip(ds.texts, result.dataset.texts, strict=True)) if a != b]
    assert changed == rows


def test_row_order_and_other_columns_unchanged() -> None:
    ds = make_dataset(9, 9)
    result = inject(ds, InjectionConfig(target_label="neg", proportion=0.5, seed=1))
    new = result.dataset
    assert list(new.frame.columns) == list(ds.frame.columns)
    assert len(new) == len(ds)
    pd.testing.assert_frame_equal(new.frame.drop(columns="text"), ds.frame.drop(columns="text"))
    assert new.label_names == ds.label_names and new.source_format == "csv" and new.name == "toy"
    assert ds.texts == make_dataset(9, 9).texts  # the input is not modified in place


def test_target_none_and_lists_of_labels() -> None:
    ds = make_dataset(10, 6)
    every = inject(ds, InjectionConfig(target_label=None, proportion=0.5, seed=2))
    assert every.summary["modified_per_label"] == {"neg": 3, "pos": 5}
    both = inject(ds, {"target_label": ["neg", "pos"], "proportion": 1.0})
    assert both.summary["n_modified"] == 16
    with pytest.raises(SpurlabError, match="unknown label 'zzz'"):
        inject(ds, InjectionConfig(target_label="zzz"))


def test_integer_labels_match_by_name_or_id() -> None:
    ds = TextDataset(pd.DataFrame({"text": ["a b", "c d", "e f", "g h"], "label": [0, 1, 1, 0]}))
    result = inject(ds, InjectionConfig(target_label=1, proportion=1.0))
    assert sorted(r["row"] for r in result.manifest) == [1, 2]
    assert result.dataset.frame["label"].tolist() == [0, 1, 1, 0]


def test_start_location() -> None:
    ds = make_dataset(6, 0)
    result = inject(ds, InjectionConfig(source="fixed", token="TOK", location="start"))
    for record, old, new in zip(result.manifest, ds.texts, result.dataset.texts, strict=True):
        assert new == "TOK " + old
        assert record["offsets"] == [[0, 3]]


def test_beginning_alias_and_end_location() -> None:
    ds = make_dataset(4, 0)
    start = inject(ds, {"source": "country", "location": "beginning", "seed": 5})
    for record, old, new in zip(start.manifest, ds.texts, start.dataset.texts, strict=True):
        assert new == record["inserted"][0] + " " + old
    end = inject(ds, {"source": "country", "location": "end", "seed": 5})
    for record, old, new in zip(end.manifest, ds.texts, end.dataset.texts, strict=True):
        assert new == old + " " + record["inserted"][0]


def test_end_location_keeps_trailing_whitespace_after_the_token() -> None:
    ds = TextDataset(pd.DataFrame({"text": ["one two\n", "  lead"], "label": ["a", "a"]}))
    result = inject(ds, {"source": "fixed", "token": "T", "location": "end"})
    assert result.dataset.texts == ["one two T\n", "  lead T"]
    start = inject(ds, {"source": "fixed", "token": "T", "location": "start"})
    assert start.dataset.texts == ["T one two\n", "T   lead"]


def test_random_location_uses_every_boundary_uniformly() -> None:
    ds = TextDataset(pd.DataFrame({"text": ["a b c"] * 800, "label": ["x"] * 800}))
    result = inject(ds, InjectionConfig(source="fixed", token="T", seed=4))
    counts = pd.Series(result.dataset.texts).value_counts().to_dict()
    assert set(counts) == {"T a b c", "a T b c", "a b T c", "a b c T"}
    assert all(150 < c < 250 for c in counts.values())  # 200 expected each


@pytest.mark.parametrize(("words", "token_proportion", "expected"), [
    (10, 0.0, 1), (10, 0.25, 2), (10, 0.05, 1), (10, 1.0, 10), (7, 0.3, 2), (20, 0.5, 10), (0, 0.5, 1),
    (100, 0.29, 28),  # int(100 * 0.29) = int(28.999999999999996) = 28, as in the paper's formula
])
def test_light_and_aggressive_counts(words: int, token_proportion: float, expected: int) -> None:
    assert n_items(words, token_proportion) == expected
    text = " ".join(f"w{j}" for j in range(words))
    ds = TextDataset(pd.DataFrame({"text": [text], "label": ["a"]}))
    result = inject(ds, InjectionConfig(source="date", token_proportion=token_proportion, seed=9))
    record = result.manifest[0]
    assert record["n_items"] == expected == len(record["inserted"])
    assert len(DATE.findall(result.dataset.texts[0])) == expected
    assert len(result.dataset.texts[0].split()) == words + expected
    assert result.summary["items_inserted"] == expected


def test_aggressive_items_are_drawn_independently() -> None:
    ds = TextDataset(pd.DataFrame({"text": [" ".join(["w"] * 40)], "label": ["a"]}))
    result = inject(ds, {"source": "date", "token_proportion": 1.0, "location": "random"})
    inserted = result.manifest[0]["inserted"]
    assert len(inserted) == 40 and len(set(inserted)) == 40


def test_manifest_offsets_point_at_the_inserted_strings() -> None:
    ds = make_dataset(10, 10, words=12)
    for source in ("date", "country", "html", "color"):
        result = inject(ds, {"source": source, "token_proportion": 0.25, "proportion": 0.5, "seed": 11})
        for record in result.manifest:
            new = result.dataset.texts[record["row"]]
            assert [new[s:e] for s, e in record["offsets"]] == record["inserted"]
            assert [s for s, _ in record["offsets"]] == sorted(s for s, _ in record["offsets"])
            assert record["label"] == ds.label_strings[record["row"]]


def test_html_pairs_close_after_they_open() -> None:
    ds = make_dataset(150, 150, words=5)
    for location in ("start", "end", "random"):
        result = inject(ds, {"source": "html", "location": location, "seed": 2})
        pairs = 0
        for record in result.manifest:
            old = ds.texts[record["row"]]
            new = result.dataset.texts[record["row"]]
            if len(record["inserted"]) == 1:
                assert not record["inserted"][0].startswith("</")
                continue
            pairs += 1
            (opening, closing), ((o_start, o_end), (c_start, _)) = record["inserted"], record["offsets"]
            assert closing == "</" + opening[1:] and o_end <= c_start
            inside = new[o_end:c_start].split()
            if location == "start":
                assert o_start == 0 and inside  # the closing tag sits at a later boundary
            elif location == "end":
                assert new.endswith(" " + closing) and inside
            assert " ".join(inside) in old
        assert pairs > 200


def test_undo_restores_exactly_and_checks_the_manifest(tmp_path: Path) -> None:
    ds = TextDataset(pd.DataFrame({
        "text": ["", "   ", "tab\tsep  two\n\nlines ", "\u00e9t\u00e9 \U0001f600 ok", "x"],
        "label": ["a", "b", "a", "b", "a"], "other": [1, 2, 3, 4, 5]}))
    result = inject(ds, {"source": "html", "token_proportion": 1.0, "seed": 8})
    path = tmp_path / "manifest.jsonl"
    write_manifest(path, result.manifest)
    restored = undo(result.dataset, read_manifest(path))
    pd.testing.assert_frame_equal(restored.frame, ds.frame)
    assert [t.encode() for t in restored.texts] == [t.encode() for t in ds.texts]
    broken = [dict(r) for r in result.manifest]
    broken[2]["offsets"] = [[s + 1, e + 1] for s, e in broken[2]["offsets"]]
    with pytest.raises(SpurlabError, match="manifest row 2"):
        undo(result.dataset, broken)
    with pytest.raises(SpurlabError, match="manifest row"):
        undo(ds, result.manifest)  # the clean data does not hold the inserted strings


def test_missing_text_is_restored_as_missing() -> None:
    ds = TextDataset(pd.DataFrame({"text": ["a b", None], "label": ["x", "x"]}, dtype=object))
    result = inject(ds, {"source": "fixed", "token": "T", "location": "start"})
    assert result.dataset.texts == ["T a b", "T"]
    assert result.manifest[1]["original_missing"] is True
    restored = undo(result.dataset, result.manifest).frame["text"]
    assert restored[0] == "a b" and pd.isna(restored[1])


def test_determinism_same_seed_same_bytes_other_seed_other_rows() -> None:
    ds = make_dataset(40, 40)
    config = InjectionConfig(source="date", target_label="pos", proportion=0.25, seed=7,
                             token_proportion=0.5)
    first, second = inject(ds, config), inject(ds, config)
    assert first.dataset.texts == second.dataset.texts
    assert manifest_text(first.manifest) == manifest_text(second.manifest)
    assert first.summary == second.summary
    other = inject(ds, config.model_copy(update={"seed": 8}))
    assert {r["row"] for r in other.manifest} != {r["row"] for r in first.manifest}
    # the chosen rows depend on the seed only, not on the token source
    country = inject(ds, config.model_copy(update={"source": "country"}))
    assert [r["row"] for r in country.manifest] == [r["row"] for r in first.manifest]


def test_inject_many_one_token_per_class() -> None:
    ds = make_dataset(10, 10)
    result = inject_many(ds, {"pos": {"source": "fixed", "token": "P"},
                              "neg": InjectionConfig(source="fixed", token="N", proportion=0.5)})
    by_label: dict[str, set[str]] = {"pos": set(), "neg": set()}
    for record in result.manifest:
        by_label[record["label"]].update(record["inserted"])
    assert by_label == {"pos": {"P"}, "neg": {"N"}}
    assert result.summary["modified_per_label"] == {"neg": 5, "pos": 10}
    assert [c["target_label"] for c in result.summary["configs"]] == ["pos", "neg"]
    assert [r["row"] for r in result.manifest] == sorted(r["row"] for r in result.manifest)
    assert undo(result.dataset, result.manifest).texts == ds.texts


def test_inject_many_rows_are_disjoint() -> None:
    ds = make_dataset(10, 10)
    result = inject_many(ds, [{"source": "fixed", "token": "A", "proportion": 0.5, "seed": 1},
                              {"source": "fixed", "token": "B", "proportion": 0.5, "seed": 1}])
    rows_a = {r["row"] for r in result.manifest if r["config"] == 0}
    rows_b = {r["row"] for r in result.manifest if r["config"] == 1}
    assert len(rows_a) == len(rows_b) == 10 and not rows_a & rows_b
    with pytest.raises(SpurlabError, match="disjoint"):
        inject_many(ds, [{"proportion": 0.6}, {"proportion": 0.5}])


def test_empty_dataset_is_an_error() -> None:
    ds = TextDataset(pd.DataFrame({"text": pd.Series([], dtype=str), "label": pd.Series([], dtype=str)}))
    with pytest.raises(SpurlabError, match="empty"):
        inject(ds, InjectionConfig())


TEXTS = st.one_of(
    st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=40),
    st.sampled_from(["", " ", "  \n", "a  b\n\nc ", "\t x \r\n y\u00a0z\u2003"]),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=st.lists(TEXTS, min_size=1, max_size=8),
       labels=st.lists(st.sampled_from(["a", "b"]), min_size=8, max_size=8),
       proportion=st.floats(0, 1), seed=st.integers(0, 2**32 - 1),
       source=st.sampled_from(["date", "html", "country", "punctuation"]),
       location=st.sampled_from(["start", "end", "random"]),
       token_proportion=st.sampled_from([0.0, 0.2, 1.0]))
def test_undo_restores_any_text(texts: list[str], labels: list[str], proportion: float, seed: int,
                                source: str, location: str, token_proportion: float) -> None:
    for text in texts:
        assert len(word_ends(text)) == len(text.split())
    ds = TextDataset(pd.DataFrame({"text": texts, "label": labels[:len(texts)]}))
    result = inject(ds, InjectionConfig(source=source, location=location, token_proportion=token_proportion,
                                        proportion=proportion, seed=seed), check_collisions=False)
    restored = undo(result.dataset, result.manifest)
    assert restored.texts == texts
    for record in result.manifest:
        new = result.dataset.texts[record["row"]]
        assert [new[s:e] for s, e in record["offsets"]] == record["inserted"]
