"""Word tokenizer and token-shape normaliser.

The tokenizer keeps the things SSTI and the backdoor literature plant as single tokens: HTML tags (``<b>``,
``</b>``, ``<br/>``), dates (``2021-03-04``, ``04/03/2021``), URLs with or without a scheme (``bit.ly/x7k2p``),
e-mail addresses, prices (``$12.99``), times (``13:45``), numbers with units (``5.5kg``), base64-like strings,
``@mentions``, ``#hashtags``, emoji sequences (skin tones, ZWJ joins, flags, keycaps), runs of invisible format
characters, runs of one punctuation mark (``!!``, ``...``) and multi-word lexicon names (``Bosnia and
Herzegovina``, ``sky blue``). No token crosses whitespace except HTML tags with attributes and lexicon names
(``fasttok`` depends on that).

A *shape* is a normalised class of tokens; a token has zero or more (``SHAPES`` documents each, and
``docs/scan.md`` lists them with examples). A lowercase word has none beyond a lexicon shape.
"""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np

from spurlab.scan.lexicon import LEXICONS, multiword_phrases

_EMOJI_CHAR = "\U0001f000-\U0001faff\u2600-\u27bf\u2b00-\u2bff\u2300-\u23ff"
# a flag (two regional indicators), a keycap (1️⃣), or an emoji with variation selectors, skin tones and ZWJ joins
_KEYCAP = "[0-9#*]\ufe0f?\u20e3"
_EMOJI = (f"[\U0001f1e6-\U0001f1ff]{{2}}|{_KEYCAP}"
          f"|[{_EMOJI_CHAR}](?:[\ufe0f\U0001f3fb-\U0001f3ff]|\u200d[{_EMOJI_CHAR}])*")
# zero-width space/non-joiner/joiner, LRM/RLM, bidi embeddings and isolates, word joiner, BOM, soft hyphen
INVISIBLE_CHARS = "\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff"
_INVISIBLE = f"[{INVISIBLE_CHARS}]+"
_CURRENCY = "$€£¥₹₩₽₺฿₪¢"
_AMOUNT = r"\d+(?:[.,]\d+)*"
_PRICE = rf"[{_CURRENCY}]{_AMOUNT}(?:[kKmMbB]n?)?(?!\w)|{_AMOUNT}[{_CURRENCY}](?!\w)"
_TIME = r"\d{1,2}:\d{2}(?::\d{2})?(?:[AaPp]\.?[Mm]\.?)?(?![\w:])|\d{1,2}[AaPp][Mm](?!\w)"
_UNITS = ("kg|mg|g|lbs?|oz|km/h|kmh|kph|mph|km|cm|mm|mi|ft|m|ml|l|tb|gb|mb|kb|gib|mib|ghz|mhz|hz|kwh|kw|w|mah"
          "|v|°[cf]|bn|hrs?|h|min|ms|sec|k|x")
_UNIT = rf"(?i:{_AMOUNT}(?:{_UNITS}))(?!\w)"
# top-level domains a scheme-less link may end in; ones that are also English words (to, be, me, it, in, ...)
# only with a path after them, so "good.It" is not a link but "youtu.be/x" is
_TLDS = ("com|net|org|io|ly|co|gl|gd|gov|edu|info|biz|xyz|app|dev|ai|gg|tv|cc|uk|de|fr|ru|cn|jp|ca|au|nl|es|ch"
         "|se|eu|pl|br|kr|site|online|link|click|top|news")
_WORD_TLDS = "to|be|me|it|in|is|at|us|so|do|my|no|am|an|as|by|go|la|ws|re"
_HOST = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
_PATH = r"/[^\s<>\"']*"
_DOMAIN = rf"{_HOST}\.(?:(?:{_TLDS})(?![\w.-]*\w)(?:{_PATH})?|(?:{_WORD_TLDS}){_PATH})"
_EMAIL = r"\w[\w.+-]*@\w[\w-]*(?:\.[\w-]+)+"
# base64-like: 16+ characters of the base64 alphabet with an upper- and a lowercase letter and a digit
_B64 = r"(?=[A-Za-z0-9+/]*[A-Z])(?=[A-Za-z0-9+/]*[a-z])(?=[A-Za-z0-9+/]*[0-9])[A-Za-z0-9+/]{16,}={0,2}(?![\w+/=])"

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
_HEAD = [_HTML, _URL, _EMAIL, _DOMAIN, _KEYCAP, _DATE, _MENTION, _HASHTAG]
_TAIL = [_PRICE, _TIME, _B64, _UNIT, _NUMBER, _WORD, _EMOJI, _INVISIBLE, _PUNCT]
FAST_TOKEN_RE = re.compile("|".join(_HEAD + _TAIL))
#: The full tokenizer: multi-word lexicon names (any case) become one token.
TOKEN_RE = re.compile("|".join([*_HEAD, rf"(?i:\b{_PHRASES}\b)", *_TAIL]))
#: Finds multi-word names in any case, as ``TOKEN_RE`` does; used to pick the rows that need the full tokenizer.
#: (Matching lowercased text instead would miss names written with characters that only match under Python's
#: case-insensitive rules, such as the long s in "ſky blue".)
PHRASE_FIND_RE = re.compile(rf"(?i:(?<!\w){_PHRASES}(?!\w))")


def _whole(pattern: str) -> re.Pattern[str]:
    """``pattern`` matched against a whole token (with ``.match``)."""
    return re.compile(f"(?:{pattern})$")


_DATE_RE, _NUMBER_RE, _TIME_RE, _PRICE_RE, _UNIT_RE, _EMAIL_RE, _DOMAIN_RE, _INVISIBLE_RE, _B64_RE = map(
    _whole, [_DATE, _NUMBER, _TIME, _PRICE, _UNIT, _EMAIL, _DOMAIN, _INVISIBLE, _B64])
_EMOJI_RE = _whole(f"(?:{_EMOJI})+")
_YEAR_RE = _whole(r"1[0-9]{3}|2[0-9]{3}")
_HEX_RE = _whole(r"(?=[0-9a-fA-F-]*[0-9])(?=[0-9a-fA-F-]*[a-fA-F])[0-9a-fA-F]{4,}(?:-[0-9a-fA-F]{4,})*")
_HTML_RE = re.compile(r"</?([A-Za-z][A-Za-z0-9]*)")
_LATIN_RE = re.compile(r"[A-Za-z\u00c0-\u024f]")
_CYRILLIC_GREEK_RE = re.compile(r"[\u0370-\u03ff\u0400-\u04ff]")
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


#: Every shape family, with what it stands for (the first example of each is checked by the tests).
SHAPES: dict[str, str] = {
    "DATE": "a calendar date: 2021-03-04, 04/03/2021, 4.3.2021",
    "YEAR": "a four-digit year 1000-2999: 1999",
    "NUM": "any other number: 42, 1,000,000",
    "PCT": "a percentage: 3.5%",
    "TIME": "a clock time: 13:45, 9:30pm, 7am",
    "PRICE": "a currency amount: $12.99, €5, 12,99€, $3bn",
    "UNIT": "a number with a unit: 5kg, 2.5GHz, 100mph, 3x",
    "HTML": "an HTML tag, also as <HTML:tag>: <b>, </div>, <br/>",
    "URL": "a link with a scheme, www. or a path: https://x.org/a, www.x.com, bit.ly/x7k2p",
    "DOMAIN": "a bare domain name: example.com",
    "EMAIL": "an e-mail address: a.b@example.com",
    "MENTION": "an @mention: @bob",
    "HASHTAG": "a #hashtag: #tbt",
    "EMOJI": "an emoji sequence (skin tones, ZWJ joins, flags, keycaps): 😀, 👍🏽, 👨‍👩‍👧",
    "INVISIBLE": "a run of invisible format characters: zero-width space/joiner, BOM, bidi marks, soft hyphen",
    "HOMOGLYPH": "a word mixing Latin with Cyrillic or Greek letters: pаypal (Cyrillic а)",
    "HEX": "a hexadecimal string of 4+ digits with a letter and a digit: 9f86d081, a716-446655440000",
    "B64": "a base64-like string (16+ characters with upper and lower case and a digit): aGVsbG8gV29ybGQ2",
    "PUNCT": "a run of 2+ of one punctuation mark, as <PUNCT:!!+>: !!, ...",
    "COUNTRY": "a country name (lexicon): France, Bosnia and Herzegovina",
    "COLOR": "a colour name (lexicon): teal, sky blue",
    "MONTH": "a month name (lexicon): March",
    "CASE": "capitalisation, as <CASE:XXXX>, <CASE:Xxxx> or <CASE:xXxx>: WORD, Word, iPhone",
}


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
    if "@" in token[1:] and _EMAIL_RE.match(token):
        return ("<EMAIL>",)
    if _EMOJI_RE.match(token):  # before numbers and hashtags: keycaps 1️⃣ and #️⃣ are emoji
        return ("<EMOJI>",)
    if first.isdigit():
        found = _number_shape(token)
        if found:
            return found
    if token.startswith(("http://", "https://", "www.")):
        return ("<URL>",)
    if "." in token and _DOMAIN_RE.match(token):
        return ("<URL>",) if "/" in token else ("<DOMAIN>",)
    if first in _CURRENCY and _PRICE_RE.match(token):
        return ("<PRICE>",)
    if first == "@" and len(token) > 1:
        return ("<MENTION>",)
    if first == "#" and len(token) > 1:
        return ("<HASHTAG>",)
    if _INVISIBLE_RE.match(token):
        return ("<INVISIBLE>",)
    if len(token) >= 16 and _B64_RE.match(token):
        return ("<B64>",)
    if not (first.isalnum() or first == "_"):
        if len(token) >= 2 and token == first * len(token):
            return (f"<PUNCT:{first}{first}+>",)
        return ()
    out: list[str] = []
    key = normalize_token(token)
    for shape, words in LEXICONS.items():
        if key in words:
            out.append(shape)
    if len(token) >= 4 and _HEX_RE.match(token):
        out.append("<HEX>")
    if token.isalpha():
        if _CYRILLIC_GREEK_RE.search(token) and _LATIN_RE.search(token):
            out.append("<HOMOGLYPH>")
        out.extend(_case_shape(token))
    return tuple(out)


def _number_shape(token: str) -> tuple[str, ...]:
    """The number-like shape of a token that starts with a digit, or ``()`` (then the other checks go on)."""
    if _DATE_RE.match(token):
        return ("<DATE>",)
    if _YEAR_RE.match(token):
        return ("<YEAR>",)
    if _TIME_RE.match(token):
        return ("<TIME>",)
    if _PRICE_RE.match(token):
        return ("<PRICE>",)
    if _NUMBER_RE.match(token):
        return ("<PCT>",) if token.endswith("%") else ("<NUM>",)
    if _UNIT_RE.match(token):
        return ("<UNIT>",)
    return ()


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


_SHAPE_FAMILIES = frozenset(SHAPES)
