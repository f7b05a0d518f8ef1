"""``spurlab demo``: the paper's Table 1 in miniature on the bundled tweets and MiniLM (a few minutes on a CPU)."""

from __future__ import annotations

from pathlib import Path

import typer

from spurlab.cli.app import app
from spurlab.cli.common import number, out_folder


@app.command("demo")
def demo_command(
    out: Path = typer.Option(Path("runs/demo"), "--out", "-o", parser=out_folder,
                             help="Folder for the three run folders."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing run folders."),
    max_train: int = typer.Option(None, "--max-train", min=1, help="Training rows per run (default from the demo)."),
    proportion: float = typer.Option(0.5, "--proportion", parser=number(0, 1),
                                     help="Share of the token class's training rows that get a date "
                                          "(1.0 = the paper's Table 1; clean accuracy then collapses)."),
    threads: int = typer.Option(None, "--threads", min=1, help="CPU threads for torch (1 helps on a busy machine)."),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress bars."),
) -> None:
    """Train base (clean), token→negative and token→positive MiniLM LoRA runs; print the predicted-count table."""
    from spurlab.experiment.demo import run_demo

    run_demo(out, overwrite=overwrite, max_train=max_train, threads=threads, proportion=proportion,
             progress=not no_progress)
