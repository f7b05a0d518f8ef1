"""``spurlab figures DIR --out FIGDIR``: the paper's sweep figures (or one line plot) from a results table."""

from __future__ import annotations

from pathlib import Path

import typer

from spurlab.cli.app import app
from spurlab.cli.common import out_folder


@app.command("figures")
def figures_command(
    source: Path = typer.Argument(..., help="A sweep folder (sweep.db), or a table from 'spurlab results' "
                                  "(.csv / .parquet)."),
    out: Path = typer.Option(..., "--out", "-o", parser=out_folder,
                             help="Folder for the PNGs and figures.json."),
    x: str = typer.Option(None, "--x", help="Column for the x-axis of a custom line plot (e.g. train.lora.r)."),
    y: str = typer.Option(None, "--y", help="Metric column for its y-axis (e.g. clean.accuracy, attack_success)."),
    hue: str = typer.Option(None, "--hue", help="Column that splits it into lines (e.g. injection.proportion)."),
) -> None:
    """Draw attack success / token share / clean accuracy vs LoRA rank (lines: poison proportion; panels:
    light vs aggressive SSTI), or with --x and --y (and optionally --hue) one line plot of any columns."""
    from spurlab.errors import SpurlabError
    from spurlab.report.figures import draw_figures
    from spurlab.sweep.store import SweepStore
    from spurlab.sweep.table import read_table, results_frame

    if source.is_dir():
        frame = results_frame(SweepStore(source, readonly=True))
    elif source.suffix in (".csv", ".parquet") and source.is_file():
        frame = read_table(source)
    else:
        raise SpurlabError(f"{source}: expected a sweep folder or a .csv/.parquet results table")
    summary = draw_figures(frame, out, x=x, y=y, hue=hue, source=str(source))
    for fig in summary["figures"]:
        typer.echo(f"wrote {out / fig['file']} ({fig['n_rows']} rows)")
    for name, why in summary["skipped"].items():
        typer.echo(f"skipped {name}: {why}")
