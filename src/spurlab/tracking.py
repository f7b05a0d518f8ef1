"""Experiment tracking: finished run folders logged to MLflow (params, metrics, tags, the report and the adapter
as artifacts), a sweep as a parent run with one child per grid point.

Tracking never fails a run: once the tracker is set up, every error is one ``warning:`` line on stderr and the
work goes on. Logging reads the run folder after it is complete, so what is logged is what is on disk, and a
resumed sweep logs only the points it has not logged before (children are found by their point key).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from spurlab.config_io import flatten
from spurlab.errors import SpurlabError

TRACKERS = ("mlflow",)
EXPERIMENT = "spurlab"
MAX_PARAM_LENGTH = 500  # MLflow's limit on a param value is 6000; long JSON lists say little in a params table


def default_uri() -> str:
    """``MLFLOW_TRACKING_URI``, else an ``mlruns/`` folder here (a SQLite store; MLflow 3 retired plain files)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path('mlruns').resolve() / 'mlflow.db'}"


def warn(message: str) -> None:
    print(f"warning: tracking: {' '.join(message.split())[:250]}", file=sys.stderr, flush=True)


@dataclass
class MlflowTracker:
    """Logs finished results to one MLflow experiment."""

    uri: str
    experiment: str = EXPERIMENT
    _client: Any = None
    _experiment_id: str | None = None

    @classmethod
    def open(cls, uri: str | None = None, experiment: str = EXPERIMENT) -> MlflowTracker | None:
        """A tracker for ``uri`` (default :func:`default_uri`); one line (exit 2) when MLflow is not installed,
        None (after a warning) when the store cannot be reached."""
        try:
            import mlflow  # noqa: F401
        except ImportError:
            raise SpurlabError("--tracking mlflow needs MLflow: pip install 'spurlab[tracking]'") from None
        # fail fast on an unreachable server instead of retrying for minutes
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
        tracker = cls(uri or default_uri(), experiment)
        try:
            tracker._connect()
        except Exception as exc:  # any store error: tracking is never a reason to stop
            detail = " ".join(str(exc).split())[:120]
            warn(f"cannot use {tracker.uri}, continuing without tracking ({type(exc).__name__}: {detail})")
            return None
        return tracker

    def _connect(self) -> None:
        from mlflow.tracking import MlflowClient

        if self.uri.startswith("sqlite:///"):
            Path(self.uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        with _quiet():
            self._client = MlflowClient(tracking_uri=self.uri)
            found = self._client.get_experiment_by_name(self.experiment)
            if found is None:
                artifacts = None
                if self.uri.startswith("sqlite:///"):  # artifacts beside the store, not in the working directory
                    artifacts = (Path(self.uri.removeprefix("sqlite:///")).parent / "artifacts").as_uri()
                self._experiment_id = self._client.create_experiment(self.experiment, artifact_location=artifacts)
            else:
                self._experiment_id = found.experiment_id

    def find(self, tags: dict[str, str]) -> str | None:
        """The id of an earlier run with these tags (so a resumed sweep does not log twice)."""
        query = " and ".join(f"tags.`{k}` = '{v}'" for k, v in tags.items())
        with _quiet():
            runs = self._client.search_runs([self._experiment_id], filter_string=query, max_results=1)
        return runs[0].info.run_id if runs else None

    def start(self, name: str, tags: dict[str, str], parent: str | None = None) -> str:
        extra = {"mlflow.parentRunId": parent} if parent else {}
        with _quiet():
            run = self._client.create_run(self._experiment_id, run_name=name, tags={**tags, **extra})
        return run.info.run_id

    def log_run_folder(self, run_dir: Path, *, name: str | None = None, parent: str | None = None,
                       tags: dict[str, str] | None = None) -> str | None:
        """Log a finished run folder as one MLflow run; None (after a warning) when that fails."""
        try:
            return self._log_run_folder(Path(run_dir), name, parent, tags or {})
        except Exception as exc:
            warn(f"{run_dir} was not logged: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
            return None

    def _log_run_folder(self, run_dir: Path, name: str | None, parent: str | None, tags: dict[str, str]) -> str:
        from mlflow.entities import Metric, Param, RunTag

        metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
        config = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8")) or {}
        meta = metrics.get("meta", {})
        run_tags = {"spurlab.kind": "run", "spurlab.version": str(meta.get("spurlab_version")),
                    "spurlab.run_dir": str(run_dir.resolve()), "spurlab.status": str(metrics.get("status")),
                    "spurlab.model": str(meta.get("model")), **tags}
        run_id = self.start(name or str(metrics.get("name")), run_tags, parent)
        params = [Param(k, _param(v)) for k, v in sorted(flatten(config).items())]
        values = [Metric(k, float(v), 0, 0) for k, v in sorted(metric_values(metrics).items())]
        with _quiet():
            for start in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
                self._client.log_batch(run_id, params=params[start:start + 100])
            for start in range(0, len(values), 1000):
                self._client.log_batch(run_id, metrics=values[start:start + 1000])
            self._client.log_batch(run_id, tags=[RunTag("spurlab.logged", "complete")])
            for file in ("report.html", "metrics.json", "config.yaml", "summary.md"):
                if (run_dir / file).is_file():
                    self._client.log_artifact(run_id, str(run_dir / file))
            if (run_dir / "adapter").is_dir():
                self._client.log_artifacts(run_id, str(run_dir / "adapter"), "adapter")
            self._client.set_terminated(run_id, "FINISHED")
        return run_id

    def finish(self, run_id: str, status: str = "FINISHED", artifacts: list[Path] | None = None) -> None:
        try:
            with _quiet():
                for path in artifacts or []:
                    if path.is_file():
                        self._client.log_artifact(run_id, str(path))
                self._client.set_terminated(run_id, status)
        except Exception as exc:
            warn(f"run {run_id} was not closed: {type(exc).__name__}")


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


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """MLflow's own INFO lines (creating tables, ...) are not spurlab's output."""
    import logging

    logger = logging.getLogger("mlflow")
    level = logger.level
    logger.setLevel(logging.WARNING)
    alembic = logging.getLogger("alembic")
    alembic_level = alembic.level
    alembic.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)
        alembic.setLevel(alembic_level)


def open_tracker(kind: str | None, uri: str | None = None) -> MlflowTracker | None:
    """The tracker a ``--tracking`` option names (None for none)."""
    if kind in (None, "", "none"):
        if uri:
            raise SpurlabError("--tracking-uri needs --tracking mlflow")
        return None
    if kind not in TRACKERS:
        raise SpurlabError(f"unknown tracking {kind!r} (known: none, {', '.join(TRACKERS)})")
    return MlflowTracker.open(uri)


__all__ = ["TRACKERS", "MlflowTracker", "default_uri", "metric_values", "open_tracker"]
