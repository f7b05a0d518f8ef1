"""An arena spec: datasets x attacks x poisoning x poison rates x defenses x seeds, expanded into a sweep.

.. code-block:: yaml

    name: arena-minilm
    base: ../demo-minilm.yaml              # the experiment every cell starts from (model, training, evaluation)
    datasets:                              # name -> dotted overrides
      tweets: {data.spec: bundled:tweets, data.labels: [negative, positive]}
    attacks:                               # name -> dotted overrides of the injection
      ssti-date: {injection.source: date}
      badnets: {injection.source: badnets}
    poisoning: [clean_label, dirty_label]  # injection.poisoning (default: clean_label only)
    rates: [0.01, 0.05, 0.1]               # injection.proportion
    defenses:                              # training-data defenses: each cell is retrained with each
      sanitize: {name: sanitize, top: 1}
    test_time: [{name: strip}]             # measured on every cell's undefended model (trained once)
    seeds: [0, 1]

Every combination of dataset, attack and poisoning is a sweep case crossed with every training-data defense
and with ``none`` (no defense, which also carries the test-time defenses), so the sweep runs
``datasets x attacks x poisoning x (1 + defenses) x rates x seeds`` points, resumable and on Ray like any sweep.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from spurlab.config_io import first_error, read_yaml
from spurlab.errors import SpurlabError
from spurlab.sweep.spec import MAX_POINTS, Sweep, parse_spec

NONE = "none"  # the defense name of the undefended cells
SEP = "+"  # joins dataset, attack, poisoning and defense into a case name
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,30}$")


class ArenaSpec(BaseModel):
    """The arena spec file's schema."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")
    base: str | dict[str, Any]
    datasets: dict[str, dict[str, Any]]
    attacks: dict[str, dict[str, Any]]
    poisoning: list[Literal["clean_label", "dirty_label"]] = Field(default_factory=lambda: ["clean_label"])
    rates: list[float] = Field(min_length=1)
    defenses: dict[str, dict[str, Any]] = Field(default_factory=dict)
    test_time: list[dict[str, Any]] = Field(default_factory=list)
    seeds: list[int] = Field(default_factory=lambda: [0])

    @field_validator("datasets", "attacks", "defenses")
    @classmethod
    def _names(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for name in value:
            if not _NAME.match(name) or name == NONE:
                raise ValueError(f"{name!r} is not a usable name (letters, digits, . _ -; not {NONE!r})")
        return value

    @field_validator("datasets", "attacks")
    @classmethod
    def _not_empty(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        if not value:
            raise ValueError("needs at least one entry")
        return value

    @field_validator("rates")
    @classmethod
    def _rates(cls, value: list[float]) -> list[float]:
        if any(not 0 < r <= 1 for r in value) or len(set(value)) != len(value):
            raise ValueError("expected distinct poison rates in (0, 1]")
        return value


def case_name(dataset: str, attack: str, poisoning: str, defense: str) -> str:
    return SEP.join((dataset, attack, poisoning, defense))


def split_case(case: str) -> dict[str, str]:
    dataset, attack, poisoning, defense = case.split(SEP)
    return {"dataset": dataset, "attack": attack, "poisoning": poisoning, "defense": defense}


def sweep_spec(spec: ArenaSpec) -> dict[str, Any]:
    """The sweep spec (as data) that runs the arena."""
    cases: dict[str, dict[str, Any]] = {}
    for dataset, data_over in spec.datasets.items():
        for attack, attack_over in spec.attacks.items():
            for poisoning in spec.poisoning:
                for defense in (NONE, *spec.defenses):
                    over = {**data_over, **attack_over, "injection.poisoning": poisoning,
                            "defense": None if defense == NONE else spec.defenses[defense],
                            "evaluation.defense": (spec.test_time or None) if defense == NONE else None}
                    cases[case_name(dataset, attack, poisoning, defense)] = over
    return {"name": spec.name, "base": spec.base, "cases": cases, "grid": {"injection.proportion": spec.rates},
            "seeds": spec.seeds}


def load_arena(path: str | Path, max_points: int = MAX_POINTS) -> tuple[ArenaSpec, Sweep]:
    """Read and validate an arena spec and the sweep it expands to (every point's config checked)."""
    path = Path(path)
    data = read_yaml(path, "arena spec")
    if not isinstance(data, dict):
        raise SpurlabError(f"{path}: expected a mapping with base:, datasets:, attacks: and rates:")
    try:
        spec = ArenaSpec.model_validate(data)
    except ValidationError as exc:
        raise SpurlabError(f"{path}: {first_error(exc)}") from None
    if spec.name is None:
        spec = spec.model_copy(update={"name": path.stem})
    return spec, parse_spec(sweep_spec(spec), str(path), root=path.parent, max_points=max_points)


__all__ = ["NONE", "ArenaSpec", "case_name", "load_arena", "split_case", "sweep_spec"]
