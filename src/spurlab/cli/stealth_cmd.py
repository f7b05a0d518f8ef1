"""``spurlab stealth``: how visible an injection is (ΔPPL, semantic similarity, Δ spelling errors)."""

from __future__ import annotations

from pathlib import Path

import typer

from spurlab.cli.app import app
from spurlab.cli.common import EncodingOption, LabelColOption, TextColOption


@app.command("stealth")
def stealth_command(
    poisoned: Path = typer.Argument(..., help="An 'spurlab inject' output folder, or its data file (then give "
                                    "--manifest)."),
    manifest: Path = typer.Option(None, "--manifest", help="The injection's manifest.jsonl (default: the one in "
                                  "the folder)."),
    lm: str = typer.Option("bundled:smollm2", "--lm", help="Causal LM for perplexity (hub name, folder, "
                           "bundled:<model>)."),
    embedder: str = typer.Option("bundled:minilm", "--embedder", help="Sentence encoder for similarity."),
    no_lm: bool = typer.Option(False, "--no-lm", help="Skip the perplexity measure."),
    no_embedder: bool = typer.Option(False, "--no-embedder", help="Skip the similarity measure."),
    max_rows: int = typer.Option(200, "--max-rows", min=1, help="Measure at most this many changed rows (a "
                                 "seeded sample)."),
    seed: int = typer.Option(0, "--seed", min=0),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, mps."),
    out: Path = typer.Option(None, "--out", help="Also write the report as JSON here."),
    text_col: TextColOption = None,
    label_col: LabelColOption = None,
    encoding: EncodingOption = None,
) -> None:
    """Measure the rows an injection changed against their originals (restored exactly from the manifest)."""
    import json

    from spurlab.atomic import write_json
    from spurlab.data.loaders import load_table
    from spurlab.data.transform import read_manifest
    from spurlab.errors import SpurlabError
    from spurlab.inject import undo
    from spurlab.inject.stealth import stealthiness

    data = poisoned
    if poisoned.is_dir():
        found = sorted(p for p in poisoned.glob("data.*") if p.is_file())
        if len(found) != 1:
            raise SpurlabError(f"{poisoned}: expected one data.<ext> file of 'spurlab inject', found {len(found)}")
        data, manifest = found[0], manifest or poisoned / "manifest.jsonl"
    if manifest is None:
        raise SpurlabError("give --manifest (the injection's manifest.jsonl) with a data file")
    dataset = load_table(str(data), text_col=text_col, label_col=label_col, encoding=encoding)
    records = read_manifest(manifest)
    original = undo(dataset, records)
    rows = [int(r["row"]) for r in records]
    report = stealthiness([original.texts[r] for r in rows], [dataset.texts[r] for r in rows],
                          lm=None if no_lm else lm, embedder=None if no_embedder else embedder, max_rows=max_rows,
                          seed=seed, device=device)
    if out is not None:
        write_json(out, report)
    typer.echo(json.dumps(report, indent=2))
