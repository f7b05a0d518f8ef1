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
    split_list,
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
    from spurlab.data.loaders import load_table, spec_files
    from spurlab.data.transform import save_transform
    from spurlab.defend.normalize import STEPS, normalize
    from spurlab.outputs import already_complete, frame_sha256, transform_state

    chosen = dict(zip(STEPS, (nfkc, invisible, html, punctuation, whitespace), strict=True))
    steps = tuple(s for s, on in chosen.items() if on)
    dataset = load_table(data, text_col=text_col, label_col=label_col, encoding=encoding, split=split,
                         labels=split_list(labels))
    request = {"steps": list(steps), "text_col": dataset.text_col, "label_col": dataset.label_col,
               "input_sha256": frame_sha256(dataset.frame)}
    if transform_state(out, request, overwrite, list(spec_files(data))) == "complete":
        typer.echo(already_complete(out))
        return
    result = normalize(dataset, steps)
    result.summary["request"] = request
    paths = save_transform(result, out)
    s = result.summary
    typer.echo(f"{s['dataset']}: {s['n_rows_changed']}/{s['n_rows']} rows changed ("
               + ", ".join(f"{k} {v}" for k, v in s["rows_changed_per_step"].items()) + ")")
    typer.echo("wrote " + ", ".join(str(p) for p in paths.values()))
