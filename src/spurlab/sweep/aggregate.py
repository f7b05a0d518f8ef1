"""Results over seeds: one row per grid point without its seed keys, with the mean, a 95% bootstrap interval
and the number of seeds of each headline metric."""

from __future__ import annotations

import numpy as np
import pandas as pd

from spurlab.report.figures import add_token_class_columns
from spurlab.report.intervals import bootstrap_interval

SEED_KEYS = ("train.seed", "data.seed", "evaluation.seed")
METRICS = ("clean.accuracy", "attack_success", "token_share", "lift")


def aggregate_over_seeds(frame: pd.DataFrame, grid_keys: list[str]) -> pd.DataFrame:
    """Complete rows grouped by the grid keys that are not seeds: ``<metric>.mean``, ``.ci_low``, ``.ci_high``
    and ``n`` (seeds) per group, in grid order."""
    complete = frame[frame["status"] == "complete"] if "status" in frame.columns else frame
    complete = add_token_class_columns(complete) if len(complete) else complete
    groups = [k for k in grid_keys if k not in SEED_KEYS]
    metrics = [m for m in METRICS if m in complete.columns]
    records = []
    grouped = complete.groupby(groups, sort=False, dropna=False) if groups else [((), complete)]
    for values, rows in grouped:
        values = values if isinstance(values, tuple) else (values,)
        record = dict(zip(groups, values, strict=True))
        record["n"] = len(rows)
        for m in metrics:
            column = pd.to_numeric(rows[m], errors="coerce").to_numpy(dtype=float)
            finite = column[np.isfinite(column)]
            ci = bootstrap_interval(finite)
            record[f"{m}.mean"] = float(finite.mean()) if len(finite) else None
            record[f"{m}.ci_low"], record[f"{m}.ci_high"] = ci if ci is not None else (None, None)
        records.append(record)
    return pd.DataFrame.from_records(records)


def separated(a: tuple[float | None, float | None], b: tuple[float | None, float | None]) -> bool | None:
    """Whether two intervals do not overlap (None when either is missing)."""
    if None in a or None in b:
        return None
    return bool(a[1] < b[0] or b[1] < a[0])  # type: ignore[operator]


__all__ = ["SEED_KEYS", "aggregate_over_seeds", "bootstrap_interval", "separated"]
