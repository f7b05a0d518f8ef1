"""``spurlab diagnose RUN_DIR``: attention entropy, attention on the token, and prediction flips of a finished
run's model, before vs after finetuning, on clean vs token-injected test rows."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from spurlab.cli.app import app
from spurlab.cli.common import AllowPickleOption, DeviceOption, ThreadsOption, out_folder
from spurlab.errors import SpurlabError

if TYPE_CHECKING:
    from spurlab.diagnose.diagnosis import DiagnosisReport


def _f(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def print_report(report: DiagnosisReport, console: Console) -> None:
    """Per-layer table (entropy and token mass, base vs finetuned) and the flip shares."""
    layers, summary = report.layers, report.summary()
    table = Table(title=f"attention per layer ({len(report.rows)} test rows, token of class "
                        f"{report.token_class!r}; entropy in bits, mass = share of attention)")
    for name in ("layer", "H base clean", "H base inj.", "H ft clean", "H ft inj.", "mass base token",
                 "mass base random", "mass ft token", "mass ft random"):
        table.add_column(name, justify="right")
    for i in range(report.n_layers):
        b, f = layers["base"], layers["finetuned"]
        table.add_row(str(i + 1), _f(b["clean"]["entropy"][i]), _f(b["injected"]["entropy"][i]),
                      _f(f["clean"]["entropy"][i]), _f(f["injected"]["entropy"][i]),
                      _f(b["injected"]["mass_token"][i]), _f(b["clean"]["mass_random_span"][i]),
                      _f(f["injected"]["mass_token"][i]), _f(f["clean"]["mass_random_span"][i]))
    console.print(table)
    for model in ("base", "finetuned"):
        shift = summary["entropy_shift"][model]
        ratio = summary["mass_ratio"][model]
        console.print(Text(f"{model}: entropy injected - clean {_f(shift)} bits (mean over layers); token mass "
                           f"{_f(summary['mass_token'][model])} = {_f(ratio, 2)}x a random span"))
    for key in report.behaviour["finetuned"]:
        b, f = report.behaviour["base"][key], report.behaviour["finetuned"][key]
        console.print(Text(f"{key}: predictions that flip to the token's class: base {_f(b['flip_share'])} "
                           f"({b['n_flipped']}/{b['n_eligible']}), finetuned {_f(f['flip_share'])} "
                           f"({f['n_flipped']}/{f['n_eligible']})"))


@app.command("diagnose")
def diagnose_command(
    run_dir: Path = typer.Argument(..., help="A finished run folder (written by spurlab run)."),
    out: Path = typer.Option(None, "--out", "-o", parser=out_folder,
                             help="Output folder (default: RUN_DIR/diagnose)."),
    max_rows: int = typer.Option(200, "--max-rows", min=0, help="Test rows to use, a seeded sample (0 = all)."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the row sample and of the random baseline spans."),
    token_class: str = typer.Option(None, "--token-class", help="Whose token to analyse (default: the class "
                                    "the run injected in training, else its first spurious test class)."),
    batch_size: int = typer.Option(16, "--batch-size", min=1, help="Rows per attention batch (dynamic padding)."),
    threads: ThreadsOption = None,
    device: DeviceOption = "auto",
    overwrite: bool = typer.Option(False, "--overwrite", help="Redo a complete diagnosis, or replace another one."),
    no_report: bool = typer.Option(False, "--no-report", help="Do not write report.html."),
    allow_pickle: AllowPickleOption = False,
) -> None:
    """Does the finetuned model rely on the spurious token? Attention entropy and attention mass on the token per
    layer, and prediction flips, base vs finetuned, clean vs injected. Writes diagnose.json,
    attention_entropy.png and attention_mass.png (docs/diagnose.md)."""
    from spurlab.diagnose.diagnosis import default_token_class, diagnose_run, load_run
    from spurlab.diagnose.outputs import out_state, request_of, write_outputs
    from spurlab.outputs import already_complete
    from spurlab.runtime import torch_threads

    if max_rows < 0:
        raise SpurlabError(f"--max-rows must be 0 (all) or more, got {max_rows}")
    if batch_size < 1:
        raise SpurlabError(f"--batch-size must be at least 1, got {batch_size}")
    if threads is not None and threads < 1:
        raise SpurlabError(f"--threads must be at least 1, got {threads}")
    run = load_run(run_dir, allow_pickle=allow_pickle)
    cls = token_class if token_class is not None else default_token_class(run)
    if cls not in run.token_classes:
        raise SpurlabError(f"--token-class {cls!r}: the run has no spurious test set for it "
                           f"(it has: {', '.join(run.token_classes)})")
    out_dir = out if out is not None else run_dir / "diagnose"
    request = request_of(run, max_rows=max_rows, seed=seed, token_class=cls)
    if out_state(out_dir, request, overwrite) == "complete":
        typer.echo(already_complete(out_dir, "same run and options"))
        return
    console = Console(width=None if sys.stdout.isatty() else 140)
    with torch_threads(threads):
        report = diagnose_run(run_dir, max_rows=max_rows, seed=seed, token_class=cls, batch_size=batch_size,
                              device=device, run=run, log=lambda msg: console.print(Text(f"[diagnose] {msg}")))
    report.request = request
    print_report(report, console)
    paths = write_outputs(report, out_dir, html=not no_report)
    console.print(Text("wrote " + ", ".join(str(p) for p in paths)))
