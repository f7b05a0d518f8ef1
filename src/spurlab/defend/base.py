"""One interface for defenses: transform a dataset, report what was removed.

A defense is any object with a ``name`` and ``apply(dataset) -> DefenseResult``. Register a factory under a
name with :func:`register_defense`, so configs can name defenses as strings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from spurlab.data.dataset import TextDataset
from spurlab.errors import SpurlabError


@dataclass
class DefenseResult:
    """The transformed dataset (same rows, same order), one manifest record per changed row, a summary."""

    dataset: TextDataset
    manifest: list[dict[str, Any]]
    summary: dict[str, Any] = field(default_factory=dict)


class Defense(Protocol):
    name: str

    def apply(self, dataset: TextDataset) -> DefenseResult: ...


_REGISTRY: dict[str, Callable[..., Defense]] = {}


def register_defense(name: str, factory: Callable[..., Defense]) -> None:
    """Make ``get_defense(name, **params)`` build a defense with ``factory(**params)``."""
    _REGISTRY[name] = factory


def available_defenses() -> list[str]:
    return sorted(_REGISTRY)


def get_defense(name: str, **params: Any) -> Defense:
    """Build a registered defense; one-line error for an unknown name or bad parameters."""
    if name not in _REGISTRY:
        raise SpurlabError(f"unknown defense {name!r} (known: {', '.join(available_defenses())})")
    try:
        return _REGISTRY[name](**params)
    except TypeError as exc:
        raise SpurlabError(f"defense {name!r}: {exc}") from exc
