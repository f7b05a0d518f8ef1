"""Results rows as one flat table: one row per grid point, one column per config key and metric.

Column names are dotted paths: config keys as in the config (``train.lora.r``, ``injection.proportion``;
an injection mapping is completed with its defaults), metrics as in ``metrics.json`` (``clean.accuracy``,
``spurious:negative.attack_success_rate``, ``clean.predicted_counts.negative``, ``base.clean.accuracy``,
``meta.train.seconds``). Derived: ``<set>.token_share`` (share of a spurious set's predictions that go to the
token's class) and ``spurious:<class>.lift`` (that share minus the share of the same rows without the token
predicted as the class: the trigger's own effect, without the model's bias towards the class). Lists
(confusion matrices, label lists) are kept as JSON text.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from spurlab.atomic import atomic_path
from spurlab.config_io import flatten
from spurlab.errors import SpurlabError
from spurlab.sweep.store import ResultRow, SweepStore

ROW_COLUMNS = ("key", "status")
TAIL_COLUMNS = ("error", "seconds", "started", "finished", "run_dir")
_SKIPPED_METRICS = {"schema_version", "status", "name", "label_names"}


def _config_columns(config: dict[str, Any]) -> dict[str, Any]:
    config = dict(config)
    injection = config.get("injection")
    if isinstance(injection, dict):
        from spurlab.inject import InjectionConfig

        with contextlib.suppress(ValueError):  # a store written by another version: show what is there
            config["injection"] = {**InjectionConfig.model_validate(injection).to_record(),
                                   **injection}
    return flatten(config)


def _metric_columns(metrics: dict[str, Any]) -> dict[str, Any]:
    order = {"clean": 0, "spurious": 1, "spurious-flip": 2, "base": 3, "meta": 4}
    metrics = {k: metrics[k] for k in sorted(metrics, key=lambda k: order.get(k.split(":")[0], 5))
               if k not in _SKIPPED_METRICS and not (k == "base" and metrics[k] is None)}
    base = metrics.get("base")
    if isinstance(base, dict):
        metrics["base"] = {k: v for k, v in base.items() if k != "description"}
    cols = flatten(metrics)
    for section in (metrics, metrics.get("base") or {}):
        for name, m in section.items():
            if name.startswith("spurious") and isinstance(m, dict) and m.get("token_class") is not None:
                share = m["predicted_counts"].get(m["token_class"], 0) / m["n"] if m.get("n") else None
                prefix = f"{'base.' if section is not metrics else ''}{name}"
                cols[f"{prefix}.token_share"] = share
                clean = section.get("clean")
                if name.startswith("spurious:") and share is not None and isinstance(clean, dict) and clean.get("n"):
                    # the same test rows with and without the token: what the token itself adds
                    cols[f"{prefix}.lift"] = share - clean["predicted_counts"].get(m["token_class"], 0) / clean["n"]
    return cols


def rows_to_frame(rows: Sequence[ResultRow]) -> pd.DataFrame:
    """One DataFrame row per result row; ``frame.attrs["grid_keys"]`` lists the override columns."""
    grid_keys: list[str] = list(dict.fromkeys(k for r in rows for k in r.overrides))
    records = []
    for r in rows:
        config = _config_columns(r.config)
        over = {k: config.get(k, json.dumps(v) if isinstance(v, (list, dict)) else v)
                for k, v in r.overrides.items()}
        metrics = _metric_columns(r.metrics) if r.metrics else {}
        config = {k: v for k, v in config.items() if k not in over}
        records.append({"key": r.key, "status": r.status, **over, **metrics, **config, "error": r.error,
                        "seconds": r.seconds, "started": r.started, "finished": r.finished, "run_dir": r.run_dir})
    frame = pd.DataFrame.from_records(records) if records else pd.DataFrame(columns=[*ROW_COLUMNS, *TAIL_COLUMNS])
    frame.attrs["grid_keys"] = grid_keys
    return frame


def results_frame(store: SweepStore, *, complete_only: bool = False) -> pd.DataFrame:
    """A store's rows as one flat table (failed rows too, unless ``complete_only``)."""
    return rows_to_frame([r for r in store.rows() if r.status == "complete" or not complete_only])


def read_table(path: str | Path) -> pd.DataFrame:
    """A results table exported by ``spurlab results --csv/--parquet``."""
    path = Path(path)
    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise SpurlabError(f"cannot read results table {path}: {str(exc).splitlines()[0]}") from None


def _parquet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Object columns that mix types (None/int/str) become text, which Parquet can store."""
    frame = frame.copy()
    for col in frame.columns:
        if frame[col].dtype == object:
            kinds = {type(v) for v in frame[col] if v is not None and not (isinstance(v, float) and pd.isna(v))}
            if len(kinds) > 1:
                frame[col] = [None if v is None or (isinstance(v, float) and pd.isna(v)) else str(v)
                              for v in frame[col]]
    return frame


def export(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write ``.csv`` or ``.parquet`` (by suffix) atomically."""
    path = Path(path)
    if path.suffix not in (".csv", ".parquet"):
        raise SpurlabError(f"{path}: export to .csv or .parquet")
    if path.is_dir():
        raise SpurlabError(f"{path} is a directory")
    with atomic_path(path) as tmp:
        if path.suffix == ".csv":
            frame.to_csv(tmp, index=False)
        else:
            _parquet_safe(frame).to_parquet(tmp, index=False)
    return path
