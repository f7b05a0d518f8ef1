"""``spurlab run CONFIG.yaml [dotted.key=value ...] [--out DIR]``: one experiment, one run folder."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from spurlab.cli.app import app
from spurlab.cli.common import TrackingOption, TrackingUriOption, out_folder


def default_out_dir(name: str) -> Path:
    return Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"


@app.command("run", context_settings={"allow_extra_args": False})
def run_command(
    config: Path = typer.Argument(..., help="Experiment config (YAML); see configs/ for examples."),
    overrides: list[str] = typer.Argument(None, help="Dotted overrides, e.g. train.lr=1e-3 injection=null."),
    out: Path = typer.Option(None, "--out", "-o", parser=out_folder,
                             help="Run folder (default: runs/<name>-<timestamp>)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Redo a complete run folder of this config, or "
                                   "replace a folder of another config."),
    allow_pickle: bool = typer.Option(False, "--allow-pickle", help="Also load pickle checkpoints "
                                      "(pytorch_model.bin, .pt); they can run code: only for trusted sources."),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress bar."),
    no_report: bool = typer.Option(False, "--no-report", help="Do not write report.html into the run folder."),
    tracking: TrackingOption = None,
    tracking_uri: TrackingUriOption = None,
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate and print the resolved config, run nothing."),
) -> None:
    """Run one experiment: data → injection → LoRA/full/head training → clean + spurious evaluation.

    Writes config.yaml, injection/, adapter/, summary.md, confusion_matrix.png, metrics.json, DONE and
    report.html into the run folder. Re-running into the same --out finishes an interrupted run (it starts
    over) and leaves a complete one alone; a folder of another config is refused.
    """
    from spurlab.experiment.config import dump_config, load_experiment_config

    cfg = load_experiment_config(config, [*(overrides or []), *(["model.allow_pickle=true"] if allow_pickle else [])])
    if dry_run:
        typer.echo(dump_config(cfg), nl=False)
        return
    from spurlab.experiment.runner import run_experiment
    from spurlab.outputs import already_complete
    from spurlab.report.run_summary import predicted_count_table
    from spurlab.tracking import open_tracker

    out_dir = out or default_out_dir(cfg.name)
    tracker = open_tracker(tracking, tracking_uri)
    result = run_experiment(cfg, out_dir, overwrite=overwrite, progress=not no_progress,
                            report=not no_report)
    if result.reused:
        typer.echo(already_complete(result.out_dir, "same config"))
    m = result.metrics
    rows = [("clean", m["clean"])] + [(k, m[k]) for k in m if k.startswith("spurious:")]
    typer.echo(predicted_count_table(rows, m["label_names"]).replace("| model |", "| test set |"))
    typer.echo(f"run folder: {result.out_dir}")
    if tracker is not None:
        finished = str(m.get("meta", {}).get("finished"))
        tags = {"spurlab.run_dir": str(result.out_dir.resolve()), "spurlab.finished": finished}
        if tracker.find(tags) is None and tracker.log_run_folder(result.out_dir, tags=tags):
            typer.echo(f"logged to {tracker.uri}")
    if not no_report:
        typer.echo(f"report: {result.out_dir / 'report.html'}")
