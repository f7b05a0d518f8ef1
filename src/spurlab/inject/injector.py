"""The SSTI injector: choose rows, draw items, place them, record every change; and the exact undo.

All randomness of one config comes from ``numpy.random.default_rng(config.seed)`` in a fixed order: first
the rows of each target label (labels in id order, ``rng.choice`` without replacement over that label's rows
in row order), then, for each chosen row in ascending row order, each item's draw followed by its
boundaries. So the same data, config and seed give identical texts and manifests, and the chosen rows do not
depend on the token source.

Manifest records (:mod:`spurlab.data.transform`): ``row`` (0-based row index), ``label``, ``config`` (position
of the config that made the change), ``n_items`` (draws; a tag pair is one item), ``inserted`` (the inserted
strings in text order), ``offsets`` (``[start, end)`` of each string in the new text, in Python code points),
``cuts`` (the span to delete per string: the string and its one separator space), ``original_sha256`` (of the
original text, UTF-8) and, only when the original text was missing, ``original_missing: true``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from spurlab import __version__
from spurlab.data.dataset import TextDataset, label_to_str
from spurlab.data.transform import TransformResult
from spurlab.errors import SpurlabError
from spurlab.inject.config import InjectionConfig, coerce_config
from spurlab.inject.placement import cut, n_items, place, render, word_ends
from spurlab.inject.sources import TokenSource, build_source

ROUNDING = "round(n_label * proportion), Python round: half-to-even (2.5 -> 2, 3.5 -> 4)"


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def rows_to_modify(n_label: int, proportion: float) -> int:
    """``round(n_label * proportion)`` with Python's half-to-even rounding."""
    return round(n_label * proportion)


def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NA:
        return True
    return isinstance(value, float) and math.isnan(value)


def _target_labels(dataset: TextDataset, target: Any) -> list[str]:
    """Target label names in id order (None = every label); unknown labels raise one line."""
    if target is None:
        return list(dataset.label_names)
    wanted = target if isinstance(target, list) else [target]
    ids = sorted({dataset.label_id(label) for label in wanted})
    return [dataset.label_names[i] for i in ids]


def _select_rows(labels: list[str], targets: list[str], proportion: float, rng: np.random.Generator,
                 taken: set[int]) -> tuple[dict[str, int], dict[str, list[int]]]:
    """Per target label: its row count and the chosen rows (sorted), never rows already in ``taken``."""
    counts: dict[str, int] = {}
    chosen: dict[str, list[int]] = {}
    for target in targets:
        rows = [i for i, label in enumerate(labels) if label == target]
        pool = np.asarray([i for i in rows if i not in taken], dtype=np.int64)
        k = rows_to_modify(len(rows), proportion)
        if k > len(pool):
            raise SpurlabError(f"label {target!r}: {k} rows to modify but only {len(pool)} are still unmodified "
                               "(configs of one call must use disjoint rows)")
        picked = rng.choice(pool, size=k, replace=False) if k else np.empty(0, dtype=np.int64)
        counts[target] = len(rows)
        chosen[target] = sorted(int(i) for i in picked)
    return counts, chosen


def _modify_row(text: str, source: TokenSource, config: InjectionConfig, rng: np.random.Generator
                ) -> tuple[str, dict[str, Any]]:
    ends = word_ends(text)
    n_words = len(ends)
    items = []
    placed = []
    for _ in range(n_items(n_words, config.token_proportion, config.insertions)):
        item = source.draw(rng)
        items.append(item)
        placed += place([item], n_words, config.location, rng)
    new_text, strings, spans, cuts = render(text, placed, ends)
    record = {"n_items": len(items), "inserted": strings, "offsets": spans, "cuts": cuts,
              "original_sha256": sha256_text(text)}
    return new_text, record


def _text_column(frame: pd.DataFrame, column: str, values: list[Any]) -> pd.Series:
    """``values`` as a column with the original dtype where it can hold them."""
    try:
        return pd.Series(pd.array(values, dtype=frame[column].dtype), index=frame.index, name=column)
    except (TypeError, ValueError):
        return pd.Series(values, index=frame.index, name=column, dtype=object)


def _apply(dataset: TextDataset, configs: list[InjectionConfig]
           ) -> tuple[TextDataset, list[dict[str, Any]], list[dict[str, Any]]]:
    """Run the configs in order on one copy; returns the new dataset, the manifest and per-config counts."""
    if len(dataset) == 0:
        raise SpurlabError(f"{dataset.name}: the dataset is empty")
    labels = dataset.label_strings
    values = dataset.frame[dataset.text_col].tolist()
    label_values = dataset.frame[dataset.label_col].tolist()
    relabelled = False
    sources = [build_source(c) for c in configs]
    taken: set[int] = set()
    manifest: list[dict[str, Any]] = []
    per_config = []
    for index, (config, source) in enumerate(zip(configs, sources, strict=True)):
        rng = np.random.default_rng(config.seed)
        targets = _target_labels(dataset, config.target_label)
        dirty = config.poisoning == "dirty_label"
        # dirty-label: the rows come from every other label and take the target's label value
        pool_labels = [name for name in dataset.label_names if name not in targets] if dirty else targets
        counts, chosen = _select_rows(labels, pool_labels, config.proportion, rng, taken)
        rows = sorted(i for picked in chosen.values() for i in picked)
        taken.update(rows)
        new_label = _label_values(dataset)(targets[0]) if dirty else None
        for row in rows:
            original = values[row]
            missing = _is_missing(original)
            text = "" if missing else str(original)
            new_text, record = _modify_row(text, source, config, rng)
            record.update(row=row, label=labels[row], config=index)
            if dirty:
                record.update(label=targets[0], original_label=labels[row])
                label_values[row] = new_label
                relabelled = True
            if missing:
                record["original_missing"] = True
            values[row] = new_text
            manifest.append(record)
        per_config.append({"target_labels": targets, "poisoning": config.poisoning,
                           "rows_per_label": counts, "modified_per_label": {k: len(v) for k, v in chosen.items()}})
    manifest.sort(key=lambda r: r["row"])
    frame = dataset.frame.copy()
    frame[dataset.text_col] = _text_column(frame, dataset.text_col, values)
    if relabelled:
        frame[dataset.label_col] = _text_column(frame, dataset.label_col, label_values)
    return dataset.with_frame(frame), manifest, per_config


def _label_values(dataset: TextDataset) -> Callable[[str], Any]:
    """A function from a label name to the value the label column holds for it (an int column keeps ints, also
    for a label no row holds any more)."""
    column = dataset.frame[dataset.label_col]
    by_name = {label_to_str(v): v for v in pd.unique(column) if not _is_missing(v)}
    integer = column.dtype.kind in "iu"

    def value(name: str) -> Any:
        if name in by_name:
            return by_name[name]
        return int(name) if integer and name.lstrip("-").isdigit() else name

    return value


def _summary(dataset: TextDataset, configs: list[InjectionConfig], manifest: list[dict[str, Any]],
             per_config: list[dict[str, Any]]) -> dict[str, Any]:
    labels = dataset.label_strings
    rows_per_label = {name: 0 for name in dataset.label_names}
    for label in labels:
        if label in rows_per_label:
            rows_per_label[label] += 1
    modified = {name: 0 for name in dataset.label_names}
    relabelled: dict[str, int] = {}
    for record in manifest:
        modified[record["label"]] = modified.get(record["label"], 0) + 1
        if "original_label" in record:
            key = f"{record['original_label']} -> {record['label']}"
            relabelled[key] = relabelled.get(key, 0) + 1
    summary: dict[str, Any] = {
        "spurlab_version": __version__,
        "dataset": dataset.name,
        "n_rows": len(dataset),
        "label_names": list(dataset.label_names),
        "rows_per_label": rows_per_label,
        "modified_per_label": modified,
        "n_modified": len(manifest),
        "items_inserted": sum(r["n_items"] for r in manifest),
        "strings_inserted": sum(len(r["inserted"]) for r in manifest),
        "rounding": ROUNDING,
        "poisoning": sorted({c.poisoning for c in configs}) if len(configs) > 1 else configs[0].poisoning,
        "relabelled": relabelled,
        "data_sha256": None,
    }
    if len(configs) == 1:
        summary["config"] = configs[0].to_record()
        summary["target_labels"] = per_config[0]["target_labels"]
    else:
        summary["configs"] = [dict(c.to_record(), **p) for c, p in zip(configs, per_config, strict=True)]
    return summary


def _finish(dataset: TextDataset, configs: list[InjectionConfig], tokenizer: Any,
            check_collisions: bool) -> TransformResult:
    from spurlab.inject.report import collision_report, tokenizer_report

    new, manifest, per_config = _apply(dataset, configs)
    summary = _summary(dataset, configs, manifest, per_config)
    strings = [s for r in manifest for s in r["inserted"]]
    if check_collisions:
        summary["collisions"] = collision_report(dataset, configs, strings)
    summary["tokenizer"] = tokenizer_report(tokenizer, strings) if tokenizer is not None else None
    return TransformResult(new, manifest, summary)


def inject(dataset: TextDataset, config: InjectionConfig | Mapping[str, Any], tokenizer: Any = None, *,
           check_collisions: bool = True) -> TransformResult:
    """Plant spurious items in a copy of ``dataset``; rows, order and other columns are kept.

    ``tokenizer`` (a Hugging Face tokenizer, or a name/path) adds a report of how each distinct inserted
    string is split into subword tokens.
    """
    return _finish(dataset, [coerce_config(config)], tokenizer, check_collisions)


def inject_many(dataset: TextDataset,
                configs: Mapping[Any, InjectionConfig | Mapping[str, Any]]
                | Sequence[InjectionConfig | Mapping[str, Any]],
                tokenizer: Any = None, *, check_collisions: bool = True) -> TransformResult:
    """Apply several configs in one pass with disjoint rows and one combined manifest.

    A mapping ``label -> config`` is "one token per class": each config's ``target_label`` is set to its key.
    Configs are applied in the given order; each draws its rows among those no earlier config modified.
    Manifest records carry ``config`` = the config's position.
    """
    if isinstance(configs, Mapping):
        items = [coerce_config(c).model_copy(update={"target_label": label_to_str(label)})
                 for label, c in configs.items()]
        items = [InjectionConfig.from_dict(c.model_dump()) for c in items]
    else:
        items = [coerce_config(c) for c in configs]
    if not items:
        raise SpurlabError("inject_many needs at least one config")
    return _finish(dataset, items, tokenizer, check_collisions)


def undo(dataset: TextDataset, manifest: Sequence[Mapping[str, Any]]) -> TextDataset:
    """Restore the original texts from an injected dataset and its manifest alone (exact, checked)."""
    values = dataset.frame[dataset.text_col].tolist()
    seen: set[int] = set()
    restore_labels: dict[int, Any] = {}
    for record in manifest:
        try:
            row = int(record["row"])
            strings, spans, cuts = record["inserted"], record["offsets"], record["cuts"]
        except (KeyError, TypeError, ValueError) as exc:
            raise SpurlabError(f"manifest record without {exc}: {dict(record)!r:.200}") from None
        if not 0 <= row < len(values) or row in seen:
            raise SpurlabError(f"manifest row {row} is outside the data or listed twice")
        seen.add(row)
        if "original_label" in record:
            restore_labels[row] = record["original_label"]
        where = f"manifest row {row}"
        text = values[row]
        if not isinstance(text, str):
            raise SpurlabError(f"{where}: the text is not a string ({text!r:.60})")
        original = cut(text, list(strings), list(spans), list(cuts), where)
        digest = record.get("original_sha256")
        if digest is not None and sha256_text(original) != digest:
            raise SpurlabError(f"{where}: the restored text does not match the recorded hash")
        values[row] = None if record.get("original_missing") else original
    frame = dataset.frame.copy()
    frame[dataset.text_col] = _text_column(frame, dataset.text_col, values)
    if restore_labels:
        label_values = frame[dataset.label_col].tolist()
        value_of = _label_values(dataset)
        for row, name in restore_labels.items():
            label_values[row] = value_of(str(name))
        frame[dataset.label_col] = _text_column(frame, dataset.label_col, label_values)
    return dataset.with_frame(frame)
