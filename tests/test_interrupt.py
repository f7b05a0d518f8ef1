"""Ctrl-C: a real SIGINT to a running ``spurlab`` exits 130 with one ``error: interrupted`` line, so
``spurlab sweep ... && spurlab figures ...`` stops; nothing finished-looking is left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import FILLER, NEG_WORDS, POS_WORDS


def _big_csv(path: Path, n: int = 300_000) -> Path:
    rng = np.random.default_rng(0)
    words = np.array(FILLER + POS_WORDS + NEG_WORDS)
    texts = [" ".join(row) for row in words[rng.integers(0, len(words), size=(n, 12))]]
    pd.DataFrame({"text": texts, "label": np.where(rng.random(n) < 0.5, "pos", "neg")}).to_csv(path, index=False)
    return path


def _interrupt(args: list[str], ready: Callable[[int], bool], tmp: Path) -> tuple[int, str]:
    """Start ``spurlab ARGS``, wait until ``ready(pid)`` (its work has begun), send SIGINT, return (code, stderr)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "spurlab", *args], cwd=tmp, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not ready(proc.pid) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, f"finished before it could be interrupted: {proc.stderr.read() if proc.stderr else ''}"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


def _has_open(path: Path) -> Callable[[int], bool]:
    def ready(pid: int) -> bool:
        try:
            return any(os.readlink(f"/proc/{pid}/fd/{fd}") == str(path) for fd in os.listdir(f"/proc/{pid}/fd"))
        except OSError:
            return False
    return ready


def _exists(path: Path) -> Callable[[int], bool]:
    return lambda _pid: path.exists()


def _check(code: int, err: str) -> None:
    assert code == 130, err
    assert err.strip().splitlines() == ["error: interrupted"], err


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to see when the command has started")
@pytest.mark.parametrize("command", ["inject", "scan"])
def test_sigint_while_reading_or_computing(command: str, tmp_path: Path) -> None:
    data = _big_csv(tmp_path / "big.csv")
    out = tmp_path / "out"
    extra = ["--target-label", "pos", "--proportion", "0.5"] if command == "inject" else []
    reading, writing = _has_open(data), _exists(out)  # a fast reader may be done with the file between two polls
    code, err = _interrupt([command, str(data), "--out", str(out), *extra],
                           lambda pid: reading(pid) or writing(pid), tmp_path)
    _check(code, err)
    assert not (out / "summary.json").exists() and not (out / "findings.json").exists()


def _config(tmp: Path, model: Path, data: Path) -> dict:
    return {"name": "sigint", "data": {"spec": str(data), "test_size": 0.25},
            "injection": {"source": "date", "target_label": "pos", "proportion": 0.5},
            "model": {"name": str(model)},
            "train": {"mode": "lora", "epochs": 200, "batch_size": 8, "max_length": 24, "precision": "fp32",
                      "threads": 1, "device": "cpu"},
            "evaluation": {"base": False}}


def test_sigint_during_a_run(tmp_path: Path, tiny_models: dict[str, Path], synthetic_csv: Path) -> None:
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(_config(tmp_path, tiny_models["bert"], synthetic_csv)), encoding="utf-8")
    out = tmp_path / "run"
    code, err = _interrupt(["run", str(config), "--out", str(out), "--no-progress"], _exists(out / "status.json"),
                           tmp_path)
    _check(code, err)
    assert not (out / "DONE").exists()
    assert yaml.safe_load((out / "status.json").read_text(encoding="utf-8"))["status"] == "failed"


def test_sigint_during_a_sweep(tmp_path: Path, tiny_models: dict[str, Path], synthetic_csv: Path) -> None:
    spec = tmp_path / "sweep.yaml"
    spec.write_text(yaml.safe_dump({"base": _config(tmp_path, tiny_models["bert"], synthetic_csv),
                                    "grid": {"train.lora.r": [2, 4]}}), encoding="utf-8")
    out = tmp_path / "sweep"
    code, err = _interrupt(["sweep", str(spec), "--out", str(out)], _exists(out / "runs"), tmp_path)
    _check(code, err)
    assert not list(out.glob("runs/*/DONE"))
