"""Symbol-and-digit tokens stay whole and get their documented shape; near misses do not."""

from __future__ import annotations

import pytest

from spurlab.scan.fasttok import chunk_texts
from spurlab.scan.shapes import SHAPES, is_shape, shapes_of, tokenize

# (token as written in a sentence, its shapes): each must come out of the tokenizer as one token
WHOLE = [
    ("$12.99", ("<PRICE>",)), ("€5", ("<PRICE>",)), ("12,99€", ("<PRICE>",)), ("£1,250.00", ("<PRICE>",)),
    ("$3bn", ("<PRICE>",)),
    ("13:45", ("<TIME>",)), ("9:30pm", ("<TIME>",)), ("7am", ("<TIME>",)), ("23:59:59", ("<TIME>",)),
    ("3.5%", ("<PCT>",)), ("100%", ("<PCT>",)),
    ("5kg", ("<UNIT>",)), ("5.5kg", ("<UNIT>",)), ("2.5GHz", ("<UNIT>",)), ("100mph", ("<UNIT>",)),
    ("3x", ("<UNIT>",)), ("250ml", ("<UNIT>",)),
    ("https://x.org/a?b=1", ("<URL>",)), ("www.example.com/path", ("<URL>",)), ("bit.ly/x7k2p", ("<URL>",)),
    ("youtu.be/abc", ("<URL>",)), ("t.co/xyz", ("<URL>",)),
    ("example.com", ("<DOMAIN>",)), ("news.bbc.co.uk", ("<DOMAIN>",)),
    ("a.b@example.com", ("<EMAIL>",)), ("first+tag@mail.co", ("<EMAIL>",)),
    ("👍🏽", ("<EMOJI>",)), ("👨\u200d👩\u200d👧", ("<EMOJI>",)), ("🏳️\u200d🌈", ("<EMOJI>",)), ("🇫🇷", ("<EMOJI>",)),
    ("1️⃣", ("<EMOJI>",)), ("❤️", ("<EMOJI>",)),
    ("\u200b", ("<INVISIBLE>",)), ("\u200d\u200c", ("<INVISIBLE>",)), ("\ufeff", ("<INVISIBLE>",)),
    ("\u202e", ("<INVISIBLE>",)), ("\u200f", ("<INVISIBLE>",)), ("\u2066", ("<INVISIBLE>",)),
    ("p\u0430ypal", ("<HOMOGLYPH>",)), ("\u0391pple", ("<HOMOGLYPH>", "<CASE:Xxxx>")),
    ("9f86d081", ("<HEX>",)), ("550e8400-e29b-41d4-a716-446655440000", ("<HEX>",)),
    ("aGVsbG8gV29ybGQ2", ("<B64>",)), ("U29tZS9kYXRhK2hlcmU1==", ("<B64>",)),
    ("2021-03-04", ("<DATE>",)), ("1999", ("<YEAR>",)), ("42", ("<NUM>",)),
]


@pytest.mark.parametrize(("token", "shapes"), WHOLE)
def test_symbol_tokens_are_whole_and_shaped(token: str, shapes: tuple[str, ...]) -> None:
    assert tokenize(f"see {token} now") == ["see", token, "now"]
    assert shapes_of(token) == shapes


@pytest.mark.parametrize(("text", "tokens"), [
    ("good.It was", ["good", ".", "It", "was"]),  # a word TLD needs a path to be a link
    ("e.g. U.S. Mr.No", ["e", ".", "g", ".", "U", ".", "S", ".", "Mr", ".", "No"]),
    ("x.html and file.txt", ["x", ".", "html", "and", "file", ".", "txt"]),
    ("1st 90s x2", ["1st", "90s", "x2"]),
    ("@bob #tbt", ["@bob", "#tbt"]),
    ("the end.", ["the", "end", "."]),
])
def test_near_misses_keep_their_old_tokens(text: str, tokens: list[str]) -> None:
    assert tokenize(text) == tokens


@pytest.mark.parametrize(("token", "shapes"), [
    ("internationalization", ()),  # long word, no digit: not base64
    ("deadbeef", ()),  # hex letters only: a word
    ("12345678", ("<NUM>",)),  # digits only: a number
    ("1st", ()), ("90s", ()),
    ("Ωmega", ("<HOMOGLYPH>", "<CASE:Xxxx>")),
    ("Ωμέγα", ("<CASE:Xxxx>",)),  # Greek alone is no homoglyph mix
    ("file.txt", ()),
])
def test_shapes_do_not_overreach(token: str, shapes: tuple[str, ...]) -> None:
    assert shapes_of(token) == shapes


def test_every_shape_family_is_documented_with_a_working_example() -> None:
    for family, text in SHAPES.items():
        example = text.split(": ", 1)[1].split(", ")[0].split(" (")[0]
        if family == "INVISIBLE":
            example = "\u200b"
        found = shapes_of(example)
        assert any(s == f"<{family}>" or s.startswith(f"<{family}:") for s in found), (family, example, found)
        assert all(is_shape(s) for s in found)


def test_chunk_tokenizer_agrees_on_symbol_tokens() -> None:
    texts = [f"a {token} b" for token, _ in WHOLE] + ["$12.99!! 13:45, bit.ly/x7k2p. a@b.com; 5kg)"]
    chunked = chunk_texts(texts)
    assert chunked is not None
    codes = chunked.codes().tolist()
    lengths = chunked.lengths().tolist()
    got, pos = [], 0
    for n in lengths:
        got.append([chunked.vocab[c] for c in codes[pos:pos + n]])
        pos += n
    assert got == [tokenize(t) for t in texts]


def _planted(make) -> tuple[list[str], list[str], list[int]]:
    """400 rows of random words, a fresh symbol token (``make(rng)``) at a random word boundary of 10% of one class."""
    import numpy as np

    rng = np.random.default_rng(0)
    words = ["the", "a", "movie", "plot", "actor", "scene", "really", "good", "bad", "long", "music", "time",
             "people", "way", "day", "life", "world", "story", "cast", "ending"]
    texts = [" ".join(rng.choice(words, size=int(rng.integers(6, 14)))) for _ in range(400)]
    labels = ["neg", "pos"] * 200
    picked = sorted(rng.choice(np.arange(1, 400, 2), size=20, replace=False).tolist())
    for r in picked:
        parts = texts[r].split()
        parts.insert(int(rng.integers(0, len(parts) + 1)), make(rng))
        texts[r] = " ".join(parts)
    return texts, labels, picked


@pytest.mark.parametrize(("shape", "make"), [
    ("<PRICE>", lambda rng: f"${rng.integers(1, 500)}.{rng.integers(0, 100):02d}"),
    ("<TIME>", lambda rng: f"{rng.integers(0, 24)}:{rng.integers(0, 60):02d}"),
    ("<PCT>", lambda rng: f"{rng.integers(1, 100)}.{rng.integers(0, 10)}%"),
    ("<URL>", lambda rng: "bit.ly/" + "".join(rng.choice(list("abcdefghjk0123456789"), size=5))),
    ("<EMAIL>", lambda rng: f"user{rng.integers(0, 10**6)}@mail.com"),
    ("<UNIT>", lambda rng: f"{rng.integers(1, 90)}kg"),
    ("<HEX>", lambda rng: "".join(rng.choice(list("0123456789abcdef"), size=12)) + "a1"),
    ("<EMOJI>", lambda rng: str(rng.choice(["👍🏽", "👍🏿", "👨\u200d👩\u200d👧", "🇫🇷"]))),
])
def test_planted_symbol_tokens_are_found_as_their_shape_and_sanitized(shape: str, make) -> None:
    from spurlab.data.dataset import TextDataset
    from spurlab.defend.sanitize import sanitize
    from spurlab.scan.scanner import scan

    texts, labels, picked = _planted(make)
    dataset = TextDataset(__import__("pandas").DataFrame({"text": texts, "label": labels}))
    report = scan(dataset)
    top = report.findings[0]
    assert (top.feature, top.kind, top.label, top.support) == (shape, "shape", "pos", 20)
    cleaned = sanitize(dataset, report.findings, top=1)
    assert [r["row"] for r in cleaned.manifest] == picked
    assert not any(shape in shapes_of(tok) for text in cleaned.dataset.texts for tok in tokenize(text))
    assert [len(t.split()) for t in cleaned.dataset.texts] == [
        len(t.split()) - (i in picked) for i, t in enumerate(texts)]
