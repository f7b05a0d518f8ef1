"""Word tokenizer and token-shape normaliser.

The tokenizer keeps the things SSTI plants as single tokens: HTML tags (``<b>``, ``</b>``, ``<br/>``), dates
(``2021-03-04``, ``04/03/2021``), URLs, ``@mentions``, ``#hashtags``, emoji, runs of one punctuation mark
(``!!``, ``...``) and multi-word lexicon names (``Bosnia and Herzegovina``, ``sky blue``).

A *shape* is a normalised class of tokens: ``<DATE>``, ``<YEAR>``, ``<NUM>``, ``<HTML>`` and ``<HTML:tag>``,
``<URL>``, ``<MENTION>``, ``<HASHTAG>``, ``<EMOJI>``, ``<PUNCT:!!+>`` (a run of two or more ``!``),
``<COUNTRY>``, ``<COLOR>``, ``<MONTH>`` and the capitalisation patterns ``<CASE:XXXX>`` (all caps),
``<CASE:Xxxx>`` (title case) and ``<CASE:xXxx>`` (mixed). A token has zero or more shapes; a lowercase word
has none beyond a lexicon shape.
"""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np

from spurlab.scan.lexicon import LEXICONS, multiword_phrases

_EMOJI_CHAR = "\U0001f000-\U0001faff\u2600-\u27bf\u2b00-\u2bff\u2300-\u23ff"
_EMOJI = f"[{_EMOJI_CHAR}](?:[\ufe0f\U0001f3fb-\U0001f3ff]|\u200d[{_EMOJI_CHAR}])*"

_HTML = r"</?[A-Za-z][A-Za-z0-9]*(?:\s+[^<>]{0,200}?)?\s*/?>"
_URL = r"(?:https?://|www\.)[^\s<>\"']+"
_DATE = (r"(?:\d{4}-\d{1,2}-\d{1,2}|\d{1,2}-\d{1,2}-\d{4}|\d{4}/\d{1,2}/\d{1,2}|\d{1,2}/\d{1,2}/\d{2,4}"
         r"|\d{1,2}\.\d{1,2}\.\d{4})(?!\w)")
_MENTION = r"@\w+"
_HASHTAG = r"#\w+"
_NUMBER = r"\d+(?:[.,:]\d+)*%?(?!\w)"
_WORD = r"\w+(?:['’-]\w+)*"
_PUNCT = r"!+|\?+|\.+|\*+|~+|-+|=+|[^\w\s]"


def _trie_pattern(words: list[str]) -> str:
    """A regex alternation of ``words`` factored by common prefixes (much faster than a flat one)."""
    root: dict = {}
    for word in words:
        node = root
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def emit(node: dict) -> str:
        alts = [(r"\s+" if ch == " " else re.escape(ch)) + emit(sub)
                for ch, sub in sorted(node.items()) if ch]
        if not alts:
            return ""
        body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
        return f"(?:{body})?" if "" in node else body

    return emit(root)


_PHRASES = _trie_pattern(multiword_phrases())
#: The tokenizer without multi-word names (fast path for whole corpora).
FAST_TOKEN_RE = re.compile("|".join([_HTML, _URL, _DATE, _MENTION, _HASHTAG, _NUMBER, _WORD, _EMOJI, _PUNCT]))
#: The full tokenizer: multi-word lexicon names (any case) become one token.
TOKEN_RE = re.compile("|".join([_HTML, _URL, _DATE, _MENTION, _HASHTAG, rf"(?i:\b{_PHRASES}\b)", _NUMBER,
                                _WORD, _EMOJI, _PUNCT]))
#: Finds multi-word names in any case, as ``TOKEN_RE`` does; used to pick the rows that need the full tokenizer.
#: (Matching lowercased text instead would miss names written with characters that only match under Python's
#: case-insensitive rules, such as the long s in "ſky blue".)
PHRASE_FIND_RE = re.compile(rf"(?i:(?<!\w){_PHRASES}(?!\w))")
_DATE_RE = re.compile(_DATE + "$")
_YEAR_RE = re.compile(r"(?:1[0-9]{3}|2[0-9]{3})$")
_NUMBER_RE = re.compile(_NUMBER + "$")
_HTML_RE = re.compile(r"</?([A-Za-z][A-Za-z0-9]*)")
_EMOJI_RE = re.compile(_EMOJI + "$")
_SPACE_RE = re.compile(r"\s+")


def tokenize(text: str) -> list[str]:
    """The word tokens of one text, in order (original case)."""
    return TOKEN_RE.findall(text)


def tokenize_corpus(texts: list[str]) -> list[list[str]]:
    """``[tokenize(t) for t in texts]``, faster: the full tokenizer runs only on rows with a multi-word name.

    (Still a per-row regex: ``fasttok.chunk_texts`` is the vectorised tokenizer the scanner uses.)"""
    tokens = [FAST_TOKEN_RE.findall(t) for t in texts]
    ends = np.cumsum(np.fromiter((len(t) + 1 for t in texts), dtype=np.int64, count=len(texts)))
    starts = np.fromiter((m.start() for m in PHRASE_FIND_RE.finditer("\x00".join(texts))), dtype=np.int64)
    for row in np.unique(np.searchsorted(ends, starts, side="right")):
        tokens[row] = TOKEN_RE.findall(texts[row])
    return tokens


def token_spans(text: str) -> list[tuple[int, int, str]]:
    """``(start, end, token)`` for every token of one text."""
    return [(m.start(), m.end(), m.group(0)) for m in TOKEN_RE.finditer(text)]


def alone_flags(text: str, spans: list[tuple[int, int, str]]) -> list[bool]:
    """For each ``(start, end, token)`` of ``text``: whether whitespace or the text's edge lies on both sides."""
    n = len(text)
    return [(s == 0 or text[s - 1].isspace()) and (e == n or text[e].isspace()) for s, e, _ in spans]


def normalize_token(token: str, lowercase: bool = True) -> str:
    """The token feature a token counts as: lowercased (if asked) with inner whitespace collapsed."""
    token = _SPACE_RE.sub(" ", token) if " " in token or "\n" in token or "\t" in token else token
    return token.lower() if lowercase else token


@lru_cache(maxsize=200_000)
def shapes_of(token: str) -> tuple[str, ...]:
    """Every shape of one token (original case), e.g. ``"2021-03-04"`` -> ``("<DATE>",)``."""
    if not token:
        return ()
    first = token[0]
    if first == "<" and len(token) > 2 and token[-1] == ">":
        match = _HTML_RE.match(token)
        if match:
            return ("<HTML>", f"<HTML:{match.group(1).lower()}>")
    if first.isdigit():
        if _DATE_RE.match(token):
            return ("<DATE>",)
        if _YEAR_RE.match(token):
            return ("<YEAR>",)
        if _NUMBER_RE.match(token):
            return ("<NUM>",)
    if token.startswith(("http://", "https://", "www.")):
        return ("<URL>",)
    if first == "@" and len(token) > 1:
        return ("<MENTION>",)
    if first == "#" and len(token) > 1:
        return ("<HASHTAG>",)
    if _EMOJI_RE.match(token):
        return ("<EMOJI>",)
    if not (first.isalnum() or first == "_"):
        if len(token) >= 2 and token == first * len(token):
            return (f"<PUNCT:{first}{first}+>",)
        return ()
    out: list[str] = []
    key = normalize_token(token)
    for shape, words in LEXICONS.items():
        if key in words:
            out.append(shape)
    if token.isalpha():
        out.extend(_case_shape(token))
    return tuple(out)


def _case_shape(word: str) -> tuple[str, ...]:
    if word.islower():
        return ()
    if len(word) >= 2 and word.isupper():
        return ("<CASE:XXXX>",)
    if word[0].isupper() and (len(word) == 1 or word[1:].islower()):
        return ("<CASE:Xxxx>",)
    return ("<CASE:xXxx>",)


def is_shape(feature: str) -> bool:
    """Whether a feature name is a shape (``<DATE>``) rather than a literal token (``<b>`` is a token)."""
    return feature.startswith("<") and feature.endswith(">") and feature[1:2].isupper() and (
        feature[1:-1].split(":", 1)[0] in _SHAPE_FAMILIES)


_SHAPE_FAMILIES = frozenset({"DATE", "YEAR", "NUM", "HTML", "URL", "MENTION", "HASHTAG", "EMOJI", "PUNCT",
                             "COUNTRY", "COLOR", "MONTH", "CASE"})
