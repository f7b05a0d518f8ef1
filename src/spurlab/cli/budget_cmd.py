"""``spurlab budget CONFIG``: each training method sized to the same number of trainable parameters."""

from __future__ import annotations

from pathlib import Path

import typer

from spurlab.cli.app import app


@app.command("budget")
def budget_command(
    config: Path = typer.Argument(..., help="Experiment config (YAML): its model, labels and method settings."),
    params: int = typer.Option(None, "--params", min=1, help="Target trainable parameters (default: what the "
                               "config's own method trains)."),
    methods: str = typer.Option("lora,loha,lokr,vera,ia3,adalora,head,full", "--methods",
                                help="Comma-separated methods to size."),
    overrides: list[str] = typer.Argument(None, help="dotted.key=value overrides of the config."),
) -> None:
    """Print, per method, the size (rank) whose trainable parameters come closest to the target, and the config
    overrides that select it. Counts are measured by attaching each method to the config's model."""
    from rich.console import Console
    from rich.table import Table

    from spurlab.errors import SpurlabError
    from spurlab.experiment.config import load_experiment_config
    from spurlab.experiment.runner import load_data
    from spurlab.models.budget import SIZE_KEYS, budget_table, trainable_parameters
    from spurlab.models.loading import load_classifier
    from spurlab.train.config import METHODS

    cfg = load_experiment_config(config, overrides or [])
    names = [m.strip() for m in methods.split(",") if m.strip()]
    unknown = [m for m in names if m not in METHODS]
    if unknown or not names:
        raise SpurlabError(f"--methods: unknown method(s) {', '.join(unknown) or '(none given)'} "
                           f"(known: {', '.join(METHODS)})")
    labels = cfg.data.labels or load_data(cfg).label_names
    loaded = load_classifier(cfg.model, list(labels))
    own = cfg.train.method
    target = params or trainable_parameters(loaded, own, cfg.train.method_settings)
    given = {m: getattr(cfg.train, m) for m in SIZE_KEYS if getattr(cfg.train, m) is not None}
    rows = budget_table(loaded, names, target, given)
    table = Table(title=f"{cfg.model.name}: methods at ~{target:,} trainable parameters"
                        + ("" if params else f" (what train.method {own} trains)"))
    for header in ("method", "size", "trainable", "vs target", "overrides"):
        table.add_column(header, justify="right" if header in ("trainable", "vs target") else "left")
    for b in rows:
        size = f"{SIZE_KEYS[b.method]}={b.size}" if b.size is not None else "-"
        sets = f"train.method={b.method}" + (f" train.{b.method}.{SIZE_KEYS[b.method]}={b.size}"
                                              if b.size is not None else "")
        table.add_row(b.method, size, f"{b.trainable:,}", f"{b.trainable / target:.2f}x", sets)
    Console(width=160).print(table)
