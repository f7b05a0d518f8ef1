"""The typed injection config: one SSTI recipe (token source, count, location, rows, seed)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from spurlab.errors import SpurlabError

Location = Literal["start", "end", "random"]
LOCATION_ALIASES = {"beginning": "start"}

# Parameters each built-in source reads; giving another one to a built-in source is an error.
_SOURCE_PARAMS: dict[str, set[str]] = {
    "date": {"year_min", "year_max"},
    "country": set(),
    "color": set(),
    "html": set(),
    "punctuation": {"token"},
    "fixed": {"token"},
    "list": {"tokens"},
    "file": {"path"},
}
_PARAM_DEFAULTS: dict[str, Any] = {"tokens": None, "token": None, "path": None, "year_min": 1900,
                                   "year_max": 2100}


class InjectionConfig(BaseModel):
    """One SSTI recipe.

    ``source`` names a registered token source (``date``, ``country``, ``color``, ``html``, ``punctuation``,
    ``fixed``, ``list``, ``file`` or one added with :func:`register_source`) or is a callable
    ``(numpy.random.Generator) -> str``. ``token_proportion = 0`` is light SSTI (one item per modified row);
    otherwise each modified row gets ``max(1, int(n_words * token_proportion))`` items. ``target_label=None``
    modifies rows of every label (test-time injection); ``proportion`` is the share of each target label's
    rows that are modified: exactly ``round(n_label * proportion)`` rows, with Python's ``round``
    (half-to-even: 2.5 -> 2, 3.5 -> 4), as the paper's Python code does.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    source: str | Callable[..., Any] = Field("date", description="token source name or a callable (rng) -> str")
    tokens: list[str] | None = Field(None, description="tokens for source 'list'")
    token: str | None = Field(None, description="the string for 'fixed'; the mark for 'punctuation' ('!')")
    path: str | None = Field(None, description="UTF-8 file with one token per line for source 'file'")
    year_min: int = Field(1900, ge=1, le=9999, description="first year for 'date' (authors' library: 1100)")
    year_max: int = Field(2100, ge=1, le=9999, description="last year for 'date' (authors' library: 2600)")
    location: Location = Field("random", description="start (alias beginning), end or random")
    token_proportion: float = Field(0.0, ge=0.0, description="0 = light SSTI; >0 = aggressive SSTI")
    target_label: str | int | list[str | int] | None = Field(
        None, description="label(s) whose rows are modified; None = every label")
    proportion: float = Field(1.0, ge=0.0, le=1.0, description="share of each target label's rows modified")
    seed: int = Field(0, description="seed of numpy.random.default_rng")

    @field_validator("location", mode="before")
    @classmethod
    def _alias_location(cls, value: Any) -> Any:
        return LOCATION_ALIASES.get(value, value) if isinstance(value, str) else value

    @field_validator("source")
    @classmethod
    def _known_source(cls, value: Any) -> Any:
        if isinstance(value, str):
            from spurlab.inject.sources import available_sources

            if value not in available_sources():
                raise ValueError(f"unknown source {value!r} (known: {', '.join(available_sources())})")
        return value

    @field_validator("target_label")
    @classmethod
    def _non_empty_labels(cls, value: Any) -> Any:
        if isinstance(value, list) and not value:
            raise ValueError("an empty list of target labels; use null for every label")
        return value

    @model_validator(mode="after")
    def _check_source_params(self) -> InjectionConfig:
        if self.year_min > self.year_max:
            raise ValueError(f"year_min {self.year_min} is after year_max {self.year_max}")
        name = self.source if isinstance(self.source, str) else None
        if name in _SOURCE_PARAMS:
            unused = [p for p, default in _PARAM_DEFAULTS.items()
                      if p not in _SOURCE_PARAMS[name] and getattr(self, p) != default]
            if unused:
                raise ValueError(f"source {name!r} does not use {', '.join(unused)}")
        if name == "fixed" and not self.token:
            raise ValueError("source 'fixed' needs a non-empty token")
        if name == "list" and not self.tokens:
            raise ValueError("source 'list' needs a non-empty tokens list")
        if name == "file" and not self.path:
            raise ValueError("source 'file' needs a path")
        return self

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InjectionConfig:
        """Validate a plain mapping; any problem becomes one :class:`SpurlabError` line."""
        try:
            return cls(**dict(data))
        except ValidationError as exc:
            raise SpurlabError(f"invalid injection config: {describe_validation_error(exc)}") from None

    @property
    def source_name(self) -> str:
        """The source as a string (a callable is named ``callable:<qualname>``)."""
        if isinstance(self.source, str):
            return self.source
        return f"callable:{getattr(self.source, '__qualname__', type(self.source).__name__)}"

    def to_record(self) -> dict[str, Any]:
        """A JSON-safe dict of the config (for summaries)."""
        record = self.model_dump(exclude={"source"})
        record["source"] = self.source_name
        return record


def describe_validation_error(exc: ValidationError) -> str:
    """One line per pydantic error, joined with '; '."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()))
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{where}: {msg}" if where else msg)
    return "; ".join(parts)


def coerce_config(config: InjectionConfig | Mapping[str, Any]) -> InjectionConfig:
    """Accept a config object or a plain mapping."""
    if isinstance(config, InjectionConfig):
        return config
    if isinstance(config, Mapping):
        return InjectionConfig.from_dict(config)
    raise SpurlabError(f"expected an InjectionConfig or a mapping, got {type(config).__name__}")
