"""How every config is read: YAML files (safe loader), dotted ``key=value`` overrides, one-line errors.

Used by ``spurlab run`` (experiment configs) and ``spurlab sweep`` (sweep specs and their base configs).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from spurlab.errors import SpurlabError

MAX_YAML_VALUES = 1_000_000  # values a document may expand to through aliases (a "billion laughs" stops here)


class StrictLoader(yaml.SafeLoader):
    """``yaml.safe_load``, except that a mapping which repeats a key is an error (instead of the last one
    silently winning, which can drop a whole config section)."""


def _mapping_without_duplicates(loader: StrictLoader, node: yaml.MappingNode) -> Any:
    seen: set[tuple[str, str]] = set()
    for key_node, _ in node.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
            key = (key_node.tag, key_node.value)
            if key in seen:
                raise yaml.constructor.ConstructorError("while reading a mapping", node.start_mark,
                                                        f"duplicate key {key_node.value!r}", key_node.start_mark)
            seen.add(key)
    return (yield from loader.construct_yaml_map(node))


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


def load_yaml(text: str) -> Any:
    """Parse YAML safely: no Python tags, no duplicate keys, no alias bombs (one ``SpurlabError`` line)."""
    data = yaml.load(text, Loader=StrictLoader)  # StrictLoader is a SafeLoader: no Python objects
    if _expanded_size(data, {}) > MAX_YAML_VALUES:
        raise SpurlabError(f"its aliases expand to more than {MAX_YAML_VALUES:,} values")
    return data


def _expanded_size(obj: Any, memo: dict[int, int]) -> int:
    """How many values ``obj`` is when every alias is written out (shared containers counted each time)."""
    if not isinstance(obj, (dict, list)):
        return 1
    if id(obj) not in memo:
        memo[id(obj)] = 0  # a recursive alias counts as nothing more
        items = [*obj.keys(), *obj.values()] if isinstance(obj, dict) else obj
        memo[id(obj)] = min(1 + sum(_expanded_size(v, memo) for v in items), MAX_YAML_VALUES + 1)
    return memo[id(obj)]


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
        return load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise SpurlabError(f"{path}:{where} invalid YAML: {getattr(exc, 'problem', None) or exc}") from None
    except SpurlabError as exc:
        raise SpurlabError(f"{path}: {exc}") from None


def parse_overrides(overrides: list[str]) -> list[tuple[list[str], Any]]:
    """``train.lr=1e-3`` → ``(["train", "lr"], 0.001)``; values are parsed as YAML scalars/lists."""
    parsed = []
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise SpurlabError(f"override {item!r}: expected dotted.key=value")
        try:
            value = load_yaml(raw) if raw.strip() else None
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
            where = f"{what} " if what else ""
            raise SpurlabError(f"{where}{'.'.join(path)}: {'.'.join(path[: i + 1])} is not a mapping")
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


def flatten(obj: Any, prefix: str = "", out: dict[str, Any] | None = None) -> dict[str, Any]:
    """Nested mappings -> ``{"a.b.c": leaf}``; lists become JSON text."""
    out = {} if out is None else out
    if isinstance(obj, dict) and obj:
        for key, value in obj.items():
            flatten(value, f"{prefix}.{key}" if prefix else str(key), out)
    elif prefix:
        out[prefix] = json.dumps(obj, ensure_ascii=False) if isinstance(obj, (list, dict)) else obj
    return out
