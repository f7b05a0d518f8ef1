"""Executors run grid points and report each outcome as it arrives; the driver (``runner``) stores it.

``local``: one point after another in this process. ``ray``: every point a Ray task (``num_cpus`` =
``cpus_per_run``) on a local Ray or the cluster at ``address``; outcomes are collected with ``ray.wait``.
A point that raises is an outcome with ``status="failed"`` and a one-line error, never an exception here.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from spurlab.errors import SpurlabError
from spurlab.experiment.config import config_from_dict
from spurlab.experiment.runner import RunCache, run_experiment
from spurlab.runtime import now, torch_threads
from spurlab.sweep.storage import RunStorage


@dataclass
class Task:
    """What a worker needs to run one grid point (plain data, so it pickles to a Ray worker)."""

    key: str
    config: dict[str, Any]
    run_dir: str  # absolute, or the run folder's URI in storage
    threads: int | None = None  # torch CPU threads when the config leaves train.threads unset
    storage: str | None = None  # a --storage URI: run in a local scratch folder, then upload the run folder


@dataclass
class Outcome:
    key: str
    status: str  # complete | failed
    started: str
    finished: str
    seconds: float
    metrics: dict[str, Any] | None = None
    error: str | None = None
    reused: bool = False  # the run folder was already complete; nothing was recomputed


OnDone = Callable[[Outcome], None]


class Executor(Protocol):
    name: str
    cpus_per_run: int | None  # torch threads of a run whose config leaves train.threads unset (None: torch's)

    def run(self, tasks: list[Task], on_done: OnDone) -> None:
        """Run every task; call ``on_done`` once per task, in the order they finish."""


def one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    return first if isinstance(exc, SpurlabError) else f"{type(exc).__name__}: {first}".rstrip(": ")


def run_task(task: Task, cache: RunCache | None = None) -> Outcome:
    """Run one grid point into its run folder (resuming or reusing it, as ``spurlab run`` does). With
    ``task.storage`` the run folder is fetched from storage (when complete there), run in a scratch folder on
    this node and uploaded when it was not already complete."""
    started, t0 = now(), time.perf_counter()
    try:
        cfg = config_from_dict(task.config, source=f"grid point {task.key}")
        with torch_threads(None if cfg.train.threads else task.threads):
            if task.storage is None:
                result = run_experiment(cfg, task.run_dir, cache=cache, verbose=False, progress=False)
            else:
                storage = RunStorage(task.storage)
                with tempfile.TemporaryDirectory(prefix="spurlab-point-") as scratch:
                    local = Path(scratch) / task.key
                    storage.download(task.key, local)
                    result = run_experiment(cfg, local, cache=cache, verbose=False, progress=False)
                    if not result.reused:
                        storage.upload(local, task.key)
    except Exception as exc:
        return Outcome(task.key, "failed", started, now(), time.perf_counter() - t0, error=one_line(exc))
    meta = result.metrics.get("meta", {})
    if result.reused:  # report when the run was really done, not this instant check
        return Outcome(task.key, "complete", meta.get("started", started), meta.get("finished", now()),
                       float(meta.get("timings", {}).get("total_s", 0.0)), result.metrics, reused=True)
    return Outcome(task.key, "complete", started, now(), time.perf_counter() - t0, result.metrics)


@dataclass
class LocalExecutor:
    """Sequential, in this process; data splits and tokenizers are loaded once for the whole sweep."""

    cpus_per_run: int | None = None
    cache: RunCache = field(default_factory=RunCache)
    name: str = "local"

    def run(self, tasks: list[Task], on_done: OnDone) -> None:
        for task in tasks:
            self.cache.encodings.clear()  # the texts differ per point; keep memory flat over a long sweep
            if self.cpus_per_run and not task.threads:
                task.threads = self.cpus_per_run
            on_done(run_task(task, self.cache))


def _ray_task(task: Task, cwd: str) -> Outcome:
    """The Ray task: relative data/model paths in configs mean what they mean in the driver's folder."""
    if os.path.isdir(cwd):
        os.chdir(cwd)
    return run_task(task)


def ray_available() -> bool:
    return importlib.util.find_spec("ray") is not None


@dataclass
class RayExecutor:
    """One Ray task per grid point; ``address=None`` starts (and afterwards stops) a local Ray."""

    address: str | None = None
    cpus_per_run: int = 1
    gpus_per_run: float = 0.0
    name: str = "ray"

    def run(self, tasks: list[Task], on_done: OnDone) -> None:
        import ray
        from ray.exceptions import RayError

        started_here = not ray.is_initialized()
        if started_here:
            try:
                ray.init(address=self.address, include_dashboard=False, log_to_driver=True)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise SpurlabError(f"cannot start or reach Ray{f' at {self.address}' if self.address else ''}: "
                                   f"{one_line(exc)}") from None
        remote = ray.remote(num_cpus=self.cpus_per_run, num_gpus=self.gpus_per_run, max_retries=0)(_ray_task)
        pending: dict[Any, Task] = {}
        try:
            for task in tasks:
                task.threads = task.threads or self.cpus_per_run
                pending[remote.remote(task, os.getcwd())] = task
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    task = pending.pop(ref)
                    try:
                        outcome = ray.get(ref)
                    except RayError as exc:  # the worker died (killed, out of memory) or Ray failed
                        outcome = Outcome(task.key, "failed", now(), now(), 0.0, error=f"ray: {one_line(exc)}")
                    on_done(outcome)
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)
            if started_here:
                ray.shutdown()


def make_executor(name: str, *, address: str | None = None, cpus_per_run: int | None = None,
                  gpus_per_run: float = 0.0, cache: RunCache | None = None) -> Executor:
    """``local`` or ``ray``, checked before anything runs (one line when Ray is not installed)."""
    if name == "local":
        if address is not None:
            raise SpurlabError("--address is for --executor ray")
        return LocalExecutor(cpus_per_run, cache or RunCache())
    if name == "ray":
        if not ray_available():
            raise SpurlabError("--executor ray needs Ray: pip install 'spurlab[ray]'")
        return RayExecutor(address, cpus_per_run or 1, gpus_per_run)
    raise SpurlabError(f"unknown executor {name!r} (local, ray)")
