"""The typed injection config: one SSTI recipe (token source and its parameters, count, location, rows, seed)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from spurlab.config_io import describe_errors, first_error
from spurlab.errors import SpurlabError
from spurlab.inject.sources import SHORTHAND, SOURCES

Location = Literal["start", "end", "random"]
Poisoning = Literal["clean_label", "dirty_label"]
LOCATION_ALIASES = {"beginning": "start"}


class InjectionConfig(BaseModel):
    """One SSTI recipe.

    ``source`` names a registered token source (``date``, ``country``, ``color``, ``html``, ``punctuation``,
    ``fixed``, ``list``, ``file`` or one added with :func:`~spurlab.inject.sources.register_source`) or is a
    callable ``(numpy.random.Generator) -> str``. The source's parameters go in ``params`` and are validated
    against the model it was registered with; the built-in sources' parameters may also be given as top-level
    keys (``token``, ``tokens``, ``path``, ``year_min``, ``year_max``), as configs always have.
    ``token_proportion = 0`` is light SSTI (one item per modified row); otherwise each modified row gets
    ``max(1, int(n_words * token_proportion))`` items. ``target_label=None`` modifies rows of every label
    (test-time injection); ``proportion`` is the share of each target label's rows that are modified: exactly
    ``round(n_label * proportion)`` rows, with Python's ``round`` (half-to-even: 2.5 -> 2, 3.5 -> 4), as the
    paper's Python code does.

    ``poisoning="dirty_label"`` is the backdoor literature's default: rows of every *other* label get the
    items and are relabelled to the one ``target_label``; ``proportion`` is then the share of each other
    label's rows that are modified. ``clean_label`` (the default, SSTI) leaves every label as it was.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True, allow_inf_nan=False)

    source: str | Callable[..., Any] = Field("date", description="token source name or a callable (rng) -> str")
    params: dict[str, Any] | None = Field(None, description="the source's parameters (its registered model)")
    tokens: list[str] | None = Field(None, description="tokens for source 'list'")
    token: str | None = Field(None, description="the string for 'fixed'; the mark for 'punctuation' ('!')")
    path: str | None = Field(None, description="UTF-8 file with one token per line for source 'file'")
    year_min: int = Field(1900, ge=1, le=9999, description="first year for 'date' (authors' library: 1100)")
    year_max: int = Field(2100, ge=1, le=9999, description="last year for 'date' (authors' library: 2600)")
    location: Location = Field("random", description="start (alias beginning), end or random")
    token_proportion: float = Field(0.0, ge=0.0, le=1.0, description="0 = light SSTI; >0 = aggressive SSTI "
                                    "(the share of a row's words inserted)")
    insertions: int | None = Field(None, ge=1, le=1000, description="exactly this many items per modified row "
                                   "(BadNets' k insertions); not with token_proportion")
    target_label: str | int | list[str | int] | None = Field(
        None, description="label(s) whose rows are modified; None = every label")
    proportion: float = Field(1.0, ge=0.0, le=1.0, description="share of each target label's rows modified")
    seed: int = Field(0, ge=0, lt=2**63, description="seed of numpy.random.default_rng")
    poisoning: Poisoning = Field("clean_label", description="clean_label (labels kept) or dirty_label (rows "
                                 "of the other labels get the items and are relabelled to target_label)")

    @field_validator("location", mode="before")
    @classmethod
    def _alias_location(cls, value: Any) -> Any:
        return LOCATION_ALIASES.get(value, value) if isinstance(value, str) else value

    @field_validator("source")
    @classmethod
    def _known_source(cls, value: Any) -> Any:
        if isinstance(value, str) and value not in SOURCES:
            raise ValueError(f"unknown source {value!r} (known: {', '.join(SOURCES.names())})")
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
        if self.insertions is not None and self.token_proportion > 0:
            raise ValueError("give insertions (items per row) or token_proportion (share of a row's words), not both")
        if not isinstance(self.source, str) and self.params:
            raise ValueError("a callable source takes no params")
        if self.poisoning == "dirty_label" and (self.target_label is None or (
                isinstance(self.target_label, list) and len(self.target_label) != 1)):
            raise ValueError("dirty_label poisoning relabels rows to one target_label: give exactly one")
        self._resolve_params()
        return self

    def _resolve_params(self) -> BaseModel | None:
        """The source's parameters from ``params`` and the top-level shorthand keys, validated against the model
        the source was registered with (a ``ValueError`` names what is wrong)."""
        if not isinstance(self.source, str):
            return None
        model = SOURCES.get(self.source).params
        fields = type(self).model_fields
        given = [k for k in SHORTHAND if getattr(self, k) != fields[k].default]
        unused = [k for k in given if k not in model.model_fields]
        if unused:
            raise ValueError(f"source {self.source!r} does not use {', '.join(unused)}")
        values = {k: getattr(self, k) for k in SHORTHAND if k in model.model_fields} | (self.params or {})
        try:
            return model.model_validate(values)
        except ValidationError as exc:
            raise ValueError(describe_errors(exc)) from None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InjectionConfig:
        """Validate a plain mapping; any problem becomes one :class:`SpurlabError` line."""
        try:
            return cls(**dict(data))
        except ValidationError as exc:
            raise SpurlabError(f"invalid injection config: {describe_errors(exc)}") from None

    @property
    def source_params(self) -> BaseModel | None:
        """The source's validated parameters (None for a callable source)."""
        try:
            return self._resolve_params()
        except ValueError as exc:  # only after model_copy(update=...), which skips validation
            raise SpurlabError(f"invalid injection config: {exc}") from None

    @property
    def source_name(self) -> str:
        """The source as a string (a callable is named ``callable:<qualname>``)."""
        if isinstance(self.source, str):
            return self.source
        return f"callable:{getattr(self.source, '__qualname__', type(self.source).__name__)}"

    def spec(self) -> dict[str, Any]:
        """The keys given when the config was made: what a config file holds (and writes back)."""
        return self.model_dump(exclude_unset=True)

    def to_record(self) -> dict[str, Any]:
        """A JSON-safe dict of the config (for summaries); ``params`` only when given."""
        record = self.model_dump(exclude={"source", "params"} if self.params is None else {"source"})
        record["source"] = self.source_name
        if record.get("insertions") is None:  # records of configs without it stay as they were
            record.pop("insertions", None)
        return record


def validate_injection(value: Any, where: str) -> InjectionConfig:
    """``value`` (a mapping or a config) as an :class:`InjectionConfig`; a problem is a ``ValueError`` whose
    message names the key under ``where`` (for use inside other configs' validators)."""
    if isinstance(value, InjectionConfig):
        return value
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: expected a mapping of injection settings, got {type(value).__name__}")
    try:
        return InjectionConfig.model_validate(dict(value))
    except ValidationError as exc:
        raise ValueError(first_error(exc, prefix=where)) from None


def coerce_config(config: InjectionConfig | Mapping[str, Any]) -> InjectionConfig:
    """Accept a config object or a plain mapping."""
    if isinstance(config, InjectionConfig):
        return config
    if isinstance(config, Mapping):
        return InjectionConfig.from_dict(config)
    raise SpurlabError(f"expected an InjectionConfig or a mapping, got {type(config).__name__}")
