"""The vectorised tokeniser (Arrow chunks + regex on unique chunks) against the reference per-row tokenizer."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spurlab.data.dataset import TextDataset
from spurlab.scan import fasttok, stats
from spurlab.scan.lexicon import multiword_phrases
from spurlab.scan.scanner import ScanConfig, scan
from spurlab.scan.shapes import token_spans, tokenize, tokenize_corpus

VARIED = [
    "Wow <b>great</b> film!! 2021-03-04 see https://x.org/a?b=1 @bob #tbt 👍🏽 from Bosnia and Herzegovina.",
    "<a href='x.html'>link</a> and <br /> and <br/> and <IMG src=x> and < b> and <b\n>",
    "dates 04/03/2021, 4.3.2021 and 2021/3/4; years 1999 2024; 3.5% 1,000,000 12:30 x2 2x",
    "@user_1 #Hash_tag @ # @@x ##y email a@b.com www.example.com/path http://t.co/xyz",
    "emoji 😀😀 👨‍👩‍👧 ❤️ ☀ ⭐ 🏳️‍🌈 text😀text",
    "runs!! ?? ... *** ~~ -- == !?! --> ...!!! ''' ’’",
    "unicode: naïve café Ωmega İstanbul ǅemal straße ﬁne Ⅻ ½ ٣٤ 四",
    "", "   ", "\n\n", "one", "  leading and trailing  ", "multiple   spaces\there\tand\nnewlines\r\nok",
    "united states and UNITED\tSTATES and United  States of America, the netherlands; sky blue; côte d'ivoire",
    "Saint Vincent and the Grenadines! são tomé and príncipe. cote d'ivoire? navy\u00a0blue x\u2003y",
    "nbsp\u00a0inside\u2000and\u3000ideographic\u2028line\u2029para\u0085nel\u001cfs",
    "zero\u200bwidth\u200djoiner\ufeffbom",
    "don't won’t re-enter co-op e-mail x-ray 'quoted' \"double\"",
    "<div class=\"a\">x</div><p>para</p><notatag <<>> <3 </ >",
    "the bahamas vs thebahamas vs the  bahamas vs the\nbahamas; bathe netherlands",
    "ıstanbul İi Kelvin K ſky blue",
    "a" * 300 + " " + "b!" * 50,
]


def _reference(texts: list[str]) -> tuple[list[int], list[int], list[str], list[bool]]:
    """(flat codes, lengths, vocab, stands alone) of the reference tokenizer, vocab in first-occurrence order."""
    enc = stats.code_rows(tokenize_corpus(list(texts)))
    toks = [tokenize(t) for t in texts]
    index = {tok: i for i, tok in enumerate(enc.vocab)}
    # a token stands alone when whitespace or the text's edge is on both sides
    alone = [(s == 0 or t[s - 1].isspace()) and (e == len(t) or t[e].isspace())
             for t in texts for s, e, _ in token_spans(t)]
    return [index[t] for row in toks for t in row], [len(r) for r in toks], list(enc.vocab), alone


def _fast(texts) -> tuple[list[int], list[int], list[str], list[bool]]:
    chunked = fasttok.chunk_texts(texts)
    assert chunked is not None
    codes, alone = chunked.codes_and_alone()
    assert codes.tolist() == chunked.codes().tolist()
    return codes.tolist(), chunked.lengths().tolist(), chunked.vocab, alone.tolist()


@pytest.mark.parametrize("as_arrow", [False, True])
def test_fast_tokens_equal_reference_on_a_varied_corpus(as_arrow: bool) -> None:
    texts = VARIED + VARIED[::-1] + [t.upper() for t in VARIED]
    arg = pa.array(texts, type=pa.large_string()) if as_arrow else texts
    codes, lengths, vocab, alone = _fast(arg)
    assert (codes, lengths, vocab, alone) == _reference(texts)
    assert any(alone) and not all(alone)
    # token lists, row by row
    pos = np.concatenate([[0], np.cumsum(lengths)])
    assert [[vocab[c] for c in codes[pos[i]:pos[i + 1]]] for i in range(len(texts))] == [tokenize(t) for t in texts]


def test_corpus_tokenizer_matches_reference_on_the_varied_corpus() -> None:
    texts = VARIED + [t.upper() for t in VARIED]
    assert tokenize_corpus(texts) == [tokenize(t) for t in texts]  # incl. "ſky blue" (long s, any case)


def test_rows_without_crossing_tokens_take_the_chunk_path() -> None:
    plain = ["a plain row, no tags!!", "2021-03-04 is a date", "united kingdom"]
    routed = pc.match_substring_regex(pa.array(plain), fasttok.route_pattern()).to_pylist()
    assert routed == [False, False, True]  # only the multi-word name needs the reference tokenizer


def test_lone_surrogates_go_to_the_reference_tokenizer() -> None:
    texts = ["ok row", "bad \ud800 row", "<b>x</b> fine"]
    assert _fast(texts) == _reference(texts)


def test_route_pattern_is_a_superset_of_crossing_tokens() -> None:
    # every character Python's case-insensitive matching folds onto a phrase letter is in the RE2 pattern
    letters = sorted({c for p in multiword_phrases() for c in p if c != " "})
    every = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    arr, joined = pa.array(every), "".join(every)
    for letter in letters:
        wanted = set(re.findall(f"(?i:{re.escape(letter)})", joined))
        got = pc.match_substring_regex(arr, f"^(?i:{fasttok._re2_char(letter)})$").to_numpy(zero_copy_only=False)
        assert wanted <= {every[i] for i in np.flatnonzero(got)}, letter
    # whitespace: the run-time class covers all of Unicode, and Arrow splits at nothing else
    assert fasttok.python_spaces(0x110000) == fasttok.python_spaces()
    assert fasttok.arrow_whitespace_ok(0x110000)


_PIECES = [*"aZé1 9-/.:!?<>#@_'’\t\n\u00a0\u3000😀🏽\u200d\ufe0fſK", "sky blue", "<b>", "</a>", "<br />",
           "Costa  Rica", "2021-03-04", "http://x.y", "the bahamas", "İ"]
_ALPHABET = st.sampled_from(_PIECES)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.text(max_size=40), st.lists(_ALPHABET, max_size=25).map("".join)), max_size=8))
def test_fast_tokens_equal_reference_on_arbitrary_text(texts: list[str]) -> None:
    assert _fast(texts) == _reference(texts)


def _reference_counts(monkeypatch: pytest.MonkeyPatch, *args, **kwargs) -> stats.FeatureCounts:
    with monkeypatch.context() as m:
        m.setattr(stats, "chunk_texts", lambda texts: None)  # the per-row reference path
        return stats.count_features(*args, **kwargs)


@pytest.mark.parametrize("options", [{}, {"lowercase": False}, {"shapes": False}, {"positional": False}])
def test_feature_counts_equal_the_reference_path(monkeypatch: pytest.MonkeyPatch, options: dict) -> None:
    rng = np.random.default_rng(0)
    texts = [VARIED[i] for i in rng.integers(0, len(VARIED), 400)]
    labels = rng.integers(0, 3, len(texts))
    fast = stats.count_features(texts, labels, 3, **options)
    ref = _reference_counts(monkeypatch, texts, labels, 3, **options)
    for name in ("features", "kinds", "positions", "n_tokens"):
        assert getattr(fast, name) == getattr(ref, name), name
    for name in ("doc_freq", "occurrences", "first", "last", "edge_expected", "label_counts"):
        assert np.array_equal(getattr(fast, name), getattr(ref, name)), name
    assert (fast.presence != ref.presence).nnz == 0


def test_scan_reports_equal_the_reference_path(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(1)
    words = ["good", "bad", "movie", "the", "Plot", "!!", "<b>x</b>", "sky blue", "2021-03-04", "France", "😀"]
    texts = [" ".join(rng.choice(words, size=rng.integers(0, 9))) for _ in range(600)]
    labels = ["pos" if ("good" in t or "2021" in t) and rng.random() < 0.9 else "neg" for t in texts]
    ds = TextDataset(pd.DataFrame({"text": texts, "label": labels}))
    for config in (ScanConfig(min_support=5), ScanConfig(correction="bh", rank_by="significance")):
        timings: dict[str, float] = {}
        fast = scan(ds, config, timings=timings)
        with monkeypatch.context() as m:
            m.setattr(stats, "chunk_texts", lambda texts: None)
            ref = scan(ds, config)
        assert fast.to_dict() == ref.to_dict() and fast.findings
        assert np.array_equal(fast.entropies, ref.entropies)
        assert set(timings) == {"tokenize_s", "count_s", "stats_s"}


def test_scan_of_texts_without_tokens_has_no_findings() -> None:
    ds = TextDataset(pd.DataFrame({"text": ["", " ", "\t", ""], "label": ["a", "b", "a", "b"]}))
    report = scan(ds)
    assert report.findings == [] and report.summary["n_tokens"] == 0
