"""The package's structure: the layer contract in pyproject.toml holds (no import points up a layer, no cycles
between sibling modules), and every module imports on its own in a fresh interpreter."""

from __future__ import annotations

import json
import os
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import spurlab

ROOT = Path(__file__).resolve().parents[1]


def test_layer_contract_holds() -> None:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    if exe is None:
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    done = subprocess.run([exe, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "2 kept, 0 broken" in done.stdout


def _modules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages(spurlab.__path__, "spurlab.")
                  if not m.name.endswith("__main__"))


# Imports every module named on stdin in a fresh child process forked from one that has loaded only the heavy
# third-party libraries (no spurlab module), so the check takes seconds instead of minutes.
FORK_IMPORTS = """
import importlib, json, os, sys, traceback
import numpy, pandas, scipy.sparse, torch, transformers, peft, pydantic, typer, rich, yaml  # noqa: F401
assert not [m for m in sys.modules if m.startswith("spurlab")]
failed = {}
for name in sys.stdin.read().split():
    pid = os.fork()
    if pid == 0:
        try:
            importlib.import_module(name)
        except BaseException:
            sys.stderr.write(traceback.format_exc().strip().splitlines()[-1] + "\\n")
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    if status != 0:
        failed[name] = status
print(json.dumps(failed))
"""


def test_every_module_imports_on_its_own() -> None:
    modules = _modules()
    assert len(modules) > 60 and "spurlab.experiment.runner" in modules
    done = subprocess.run([sys.executable, "-c", FORK_IMPORTS], input=" ".join(modules), capture_output=True,
                          text=True, timeout=600, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {}, done.stderr[-3000:]
