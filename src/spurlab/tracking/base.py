"""What every tracker logs, read from a finished run folder, and the interface the run and sweep code use.

Tracking never fails a run: once a tracker is set up, every error is one ``warning:`` line on stderr and the
work goes on. Logging reads the run folder after it is complete, so what is logged is what is on disk.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import yaml

from spurlab.config_io import flatten

EXPERIMENT = "spurlab"  # the MLflow experiment / W&B project
MAX_PARAM_LENGTH = 500  # MLflow's limit on a param value is 6000; long JSON lists say little in a params table
RUN_ARTIFACTS = ("report.html", "metrics.json", "config.yaml", "summary.md")


def warn(message: str) -> None:
    print(f"warning: tracking: {' '.join(message.split())[:250]}", file=sys.stderr, flush=True)


class Tracker(Protocol):
    """A place finished runs are logged to; ``parent`` ids group a sweep's points."""

    uri: str

    def find(self, tags: dict[str, str], parent: str | None = None) -> str | None:
        """The id of an earlier run logged with these tags (and parent), so nothing is logged twice."""

    def start(self, name: str, tags: dict[str, str], parent: str | None = None) -> str:
        """Open a run (a sweep's parent) and return its id."""

    def log_run_folder(self, run_dir: Path, *, name: str | None = None, parent: str | None = None,
                       tags: dict[str, str] | None = None) -> str | None:
        """Log a finished run folder as one run; None (after a warning) when that fails."""

    def finish(self, run_id: str, status: str = "FINISHED", artifacts: list[Path] | None = None) -> None:
        """Close a run opened by :meth:`start`, with files to attach."""


@dataclass
class RunRecord:
    """A finished run folder as a tracker logs it."""

    name: str
    config: dict[str, Any]
    params: dict[str, str]  # the flattened config
    metrics: dict[str, float]
    tags: dict[str, str]
    files: list[Path]  # artifacts: the report, metrics, config and summary where present
    adapter: Path | None


def read_run_folder(run_dir: Path, name: str | None = None, tags: dict[str, str] | None = None) -> RunRecord:
    """The record of a complete run folder (its ``metrics.json`` and ``config.yaml``)."""
    run_dir = Path(run_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    config = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8")) or {}
    meta = metrics.get("meta", {})
    run_tags = {"spurlab.kind": "run", "spurlab.version": str(meta.get("spurlab_version")),
                "spurlab.run_dir": str(run_dir.resolve()), "spurlab.status": str(metrics.get("status")),
                "spurlab.model": str(meta.get("model")), **(tags or {})}
    adapter = run_dir / "adapter"
    return RunRecord(name or str(metrics.get("name")), config,
                     {k: _param(v) for k, v in sorted(flatten(config).items())}, metric_values(metrics), run_tags,
                     [run_dir / f for f in RUN_ARTIFACTS if (run_dir / f).is_file()],
                     adapter if adapter.is_dir() else None)


def metric_values(metrics: dict[str, Any]) -> dict[str, float]:
    """The finite numbers of a ``metrics.json`` worth plotting: every test set's scores and counts, the base
    model's too, training loss and speed (confusion matrices and timings of single stages left out)."""
    out = {}
    for key, value in flatten({k: v for k, v in metrics.items() if k != "meta"}).items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            continue
        if key.startswith("base.description") or key == "schema_version":
            continue
        out[key.replace(":", "_")] = value  # MLflow names allow no ':'
    train = metrics.get("meta", {}).get("train", {})
    for key in ("final_loss", "examples_per_second", "seconds", "trainable_parameters"):
        if isinstance(train.get(key), (int, float)) and math.isfinite(train[key]):
            out[f"train.{key}"] = train[key]
    return out


def _param(value: Any) -> str:
    text = "null" if value is None else str(value)
    return text if len(text) <= MAX_PARAM_LENGTH else text[: MAX_PARAM_LENGTH - 3] + "..."


__all__ = ["EXPERIMENT", "RunRecord", "Tracker", "metric_values", "read_run_folder", "warn"]
