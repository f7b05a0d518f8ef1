"""Option parsing shared by subcommands."""

from __future__ import annotations

import math
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer


def split_list(value: str | None) -> list[str] | None:
    """``"a,b, c"`` → ``["a", "b", "c"]``; ``None``/empty → ``None``."""
    if value is None or not value.strip():
        return None
    return [part.strip() for part in value.split(",") if part.strip()]


DATA_HELP = ("Dataset: a .csv/.tsv/.jsonl/.parquet path, hf:<owner/name>, preset:<name>[:<local path>] "
             "or bundled:tweets.")

# The dataset options every data-reading subcommand shares, declared once.
TextColOption = Annotated[str | None, typer.Option("--text-col", help="Text column (default: text).")]
LabelColOption = Annotated[str | None, typer.Option("--label-col", help="Label column (default: label).")]
LabelsOption = Annotated[str | None, typer.Option("--labels", help="Keep only these labels, comma-separated.")]
EncodingOption = Annotated[str | None, typer.Option("--encoding",
                                                    help="Text encoding of local files (default utf-8).")]
SplitOption = Annotated[str, typer.Option("--split", help="Which split to read: train, test or all "
                                          "(train/test: the same seeded split as spurlab run).")]


# Model-loading and compute options of the commands that run a finished model (diagnose, audit).
ThreadsOption = Annotated[int | None, typer.Option("--threads", min=1,
                                                   help="torch CPU threads (default: torch's choice).")]
DeviceOption = Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:1, mps.")]
AllowPickleOption = Annotated[bool, typer.Option("--allow-pickle", help="Also load pickle checkpoints (only from "
                                                 "sources you trust; they can run code).")]


TrackingOption = Annotated[str | None, typer.Option(
    "--tracking", help="Log finished runs to an experiment tracker: mlflow (pip install 'spurlab[tracking]') or "
                       "wandb (pip install 'spurlab[wandb]'; offline unless WANDB_API_KEY or WANDB_MODE say "
                       "otherwise).")]
TrackingUriOption = Annotated[str | None, typer.Option(
    "--tracking-uri", help="Where to log. mlflow: a tracking URI (default: MLFLOW_TRACKING_URI, else ./mlruns); "
                           "wandb: the folder its runs go under (default: WANDB_DIR, else here).")]


def out_folder(value: str) -> Path:
    """``--out``: a folder; an empty value (which would mean the current folder) is a usage error."""
    if not str(value).strip():
        raise typer.BadParameter("must not be empty (it would write into the current folder)")
    return Path(value)


def number(low: float | None = None, high: float | None = None, *, low_open: bool = False,
           high_open: bool = False) -> Callable[[str | float], float]:
    """The parser of a float option: a finite number in the given range (``nan``/``inf`` are refused here, before
    any range check, which a NaN would pass or fail with a misleading message)."""

    def parse(value: str | float) -> float:
        try:
            result = float(value)
        except (TypeError, ValueError):
            raise typer.BadParameter(f"{value!r} is not a number") from None
        if not math.isfinite(result):
            raise typer.BadParameter(f"must be a finite number, got {value}")
        if low is not None and (result <= low if low_open else result < low):
            raise typer.BadParameter(f"must be {'>' if low_open else '>='} {low:g}, got {value}")
        if high is not None and (result >= high if high_open else result > high):
            raise typer.BadParameter(f"must be {'<' if high_open else '<='} {high:g}, got {value}")
        return result

    parse.__name__ = "number"
    return parse


class ExecutorName(StrEnum):
    """Where ``sweep`` and ``arena`` run their points."""

    local = "local"
    ray = "ray"
