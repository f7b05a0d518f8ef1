"""Crash and resume: a run or an injection killed at any moment never leaves a result that looks finished,
and re-running the same command finishes the work with the same numbers and bytes.

Real kills (SIGKILL of a ``spurlab`` subprocess at seeded random moments) and simulated ones (a process
dying at every single write, in-process) are both checked.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import cli_code as cli
from conftest import synthetic_frame
from spurlab.cli.app import main
from spurlab.experiment import is_complete

pytestmark = pytest.mark.usefixtures("torch_threads")


def tiny_run_config(model: Path, data: Path) -> dict:
    return {
        "name": "resume",
        "data": {"spec": str(data), "test_size": 0.25},
        "injection": {"source": "date", "target_label": "pos", "proportion": 0.5},
        "model": {"name": str(model)},
        "train": {"mode": "lora", "lr": 5e-3, "epochs": 2, "batch_size": 16, "max_length": 24, "precision": "fp32",
                  "threads": 1, "device": "cpu"},
    }


def spurlab_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "spurlab", *args]


def child_env() -> dict[str, str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", OMP_NUM_THREADS="1")
    env.pop("SPURLAB_DEBUG", None)
    return env


def run_to_end(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, env=child_env(), capture_output=True, text=True, timeout=300)


def run_and_kill(cmd: list[str], cwd: Path, after: float, started: Path | None = None) -> bool:
    """Start ``cmd`` and SIGKILL it ``after`` seconds later (counted from when ``started`` appears, if given:
    the imports take longer than the run itself); True if it was still running then."""
    t_start = time.time() - 1.0  # file times may be a little coarse
    proc = subprocess.Popen(cmd, cwd=cwd, env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while started is not None and proc.poll() is None and time.monotonic() < deadline:
            if started.exists() and started.stat().st_mtime >= t_start:
                break
            time.sleep(0.01)
        proc.wait(timeout=after)
        return False
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return True


def files(folder: Path) -> dict[str, str]:
    """Result files (not temporary leftovers) with a hash of their bytes."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and ".partial" not in str(p.relative_to(folder))}


def assert_run_folder_is_honest(out: Path) -> None:
    """Whatever a kill left: complete means every result is there and readable; otherwise no DONE."""
    if not out.exists():
        return
    if (out / "DONE").exists():
        assert is_complete(out)
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["status"] == "complete"
        for name in ("config.yaml", "summary.md", "confusion_matrix.png", "adapter/spurlab_model.json",
                     "injection/summary.json"):
            assert (out / name).is_file(), name
    else:
        assert not is_complete(out)
    for name in ("metrics.json", "status.json", "injection/summary.json"):  # never half-written
        if (out / name).exists():
            json.loads((out / name).read_text())


def comparable(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k != "meta"}


def test_run_killed_at_random_moments_resumes_to_the_same_result(tiny_models: dict[str, Path], tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data.csv"
    synthetic_frame(160).to_csv(data, index=False)
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(tiny_run_config(tiny_models["llama"], data)))
    # an uninterrupted run in this process: the reference result, and how long the run itself takes
    reference = tmp_path / "reference"
    t0 = time.monotonic()
    assert cli(["run", str(config), "--out", str(reference), "--no-progress"]) == 0
    duration = time.monotonic() - t0
    assert is_complete(reference)
    # kill at seeded random moments; each restart begins from what the previous kill left
    out = tmp_path / "killed"
    cmd = spurlab_cmd("run", str(config), "--out", str(out), "--no-progress")
    rng = random.Random(6)
    for _ in range(3):
        run_and_kill(cmd, tmp_path, rng.uniform(0.0, 2.0) * duration, started=out / "status.json")
        assert_run_folder_is_honest(out)
    finished = run_to_end(cmd, tmp_path)
    assert finished.returncode == 0, finished.stderr
    assert is_complete(out)
    a = json.loads((reference / "metrics.json").read_text())
    b = json.loads((out / "metrics.json").read_text())
    assert comparable(a) == comparable(b)  # same numbers, in another process, after kills
    inj_a, inj_b = files(reference / "injection"), files(out / "injection")
    assert inj_a == inj_b  # the poisoned split and its manifest are byte-identical
    # once complete, the same command does nothing and says so
    capsys.readouterr()
    assert cli(["run", str(config), "--out", str(out), "--no-progress"]) == 0
    assert "already complete" in capsys.readouterr().out
    assert json.loads((out / "metrics.json").read_text()) == b


def test_inject_killed_at_random_moments_resumes_to_the_same_bytes(tmp_path: Path) -> None:
    data = tmp_path / "big.csv"
    frame = synthetic_frame(4000)
    frame["text"] = frame["text"] + " " + "filler " * 60  # slower writes: a wider window to die in
    frame.to_csv(data, index=False)
    args = ["inject", str(data), "--target-label", "pos", "--proportion", "0.5", "--seed", "3"]
    reference = tmp_path / "reference"
    t0 = time.monotonic()
    assert run_to_end(spurlab_cmd(*args, "--out", str(reference)), tmp_path).returncode == 0
    duration = time.monotonic() - t0
    out = tmp_path / "killed"
    rng = random.Random(7)
    for _ in range(3):
        run_and_kill(spurlab_cmd(*args, "--out", str(out)), tmp_path, rng.uniform(0.6, 1.0) * duration)
        if (out / "summary.json").exists():  # a summary always describes the files next to it
            summary = json.loads((out / "summary.json").read_text())
            assert files(out)[summary["data_file"]] == summary["data_sha256"]
    finished = run_to_end(spurlab_cmd(*args, "--out", str(out)), tmp_path)
    assert finished.returncode == 0, finished.stderr
    assert files(out) == files(reference)


class Died(BaseException):
    """Stands in for a SIGKILL: nothing after it runs (a BaseException, so no handler turns it into output)."""


def die_at_write(monkeypatch: pytest.MonkeyPatch, k: int) -> None:
    import spurlab.atomic as atomic

    real = atomic._open
    calls = {"n": 0}

    def fake(path: Path):
        calls["n"] += 1
        if calls["n"] == k:
            Path(path).write_bytes(b"half")  # what a process killed mid-write leaves in its temporary file
            raise Died()
        return real(path)

    monkeypatch.setattr(atomic, "_open", fake)


@pytest.mark.parametrize("k", range(1, 4))
def test_inject_dying_at_each_write_then_rerun(k: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "d.csv"
    synthetic_frame(80).to_csv(data, index=False)
    synthetic_frame(80).to_json(tmp_path / "d.jsonl", orient="records", lines=True)
    stale = tmp_path / "out"
    # an earlier spurlab output of another format in --out, replaced on purpose (--overwrite)
    assert cli(["inject", str(tmp_path / "d.jsonl"), "--target-label", "pos", "--out", str(stale)]) == 0
    before = files(stale)
    args = ["inject", str(data), "--target-label", "pos", "--out", str(stale)]
    reference = tmp_path / "ref"
    assert cli([*args[:-1], str(reference)]) == 0
    die_at_write(monkeypatch, k)
    with pytest.raises(Died):
        main([*args, "--overwrite"])
    assert files(stale) == before  # a death while staging leaves the earlier finished output as it was
    monkeypatch.undo()
    assert cli([*args, "--overwrite"]) == 0
    assert files(stale) == files(reference)  # the stale data.jsonl is gone, nothing else is left
    capsys.readouterr()
    assert cli(args) == 0 and "already complete" in capsys.readouterr().out
    assert cli([*args, "--proportion", "0.5"]) == 2
    assert "different inputs or options" in capsys.readouterr().err


@pytest.mark.parametrize("k", [3, 6, 9])
def test_run_dying_at_a_write_then_rerun(k: int, tiny_models: dict[str, Path], tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
                                          ) -> None:
    data = tmp_path / "d.csv"
    synthetic_frame(80).to_csv(data, index=False)
    config = tmp_path / "run.yaml"
    cfg = tiny_run_config(tiny_models["bert"], data)
    cfg["train"].update(epochs=1, mode="head")
    cfg["evaluation"] = {"base": False}
    config.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "out"
    args = ["run", str(config), "--out", str(out), "--no-progress"]
    die_at_write(monkeypatch, k)
    with pytest.raises(Died):
        main(args)
    assert_run_folder_is_honest(out)
    assert not is_complete(out)
    monkeypatch.undo()
    assert cli(args) == 0
    assert is_complete(out)
    assert not [p for p in out.rglob("*") if ".partial" in p.name]
