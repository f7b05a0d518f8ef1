"""Trainable-parameter budgets: how many parameters a training method trains on a model, and the size (rank)
of each method that comes closest to a target count, so methods are compared at the same budget.

The count is measured, not derived: the method is attached to a copy of the loaded classifier and its
trainable parameters are summed (the classification head, trained by every method, included).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from spurlab.errors import SpurlabError
from spurlab.models.adapters import attach_trainable
from spurlab.models.loading import LoadedModel
from spurlab.models.peft_methods import PEFT_METHODS

#: the setting that sizes each method (IA³, full and head have a fixed size)
SIZE_KEYS = {"lora": "r", "loha": "r", "lokr": "r", "vera": "r", "adalora": "init_r"}
MAX_SIZE = 1024  # the largest size tried; a method that reaches no closer says so by its count


@dataclass
class Budget:
    """A method at a size: its settings (None for full and head), its size value and trainable parameters."""

    method: str
    settings: Any
    size: int | None
    trainable: int


def trainable_parameters(loaded: LoadedModel, method: str, settings: Any = None) -> int:
    """Parameters ``method`` (with ``settings``) trains on ``loaded`` (which is left untouched)."""
    model = attach_trainable(copy.deepcopy(loaded), method, settings)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _sized(method: str, settings: Any, size: int) -> Any:
    update: dict[str, Any] = {SIZE_KEYS[method]: size}
    if method == "adalora":
        update["target_r"] = min(settings.target_r, size)
    return settings.model_copy(update=update)


def match_budget(loaded: LoadedModel, method: str, target: int, settings: Any = None) -> Budget:
    """``method`` at the size whose trainable parameters are closest to ``target`` (the smaller size on a tie);
    a method without a size is returned as it is."""
    if method not in SIZE_KEYS:  # full, head, IA3: one size (an unknown name is one line from attach_trainable)
        return Budget(method, settings, None, trainable_parameters(loaded, method, settings))
    settings = settings if settings is not None else PEFT_METHODS.get(method).params()
    counts: dict[int, int] = {}

    def count(size: int) -> int:
        if size not in counts:
            counts[size] = trainable_parameters(loaded, method, _sized(method, settings, size))
        return counts[size]

    # the count grows with the size (and may level off: LoKr stops decomposing once r reaches the factor sizes):
    # bisect for the first size reaching the target, or the first reaching the largest count when none does
    goal = min(target, count(MAX_SIZE))
    low, high = 1, MAX_SIZE
    while low < high:
        mid = (low + high) // 2
        if count(mid) >= goal:
            high = mid
        else:
            low = mid + 1
    best = min((s for s in (high - 1, high) if s >= 1), key=lambda s: (abs(count(s) - target), s))
    return Budget(method, _sized(method, settings, best), best, count(best))


def budget_table(loaded: LoadedModel, methods: list[str], target: int,
                 settings: dict[str, Any] | None = None) -> list[Budget]:
    """Every method matched to ``target`` trainable parameters."""
    if target < 1:
        raise SpurlabError(f"the parameter budget must be at least 1, got {target}")
    return [match_budget(loaded, m, target, (settings or {}).get(m)) for m in methods]


__all__ = ["SIZE_KEYS", "Budget", "budget_table", "match_budget", "trainable_parameters"]
