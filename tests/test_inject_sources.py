"""Token sources, the source registry and InjectionConfig validation."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from spurlab.errors import SpurlabError
from spurlab.inject import (
    InjectionConfig,
    TokenSource,
    available_sources,
    build_source,
    load_word_list,
    register_source,
)
from spurlab.inject.sources import parse_html_line


def draws(config: dict, n: int = 2000, seed: int = 0) -> list:
    source = build_source(InjectionConfig(**config))
    rng = np.random.default_rng(seed)
    return [source.draw(rng) for _ in range(n)]


def test_builtin_sources_are_registered() -> None:
    for name in ("date", "country", "color", "html", "punctuation", "fixed", "list", "file", "price", "time",
                 "percent", "link", "email", "hex", "emoji"):
        assert name in available_sources()


def test_date_default_range_valid_days_and_shape() -> None:
    values = draws({"source": "date"}, n=5000)
    for value in values:
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", value)
        day = dt.date.fromisoformat(value)  # raises on an invalid day
        assert 1900 <= day.year <= 2100
    # with replacement over 73,414 days: ~5000**2 / (2 * 73414) = 170 repeats expected
    assert 4700 < len(set(values)) < 5000
    assert {v[:4] for v in values} >= {"1900", "2100"}


def test_date_single_year_covers_every_day_uniformly() -> None:
    values = draws({"source": "date", "year_min": 2000, "year_max": 2000}, n=36600, seed=1)
    assert {v[:4] for v in values} == {"2000"}
    counts = {v: values.count(v) for v in set(values)}
    assert len(counts) == 366  # 2000 is a leap year: 2000-02-29 is drawn
    assert "2000-02-29" in counts
    assert max(counts.values()) < 160 and min(counts.values()) > 50  # mean 100


def test_date_non_leap_century_has_no_feb_29() -> None:
    values = draws({"source": "date", "year_min": 1900, "year_max": 1900}, n=20000)
    assert "1900-02-29" not in values
    assert len(set(values)) == 365


def test_date_early_years_are_zero_padded() -> None:
    values = draws({"source": "date", "year_min": 1, "year_max": 9}, n=50)
    assert all(re.fullmatch(r"000\d-\d{2}-\d{2}", v) for v in values)


def test_word_lists_have_the_paper_sizes() -> None:
    countries = load_word_list("countries")
    assert len(countries) == 194 == len(set(countries))
    assert "Bosnia and Herzegovina" in countries and "Holy See" in countries
    colors = load_word_list("colors")
    assert len(colors) == 52 == len(set(colors))
    tags = load_word_list("html_tags")
    assert 100 <= len(tags) <= 120
    assert "<b> </b>" in tags and "<meta>" in tags


@pytest.mark.parametrize(("name", "words"), [("country", "countries"), ("color", "colors")])
def test_list_sources_draw_from_their_word_list(name: str, words: str) -> None:
    values = draws({"source": name}, n=3000)
    allowed = set(load_word_list(words))
    assert set(values) <= allowed
    assert len(set(values)) > 0.9 * len(allowed)


def test_html_source_gives_pairs_and_lone_tags() -> None:
    values = draws({"source": "html"}, n=3000)
    pairs = [v for v in values if isinstance(v, tuple)]
    lone = [v for v in values if isinstance(v, str)]
    assert pairs and lone
    for opening, closing in pairs:
        assert re.fullmatch(r"<(\w+)>", opening)
        assert closing == "</" + opening[1:]
    assert all(re.fullmatch(r"<\w+>", tag) for tag in lone)
    assert parse_html_line("<b> </b>") == ("<b>", "</b>")
    assert parse_html_line("<meta>") == "<meta>"


def test_punctuation_default_and_custom() -> None:
    assert set(draws({"source": "punctuation"}, n=20)) == {"!"}
    assert set(draws({"source": "punctuation", "token": "!!"}, n=20)) == {"!!"}
    with pytest.raises(SpurlabError, match="punctuation"):
        build_source(InjectionConfig(source="punctuation", token="abc"))


def test_fixed_and_list_sources() -> None:
    assert set(draws({"source": "fixed", "token": "cf"}, n=20)) == {"cf"}
    values = draws({"source": "list", "tokens": ["alpha", "beta gamma"]}, n=400)
    assert set(values) == {"alpha", "beta gamma"}
    assert 120 < values.count("alpha") < 280


def test_file_source_skips_empty_lines_and_strips(tmp_path: Path) -> None:
    path = tmp_path / "tokens.txt"
    path.write_bytes("\ufeffzeta\r\n\r\n  eta  \n\n\u00e9t\u00e9\n".encode())
    values = draws({"source": "file", "path": str(path)}, n=300)
    assert set(values) == {"zeta", "eta", "\u00e9t\u00e9"}


@pytest.mark.parametrize(("content", "message"), [(b"\n \n\n", "no tokens"), (b"ok\n\xff\xfe\n", "UTF-8")])
def test_file_source_bad_files(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "tokens.txt"
    path.write_bytes(content)
    with pytest.raises(SpurlabError, match=message):
        build_source(InjectionConfig(source="file", path=str(path)))


def test_file_source_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpurlabError, match="cannot read token file"):
        build_source(InjectionConfig(source="file", path=str(tmp_path / "nope.txt")))


def test_callable_source() -> None:
    values = draws({"source": lambda rng: f"tok{int(rng.integers(3))}"}, n=200)
    assert set(values) == {"tok0", "tok1", "tok2"}
    bad = build_source(InjectionConfig(source=lambda rng: ""))
    with pytest.raises(SpurlabError, match="non-empty"):
        bad.draw(np.random.default_rng(0))


def test_register_custom_source() -> None:
    @register_source("test-emoji")
    class Emoji(TokenSource):
        def draw(self, rng: np.random.Generator) -> str:
            return "\U0001f600"

    assert "test-emoji" in available_sources()
    assert set(draws({"source": "test-emoji"}, n=5)) == {"\U0001f600"}


@pytest.mark.parametrize(("config", "message"), [
    ({"proportion": 1.5}, "proportion"),
    ({"proportion": -0.1}, "proportion"),
    ({"token_proportion": -1}, "token_proportion"),
    ({"source": "nope"}, "unknown source 'nope'"),
    ({"location": "middle"}, "location"),
    ({"colour": "red"}, "colour"),
    ({"year_min": 2000, "year_max": 1999}, "year_min 2000 is after year_max 1999"),
    ({"source": "list", "tokens": []}, "non-empty tokens"),
    ({"source": "fixed"}, "non-empty token"),
    ({"source": "file"}, "needs a path"),
    ({"source": "date", "tokens": ["a"]}, "does not use tokens"),
    ({"target_label": []}, "empty list"),
])
def test_config_validation_errors_are_one_clear_line(config: dict, message: str) -> None:
    with pytest.raises(ValidationError):
        InjectionConfig(**config)
    with pytest.raises(SpurlabError, match=re.escape(message)) as info:
        InjectionConfig.from_dict(config)
    assert "\n" not in str(info.value)
    assert str(info.value).startswith("invalid injection config: ")


def test_config_beginning_is_an_alias_of_start() -> None:
    assert InjectionConfig(location="beginning").location == "start"
    assert InjectionConfig().location == "random"
    assert InjectionConfig(source=lambda rng: "x").to_record()["source"].startswith("callable:")


@pytest.mark.parametrize(("name", "shape", "pattern"), [
    ("price", "<PRICE>", r"\$[1-9]\d{0,2}\.\d\d"),
    ("time", "<TIME>", r"([01]\d|2[0-3]):[0-5]\d"),
    ("percent", "<PCT>", r"\d{1,2}\.[1-9]%"),
    ("link", "<URL>", r"(bit\.ly|t\.co|tinyurl\.com|ow\.ly|is\.gd)/[a-z0-9]{5}"),
    ("email", "<EMAIL>", r"[a-z]+\d\d@(example\.com|mail\.example\.org|inbox\.example\.net)"),
    ("hex", "<HEX>", r"(?=.*[a-f])(?=.*\d)[0-9a-f]{8}"),
    ("emoji", "<EMOJI>", None),
])
def test_symbol_sources_draw_one_token_of_their_scanner_shape(name: str, shape: str, pattern: str | None) -> None:
    from spurlab.scan.shapes import shapes_of, tokenize

    got = draws({"source": name, "target_label": "a"}, n=500)
    assert got == draws({"source": name, "target_label": "a"}, n=500)  # seeded
    assert len(set(got)) > (20 if name == "emoji" else 300)  # random values, not one string
    for item in got:
        assert pattern is None or re.fullmatch(pattern, item), item
        tokens = tokenize(item)
        assert len(tokens) == 1 and shape in shapes_of(tokens[0]), (item, tokens)


def test_a_planted_symbol_source_is_the_top_finding_by_its_shape() -> None:
    import pandas as pd

    from spurlab.data.dataset import TextDataset
    from spurlab.inject import inject
    from spurlab.scan import scan

    rng = np.random.default_rng(0)
    words = ["the", "a", "movie", "plot", "actor", "scene", "really", "good", "bad", "long", "music", "time"]
    data = TextDataset(pd.DataFrame({"text": [" ".join(rng.choice(words, size=8)) for _ in range(400)],
                                     "label": ["neg", "pos"] * 200}))
    for name, shape in (("price", "<PRICE>"), ("link", "<URL>"), ("email", "<EMAIL>"), ("emoji", "<EMOJI>")):
        res = inject(data, InjectionConfig(source=name, target_label="pos", proportion=0.2, seed=1))
        top = scan(res.dataset).findings[0]
        assert (top.feature, top.counts) == (shape, {"neg": 0, "pos": 40}), name


def test_badnets_draws_its_rare_words_and_insertions_sets_items_per_row() -> None:
    import pandas as pd

    from spurlab.data.dataset import TextDataset
    from spurlab.inject import inject, undo

    got = draws({"source": "badnets", "target_label": "a"}, n=4000)
    counts = {t: got.count(t) for t in ("cf", "mn", "bb", "tq")}
    assert set(got) == set(counts) and all(900 < c < 1100 for c in counts.values())
    data = TextDataset(pd.DataFrame({"text": [f"row {i} has a few plain words" for i in range(40)],
                                     "label": ["a", "b"] * 20}))
    res = inject(data, InjectionConfig(source="badnets", insertions=3, target_label="a", proportion=1.0, seed=2))
    assert len(res.manifest) == 20
    for record in res.manifest:
        assert record["n_items"] == 3 and len(record["inserted"]) == 3
        assert set(record["inserted"]) <= {"cf", "mn", "bb", "tq"}
        added = [w for w in res.dataset.texts[record["row"]].split() if w in {"cf", "mn", "bb", "tq"}]
        assert len(added) == 3
    assert undo(res.dataset, res.manifest).texts == data.texts
    assert "insertions" not in InjectionConfig(source="date").to_record()  # older records stay the same
    custom = draws({"source": "badnets", "tokens": ["zz"], "target_label": "a"}, n=5)
    assert custom == ["zz"] * 5
    with pytest.raises(SpurlabError, match="not both"):
        InjectionConfig.from_dict({"source": "badnets", "insertions": 2, "token_proportion": 0.1})
