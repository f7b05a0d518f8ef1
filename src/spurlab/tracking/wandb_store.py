"""Weights & Biases tracking: finished run folders as W&B runs (the config, the metrics as the run summary, the
report, metrics, config and adapter as one artifact), a sweep as a W&B *group* with one run per grid point and
a last run for the sweep itself (its report and spec).

W&B offers no search of offline runs, so what was logged is kept in a ledger file beside the runs, and every
run's id is derived from its tags: a sweep killed while logging and resumed logs the rest, and a point logged
twice (a kill between logging and the ledger) lands on the same W&B run id, which W&B merges, never a duplicate.

The mode is ``WANDB_MODE`` when set, else ``online`` with ``WANDB_API_KEY`` and ``offline`` without (runs wait
under ``<dir>/wandb/`` for ``wandb sync``); a tracking command never asks to log in.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spurlab.atomic import write_json
from spurlab.errors import SpurlabError
from spurlab.tracking.base import EXPERIMENT, read_run_folder, warn

LEDGER = "spurlab-wandb-ledger.json"


def default_dir() -> str:
    """``WANDB_DIR``, else the working directory (W&B writes its runs under ``<dir>/wandb/``)."""
    return os.environ.get("WANDB_DIR") or "."


@dataclass
class WandbTracker:
    """Logs finished results to one W&B project, offline unless W&B is configured for a server."""

    uri: str  # the folder W&B writes under (and the ledger lives in)
    project: str = EXPERIMENT
    mode: str = "offline"

    @classmethod
    def open(cls, uri: str | None = None, project: str = EXPERIMENT) -> WandbTracker | None:
        """A tracker writing under ``uri`` (default :func:`default_dir`); one line (exit 2) when W&B is not
        installed, None (after a warning) when the folder cannot be written."""
        try:
            import wandb  # noqa: F401
        except ImportError:
            raise SpurlabError("--tracking wandb needs W&B: pip install 'spurlab[wandb]'") from None
        mode = os.environ.get("WANDB_MODE") or ("online" if os.environ.get("WANDB_API_KEY") else "offline")
        folder = Path(uri or default_dir()).expanduser().resolve()
        tracker = cls(str(folder), os.environ.get("WANDB_PROJECT") or project, mode)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            tracker._write_ledger(tracker._ledger())  # writable, and a ledger that is not JSON fails here
        except Exception as exc:
            warn(f"cannot use {folder}, continuing without tracking ({type(exc).__name__}: {exc})")
            return None
        return tracker

    @property
    def ledger_path(self) -> Path:
        return Path(self.uri) / LEDGER

    def _ledger(self) -> dict[str, str]:
        if not self.ledger_path.exists():
            return {}
        data = json.loads(self.ledger_path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or not isinstance(data.get("runs"), dict):
            raise ValueError(f"{self.ledger_path} is not a spurlab W&B ledger")
        return {str(k): str(v) for k, v in data["runs"].items()}

    def _write_ledger(self, runs: dict[str, str]) -> None:
        write_json(self.ledger_path, {"project": self.project, "runs": runs})

    def _remember(self, key: str, run_id: str) -> None:
        self._write_ledger({**self._ledger(), key: run_id})

    def find(self, tags: dict[str, str], parent: str | None = None) -> str | None:
        return self._ledger().get(_key(tags, parent))

    def start(self, name: str, tags: dict[str, str], parent: str | None = None) -> str:
        """A sweep's group name (no W&B run yet: the sweep's own run is logged by :meth:`finish`)."""
        key = _key(tags, parent)
        group = f"{name}-{_id(key)[:8]}"
        self._remember(key, group)
        return group

    def log_run_folder(self, run_dir: Path, *, name: str | None = None, parent: str | None = None,
                       tags: dict[str, str] | None = None) -> str | None:
        try:
            record = read_run_folder(run_dir, name, tags)
            key = _key(tags or {}, parent)
            run_id = _id(key)
            config = {**record.config, "spurlab": record.tags}
            with self._run(run_id, record.name, parent, "point" if parent else "run", config) as run:
                run.summary.update(record.metrics)
                self._artifact(run, f"run-{run_id}", "spurlab-run", record.files, record.adapter)
            self._remember(key, run_id)
            return run_id
        except Exception as exc:
            warn(f"{run_dir} was not logged: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
            return None

    def finish(self, run_id: str, status: str = "FINISHED", artifacts: list[Path] | None = None) -> None:
        """Log the sweep ``run_id`` (a group) as its own run, with its status and files."""
        try:
            sweep_run = _id(f"sweep:{run_id}")
            with self._run(sweep_run, run_id, run_id, "sweep", {"spurlab": {"status": status}}) as run:
                run.summary["status"] = status
                self._artifact(run, f"sweep-{sweep_run}", "spurlab-sweep",
                               [p for p in artifacts or [] if p.is_file()], None)
        except Exception as exc:
            warn(f"sweep {run_id} was not closed: {type(exc).__name__}")

    @contextlib.contextmanager
    def _run(self, run_id: str, name: str, group: str | None, job_type: str, config: dict[str, Any]) -> Iterator:
        import wandb

        with _quiet():
            run = wandb.init(project=self.project, dir=self.uri, mode=self.mode, id=run_id, name=name, group=group,
                             job_type=job_type, config=config, reinit="create_new",
                             resume="allow" if self.mode == "online" else None,
                             settings=wandb.Settings(silent=True, console="off", save_code=False,
                                                     x_disable_stats=True))
            try:
                yield run
            except BaseException:
                run.finish(exit_code=1)
                raise
            run.finish()

    @staticmethod
    def _artifact(run: Any, name: str, kind: str, files: list[Path], adapter: Path | None) -> None:
        import wandb

        if not files and adapter is None:
            return
        artifact = wandb.Artifact(name, type=kind)
        for file in files:
            artifact.add_file(str(file))
        if adapter is not None:
            artifact.add_dir(str(adapter), name="adapter")
        run.log_artifact(artifact)


def _key(tags: dict[str, str], parent: str | None) -> str:
    return json.dumps({"tags": dict(sorted(tags.items())), "parent": parent}, sort_keys=True)


def _id(key: str) -> str:
    """A W&B run id from a ledger key: the same tags always name the same run."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """W&B's own log lines are not spurlab's output."""
    logger = logging.getLogger("wandb")
    level = logger.level
    logger.setLevel(logging.ERROR)
    old = os.environ.get("WANDB_SILENT")
    os.environ["WANDB_SILENT"] = "true"
    try:
        yield
    finally:
        logger.setLevel(level)
        if old is None:
            os.environ.pop("WANDB_SILENT", None)
        else:
            os.environ["WANDB_SILENT"] = old


__all__ = ["LEDGER", "WandbTracker", "default_dir"]
