"""``spurlab normalize``: the usual text preprocessing as a defense, writing the data, a manifest and a summary."""

from __future__ import annotations

from pathlib import Path

import typer

from spurlab.cli.app import app
from spurlab.cli.common import (
    DATA_HELP,
    EncodingOption,
    LabelColOption,
    LabelsOption,
    SplitOption,
    TextColOption,
    out_folder,
)


@app.command("normalize")
def normalize_command(
    data: str = typer.Argument(..., help=DATA_HELP),
    out: Path = typer.Option(..., "--out", parser=out_folder,
                             help="Output directory: data.<ext>, manifest.jsonl, summary.json."),
    nfkc: bool = typer.Option(True, "--nfkc/--no-nfkc", help="Unicode NFKC (compatibility forms, ligatures)."),
    invisible: bool = typer.Option(True, "--invisible/--no-invisible", help="Remove format characters "
                                   "(zero-width, BOM, bidi marks, soft hyphen)."),
    html: bool = typer.Option(True, "--html/--no-html", help="Strip HTML tags, unescape entities."),
    punctuation: bool = typer.Option(True, "--punctuation/--no-punctuation", help="Collapse runs of one "
                                     "punctuation mark ('!!!' -> '!')."),
    whitespace: bool = typer.Option(True, "--whitespace/--no-whitespace", help="Collapse whitespace runs."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Redo even when --out already holds this result, "
                                   "or replace the output of other inputs."),
    text_col: TextColOption = None,
    label_col: LabelColOption = None,
    labels: LabelsOption = None,
    split: SplitOption = "all",
    encoding: EncodingOption = None,
) -> None:
    """Normalise every row's text; the manifest keeps each changed row's original text and the steps that changed
    it. Nothing is written unless everything succeeds; the summary is moved into place last."""
    from spurlab.cli.defend_cmd import apply_defense
    from spurlab.defend.normalize import STEPS, Normalize

    chosen = dict(zip(STEPS, (nfkc, invisible, html, punctuation, whitespace), strict=True))
    done = apply_defense(Normalize(**chosen), {"steps": [s for s, on in chosen.items() if on]}, data, out,
                           overwrite, text_col=text_col, label_col=label_col, labels=labels, split=split,
                           encoding=encoding)
    if done is not None:
        result, paths = done
        s = result.summary
        typer.echo(f"{s['dataset']}: {s['n_rows_changed']}/{s['n_rows']} rows changed ("
                   + ", ".join(f"{k} {v}" for k, v in s["rows_changed_per_step"].items()) + ")")
        typer.echo("wrote " + ", ".join(str(p) for p in paths))
