"""``spurlab arena SPEC --out DIR``: attacks x defenses x datasets x poison rates x seeds, and their comparison."""

from __future__ import annotations

from pathlib import Path

import typer

from spurlab.cli.app import app
from spurlab.cli.common import ExecutorName, out_folder


@app.command("arena")
def arena_command(
    spec: Path = typer.Argument(..., help="Arena spec (YAML): base config, datasets, attacks, rates, defenses; "
                                "see configs/arena/."),
    out: Path = typer.Option(..., "--out", "-o", parser=out_folder,
                             help="Arena folder: the sweep (sweep.db, runs/) and arena/ (arena.md, .csv, .png)."),
    executor: ExecutorName = typer.Option(ExecutorName.local, "--executor", help="local or ray (one Ray task per "
                                          "cell)."),
    address: str = typer.Option(None, "--address", help="Ray cluster address (ray executor)."),
    cpus_per_run: int = typer.Option(None, "--cpus-per-run", min=1, help="CPU cores (and torch threads) per cell."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Start the arena folder over."),
    max_points: int = typer.Option(10_000, "--max-points", min=1, help="Refuse an arena of more runs than this."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate every cell and print the runs; run nothing."),
) -> None:
    """Run every cell of SPEC (resumable like sweep: re-running skips finished cells), then write the comparison:
    per defense, attack success and clean accuracy against no defense, detection precision and recall, FRR and
    FAR, seconds."""
    from spurlab.arena.spec import load_arena
    from spurlab.arena.table import write_arena
    from spurlab.sweep.executors import make_executor
    from spurlab.sweep.runner import DERIVED, SweepFailed, dry_run_lines, run_sweep
    from spurlab.sweep.store import SweepStore

    runner = make_executor(executor.value, address=address, cpus_per_run=cpus_per_run)
    arena, sweep = load_arena(spec, max_points)
    if dry_run:
        for line in dry_run_lines(sweep, out, overwrite):
            typer.echo(line)
        return
    failed: SweepFailed | None = None
    try:
        run_sweep(sweep, out, runner, overwrite=overwrite, echo=typer.echo)
    except SweepFailed as exc:  # the comparison still covers the cells that finished
        failed = exc
    paths = write_arena(SweepStore(out, readonly=True).rows(), out / DERIVED, arena.name or spec.stem)
    typer.echo("wrote " + ", ".join(str(p) for p in paths.values() if p.exists()))
    if failed is not None:
        raise failed
