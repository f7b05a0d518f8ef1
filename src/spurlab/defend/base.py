"""One interface for defenses, registered by name with the pydantic model of their parameters.

A defense's parameter model *is* the defense: a pydantic model (unknown keys refused, types and ranges checked
when it is built) with ``apply(dataset) -> TransformResult``, which keeps the rows and their order. Register it
with :func:`register_defense`; a config then names it (``defense: {name: sanitize, top: 1}``) and its
parameters are validated when the config is read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict, model_serializer, model_validator

from spurlab.data.dataset import TextDataset
from spurlab.data.transform import TransformResult
from spurlab.errors import SpurlabError
from spurlab.registry import Registry


class Defense(Protocol):
    name: ClassVar[str]

    def apply(self, dataset: TextDataset) -> TransformResult: ...


class DefenseParams(BaseModel):
    """Base of a defense's parameter model: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True, allow_inf_nan=False)
    name: ClassVar[str] = ""

    def apply(self, dataset: TextDataset) -> TransformResult:
        raise NotImplementedError


DEFENSES: Registry[Defense] = Registry("defense")


def register_defense(name: str, description: str = "") -> Callable[[type[DefenseParams]], type[DefenseParams]]:
    """Class decorator: make a :class:`DefenseParams` subclass a defense configs can name as ``name``."""

    def wrap(cls: type[DefenseParams]) -> type[DefenseParams]:
        if not (isinstance(cls, type) and issubclass(cls, DefenseParams)):
            raise TypeError("register_defense expects a DefenseParams subclass")
        DEFENSES.add(name, lambda params: params, cls, description or (cls.__doc__ or "").strip().split("\n")[0])
        cls.name = name
        return cls

    return wrap


def available_defenses() -> list[str]:
    return DEFENSES.names()


def get_defense(name: str, **params: Any) -> Defense:
    """Build a registered defense; one-line error for an unknown name or bad parameters."""
    return DEFENSES.build(name, params)


def named_params(data: Any, registry: Registry[Any], example: str, where: str = "") -> dict[str, Any]:
    """A config's ``{name: ..., **parameters}`` as ``{"name", "params"}``, the parameters validated by
    ``registry``'s model for that name; every problem a ``ValueError`` line prefixed by ``where``."""
    prefix = f"{where}: " if where else ""
    if not isinstance(data, Mapping):
        raise ValueError(f"{prefix}expected a mapping with name: and its parameters, got {type(data).__name__}")
    values = dict(data)
    name = values.pop("name", None)
    if not isinstance(name, str):
        raise ValueError(f"{where + '.' if where else ''}name: required (e.g. {example})")
    try:
        return {"name": name, "params": registry.params(name, values)}
    except SpurlabError as exc:
        raise ValueError(f"{prefix}{exc}") from None


class DefenseSpec(BaseModel):
    """The ``defense:`` section of an experiment config: a registered name and its validated parameters."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    name: str
    params: BaseModel

    @model_validator(mode="before")
    @classmethod
    def _from_mapping(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and isinstance(data.get("params"), BaseModel):
            return data
        return named_params(data, DEFENSES, "sanitize", where="defense")

    @model_serializer
    def _as_given(self) -> dict[str, Any]:
        return {"name": self.name, **self.params.model_dump(mode="json", exclude_unset=True)}

    def build(self) -> Defense:
        return DEFENSES.build(self.name, self.params)
