"""``spurlab data``: load a dataset spec and show what spurlab sees (rows, splits, label map)."""

from __future__ import annotations

from collections import Counter

import typer
from rich.console import Console
from rich.table import Table

from spurlab.cli.app import app
from spurlab.cli.common import (
    DATA_HELP,
    EncodingOption,
    LabelColOption,
    LabelsOption,
    TextColOption,
    number,
    split_list,
)
from spurlab.data import PRESETS, load_splits


@app.command("data")
def data_command(
    data: str = typer.Argument(..., help=DATA_HELP),
    text_col: TextColOption = None,
    label_col: LabelColOption = None,
    labels: LabelsOption = None,
    encoding: EncodingOption = None,
    test_size: float = typer.Option(0.3, "--test-size", parser=number(0, 1, low_open=True, high_open=True),
                                    help="Test share when the data has no test split."),
    seed: int = typer.Option(42, "--seed", min=0, help="Seed of the stratified split."),
) -> None:
    """Show a dataset's splits, label map and label counts, exactly as the other commands will read it."""
    splits = load_splits(data, text_col=text_col, label_col=label_col, labels=split_list(labels),
                         encoding=encoding, test_size=test_size, seed=seed)
    table = Table(title=f"{splits.name}: {len(splits.train)} train / {len(splits.test)} test rows")
    table.add_column("id", justify="right")
    table.add_column("label")
    table.add_column("train", justify="right")
    table.add_column("test", justify="right")
    train_counts = Counter(splits.train.label_strings)
    test_counts = Counter(splits.test.label_strings)
    for i, name in enumerate(splits.label_names):
        table.add_row(str(i), name, str(train_counts.get(name, 0)), str(test_counts.get(name, 0)))
    console = Console()
    console.print(table)
    console.print(f"example: {splits.train.texts[0][:200]!r}")


@app.command("presets")
def presets_command() -> None:
    """List the built-in dataset presets."""
    table = Table(title="presets (preset:NAME from the hub, preset:NAME:PATH from a local original copy)")
    table.add_column("name")
    table.add_column("hub id")
    table.add_column("description")
    for preset in PRESETS.values():
        table.add_row(preset.name, preset.hub_id or "-", preset.description)
    Console().print(table)
