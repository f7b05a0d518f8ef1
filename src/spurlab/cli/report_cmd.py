"""``spurlab report``: one self-contained HTML page for a run, sweep, scan or diagnosis."""

from __future__ import annotations

from pathlib import Path

import typer

from spurlab.cli.app import app


@app.command("report")
def report_command(
    path: Path = typer.Argument(..., help="A run folder, sweep folder, scan output or diagnose output."),
    out: Path = typer.Option(None, "--out", "-o", help="The .html file to write (default: report.html in PATH)."),
    data: str = typer.Option(None, "--data", help="A scan's dataset, to show its example rows highlighted."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an --out file that is not a spurlab report."),
) -> None:
    """Write one self-contained HTML report (tables, figures, provenance; loads nothing from the network)."""
    from spurlab.publish import write_report

    typer.echo(f"wrote {write_report(path, out, data, overwrite)}")
