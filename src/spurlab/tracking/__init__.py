"""Experiment tracking: finished runs and sweeps logged to MLflow (``mlflow_store``) or Weights & Biases
(``wandb_store``), from what the run folders hold (``base``). Tracking never makes a run fail."""

from __future__ import annotations

from spurlab.errors import SpurlabError
from spurlab.tracking.base import EXPERIMENT, RunRecord, Tracker, metric_values, read_run_folder, warn
from spurlab.tracking.mlflow_store import MlflowTracker, default_uri
from spurlab.tracking.wandb_store import WandbTracker

TRACKERS: dict[str, type] = {"mlflow": MlflowTracker, "wandb": WandbTracker}


def open_tracker(kind: str | None, uri: str | None = None) -> Tracker | None:
    """The tracker a ``--tracking`` option names (None for none, or after a warning when it cannot be used)."""
    if kind in (None, "", "none"):
        if uri:
            raise SpurlabError("--tracking-uri needs --tracking mlflow or wandb")
        return None
    if kind not in TRACKERS:
        raise SpurlabError(f"unknown tracking {kind!r} (known: none, {', '.join(TRACKERS)})")
    return TRACKERS[kind].open(uri)


__all__ = ["EXPERIMENT", "TRACKERS", "MlflowTracker", "RunRecord", "Tracker", "WandbTracker", "default_uri",
           "metric_values", "open_tracker", "read_run_folder", "warn"]
