"""A sweep folder as a :class:`~spurlab.report.document.Report`: the grid, one results row per point (linked to
its run's report), and the paper's rank figures when the grid has a LoRA rank."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from spurlab.errors import SpurlabError
from spurlab.report.document import Figure, Report, Section, Table
from spurlab.report.figures import add_token_class_columns, draw_figures
from spurlab.report.html import REPORT_FILE, write_html
from spurlab.sweep.aggregate import SEED_KEYS, aggregate_over_seeds
from spurlab.sweep.store import SweepStore
from spurlab.sweep.table import results_frame

METRIC_COLUMNS = ("clean.accuracy", "attack_success", "token_share", "lift")


def _cell(value: Any) -> Any:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    return value.item() if hasattr(value, "item") else value


def sweep_report(folder: str | Path, info: dict[str, Any]) -> Report:
    """The report of a sweep folder whose ``sweep.json`` holds ``info`` (finished or not: failed and missing
    points are shown as such)."""
    folder = Path(folder)
    frame = results_frame(SweepStore(folder, readonly=True))
    grid_keys = list(frame.attrs.get("grid_keys", []))
    if not frame.empty:
        frame = add_token_class_columns(frame)
    shown = [c for c in (*grid_keys, *METRIC_COLUMNS) if c in frame.columns]
    rows = [[r["key"], r["status"], *[_cell(r[c]) for c in shown]] for _, r in frame.iterrows()]
    table = Table(["point", "status", *shown], rows, key="headline",
                  caption="One row per grid point; attack success, token share and lift (token share minus the "
                          "share of the same rows predicted as the class without the token) on the spurious test "
                          "set of the training token's class.")
    n_points = len(info.get("keys", [])) or len(frame)
    counts = frame["status"].value_counts().to_dict() if not frame.empty else {}
    provenance = {"sweep": str(info.get("name")), "spec hash": str(info.get("spec_hash")),
                  "grid": ", ".join(f"{k}: {v}" for k, v in (info.get("grid") or {}).items()) or ", ".join(grid_keys),
                  "points": f"{n_points} ({counts.get('complete', 0)} complete, {counts.get('failed', 0)} failed)",
                  "spurlab": str(info.get("spurlab_version", "not recorded"))}
    sections = []
    seeds = [k for k in grid_keys if k in SEED_KEYS]
    if seeds and not frame.empty:
        sections.append(_over_seeds(frame, grid_keys))
    figures = _figures(frame)
    if figures:
        sections.append(Section("Figures", "figures", figures=figures))
    failed = frame[frame["status"] == "failed"] if not frame.empty else frame
    if len(failed):
        sections.append(Section("Failed points", "failed", tables=[Table(
            ["point", "error"], [[r["key"], r["error"]] for _, r in failed.iterrows()], key="failed")]))
    links = []
    for _, r in frame.iterrows():
        run_dir = str(r.get("run_dir") or "")
        page = folder / run_dir / REPORT_FILE  # relative to the sweep folder, or an absolute storage path
        if "://" in run_dir:  # in remote storage (--storage): link its URI
            links.append((f"{r['key']}: run report (in storage)", f"{run_dir}/{REPORT_FILE}"))
        elif run_dir and page.is_file():
            links.append((f"{r['key']}: run report", os.path.relpath(page, folder)))
    if links:
        sections.append(Section("Runs", "runs", links=links))
    numbers = {f"{r['key']}/{c}": float(v) for _, r in frame.iterrows() for c in METRIC_COLUMNS
               if c in frame.columns and (v := _cell(r[c])) is not None}
    return Report(f"Sweep {info.get('name')}", "sweep", provenance, table, sections, numbers)


def _over_seeds(frame: pd.DataFrame, grid_keys: list[str]) -> Section:
    agg = aggregate_over_seeds(frame, grid_keys)
    groups = [k for k in grid_keys if k not in SEED_KEYS]
    metrics = [m for m in METRIC_COLUMNS if f"{m}.mean" in agg.columns]
    rows = []
    for _, r in agg.iterrows():
        row: list[Any] = [_cell(r[k]) for k in groups] + [int(r["n"])]
        for m in metrics:
            low, high = _cell(r[f"{m}.ci_low"]), _cell(r[f"{m}.ci_high"])
            row += [_cell(r[f"{m}.mean"]), "–" if low is None else f"[{low:.3f}, {high:.3f}]"]
        rows.append(row)
    columns = [*groups, "seeds", *[c for m in metrics for c in (f"{m} (mean)", "95% CI")]]
    return Section("Over seeds", "seeds", tables=[Table(columns, rows, key="seeds", caption=(
        "Complete points grouped over their seeds: mean and 95% percentile-bootstrap interval of the mean. "
        "Two settings differ beyond seed noise only where their intervals do not overlap."))])


def _figures(frame: pd.DataFrame) -> list[Figure]:
    """The paper's rank figures, drawn into a temporary folder and embedded (none when the grid has no rank)."""
    if frame.empty or "train.lora.r" not in frame.columns:
        return []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            summary = draw_figures(frame, Path(tmp) / "figures")
        except SpurlabError:
            return []
        return [Figure.from_file(Path(tmp) / "figures" / f["file"], f["file"].removesuffix(".png").replace("_", " "))
                for f in summary["figures"]]


def write_sweep_report(folder: str | Path, info: dict[str, Any]) -> Path:
    return write_html(sweep_report(folder, info), Path(folder) / REPORT_FILE)


__all__ = ["sweep_report", "write_sweep_report"]
