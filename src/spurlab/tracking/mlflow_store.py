"""MLflow tracking: finished run folders as MLflow runs (params, metrics, tags, the report and the adapter as
artifacts), a sweep as a parent run with one child per grid point. A resumed sweep logs only the points it has
not logged before (children are found by their point key)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spurlab.errors import SpurlabError
from spurlab.tracking.base import EXPERIMENT, read_run_folder, warn


def default_uri() -> str:
    """``MLFLOW_TRACKING_URI``, else an ``mlruns/`` folder here (a SQLite store; MLflow 3 retired plain files)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path('mlruns').resolve() / 'mlflow.db'}"


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

    def find(self, tags: dict[str, str], parent: str | None = None) -> str | None:
        """The id of an earlier run with these tags (so a resumed sweep does not log twice)."""
        tags = {**tags, "mlflow.parentRunId": parent} if parent else tags
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

        record = read_run_folder(run_dir, name, tags)
        run_id = self.start(record.name, record.tags, parent)
        params = [Param(k, v) for k, v in record.params.items()]
        values = [Metric(k, float(v), 0, 0) for k, v in sorted(record.metrics.items())]
        with _quiet():
            for start in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
                self._client.log_batch(run_id, params=params[start:start + 100])
            for start in range(0, len(values), 1000):
                self._client.log_batch(run_id, metrics=values[start:start + 1000])
            self._client.log_batch(run_id, tags=[RunTag("spurlab.logged", "complete")])
            for file in record.files:
                self._client.log_artifact(run_id, str(file))
            if record.adapter is not None:
                self._client.log_artifacts(run_id, str(record.adapter), "adapter")
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


__all__ = ["MlflowTracker", "default_uri"]
