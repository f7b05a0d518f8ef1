"""Registries: the extension points. A name maps to a factory and the pydantic model of its parameters.

In the style of PEFT's method mappings: an entry is registered once (a second registration of the same name is
refused), a config names the entry and gives its parameters, and the parameters are validated against the
entry's model when the config is read, so a typo fails before anything runs::

    class ShoutParams(BaseModel):
        model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
        times: int = Field(1, ge=1)

    @register_source("shout", params=ShoutParams)
    class Shout(TokenSource):
        def __init__(self, params: ShoutParams) -> None: ...
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from spurlab.config_io import describe_errors
from spurlab.errors import SpurlabError

T = TypeVar("T")


class NoParams(BaseModel):
    """The parameters of an entry that takes none."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered name: what builds it, the model of its parameters, a one-line description."""

    name: str
    factory: Callable[[Any], T]
    params: type[BaseModel]
    description: str = ""


class Registry(Generic[T]):
    """Named entries of one kind (token sources, defenses, ...)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def add(self, name: str, factory: Callable[[Any], T], params: type[BaseModel] = NoParams,
            description: str = "") -> Entry[T]:
        """Register ``factory(params_model_instance)`` under ``name``; a name already taken raises."""
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"a {self.kind} needs a non-empty name")
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        if not (isinstance(params, type) and issubclass(params, BaseModel)):
            raise TypeError(f"{self.kind} {name!r}: params must be a pydantic model class")
        entry = Entry(name, factory, params, description)
        self._entries[name] = entry
        return entry

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry[T]]:
        return iter(self._entries[n] for n in self.names())

    def get(self, name: str) -> Entry[T]:
        """The entry for ``name``; an unknown name is one line listing the known ones."""
        if name not in self._entries:
            raise SpurlabError(f"unknown {self.kind} {name!r} (known: {', '.join(self.names())})")
        return self._entries[name]

    def params(self, name: str, values: Mapping[str, Any] | BaseModel | None = None) -> BaseModel:
        """``values`` validated against ``name``'s parameter model; a problem is one line naming the key."""
        model = self.get(name).params
        if isinstance(values, model):
            return values
        data = values.model_dump() if isinstance(values, BaseModel) else dict(values or {})
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise SpurlabError(f"{self.kind} {name!r}: {describe_errors(exc)}") from None

    def build(self, name: str, values: Mapping[str, Any] | BaseModel | None = None) -> T:
        """Validate the parameters and build the entry."""
        return self.get(name).factory(self.params(name, values))
