"""A sweep spec: a base experiment config and a grid of dotted overrides, expanded into validated grid points.

.. code-block:: yaml

    name: rank-proportion            # optional (default: the spec file's name)
    base: ../demo-minilm.yaml        # a config file (relative to this file) or an inline mapping
    grid:                            # dotted config keys (as in `spurlab run` overrides) -> non-empty lists
      train.lora.r: [1, 4, 16, 64]
      injection.proportion: [0.1, 0.5, 1.0]

The grid is the cartesian product, in the order written (the last key varies fastest). Settings that only go
together (a training method and its own rank) are named ``cases``: each case is a set of dotted overrides, and
the cases become the grid's first key, ``case``:

.. code-block:: yaml

    cases:
      lora: {train.method: lora, train.lora.r: 8}
      loha: {train.method: loha, train.loha.r: 4}
    grid:
      injection.proportion: [0.1, 0.5]
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from spurlab.config_io import first_error, read_yaml, set_dotted
from spurlab.errors import SpurlabError
from spurlab.experiment.config import ExperimentConfig, config_from_dict, config_to_dict
from spurlab.experiment.run_folder import comparable_config

MAX_KEY_LENGTH = 120
MAX_POINTS = 10_000  # a larger grid needs max_points (spurlab sweep --max-points): it is checked point by point
_UNSAFE = re.compile(r"[^A-Za-z0-9._=,+-]")
_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
CASE_KEY = "case"  # the grid key of a spec's cases: (its values are the case names)


class SweepSpec(BaseModel):
    """The spec file's schema."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")
    base: str | dict[str, Any] = Field(description="experiment config YAML (relative to the spec) or a mapping")
    grid: dict[str, list[Any]] = Field(default_factory=dict,
                                       description="dotted config key -> non-empty list of values")
    cases: dict[str, dict[str, Any]] | None = Field(
        None, description="case name -> dotted overrides applied together; the grid gains a first key, case")
    seeds: list[int] | None = Field(None, description="training seeds: the grid gains a last key train.seed with "
                                                      "these values (results aggregate over them)")

    @field_validator("cases")
    @classmethod
    def _check_cases(cls, cases: dict[str, dict[str, Any]] | None) -> dict[str, dict[str, Any]] | None:
        if cases is None:
            return None
        if not cases:
            raise ValueError("cases: expected at least one named case")
        for name, overrides in cases.items():
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}", name):
                raise ValueError(f"cases: {name!r} is not a case name (letters, digits, . _ + -)")
            for key in overrides:
                if not _DOTTED.fullmatch(key):
                    raise ValueError(f"cases.{name}: {key!r} is not a dotted config key (e.g. train.lora.r)")
        return cases

    @model_validator(mode="after")
    def _cases_and_seeds_into_grid(self) -> SweepSpec:
        if self.cases is not None:
            if CASE_KEY in self.grid:
                raise ValueError(f"grid key {CASE_KEY} is taken by cases:; name the cases there")
            clashes = sorted({k for over in self.cases.values() for k in over} & set(self.grid))
            if clashes:
                raise ValueError(f"{clashes[0]} is set by both cases: and grid:; give it in one place")
            self.grid = {CASE_KEY: list(self.cases), **self.grid}
        if self.seeds is not None:
            if "train.seed" in self.grid:
                raise ValueError("seeds: and grid key train.seed say the same thing; give one")
            if not self.seeds or len(set(self.seeds)) != len(self.seeds) or min(self.seeds) < 0:
                raise ValueError("seeds: expected a non-empty list of distinct integers >= 0")
            self.grid = {**self.grid, "train.seed": list(self.seeds)}
        if not self.grid:
            raise ValueError("grid: needs at least one key (or seeds:)")
        return self

    @field_validator("grid")
    @classmethod
    def _check_grid(cls, grid: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in grid.items():
            if not _DOTTED.fullmatch(key):
                raise ValueError(f"{key!r} is not a dotted config key (e.g. train.lora.r)")
            if not values:
                raise ValueError(f"{key}: expected a non-empty list of values")
            seen = [_canonical(v) for v in values]
            dupes = [v for v, c in zip(values, seen, strict=True) if seen.count(c) > 1]
            if dupes:
                raise ValueError(f"{key}: value {dupes[0]!r} is listed twice")
        return grid


@dataclass(frozen=True)
class GridPoint:
    """One experiment of the sweep: its key (also its run folder's name), overrides and validated config."""

    index: int
    key: str
    overrides: dict[str, Any]
    config: ExperimentConfig


@dataclass(frozen=True)
class Sweep:
    name: str
    source: str
    grid: dict[str, list[Any]]
    points: list[GridPoint]

    @property
    def spec_hash(self) -> str:
        """Identifies what the sweep computes: every point's key and resolved config (not ``train.threads``)."""
        ident = [[p.key, comparable_config(config_to_dict(p.config))] for p in self.points]
        return hashlib.sha256(_canonical(ident).encode("utf-8")).hexdigest()


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def short_names(keys: list[str]) -> dict[str, str]:
    """``train.lora.r`` -> ``lora.r``, ``injection.proportion`` -> ``proportion``: the section is dropped unless
    that makes two names equal (then every name stays in full)."""
    short = {k: k.split(".", 1)[1] if "." in k else k for k in keys}
    return short if len(set(short.values())) == len(keys) else {k: k for k in keys}


def format_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    return _canonical(value)


def point_keys(overrides: list[dict[str, Any]]) -> list[str]:
    """Readable, filesystem-safe, unique keys; a short hash is appended where the readable form was altered
    (unsafe characters, too long) or would collide."""
    if not overrides:
        return []
    names = short_names(list(overrides[0]))
    keys = []
    for point in overrides:
        readable = ",".join(f"{names[k]}={format_value(v)}" for k, v in point.items())
        safe = _UNSAFE.sub("_", readable)
        if safe != readable or len(safe) > MAX_KEY_LENGTH or safe.startswith("."):
            safe = _with_hash(safe.lstrip("."), point)
        keys.append(safe)
    for i, key in enumerate(keys):
        if keys.count(key) > 1:
            keys[i] = _with_hash(key, overrides[i])
    return keys


def _with_hash(key: str, point: dict[str, Any]) -> str:
    digest = hashlib.sha256(_canonical(point).encode("utf-8")).hexdigest()[:8]
    return f"{key[: MAX_KEY_LENGTH - 9]}-{digest}"


def expand(spec: SweepSpec, base: dict[str, Any], source: str, max_points: int = MAX_POINTS) -> list[GridPoint]:
    """The cartesian product of the grid applied to ``base``; every config validated (one line on error)."""
    size = math.prod(len(v) for v in spec.grid.values())
    if size > max_points:
        raise SpurlabError(f"{source}: the grid has {size:,} points, more than {max_points:,} "
                           f"(give --max-points {size} to run it anyway)")
    keys = list(spec.grid)
    overrides = [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*spec.grid.values())]
    names = point_keys(overrides)
    points = []
    for i, (key, over) in enumerate(zip(names, overrides, strict=True)):
        data = copy.deepcopy(base)
        try:
            for dotted, value in over.items():
                if dotted == CASE_KEY and spec.cases is not None:
                    for case_key, case_value in spec.cases[value].items():
                        set_dotted(data, case_key.split("."), case_value, what="")
                    continue
                set_dotted(data, dotted.split("."), value, what="")
        except SpurlabError as exc:
            raise SpurlabError(f"{source}: grid point {key}: {exc}") from None
        cfg = config_from_dict(data, source=f"{source}: grid point {key}")
        points.append(GridPoint(i, key, over, cfg))
    return points


def parse_spec(data: Any, source: str, root: Path | None = None, max_points: int = MAX_POINTS) -> Sweep:
    """Validate a spec mapping; ``root`` is the folder a relative ``base`` path is resolved against."""
    if not isinstance(data, dict):
        raise SpurlabError(f"{source}: expected a mapping with base: and grid:")
    try:
        spec = SweepSpec.model_validate(data)
    except ValidationError as exc:
        raise SpurlabError(f"{source}: {first_error(exc)}") from None
    if isinstance(spec.base, str):
        base_path = Path(spec.base)
        if not base_path.is_absolute() and root is not None:
            base_path = root / base_path
        base = read_yaml(base_path, "base config")
        if not isinstance(base, dict):
            raise SpurlabError(f"{base_path}: expected a mapping at the top level (an experiment config)")
    else:
        base = spec.base
    name = spec.name or (Path(source).stem if root is not None else "sweep")
    name = re.sub(r"[^A-Za-z0-9._+-]", "-", name).lstrip(".-_+") or "sweep"
    return Sweep(name, source, spec.grid, expand(spec, base, source, max_points))


def load_spec(path: str | Path, max_points: int = MAX_POINTS) -> Sweep:
    """Read, expand and validate a sweep spec file (refused when the grid has more than ``max_points``)."""
    path = Path(path)
    return parse_spec(read_yaml(path, "sweep spec"), str(path), root=path.parent, max_points=max_points)
