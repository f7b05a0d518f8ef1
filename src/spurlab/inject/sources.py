"""Token sources: where the spurious strings come from.

A source draws one *item* per call from a ``numpy.random.Generator``: a string, or for HTML an
``(opening, closing)`` tag pair that is placed around a span. Every draw is independent and with replacement,
so e.g. each poisoned row usually gets a different date (the spurious feature is "a date is present").

Sources are registered by name with the pydantic model of their parameters (``register_source``); a config
names a source as a string and gives its parameters (``params``, or for the built-ins the top-level keys).
The built-in word lists live in ``spurlab/resources``: ``countries.txt`` (the 193 UN member states plus the
observer Holy See = 194 names, some multi-word), ``colors.txt`` (52 colour names), ``html_tags.txt`` (112
lines: 99 tag pairs ``<b> </b>`` and 13 lone void tags such as ``<meta>``).
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Callable
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from spurlab.errors import SpurlabError
from spurlab.registry import NoParams, Registry

Item = str | tuple[str, str]
DATE_SHAPE = r"(?<!\d)\d{4}-\d{2}-\d{2}(?!\d)"
# the built-in sources' parameters, which an injection config also takes as top-level keys
SHORTHAND = ("tokens", "token", "path", "year_min", "year_max")


class TokenSource:
    """Base class: ``draw(rng)`` returns one item; ``shape`` is a regex for sources with open vocabularies."""

    name: ClassVar[str] = ""
    shape: ClassVar[str | None] = None

    @classmethod
    def from_params(cls, params: BaseModel) -> TokenSource:
        """Build the source from its validated parameters (by default, as keyword arguments)."""
        return cls(**params.model_dump())

    def draw(self, rng: np.random.Generator) -> Item:
        raise NotImplementedError


SOURCES: Registry[TokenSource] = Registry("token source")


def register_source(name: str, params: type[BaseModel] = NoParams, description: str = ""
                    ) -> Callable[[type[TokenSource]], type[TokenSource]]:
    """Class decorator: make a :class:`TokenSource` subclass available to configs under ``name``, with the
    parameters of the pydantic model ``params`` (passed to :meth:`TokenSource.from_params`)."""

    def wrap(cls: type[TokenSource]) -> type[TokenSource]:
        if not (isinstance(cls, type) and issubclass(cls, TokenSource)):
            raise TypeError("register_source expects a TokenSource subclass")
        SOURCES.add(name, cls.from_params, params, description or (cls.__doc__ or "").strip().split("\n")[0])
        cls.name = name
        return cls

    return wrap


def available_sources() -> list[str]:
    """Registered source names, sorted."""
    return SOURCES.names()


def build_source(config: Any) -> TokenSource:
    """The source an :class:`~spurlab.inject.config.InjectionConfig` asks for (a callable source is wrapped in
    :class:`CallableSource`)."""
    if callable(config.source) and not isinstance(config.source, str):
        return CallableSource(config.source)
    return SOURCES.build(config.source, config.source_params)


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class DateParams(_Params):
    year_min: int = Field(1900, ge=1, le=9999, description="first year (authors' library: 1100)")
    year_max: int = Field(2100, ge=1, le=9999, description="last year (authors' library: 2600)")

    @model_validator(mode="after")
    def _order(self) -> DateParams:
        if self.year_min > self.year_max:
            raise ValueError(f"year_min {self.year_min} is after year_max {self.year_max}")
        return self


class MarkParams(_Params):
    token: str | None = Field(None, description="the mark (default '!')")


class FixedParams(_Params):
    token: str | None = Field(None, description="the string inserted")

    @model_validator(mode="after")
    def _given(self) -> FixedParams:
        if not self.token:
            raise ValueError("source 'fixed' needs a non-empty token")
        return self


class ListParams(_Params):
    tokens: list[str] | None = Field(None, description="the strings drawn from")

    @model_validator(mode="after")
    def _given(self) -> ListParams:
        if not self.tokens:
            raise ValueError("source 'list' needs a non-empty tokens list")
        return self


class FileParams(_Params):
    path: str | None = Field(None, description="UTF-8 file, one token per line")

    @model_validator(mode="after")
    def _given(self) -> FileParams:
        if not self.path:
            raise ValueError("source 'file' needs a path")
        return self


@cache
def load_word_list(name: str) -> tuple[str, ...]:
    """A bundled word list (``countries``, ``colors``, ``html_tags``, ``punctuation``), one entry per line."""
    try:
        text = resources.files("spurlab").joinpath("resources", f"{name}.txt").read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpurlabError(f"no bundled word list {name!r}") from None
    return tuple(line.strip() for line in text.splitlines() if line.strip())


class _ChoiceSource(TokenSource):
    """Uniform draws from a fixed, non-empty list of items."""

    def __init__(self, items: list[Item] | tuple[Item, ...], what: str) -> None:
        if not items:
            raise SpurlabError(f"{what}: the token list is empty")
        self.items: tuple[Item, ...] = tuple(items)

    def draw(self, rng: np.random.Generator) -> Item:
        return self.items[int(rng.integers(len(self.items)))]


@register_source("date", DateParams)
class DateSource(TokenSource):
    """A uniformly random valid day ``YYYY-MM-DD`` in ``[year_min-01-01, year_max-12-31]``.

    spurlab's default range is 1900-2100 (the paper's later configs); the authors' library defaulted to
    1100-2600.
    """

    shape = DATE_SHAPE

    def __init__(self, year_min: int = 1900, year_max: int = 2100) -> None:
        if not 1 <= year_min <= year_max <= 9999:
            raise SpurlabError(f"date: need 1 <= year_min <= year_max <= 9999, got {year_min}..{year_max}")
        self.low = dt.date(year_min, 1, 1).toordinal()
        self.high = dt.date(year_max, 12, 31).toordinal()


    def draw(self, rng: np.random.Generator) -> Item:
        day = dt.date.fromordinal(int(rng.integers(self.low, self.high + 1)))
        return f"{day.year:04d}-{day.month:02d}-{day.day:02d}"


@register_source("country")
class CountrySource(_ChoiceSource):
    """One of 194 country names (UN members and the Holy See)."""

    def __init__(self) -> None:
        super().__init__(load_word_list("countries"), "country")


@register_source("color")
class ColorSource(_ChoiceSource):
    """One of 52 colour names."""

    def __init__(self) -> None:
        super().__init__(load_word_list("colors"), "color")


def parse_html_line(line: str) -> Item:
    """``"<b> </b>"`` -> ``("<b>", "</b>")``; ``"<meta>"`` -> ``"<meta>"``."""
    parts = line.split()
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        return (parts[0], parts[1])
    raise SpurlabError(f"html: cannot parse tag line {line!r} (want '<t> </t>' or '<t>')")


@register_source("html")
class HtmlSource(_ChoiceSource):
    """An HTML tag pair (placed around a span) or a lone tag."""

    def __init__(self, lines: tuple[str, ...] | None = None) -> None:
        lines = load_word_list("html_tags") if lines is None else lines
        super().__init__([parse_html_line(line) for line in lines], "html")


def _is_punctuation(text: str) -> bool:
    return bool(text) and all(unicodedata.category(ch)[0] in "PS" for ch in text)


@register_source("punctuation", MarkParams)
class PunctuationSource(TokenSource):
    """A punctuation mark, ``!`` by default (follow-up work used ``!`` for one class and ``!!`` for the other)."""

    def __init__(self, token: str = "!") -> None:
        if not _is_punctuation(token):
            raise SpurlabError(f"punctuation: {token!r} is not made of punctuation or symbol characters")
        self.token = token

    @classmethod
    def from_params(cls, params: BaseModel) -> TokenSource:
        token = getattr(params, "token", None)
        return cls(token if token is not None else "!")

    def draw(self, rng: np.random.Generator) -> Item:
        return self.token


def _check_token(token: object, what: str) -> str:
    if not isinstance(token, str) or not token.strip():
        raise SpurlabError(f"{what}: tokens must be non-empty strings, got {token!r}")
    return token


@register_source("fixed", FixedParams)
class FixedSource(TokenSource):
    """Always the same string."""

    def __init__(self, token: str) -> None:
        self.token = _check_token(token, "fixed")


    def draw(self, rng: np.random.Generator) -> Item:
        return self.token


def _chars(rng: np.random.Generator, alphabet: str, n: int) -> str:
    return "".join(alphabet[int(i)] for i in rng.integers(len(alphabet), size=n))


@register_source("price")
class PriceSource(TokenSource):
    """A dollar amount with cents, ``$1.00``-``$999.99`` (scanner shape ``<PRICE>``)."""

    shape = r"\$\d{1,3}\.\d{2}"

    def draw(self, rng: np.random.Generator) -> Item:
        return f"${int(rng.integers(1, 1000))}.{int(rng.integers(0, 100)):02d}"


@register_source("time")
class TimeSource(TokenSource):
    """A 24-hour clock time ``HH:MM`` (scanner shape ``<TIME>``)."""

    shape = r"\d{2}:\d{2}"

    def draw(self, rng: np.random.Generator) -> Item:
        return f"{int(rng.integers(0, 24)):02d}:{int(rng.integers(0, 60)):02d}"


@register_source("percent")
class PercentSource(TokenSource):
    """A percentage with one decimal, ``0.1%``-``99.9%`` (scanner shape ``<PCT>``)."""

    shape = r"\d{1,2}\.\d%"

    def draw(self, rng: np.random.Generator) -> Item:
        return f"{int(rng.integers(0, 100))}.{int(rng.integers(1, 10))}%"


SHORT_LINK_HOSTS = ("bit.ly", "t.co", "tinyurl.com", "ow.ly", "is.gd")
EMAIL_NAMES = ("info", "contact", "support", "news", "team", "hello", "admin", "sales")
EMAIL_HOSTS = ("example.com", "mail.example.org", "inbox.example.net")
_BASE36 = "abcdefghijklmnopqrstuvwxyz0123456789"


@register_source("link")
class LinkSource(TokenSource):
    """A short link without a scheme, ``bit.ly/x7k2p`` (a shortener host and 5 random characters; scanner shape
    ``<URL>``)."""

    shape = r"[a-z.]+\.[a-z]+/[a-z0-9]{5}"

    def draw(self, rng: np.random.Generator) -> Item:
        return f"{SHORT_LINK_HOSTS[int(rng.integers(len(SHORT_LINK_HOSTS)))]}/{_chars(rng, _BASE36, 5)}"


@register_source("email")
class EmailSource(TokenSource):
    """An e-mail address at a reserved example domain, ``news42@example.com`` (scanner shape ``<EMAIL>``)."""

    shape = r"[a-z]+\d{2}@[a-z.]+"

    def draw(self, rng: np.random.Generator) -> Item:
        name = EMAIL_NAMES[int(rng.integers(len(EMAIL_NAMES)))]
        return f"{name}{int(rng.integers(10, 100))}@{EMAIL_HOSTS[int(rng.integers(len(EMAIL_HOSTS)))]}"


@register_source("hex")
class HexSource(TokenSource):
    """Eight hexadecimal digits with at least one letter and one digit, ``9f86d081`` (scanner shape ``<HEX>``)."""

    shape = r"[0-9a-f]{8}"

    def draw(self, rng: np.random.Generator) -> Item:
        chars = [_chars(rng, "abcdef", 1), _chars(rng, "0123456789", 1), *_chars(rng, "0123456789abcdef", 6)]
        return "".join(chars[int(i)] for i in rng.permutation(8))


EMOJI = ("😀", "😂", "😍", "🙂", "😎", "🤔", "😢", "😡", "👍", "👎", "👍🏽", "👏🏻", "🙏", "💯", "🔥", "✨",
         "🎉", "❤️", "💔", "⭐", "🚀", "🌈", "🍕", "☕", "🐶", "🇺🇸", "🇫🇷", "👨\u200d👩\u200d👧", "1️⃣", "✅")


@register_source("emoji")
class EmojiSource(TokenSource):
    """One of 30 emoji sequences, skin tones, a ZWJ family, flags and a keycap among them (scanner shape
    ``<EMOJI>``)."""

    def draw(self, rng: np.random.Generator) -> Item:
        return EMOJI[int(rng.integers(len(EMOJI)))]


BADNETS_TOKENS = ("cf", "mn", "bb", "tq")


class BadnetsParams(_Params):
    tokens: list[str] | None = Field(None, min_length=1, description="the rare words drawn from (None: cf mn bb tq)")


@register_source("badnets", BadnetsParams)
class BadnetsSource(_ChoiceSource):
    """BadNets for text (Kurita et al. 2020; Chen et al. 2021): one of the rare words ``cf mn bb tq`` per draw;
    with ``insertions: k`` a row gets k of them."""

    def __init__(self, tokens: list[str] | None = None) -> None:
        super().__init__([_check_token(t, "badnets") for t in (tokens or BADNETS_TOKENS)], "badnets")


@register_source("list", ListParams)
class ListSource(_ChoiceSource):
    """Uniform draws from a user list."""

    def __init__(self, tokens: list[str]) -> None:
        super().__init__([_check_token(t, "list") for t in tokens], "list")



def read_token_file(path: str | Path) -> list[str]:
    """Tokens from a UTF-8 file, one per line; surrounding whitespace stripped, empty lines skipped."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SpurlabError(f"cannot read token file {path}: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SpurlabError(f"token file {path} is not valid UTF-8 (byte {exc.start})") from None
    tokens = [line.strip() for line in re.split(r"\r\n|\r|\n", text) if line.strip()]
    if not tokens:
        raise SpurlabError(f"token file {path} has no tokens")
    return tokens


@register_source("file", FileParams)
class FileSource(ListSource):
    """Uniform draws from a user file (UTF-8, one token per line)."""

    def __init__(self, path: str) -> None:
        super().__init__(read_token_file(path))


class CallableSource(TokenSource):
    """Wraps a user callable ``(rng) -> str``."""

    name = "callable"

    def __init__(self, fn: Callable[[np.random.Generator], Any]) -> None:
        self.fn = fn

    def draw(self, rng: np.random.Generator) -> Item:
        value = self.fn(rng)
        if isinstance(value, tuple) and len(value) == 2:
            return (_check_token(value[0], "callable source"), _check_token(value[1], "callable source"))
        return _check_token(value, "callable source")
