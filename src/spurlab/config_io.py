"""How every config is read: YAML files (safe loader), dotted ``key=value`` overrides, one-line errors.

Used by ``spurlab run`` (experiment configs) and ``spurlab sweep`` (sweep specs and their base configs).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from spurlab.errors import SpurlabError


def read_yaml(path: str | Path, what: str = "config") -> Any:
    """The YAML document in ``path`` (``None`` for an empty file); unreadable or invalid YAML is one line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpurlabError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise SpurlabError(f"{path}: not UTF-8 text") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise SpurlabError(f"{path}:{where} invalid YAML: {getattr(exc, 'problem', None) or exc}") from None


def parse_overrides(overrides: list[str]) -> list[tuple[list[str], Any]]:
    """``train.lr=1e-3`` → ``(["train", "lr"], 0.001)``; values are parsed as YAML scalars/lists."""
    parsed = []
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise SpurlabError(f"override {item!r}: expected dotted.key=value")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            value = raw
        parsed.append((key.strip().split("."), value))
    return parsed


def set_dotted(data: dict[str, Any], path: list[str], value: Any, what: str = "override") -> None:
    """Set ``path`` (``["a", "b", "c"]``) in nested mappings, creating missing ones; a non-mapping on the way
    is one line."""
    node = data
    for i, part in enumerate(path[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif not isinstance(child, dict):
            raise SpurlabError(f"{what} {'.'.join(path)}: {'.'.join(path[: i + 1])} is not a mapping")
        node = child
    node[path[-1]] = copy.deepcopy(value)


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """A copy of ``data`` with dotted overrides applied (intermediate mappings are created)."""
    data = copy.deepcopy(data)
    for path, value in parse_overrides(overrides):
        set_dotted(data, path, value)
    return data


def first_error(exc: ValidationError, prefix: str = "") -> str:
    """The first pydantic error as ``dotted.key: message (got value)``."""
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in (prefix, *err["loc"]) if p != "")
    if err["type"] == "extra_forbidden":
        return f"{loc}: unknown key"
    if err["type"] == "missing":
        return f"{loc}: required key is missing"
    msg = err["msg"].removeprefix("Value error, ")
    if msg.startswith(f"{loc}:") or (loc and msg.startswith(loc.split(".")[0] + ".")):
        return msg  # already names its key (nested errors)
    value = err.get("input")
    shown = "" if isinstance(value, (dict, list)) or value is None else f" (got {value!r})"
    return f"{loc}: {msg}{shown}" if loc else msg


def describe_errors(exc: ValidationError) -> str:
    """Every pydantic error as ``key: message``, joined with '; '."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()))
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{where}: {msg}" if where else msg)
    return "; ".join(parts)
