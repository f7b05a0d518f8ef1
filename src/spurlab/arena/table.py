"""The arena's results: one row per cell, seed and defense; the comparison table over seeds; the figure.

Per cell (dataset, attack, poisoning, rate, seed):

- ``none``: the undefended model's clean accuracy (CACC), attack success (ASR: rows of other classes, with
  the trigger, predicted as the target) and lift (ASR minus the share of the same rows predicted as the target
  without the trigger: the trigger's own effect);
- each training-data defense: the model retrained on the defended data, its CACC and ASR, and how the rows the
  defense touched (changed or dropped) match the poisoned ones (precision, recall), and its seconds;
- each test-time defense: on the undefended model, CACC and ASR after filtering (a rejected input counts as
  misclassified, or as a failed attack), FRR, FAR and seconds.

The comparison table averages over seeds (mean and standard deviation) and gives each defense's ASR and CACC
against ``none`` of the same cell.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from spurlab.arena.spec import NONE, split_case
from spurlab.atomic import atomic_path, write_text
from spurlab.sweep.store import ResultRow

KEYS = ["dataset", "attack", "poisoning", "rate", "defense"]
MEASURES = ["asr", "lift", "cacc", "precision", "recall", "frr", "far", "seconds"]


def _target_set(metrics: dict[str, Any]) -> str | None:
    flips = [k for k in metrics if k.startswith("spurious-flip:")]
    return flips[0] if flips else None


def _bias(metrics: dict[str, Any], target: str) -> float | None:
    """The share of clean test rows of other classes predicted as ``target``, without any trigger: what attack
    success would be if the trigger did nothing (the model's own lean towards the class)."""
    names = metrics.get("label_names") or []
    matrix = metrics["clean"].get("confusion_matrix")
    if target not in names or not matrix:
        return None
    j = names.index(target)
    others = [row for i, row in enumerate(matrix) if i != j and i < len(names)]
    n = sum(map(sum, others))
    return sum(row[j] for row in others) / n if n else None


def cell_rows(rows: Iterable[ResultRow]) -> pd.DataFrame:
    """One record per complete point and defense (see the module docstring)."""
    records = []
    for row in rows:
        if row.status != "complete" or not row.metrics or "case" not in row.overrides:
            continue
        m = row.metrics
        flip = _target_set(m)
        cell = {**split_case(row.overrides["case"]), "rate": row.overrides.get("injection.proportion"),
                "seed": row.overrides.get("train.seed")}
        asr = m[flip]["attack_success_rate"] if flip else None
        bias = _bias(m, flip.split(":", 1)[1]) if flip else None
        base = {**cell, "kind": "data" if cell["defense"] != NONE else "none", "asr": asr,
                "lift": asr - bias if asr is not None and bias is not None else None, "cacc": m["clean"]["accuracy"]}
        defense = (m.get("meta") or {}).get("defense") or {}
        base.update({k: defense.get(k) for k in ("precision", "recall", "seconds")})
        records.append(base)
        for label, result in (m.get("test_time_defenses") or {}).items():
            spurious = result["spurious"].get(f"spurious:{flip.split(':', 1)[1]}") if flip else None
            if spurious is None:
                continue
            records.append({**cell, "defense": label, "kind": "test-time", "asr": spurious["asr_after"],
                            "lift": spurious["asr_after"] - bias if bias is not None else None,
                            "cacc": spurious["cacc_after"], "frr": spurious["frr"], "far": spurious["far"],
                            "seconds": result["seconds"]})
    frame = pd.DataFrame.from_records(records)
    for col in [*KEYS, "seed", "kind", *MEASURES]:
        if col not in frame.columns:
            frame[col] = None
    return frame


def comparison(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation over seeds per cell and defense, with ASR and CACC against ``none``."""
    if frame.empty:
        return pd.DataFrame(columns=[*KEYS, "kind", "n"])
    numeric = frame.copy()
    for col in MEASURES:
        numeric[col] = pd.to_numeric(numeric[col], errors="coerce") if col in numeric else np.nan
    grouped = numeric.groupby([*KEYS, "kind"], dropna=False, sort=False)
    out = grouped[MEASURES].mean().add_suffix("_mean").join(grouped[["asr", "cacc"]].std().add_suffix("_std"))
    out["n"] = grouped.size()
    out = out.reset_index()
    undefended = (out[out["defense"] == NONE].set_index(KEYS[:-1])[["asr_mean", "cacc_mean"]]
                  .rename(columns={"asr_mean": "asr_mean_none", "cacc_mean": "cacc_mean_none"}))
    joined = out.join(undefended, on=KEYS[:-1])
    joined["asr_change"] = joined["asr_mean"] - joined["asr_mean_none"]
    joined["cacc_change"] = joined["cacc_mean"] - joined["cacc_mean_none"]
    return joined.drop(columns=["asr_mean_none", "cacc_mean_none"])


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def markdown(table: pd.DataFrame, title: str) -> str:
    """The comparison table as Markdown, one section per dataset and attack."""
    lines = [f"# Arena `{title}`", "",
             "ASR: triggered rows of other classes predicted as the target (after a test-time defense, a rejected "
             "input is a failed attack). CACC: clean accuracy (after a test-time defense, a rejected input is "
             "misclassified). Lift: ASR minus the share of the same rows predicted as the target without the "
             "trigger (the model's own lean; 0 means the trigger does nothing). Mean ± standard deviation over "
             "seeds; Δ against no defense in the same cell. Precision and recall: the defense's touched training "
             "rows against the poisoned ones.", ""]
    for (dataset, attack, poisoning), part in table.groupby(["dataset", "attack", "poisoning"], sort=False):
        lines += [f"## {dataset}, {attack}, {poisoning}", "",
                  "| rate | defense | kind | ASR | Δ ASR | lift | CACC | Δ CACC | precision | recall | FRR | FAR | s "
                  "| n |", "|---:|---|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
        order = {"none": 0, "data": 1, "test-time": 2}
        part = part.assign(_order=part["kind"].map(order)).sort_values(["rate", "_order", "defense"], kind="stable")
        for _, r in part.iterrows():
            lines.append(
                f"| {r['rate']} | {r['defense']} | {r['kind']} | {_fmt(r['asr_mean'])} ± {_fmt(r['asr_std'])} | "
                f"{_fmt(r['asr_change'])} | {_fmt(r['lift_mean'])} | {_fmt(r['cacc_mean'])} ± {_fmt(r['cacc_std'])} | "
                f"{_fmt(r['cacc_change'])} | {_fmt(r['precision_mean'])} | {_fmt(r['recall_mean'])} | "
                f"{_fmt(r['frr_mean'])} | {_fmt(r['far_mean'])} | {_fmt(r['seconds_mean'], 1)} | {r['n']} |")
        lines.append("")
    return "\n".join(lines)


def figure(table: pd.DataFrame, path: Path) -> None:
    """ASR after each defense against its cost in clean accuracy, one point per defense (mean over cells)."""
    from spurlab.report.style import pyplot

    plt = pyplot()
    per = table.groupby(["defense", "kind"], sort=False)[["asr_mean", "cacc_change"]].mean().reset_index()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for _, r in per.iterrows():
        ax.scatter(-r["cacc_change"], r["asr_mean"], s=40)
        ax.annotate(str(r["defense"]), (-r["cacc_change"], r["asr_mean"]), fontsize=8, xytext=(4, 3),
                    textcoords="offset points")
    ax.set_xlabel("clean accuracy lost (vs no defense)")
    ax.set_ylabel("attack success after the defense")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def write_arena(rows: Iterable[ResultRow], out: Path, title: str) -> dict[str, Path]:
    """``arena.csv`` (one row per cell, seed and defense), ``arena.md`` and ``arena.png`` into ``out``."""
    frame = cell_rows(rows)
    table = comparison(frame)
    paths = {"rows": out / "arena.csv", "table": out / "arena.md", "figure": out / "arena.png"}
    with atomic_path(paths["rows"]) as tmp:
        frame.to_csv(tmp, index=False)
    write_text(paths["table"], markdown(table, title))
    if not table.empty:
        figure(table, paths["figure"])
    return paths


__all__ = ["cell_rows", "comparison", "markdown", "write_arena"]
