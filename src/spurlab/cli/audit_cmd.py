"""``spurlab audit MODEL --data CLEAN``: is there an inserted string that steers this classifier, and which?"""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from spurlab.cli.app import app
from spurlab.cli.common import (
    DATA_HELP,
    AllowPickleOption,
    DeviceOption,
    EncodingOption,
    LabelColOption,
    SplitOption,
    TextColOption,
    ThreadsOption,
    number,
    out_folder,
    split_list,
)
from spurlab.errors import SpurlabError

FAIL_ON = ("steerable",)


@app.command("audit")
def audit_command(
    model: Path = typer.Argument(..., help="A spurlab run folder, an adapter folder (spurlab or PEFT), or a "
                                 "sequence-classification model folder."),
    data: str = typer.Option(..., "--data", help="Clean rows to insert candidates into (labels not needed). "
                             + DATA_HELP),
    out: Path = typer.Option(None, "--out", "-o", parser=out_folder, help="Folder for audit.json and audit.png."),
    base: str = typer.Option(None, "--base", help="The base model of an adapter that does not name one (or to "
                             "override it): a hub id, folder or bundled:<name>."),
    labels: str = typer.Option(None, "--labels", help="Class names, comma-separated, where the model does not "
                               "name them."),
    budget_seconds: float = typer.Option(120.0, "--budget-seconds", parser=number(0, low_open=True),
                                         help="Time for the search; it stops verifying candidates when spent."),
    max_rows: int = typer.Option(64, "--max-rows", min=1, help="Clean rows used, a seeded sample balanced over "
                                 "the model's predicted classes."),
    train_data: str = typer.Option(None, "--train-data", help="The training data, if you have it: its top scan "
                                   "findings become candidates too."),
    threshold: float = typer.Option(None, "--threshold", parser=number(0, 1),
                                    help="Steerability at which a class is called steerable (default: "
                                    "docs/audit.md)."),
    no_reference: bool = typer.Option(False, "--no-reference", help="Do not discount what a sentence-embedding "
                                      "reference also flips (faster; natural words then count as triggers)."),
    fail_on: str = typer.Option(None, "--fail-on", help="steerable: exit 3 when the verdict is steerable."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the row sample, positions and controls."),
    threads: ThreadsOption = None,
    device: DeviceOption = "auto",
    allow_pickle: AllowPickleOption = False,
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help="Run code shipped with the model."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Redo a complete audit, or replace another one."),
    text_col: TextColOption = None,
    label_col: LabelColOption = None,
    split: SplitOption = "all",
    encoding: EncodingOption = None,
) -> None:
    """Search a finetuned classifier for inserted strings (shapes such as random dates, marks, vocabulary words,
    phrases) that move its predictions to one class beyond what random strings and a semantic reference do.
    Prints the ranked candidates and a one-line verdict; writes audit.json and audit.png (docs/audit.md)."""
    from spurlab.audit import AuditConfig, audit, load_audited
    from spurlab.audit.candidates import train_data_candidates
    from spurlab.audit.outputs import out_state, write_outputs
    from spurlab.data.loaders import load_texts
    from spurlab.outputs import already_complete, file_sha256
    from spurlab.runtime import resolve_device, torch_threads

    if fail_on is not None and fail_on not in FAIL_ON:
        raise SpurlabError(f"unknown --fail-on {fail_on!r} (use steerable)")
    config = AuditConfig(budget_seconds=budget_seconds, max_rows=max_rows, reference=not no_reference, seed=seed)
    if threshold is not None:
        config.threshold = threshold
    config.validate()
    texts = load_texts(data, text_col=text_col, label_col=label_col, split=split, encoding=encoding)
    audited = load_audited(model, base=base, labels=split_list(labels), allow_pickle=allow_pickle,
                           trust_remote_code=trust_remote_code)
    train = []
    if train_data is not None:
        from spurlab.data.loaders import load_table

        train = train_data_candidates(load_table(train_data, encoding=encoding))
    request = {"model": str(model), "data": data, "train_data": train_data, "base": base, "labels": labels,
               "config": asdict(config),
               "data_sha256": file_sha256(data) if Path(data).is_file() else None}
    if out is not None and out_state(out, request, overwrite) == "complete":
        typer.echo(already_complete(out, "same model, data and options"))
        return
    console = Console(width=None if sys.stdout.isatty() else 140)
    embed = None
    if config.reference:
        from spurlab.models.embeddings import SentenceEmbedder

        embed = SentenceEmbedder()
    with torch_threads(threads):
        report = audit(audited, texts, config, train_candidates=train, device=resolve_device(device, "--device"),
                       embed=embed, log=lambda msg: console.print(Text(f"[audit] {msg}")))
    report.request = request
    for k, name in enumerate(report.label_names):
        table = Table(title=f"candidates that move rows to {name!r}")
        for column in ("#", "candidate", "family", "flip", "random", "reference", "steerability", "z"):
            table.add_column(column, justify="left" if column in ("candidate", "family") else "right")
        for i, v in enumerate(report.ranked(k)[:10], 1):
            row = v.row(k)
            table.add_row(str(i), Text(row["name"][:40]), row["family"], _pct(row["flip_rate"]),
                          _pct(row["control_flip_rate"]), _pct(row["reference_flip_rate"]),
                          _pct(row["steerability"]), "-" if row["z"] is None else f"{row['z']:.1f}")
        console.print(table)
    attention = report.attention or {}
    ratios = [r for r in attention.get("ratio", []) if r is not None]
    if ratios:
        peak = max(range(len(attention["ratio"])), key=lambda i: attention["ratio"][i] or 0.0)
        console.print(Text(f"attention to {attention['candidate']!r}: {max(ratios):.1f}x a random span of the "
                           f"clean text at layer {peak + 1} (of {len(attention['ratio'])})"))
    console.print(Text(report.verdict()))
    if out is not None:
        paths = write_outputs(report, out)
        console.print(Text("wrote " + ", ".join(str(p) for p in paths)))
    if fail_on == "steerable" and report.steerable:
        from spurlab.scan.gate import EXIT_FINDINGS

        raise typer.Exit(EXIT_FINDINGS)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"
