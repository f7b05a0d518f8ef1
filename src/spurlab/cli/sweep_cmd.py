"""``spurlab sweep SPEC --out DIR`` (a grid of experiments, resumable) and ``spurlab results DIR``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    import pandas as pd
    from rich.console import Console

from spurlab.cli.app import app
from spurlab.cli.common import ExecutorName, TrackingOption, TrackingUriOption, number, out_folder


@app.command("sweep")
def sweep_command(
    spec: Path = typer.Argument(..., help="Sweep spec (YAML): base config + grid of dotted keys; see configs/sweeps/."),
    out: Path = typer.Option(..., "--out", "-o", parser=out_folder,
                             help="Sweep folder: sweep.json, sweep.db, runs/<key>/."),
    executor: ExecutorName = typer.Option(ExecutorName.local, "--executor", help="local (sequential, in this "
                                          "process) or ray (one Ray task per grid point)."),
    address: str = typer.Option(None, "--address", help="Ray cluster address (ray executor; default: start a "
                                "local Ray)."),
    cpus_per_run: int = typer.Option(None, "--cpus-per-run", min=1, help="CPU cores (and torch threads) per "
                                     "grid point (ray default 1; local default: torch's)."),
    gpus_per_run: float = typer.Option(0.0, "--gpus-per-run", parser=number(0),
                                       help="GPUs per grid point (ray executor)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Start the sweep folder over (also when it holds "
                                   "another spec)."),
    max_points: int = typer.Option(10_000, "--max-points", min=1, help="Refuse a grid of more points than this "
                                   "(every point is validated before anything runs)."),
    storage: str = typer.Option(None, "--storage", help="Keep the run folders here instead of in --out/runs: a "
                                "path, file://, s3://, gs://, hdfs://, abfs:// or an fsspec URI (workers upload, "
                                "so a Ray cluster needs no shared filesystem)."),
    tracking: TrackingOption = None,
    tracking_uri: TrackingUriOption = None,
    no_report: bool = typer.Option(False, "--no-report", help="Do not write the sweep's report.html (each run "
                                   "folder still gets its own)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate every grid point and print the grid; run "
                                 "nothing."),
) -> None:
    """Run every grid point of SPEC into --out, one run folder each; results go to sweep.db.

    Re-running the same command skips complete points, retries failed ones and finishes interrupted ones.
    A failed point is recorded with its error and the sweep goes on; the exit code is 1 if any failed.
    """
    from spurlab.errors import SpurlabError
    from spurlab.sweep.executors import make_executor
    from spurlab.sweep.runner import dry_run_lines, run_sweep
    from spurlab.sweep.spec import load_spec

    if gpus_per_run and executor != ExecutorName.ray:
        raise SpurlabError("--gpus-per-run is for --executor ray")
    runner = make_executor(executor.value, address=address, cpus_per_run=cpus_per_run, gpus_per_run=gpus_per_run)
    sweep = load_spec(spec, max_points)
    if dry_run:
        for line in dry_run_lines(sweep, out, overwrite):
            typer.echo(line)
        return
    from spurlab.sweep.storage import open_storage
    from spurlab.tracking import open_tracker

    run_storage = open_storage(storage) if storage else None
    tracker = open_tracker(tracking, tracking_uri)
    run_sweep(sweep, out, runner, overwrite=overwrite, echo=typer.echo, html_report=not no_report, tracker=tracker,
              storage=run_storage)


def _fmt(value: object, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


@app.command("results")
def results_command(
    folder: Path = typer.Argument(..., help="A sweep folder (holds sweep.db)."),
    csv: Path = typer.Option(None, "--csv", help="Also write the full flat table as CSV."),
    parquet: Path = typer.Option(None, "--parquet", help="Also write the full flat table as Parquet."),
    aggregate: bool = typer.Option(False, "--aggregate", help="One row per grid point over its seeds (train.seed, "
                                   "data.seed): mean, 95% bootstrap interval and n; --csv/--parquet then "
                                   "write this table."),
) -> None:
    """Show a sweep's results (one row per finished or failed grid point); export the full table."""
    from rich.table import Table

    from spurlab.report.figures import ATTACK, SHARE, add_token_class_columns
    from spurlab.sweep.runner import read_sweep_file
    from spurlab.sweep.spec import format_value, short_names
    from spurlab.sweep.store import SweepStore
    from spurlab.sweep.table import export, results_frame

    info = read_sweep_file(folder) or {}
    frame = results_frame(SweepStore(folder, readonly=True))
    if aggregate:
        _print_aggregate(frame, info.get("name", folder.name), csv, parquet)
        return
    for path in (csv, parquet):
        if path is not None:
            export(frame, path)
    total = len(info.get("keys") or []) or len(frame)
    n_complete = int((frame["status"] == "complete").sum()) if len(frame) else 0
    n_failed = len(frame) - n_complete
    console = _console()
    table = Table(title=f"sweep {info.get('name', folder.name)}: {n_complete} complete, {n_failed} failed, "
                        f"{max(total - len(frame), 0)} not run yet (of {total})")
    grid = list(frame.attrs.get("grid_keys", []))
    short = short_names(grid) if grid else {}
    frame = add_token_class_columns(frame)
    columns = [("#", "#"), ("status", "status"), *((k, short[k]) for k in grid),
               ("clean.accuracy", "clean acc"), (ATTACK, "attack succ"), (SHARE, "token share"),
               ("seconds", "s"), ("error", "error")]
    columns = [(c, h) for c, h in columns if c in frame.columns or c == "#"]
    for col, header in columns:
        table.add_column(header, overflow="fold", justify="right" if col in ("#", "seconds") or col.startswith(
            ("clean", ATTACK, SHARE)) else "left")
    for i, (_, row) in enumerate(frame.iterrows(), 1):
        cells = []
        for col, _ in columns:
            if col == "#":
                cells.append(str(i))
            elif col in grid:
                cells.append(format_value(row[col]) if not _missing(row[col]) else "-")
            else:
                cells.append(_fmt(row[col], 1 if col == "seconds" else 3))
        table.add_row(*cells)
    console.print(table)
    for label, path in (("CSV", csv), ("Parquet", parquet)):
        if path is not None:
            console.print(f"wrote {label}: {path} ({len(frame)} rows)")


def _console() -> Console:
    from rich.console import Console

    console = Console()
    return console if console.is_terminal else Console(width=200)  # a file or pipe: no folding to 80 columns


def _print_aggregate(frame: pd.DataFrame, name: str, csv: Path | None, parquet: Path | None) -> None:
    from rich.table import Table

    from spurlab.sweep.aggregate import METRICS, SEED_KEYS, aggregate_over_seeds
    from spurlab.sweep.spec import format_value, short_names
    from spurlab.sweep.table import export

    grid = [k for k in frame.attrs.get("grid_keys", []) if k not in SEED_KEYS]
    agg = aggregate_over_seeds(frame, list(frame.attrs.get("grid_keys", [])))
    for path in (csv, parquet):
        if path is not None:
            export(agg, path)
    short = short_names(grid) if grid else {}
    console = _console()
    table = Table(title=f"sweep {name}: mean [95% bootstrap interval] over seeds")
    metrics = [m for m in METRICS if f"{m}.mean" in agg.columns]
    for header in (*(short[k] for k in grid), "n", *metrics):
        table.add_column(header, justify="left" if header in short.values() else "right")
    for _, row in agg.iterrows():
        cells = [format_value(row[k]) for k in grid] + [str(int(row["n"]))]
        for m in metrics:
            mean, low, high = row[f"{m}.mean"], row[f"{m}.ci_low"], row[f"{m}.ci_high"]
            interval = "" if _missing(low) else f" [{low:.3f}, {high:.3f}]"
            cells.append("-" if _missing(mean) else f"{mean:.3f}{interval}")
        table.add_row(*cells)
    console.print(table)
    for label, path in (("CSV", csv), ("Parquet", parquet)):
        if path is not None:
            console.print(f"wrote {label}: {path} ({len(agg)} rows)")
