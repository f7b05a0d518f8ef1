"""Run a sweep into a folder, resuming whatever an earlier (killed, failed) run of the same spec left.

Sweep folder::

    sweep.json       the spec's identity (name, spec hash, grid, point keys); written before any run
    sweep.db         the results store (one row per finished or failed grid point), see ``store``
    runs/<key>/      one run folder per grid point (``spurlab run``'s layout, with its own resume)

Resume: points whose row is ``complete`` are skipped; ``failed`` and missing ones are run (again). A point
whose run folder finished but whose row was not written yet (a kill in between) is picked up from the folder
without recomputing. Another spec into the same folder is refused unless ``overwrite`` (which starts over).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spurlab import __version__
from spurlab.atomic import make_out_dir, write_json
from spurlab.errors import SpurlabError
from spurlab.experiment.config import config_to_dict
from spurlab.experiment.runner import RunCache, load_data, validate_run
from spurlab.models.loading import check_model_source
from spurlab.outputs import Outputs, out_state, read_json_object
from spurlab.precision import choose_precision
from spurlab.report.html import REPORT_FILE
from spurlab.runtime import resolve_device, torch_threads
from spurlab.sweep.executors import Executor, LocalExecutor, Outcome, Task
from spurlab.sweep.report import write_sweep_report
from spurlab.sweep.spec import Sweep, format_value
from spurlab.sweep.storage import RunStorage
from spurlab.sweep.store import DB_NAME, ResultRow, SweepStore
from spurlab.tracking import Tracker, warn

SWEEP_FILE = "sweep.json"
RUNS = "runs"
FORMAT = "spurlab.sweep"


class SweepFailed(SpurlabError):
    """Some grid points failed (each is a ``failed`` row); the others finished."""

    exit_code = 1


@dataclass
class SweepReport:
    total: int
    skipped: list[str] = field(default_factory=list)  # complete in the store before this call
    complete: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


DERIVED = "arena"  # the comparison `spurlab arena` derives from the store (arena.csv, arena.md, arena.png)
SWEEP = Outputs(marker=SWEEP_FILE, what="sweep", format=FORMAT, check_schema=False, request_key="spec_hash",
                owned=(SWEEP_FILE, DB_NAME, f"{DB_NAME}-journal", f"{DB_NAME}-wal", f"{DB_NAME}-shm", RUNS,
                       REPORT_FILE, DERIVED))


def read_sweep_file(folder: Path) -> dict[str, Any] | None:
    """``sweep.json`` of a sweep folder (None when there is none); a foreign file there is one line."""
    path = folder / SWEEP_FILE
    if not path.exists():
        return None
    data = read_json_object(path)
    if data is None or data.get("format") != FORMAT:
        raise SpurlabError(f"{path} is not a spurlab sweep file (use another --out, or --overwrite)")
    return data


def check_folder(out: Path, sweep: Sweep, overwrite: bool) -> bool:
    """Whether ``out`` can take this sweep (True: it holds this sweep already). Writes nothing."""

    def difference(info: dict[str, Any]) -> str:
        old, new = set(info.get("keys") or []), {p.key for p in sweep.points}
        what = (f"{len(new - old)} grid point(s) not in it, {len(old - new)} of its points gone" if old != new
                else "the same grid points with other configs")
        return f"sweep {info.get('name')!r} of a different spec ({what})"

    state = out_state(out, SWEEP, sweep.spec_hash, overwrite, lambda folder, marker: True, difference)
    return state == "complete"


def _clear(out: Path) -> None:
    """Remove what a sweep owns in ``out`` (the store first: a kill half-way leaves no stale complete rows)."""
    for name in (DB_NAME, f"{DB_NAME}-journal", f"{DB_NAME}-wal", f"{DB_NAME}-shm", SWEEP_FILE):
        (out / name).unlink(missing_ok=True)
    shutil.rmtree(out / RUNS, ignore_errors=True)


def prepare_folder(out: Path, sweep: Sweep, overwrite: bool) -> SweepStore:
    holds_it = check_folder(out, sweep, overwrite)
    if overwrite and out.is_dir():
        _clear(out)
    make_out_dir(out)
    if not holds_it:
        write_json(out / SWEEP_FILE, {
            "format": FORMAT, "schema_version": 1, "spurlab_version": __version__, "name": sweep.name,
            "spec_hash": sweep.spec_hash, "source": sweep.source, "grid": sweep.grid,
            "keys": [p.key for p in sweep.points],
        })
    store = SweepStore(out)
    store.init()
    return store


def preflight(sweep: Sweep) -> RunCache:
    """The checks ``spurlab run`` makes before it writes anything, for every grid point: data loads, target
    labels and spurious classes exist, the model is there. Returns the cache holding the loaded splits."""
    cache = RunCache()
    models_ok: set[str] = set()
    for p in sweep.points:
        try:
            validate_run(p.config, load_data(p.config, cache))
            model_key = repr(p.config.model.model_dump())
            if model_key not in models_ok:
                check_model_source(p.config.model)
                models_ok.add(model_key)
        except SpurlabError as exc:
            raise type(exc)(f"{sweep.source}: grid point {p.key}: {exc}") from None
    return cache


def measure_precision_once(sweep: Sweep, worker_threads: int | None) -> None:
    """Run ``precision: auto``'s probe here, on the threads a worker will use, before parallel workers would
    time it against each other; they then read the cached result (workers on other machines measure their
    own)."""
    for device, threads in {(p.config.train.device, p.config.train.threads or worker_threads)
                            for p in sweep.points if p.config.train.precision == "auto"}:
        with torch_threads(threads):
            choose_precision("auto", resolve_device(device))


def describe_outcome(o: Outcome) -> str:
    if o.status != "complete" or not o.metrics:
        return f"failed: {o.error}"
    parts = [f"clean acc {o.metrics['clean']['accuracy']:.3f}"]
    for name, m in o.metrics.items():
        if name.startswith("spurious:") and m.get("attack_success_rate") is not None:
            parts.append(f"attack success ({name.split(':', 1)[1]}) {m['attack_success_rate']:.3f}")
    return ", ".join(parts) + (" (already complete in its run folder)" if o.reused else f", {o.seconds:.1f} s")


def run_sweep(sweep: Sweep, out: str | Path, executor: Executor, *, overwrite: bool = False,
              echo: Callable[[str], None] = print, html_report: bool = True,
              tracker: Tracker | None = None, storage: RunStorage | None = None) -> SweepReport:
    """Run the points not yet complete in ``out``'s store; a failed point is recorded and the rest go on. Then
    (``html_report``) write the sweep's ``report.html``, failures included. With a ``tracker``, the sweep is a
    parent run and every complete point a child run, each logged once however often the sweep is resumed.
    With ``storage`` the run folders live there instead of in ``out/runs`` (see :mod:`spurlab.sweep.storage`);
    ``out`` keeps the store, ``sweep.json`` and the report.

    Raises :class:`SweepFailed` at the end if any point failed in this call.
    """
    out = Path(out)
    check_folder(out, sweep, overwrite)  # before the (slower) preflight, so a wrong --out fails fast
    cache = preflight(sweep)
    measure_precision_once(sweep, executor.cpus_per_run)
    if isinstance(executor, LocalExecutor):
        executor.cache = cache
    if storage is not None:
        _check_storage(storage, sweep, overwrite)
    store = prepare_folder(out, sweep, overwrite)
    statuses = store.statuses()
    report = SweepReport(total=len(sweep.points))
    report.skipped = [p.key for p in sweep.points if statuses.get(p.key) == "complete"]
    todo = [p for p in sweep.points if statuses.get(p.key) != "complete"]
    retried = sum(statuses.get(p.key) == "failed" for p in todo)
    echo(f"sweep {sweep.name}: {len(sweep.points)} grid points, {len(report.skipped)} already complete, "
         f"{len(todo)} to run{f' ({retried} failed before)' if retried else ''} ({executor.name} executor)")
    points = {p.key: p for p in todo}
    runs = (out / RUNS).resolve()

    def run_dir(key: str) -> str:
        return storage.run_uri(key) if storage is not None else f"{RUNS}/{key}"

    tasks = [Task(p.key, config_to_dict(p.config), storage.run_uri(p.key) if storage else str(runs / p.key),
                  storage=storage.uri if storage else None) for p in todo]

    def on_done(o: Outcome) -> None:
        p = points[o.key]
        store.put(ResultRow(p.key, p.index, p.overrides, config_to_dict(p.config), o.status,  # type: ignore[arg-type]
                            o.error, o.metrics, run_dir(p.key), o.started, o.finished, o.seconds))
        (report.complete if o.status == "complete" else report.failed).append(p.key)
        done = len(report.complete) + len(report.failed)
        echo(f"[{done}/{len(todo)}] {p.key}: {describe_outcome(o)}")

    parent = _tracking_parent(tracker, sweep)
    logged: set[str] = set()

    def log_point(key: str) -> None:
        if tracker is None or parent is None or key in logged:
            return
        logged.add(key)
        tags = {"spurlab.point_key": key, "spurlab.spec_hash": sweep.spec_hash}
        if tracker.find(tags, parent) is None:
            if storage is None:
                tracker.log_run_folder(out / RUNS / key, name=key, parent=parent, tags=tags)
                return
            with storage.local_copy(key) as local:
                if local is not None:
                    tracker.log_run_folder(local, name=key, parent=parent,
                                           tags={**tags, "spurlab.run_dir": storage.run_uri(key)})

    def on_done_and_log(o: Outcome) -> None:
        on_done(o)
        if o.status == "complete":
            log_point(o.key)

    executor.run(tasks, on_done_and_log)
    for key in report.skipped:  # complete before this call, maybe never logged (a kill, or no tracking then)
        log_point(key)
    echo(f"sweep {sweep.name}: {len(report.skipped) + len(report.complete)} of {report.total} complete"
         f"{f', {len(report.failed)} failed' if report.failed else ''}; results in {out / DB_NAME}")
    if html_report:
        echo(f"report: {write_sweep_report(out, read_sweep_file(out) or {})}")
    if tracker is not None and parent is not None:
        tracker.finish(parent, "FAILED" if report.failed else "FINISHED", [out / REPORT_FILE, out / SWEEP_FILE])
    if report.failed:
        raise SweepFailed(f"{len(report.failed)} of {report.total} grid points failed (first: {report.failed[0]}); "
                          f"see 'spurlab results {out}', re-run the same command to retry them")
    return report


def _check_storage(storage: RunStorage, sweep: Sweep, overwrite: bool) -> None:
    """Storage holding another sweep is refused (or cleared with ``overwrite``); then it is marked as this one's."""
    info = storage.read_sweep()
    if info is not None and info.get("spec_hash") != sweep.spec_hash and not overwrite:
        raise SpurlabError(f"storage {storage.uri} holds sweep {info.get('name')!r} of a different spec "
                           "(use another --storage, or --overwrite)")
    if overwrite:
        storage.clear()
    if info is None or info.get("spec_hash") != sweep.spec_hash:
        storage.write_sweep({"format": FORMAT, "name": sweep.name, "spec_hash": sweep.spec_hash,
                             "keys": [p.key for p in sweep.points]})


def _tracking_parent(tracker: Tracker | None, sweep: Sweep) -> str | None:
    """The parent run of this sweep: found by its spec hash when a killed sweep is resumed, else started."""
    if tracker is None:
        return None
    tags = {"spurlab.kind": "sweep", "spurlab.spec_hash": sweep.spec_hash}
    try:
        return tracker.find(tags) or tracker.start(sweep.name, {**tags, "spurlab.grid": json.dumps(sweep.grid)[:5000]})
    except Exception as exc:  # tracking never stops a sweep
        warn(f"sweep {sweep.name} is not tracked: {type(exc).__name__}: {exc}")
        return None


def dry_run_lines(sweep: Sweep, out: str | Path, overwrite: bool = False) -> list[str]:
    """Every check a run makes before it writes (the folder, every point's config, data and model), then the
    grid as lines to print; nothing is run or written."""
    check_folder(Path(out), sweep, overwrite)
    preflight(sweep)
    return grid_lines(sweep)


def grid_lines(sweep: Sweep) -> list[str]:
    """The expanded grid, one line per point (for ``--dry-run``)."""
    width = max(len(p.key) for p in sweep.points)
    lines = [f"sweep {sweep.name}: {len(sweep.points)} grid points ("
             + " x ".join(f"{len(v)} {k}" for k, v in sweep.grid.items()) + ")"]
    for p in sweep.points:
        over = "  ".join(f"{k}={format_value(v)}" for k, v in p.overrides.items())
        lines.append(f"{p.index + 1:>4}  {p.key:<{width}}  {over}")
    return lines
