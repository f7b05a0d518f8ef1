"""``spurlab sanitize``: remove or mask flagged tokens/shapes and write the data, a manifest and a summary."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.text import Text

from spurlab.cli.app import app
from spurlab.cli.common import (
    DATA_HELP,
    EncodingOption,
    LabelColOption,
    LabelsOption,
    SplitOption,
    TextColOption,
    number,
    out_folder,
    split_list,
)
from spurlab.errors import SpurlabError


@app.command("sanitize")
def sanitize_command(
    data: str = typer.Argument(..., help=DATA_HELP),
    out: Path = typer.Option(..., "--out", parser=out_folder,
                             help="Output directory: data.<ext>, manifest.jsonl, summary.json."),
    findings: Path = typer.Option(None, "--findings", help="findings.json written by 'spurlab scan'."),
    auto: bool = typer.Option(False, "--auto", help="Scan first and strip every finding at --alpha."),
    alpha: float = typer.Option(0.01, "--alpha", parser=number(0, 1, low_open=True, high_open=True),
                                help="Significance level of the --auto scan, in (0, 1)."),
    mode: str = typer.Option("remove", "--mode", help="remove (delete the token) or mask (replace it)."),
    mask: str = typer.Option("[MASK]", "--mask", help="Replacement string for --mode mask."),
    top: int = typer.Option(None, "--top", min=1, help="Use only the first N (ranked) findings."),
    skip_explained: bool = typer.Option(False, "--skip-explained", help="Keep tokens the context test explained "
                                        "by the rest of their rows' text (genuine content words)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Redo even when --out already holds this result, "
                                   "or replace the output of other inputs."),
    text_col: TextColOption = None,
    label_col: LabelColOption = None,
    labels: LabelsOption = None,
    split: SplitOption = "all",
    encoding: EncodingOption = None,
) -> None:
    """Strip every token (or every token of a shape) that a scan flagged, in rows of every label.

    Nothing is written unless everything succeeds; the summary is moved into place last.
    """
    from spurlab.data.transform import save_transform
    from spurlab.defend.sanitize import load_findings, sanitize
    from spurlab.scan.scanner import ScanConfig

    if (findings is None) == (not auto):
        raise SpurlabError("give exactly one of --findings FILE or --auto")
    if mode not in ("remove", "mask"):
        raise SpurlabError(f"unknown --mode {mode!r} (use remove or mask)")
    if top is not None and top < 1:
        raise SpurlabError(f"--top must be at least 1, got {top}")
    config = ScanConfig(alpha=alpha)
    config.validate()
    report = load_findings(findings) if findings is not None else None
    from spurlab.data.loaders import load_table, spec_files

    dataset = load_table(data, text_col=text_col, label_col=label_col, encoding=encoding, split=split,
                         labels=split_list(labels))
    from spurlab.outputs import already_complete, file_sha256, frame_sha256, transform_state

    request = {"findings_sha256": file_sha256(findings) if findings is not None else None,
               "auto_alpha": alpha if findings is None else None, "mode": mode,
               "mask": mask if mode == "mask" else None, "top": top, "skip_explained": skip_explained,
               "text_col": dataset.text_col, "label_col": dataset.label_col,
               "input_sha256": frame_sha256(dataset.frame)}
    inputs = [*spec_files(data), *([findings] if findings is not None else [])]
    if transform_state(out, request, overwrite, inputs) == "complete":
        typer.echo(already_complete(out))
        return
    result = sanitize(dataset, report, mode=mode, scan_config=config, top=top, mask=mask,  # type: ignore[arg-type]
                      skip_explained=skip_explained)
    result.summary["request"] = request
    paths = save_transform(result, out)
    s = result.summary
    console = Console()
    console.print(Text(f"{s['dataset']}: {s['n_removed']} token(s) {'removed' if mode == 'remove' else 'masked'} "
                       f"in {s['n_rows_changed']}/{s['n_rows']} rows ({s['source']})"))
    for feature, count in list(s["removed_per_feature"].items())[:10]:
        console.print(Text(f"  {feature}: {count}"))
    if s["skipped_findings"]:
        console.print(Text(f"skipped {len(s['skipped_findings'])} subword finding(s) (not mappable to text)"))
    console.print(Text("wrote " + ", ".join(str(p) for p in paths.values())))
