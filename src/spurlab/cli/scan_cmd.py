"""``spurlab scan``: find tokens and token shapes spuriously tied to one label, before training."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table
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
from spurlab.scan.gate import EXIT_FINDINGS, FailOn, check_fail_on, failing, gate_document
from spurlab.scan.scanner import ScanConfig, ScanReport, scan


def _fmt_p(log10_p: float) -> str:
    return f"{10 ** log10_p:.1e}" if log10_p > -300 else f"1e{log10_p:.0f}"


def _fmt_context(p: float | None, explained: bool | None, relabelled: bool | None = None) -> str:
    if p is None:
        return "-"
    return f"{p:.3f}" + (" text" if explained else "") + (", relabelled" if relabelled else "")


def print_report(report: ScanReport, top: int, console: Console) -> None:
    """A table of the top findings and one line of dataset summary."""
    s = report.summary
    prior = ", ".join(f"{k} {v:.2f}" for k, v in s["label_prior"].items())
    console.print(Text(f"{s['dataset']}: {s['n_rows']} rows, prior {prior}; {s['n_tested_features']} features "
                       f"tested (support >= {s['min_support']}), {s['n_findings']} findings at "
                       f"{s['correction']} p < {s['alpha']}, {s.get('n_planted', 0)} read as planted"))
    ctx = s.get("context") or {}
    if ctx.get("tested"):
        console.print(Text(f"context test on the top {ctx['tested']}: {ctx['explained_by_text']} explained by the "
                           f"rest of their rows' text (ranked last), {ctx['not_explained']} not explained"))
    if not report.findings:
        return
    ranked_by = "purity score" if report.config.get("rank_by") == "purity" else "significance"
    if report.config.get("inserted", True) and report.config.get("inserted_boost", 0):
        ranked_by = f"{ranked_by} x planting evidence"
    if report.config.get("context", True):
        ranked_by = f"unexplained first, then {ranked_by}"
    table = Table(title=f"top {min(top, len(report.findings))} findings (ranked: {ranked_by})")
    for name, justify in (("#", "right"), ("feature", "left"), ("kind, where", "left"), ("rows", "right"),
                          ("label", "left"), ("p(y|t)", "right"), ("H bits", "right"), ("PMI", "right"),
                          ("p adj", "right"), ("edge skew", "right"), ("score", "right"),
                          ("planting ev.", "right"), ("context p", "right"), ("planted", "left")):
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for i, f in enumerate(report.findings[:top], 1):
        where = {"start": "first token", "end": "last token", "inserted": "inserted"}.get(f.position, "anywhere")
        table.add_row(str(i), Text(f.feature[:40]), f"{f.kind}, {where}", str(f.support), Text(f.label),
                      f"{f.p_label:.3f}",
                      f"{f.entropy:.3f}", "-" if f.pmi is None else f"{f.pmi:.2f}", _fmt_p(f.log10_p_adj),
                      "-" if f.position_skew is None else f"{f.position_skew:.2f}", f"{f.score:.3f}",
                      "-" if f.planting_evidence is None else f"{f.planting_evidence:.2f}",
                      _fmt_context(f.context_p, f.explained_by_text, f.relabelled), "yes" if f.planted else "")
    console.print(table)


@app.command("scan")
def scan_command(
    data: str = typer.Argument(..., help=DATA_HELP),
    out: Path = typer.Option(None, "--out", parser=out_folder,
                             help="Directory for findings.json and entropy_histogram.png."),
    top: int = typer.Option(20, "--top", min=0, help="Findings shown in the table (all are written)."),
    min_support: int = typer.Option(None, "--min-support", min=1, help="Rows a token must appear in to be tested "
                                    "(default 10)."),
    alpha: float = typer.Option(0.01, "--alpha", parser=number(0, 1, low_open=True, high_open=True),
                                help="Significance level after correction, in (0, 1)."),
    correction: str = typer.Option("bonferroni", "--correction", help="bonferroni or bh (Benjamini-Hochberg)."),
    rank_by: str = typer.Option("significance", "--rank-by", help="significance (-log10 corrected p) or purity "
                                "(Wilson lower bound of p(y|t) above the prior); the context test reorders either."),
    tokenizer: str = typer.Option(None, "--tokenizer", help="HF tokenizer name or folder: subword tokens "
                                  "instead of word tokens (shapes still come from words)."),
    no_shapes: bool = typer.Option(False, "--no-shapes", help="Count tokens only, no shapes."),
    ngrams: int = typer.Option(4, "--ngrams", min=1, max=8, help="Also test phrases of 2..N consecutive words "
                               "(longer where every row of the phrase goes on alike); 1: single words only."),
    case_sensitive: bool = typer.Option(False, "--case-sensitive", help="Do not lowercase tokens."),
    no_context: bool = typer.Option(False, "--no-context", help="Skip the context test (rank by score alone)."),
    no_inserted: bool = typer.Option(False, "--no-inserted", help="No inserted-occurrence features or ranking."),
    context_top: int = typer.Option(300, "--context-top", min=0, help="How many top findings get the context test."),
    inserted_boost: float = typer.Option(7.0, "--inserted-boost", parser=number(0),
                                         help="Ranking weight of reading as inserted "
                                         "more often than the corpus' words (0: rank by score alone)."),
    fail_on: str = typer.Option(None, "--fail-on", help="A data gate: exit 3 when a finding is at or above "
                                "this level: planted (unexplained by the text, planting evidence above the "
                                "documented level) or any (every finding). Exit 0 otherwise, 2 for bad input."),
    output_format: str = typer.Option("table", "--format", help="table (for people) or json (a stable, "
                                      "versioned document on stdout; see docs/scan.md)."),
    response_clusters: int = typer.Option(None, "--response-clusters", min=2, help="Chat or Alpaca data with "
                                          "free-text responses: label each prompt by the k-means cluster of its "
                                          "response's embedding (bundled MiniLM), K clusters."),
    no_report: bool = typer.Option(False, "--no-report", help="Do not write report.html into --out."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Redo even when --out already holds these "
                                   "findings, or replace the findings of other inputs."),
    text_col: TextColOption = None,
    label_col: LabelColOption = None,
    labels: LabelsOption = None,
    split: SplitOption = "all",
    encoding: EncodingOption = None,
) -> None:
    """Rank tokens and shapes by how strongly they tie to one label (one-sided binomial test, corrected)."""
    if top < 1:
        raise SpurlabError(f"--top must be at least 1, got {top}")
    if rank_by not in ("purity", "significance"):
        raise SpurlabError(f"unknown --rank-by {rank_by!r} (use purity or significance)")
    if output_format not in ("table", "json"):
        raise SpurlabError(f"unknown --format {output_format!r} (use table or json)")
    gate_level = check_fail_on(fail_on)
    config = ScanConfig(alpha=alpha, min_support=min_support, correction=correction,  # type: ignore[arg-type]
                        lowercase=not case_sensitive, shapes=not no_shapes, tokenizer=tokenizer,
                        rank_by=rank_by, context=not no_context, inserted=not no_inserted,  # type: ignore[arg-type]
                        context_top=context_top, inserted_boost=inserted_boost, ngrams=ngrams)
    config.validate()
    from spurlab.data.loaders import load_table, spec_files

    clusters = None
    if response_clusters is not None:
        if text_col or label_col or labels or split != "all":
            raise SpurlabError("--response-clusters labels the prompts itself: drop --text-col, --label-col, "
                               "--labels and --split")
        from spurlab.data.loaders import load_pairs
        from spurlab.scan.responses import cluster_responses

        frame, name = load_pairs(data, encoding)
        dataset, clusters = cluster_responses(frame, response_clusters, name)
    else:
        dataset = load_table(data, text_col=text_col, label_col=label_col, encoding=encoding, split=split,
                             labels=split_list(labels))
    request = None
    if out is not None:
        from dataclasses import asdict

        from spurlab.outputs import already_complete, frame_sha256
        from spurlab.scan.outputs import scan_state, write_outputs

        request = {"config": asdict(config), "text_col": dataset.text_col, "label_col": dataset.label_col,
                   "input_sha256": frame_sha256(dataset.frame),
                   **({"response_clusters": response_clusters} if response_clusters else {})}
        if scan_state(out, request, overwrite, spec_files(data)) == "complete":
            from spurlab.outputs import read_output
            from spurlab.scan.outputs import FINDINGS
            from spurlab.scan.scanner import report_from_dict

            report = report_from_dict(read_output(out, FINDINGS))
            typer.echo(already_complete(out), err=output_format == "json")
            _finish(report, gate_level, output_format)
            return
    report = scan(dataset, config)
    if clusters is not None:
        report.summary["response_clusters"] = clusters
    as_json = output_format == "json"
    console = Console(width=None if sys.stdout.isatty() else 140, stderr=as_json)
    if not as_json:
        print_report(report, top, console)
        for label, info in (clusters or {}).get("clusters", {}).items():
            console.print(Text(f"{label}: {info['size']} rows, e.g. " + " | ".join(info["examples"])[:200]))
    if out is not None:
        from spurlab.scan.outputs import write_outputs

        paths = write_outputs(report, out, request, texts=dataset.texts, labels=dataset.label_strings,
                              html=not no_report)
        console.print(Text("wrote " + ", ".join(str(p) for p in paths)))
    _finish(report, gate_level, output_format)


def _finish(report: ScanReport, gate_level: FailOn | None, output_format: str) -> None:
    """Print the JSON document (``--format json``) and exit with the gate's code."""
    if output_format == "json":
        typer.echo(json.dumps(gate_document(report, gate_level), ensure_ascii=False, allow_nan=False))
    n = len(failing(report, gate_level))
    if gate_level is not None and output_format != "json":
        typer.echo(f"gate --fail-on {gate_level}: " + (f"FAILED, {n} finding{'s' * (n != 1)} at or above the "
                                                          "level (exit 3)" if n else "passed"), err=True)
    if n:
        raise typer.Exit(EXIT_FINDINGS)
