"""Sweeps: a grid of experiment configs (``spec``), run by an executor (``executors``: local or Ray) into a
sweep folder with resume (``runner``), results in SQLite (``store``) and as one flat table (``table``)."""

from spurlab.sweep.executors import LocalExecutor, RayExecutor, make_executor
from spurlab.sweep.runner import SweepFailed, SweepReport, run_sweep
from spurlab.sweep.spec import GridPoint, Sweep, load_spec, parse_spec
from spurlab.sweep.store import ResultRow, SweepStore
from spurlab.sweep.table import rows_to_frame

__all__ = ["GridPoint", "LocalExecutor", "RayExecutor", "ResultRow", "Sweep", "SweepFailed", "SweepReport",
           "SweepStore", "load_spec", "make_executor", "parse_spec", "rows_to_frame", "run_sweep"]
