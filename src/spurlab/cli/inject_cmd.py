"""``spurlab inject``: plant spurious tokens in a dataset and write the data, a manifest and a summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
from spurlab.data.loaders import load_table, spec_files
from spurlab.data.transform import TransformResult, save_transform
from spurlab.errors import SpurlabError
from spurlab.inject import InjectionConfig, inject
from spurlab.inject.sources import available_sources
from spurlab.outputs import already_complete, frame_sha256, transform_state


def _source_name(source: str | None, token: str | None, tokens: list[str] | None, tokens_file: str | None
                 ) -> str:
    if source:
        return source
    if tokens is not None:
        return "list"
    if tokens_file:
        return "file"
    if token is not None:
        return "fixed"
    return "date"


def build_config(*, source: str | None, token: str | None, tokens: str | None, tokens_file: str | None,
                 year_min: int | None, year_max: int | None, location: str, token_proportion: float,
                 target_label: list[str] | None, proportion: float, seed: int,
                 poisoning: str | None = None, insertions: int | None = None) -> InjectionConfig:
    """The InjectionConfig the options describe (unset options are left at the config defaults)."""
    token_list = split_list(tokens) if tokens is not None else None
    if tokens is not None and not token_list:
        raise SpurlabError("--tokens is empty")
    values: dict[str, Any] = {
        "source": _source_name(source, token, token_list, tokens_file),
        "location": location,
        "token_proportion": token_proportion,
        "proportion": proportion,
        "seed": seed,
        "target_label": None if not target_label or target_label == ["all"] else
        (target_label[0] if len(target_label) == 1 else list(target_label)),
        "token": token, "tokens": token_list, "path": tokens_file, "year_min": year_min, "year_max": year_max,
        "poisoning": None if poisoning is None else poisoning.replace("-", "_"),
        "insertions": insertions,
    }
    return InjectionConfig.from_dict({k: v for k, v in values.items() if v is not None or k == "target_label"})


def print_summary(result: TransformResult, out: Path, console: Console) -> None:
    """A short table of rows modified per label and one modified row before/after."""
    summary = result.summary
    table = Table(title=f"{summary['dataset']}: {summary['n_modified']}/{summary['n_rows']} rows modified")
    for name, justify in (("label", "left"), ("rows", "right"), ("modified", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for label in summary["label_names"]:
        table.add_row(label, str(summary["rows_per_label"].get(label, 0)),
                      str(summary["modified_per_label"].get(label, 0)))
    console.print(table)
    if result.manifest:
        record = result.manifest[0]
        after = result.dataset.texts[record["row"]]
        console.print(Text(f"{summary['items_inserted']} items inserted; row {record['row']} "
                           f"(label {record['label']}) got {record['inserted']}:"))
        console.print(Text(f"  {after[:300]!r}"))
    if summary.get("relabelled"):
        moved = ", ".join(f"{k}: {v}" for k, v in summary["relabelled"].items())
        console.print(Text(f"dirty-label: relabelled {moved}"))
    collisions = (summary.get("collisions") or {}).get("rows_with_any") or {}
    if collisions:
        console.print(Text(f"collisions: clean rows already containing the token(s), per label: {collisions}"))
    tok = summary.get("tokenizer")
    if tok and tok.get("n_distinct"):
        console.print(Text(f"subword tokens per inserted string: min {tok['min']}, mean {tok['mean']}, "
                           f"max {tok['max']}"))
    console.print(Text(f"wrote {out}/{summary['data_file']}, manifest.jsonl, summary.json"))


@app.command("inject")
def inject_command(
    data: str = typer.Argument(..., help=DATA_HELP),
    out: Path = typer.Option(..., "--out", parser=out_folder,
                             help="Output directory: data.<ext>, manifest.jsonl, summary.json."),
    source: str = typer.Option(None, "--source", help="Token source: " + ", ".join(available_sources())
                               + " (default: date; list/file/fixed when --tokens/--tokens-file/--token)."),
    target_label: list[str] = typer.Option(None, "--target-label", help="Label whose rows are modified; "
                                           "repeat for several; omit (or 'all') for every label."),
    proportion: float = typer.Option(1.0, "--proportion", parser=number(0, 1),
                                     help="Share of each target label's rows modified: "
                                     "round(n * p) rows, half-to-even."),
    location: str = typer.Option("random", "--location", help="start (alias beginning), end or random."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of all random choices."),
    poisoning: str = typer.Option(None, "--poisoning", help="clean-label (default: labels kept, SSTI) or "
                                  "dirty-label (rows of the other labels get the items and are relabelled to "
                                  "the one --target-label; --proportion is then their share)."),
    token_proportion: float = typer.Option(0.0, "--token-proportion", parser=number(0, 1),
                                           help="0 = light SSTI (one item per "
                                           "row); >0 = max(1, int(n_words * x)) items (aggressive SSTI)."),
    insertions: int = typer.Option(None, "--insertions", min=1, max=1000, help="Exactly K items per modified "
                                   "row (BadNets' k insertions); not with --token-proportion."),
    text_col: TextColOption = None,
    label_col: LabelColOption = None,
    tokenizer: str = typer.Option(None, "--tokenizer", help="HF tokenizer name or path: report how many "
                                  "subword tokens each inserted string becomes."),
    token: str = typer.Option(None, "--token", help="The string for --source fixed, or the mark for "
                              "punctuation (default '!')."),
    tokens: str = typer.Option(None, "--tokens", help="Comma-separated tokens (source list)."),
    tokens_file: str = typer.Option(None, "--tokens-file", help="UTF-8 file, one token per line (source file)."),
    year_min: int = typer.Option(None, "--year-min", help="First year for dates (default 1900)."),
    year_max: int = typer.Option(None, "--year-max", help="Last year for dates (default 2100)."),
    split: SplitOption = "all",
    labels: LabelsOption = None,
    encoding: EncodingOption = None,
    overwrite: bool = typer.Option(False, "--overwrite", help="Redo even when --out already holds this "
                                   "output, or replace the output of other inputs."),
) -> None:
    """Plant spurious tokens (SSTI) in a dataset; write the data in its format, a manifest and a summary.

    Nothing is written unless everything succeeds; the summary is moved into place last. Re-running the same
    command finishes an interrupted output and leaves a finished one alone.
    """
    config = build_config(source=source, token=token, tokens=tokens, tokens_file=tokens_file,
                          year_min=year_min, year_max=year_max, location=location,
                          token_proportion=token_proportion, target_label=target_label,
                          proportion=proportion, seed=seed, poisoning=poisoning, insertions=insertions)
    dataset = load_table(data, text_col=text_col, label_col=label_col, encoding=encoding, split=split,
                         labels=split_list(labels))
    request = {"config": config.to_record(), "text_col": dataset.text_col, "label_col": dataset.label_col,
               "input_sha256": frame_sha256(dataset.frame), "tokenizer": tokenizer}
    if transform_state(out, request, overwrite, spec_files(data)) == "complete":
        typer.echo(already_complete(out))
        return
    result = inject(dataset, config, tokenizer=tokenizer)
    result.summary["request"] = request
    save_transform(result, out)
    print_summary(result, out, Console())
