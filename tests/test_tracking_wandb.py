"""``--tracking wandb`` in W&B's offline mode: the runs W&B writes are read back record by record (config,
summary, artifacts), a sweep's points are logged once however often it is resumed, and a folder that cannot be
written warns and the run completes."""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import require_package, run_cli
from test_tracking import _base, killed_while_logging

pytestmark = pytest.mark.usefixtures("torch_threads")


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    require_package("wandb")
    for name in ("WANDB_API_KEY", "WANDB_DIR", "WANDB_PROJECT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")


def _records(path: Path) -> list[Any]:
    """The records of a ``.wandb`` file: a 7-byte header, then 32 KiB blocks of (crc32, length, type) chunks
    (type 1 whole, 2 first, 3 middle, 4 last), each record one ``wandb_internal_pb2.Record``."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    pos, pending, out = 7, b"", []
    while pos + 7 <= len(data):
        left = 32768 - pos % 32768
        if left < 7:  # a block's tail too short for a header is padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if kind == 0:
            break
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(pending)
            out.append(record)
    return out


def _runs(folder: Path, wait_s: float = 10.0) -> dict[str, dict[str, Any]]:
    """Every offline run under ``folder``: its id -> name, group, job type, config, summary, artifact files.
    W&B's writer process may still be flushing a file when the command returns: a file without its run record
    is read again for up to ``wait_s`` seconds before that counts as a failure."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return _read_runs(folder)
        except _Unflushed as exc:
            if time.monotonic() > deadline:
                raise AssertionError(f"{exc.args[0]} has no run record after {wait_s} s") from None
            time.sleep(0.5)


class _Unflushed(Exception):
    pass


def _read_runs(folder: Path) -> dict[str, dict[str, Any]]:
    runs: dict[str, dict[str, Any]] = {}
    for path in sorted((folder / "wandb").glob("offline-run-*/run-*.wandb")):
        got: dict[str, Any] = {"config": {}, "summary": {}, "files": set(), "dirs": 1}
        for record in _records(path):
            kind = record.WhichOneof("record_type")
            if kind == "run":
                got.update(id=record.run.run_id, name=record.run.display_name, group=record.run.run_group,
                           job_type=record.run.job_type)
                got["config"].update({u.key: json.loads(u.value_json) for u in record.run.config.update})
            elif kind == "summary":
                got["summary"].update({u.key: json.loads(u.value_json) for u in record.summary.update if u.key})
            elif kind == "artifact":
                got["files"] |= {entry.path for entry in record.artifact.manifest.contents}
        if "id" not in got:
            raise _Unflushed(str(path))
        if got["id"] in runs:
            runs[got["id"]]["dirs"] += 1
        else:
            runs[got["id"]] = got
    return runs


def test_a_run_is_logged_once_with_its_config_metrics_and_artifacts(
        tiny_models: dict[str, Path], synthetic_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(_base(tiny_models["bert"], synthetic_csv)))
    folder = tmp_path / "tracked"
    args = ["run", str(config), "--out", str(tmp_path / "out"), "--no-progress", "--tracking", "wandb",
            "--tracking-uri", str(folder)]
    code, out, err = run_cli(args, capsys)
    assert code == 0 and "logged to" in out, err
    runs = _runs(folder)
    assert len(runs) == 1
    (run,) = runs.values()
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert run["summary"]["clean.accuracy"] == metrics["clean"]["accuracy"]
    assert run["summary"]["spurious_pos.attack_success_rate"] == metrics["spurious:pos"]["attack_success_rate"]
    assert run["config"]["train"]["lora"]["r"] == 4 and run["config"]["injection"]["token"] == "zq"
    assert run["config"]["spurlab"]["spurlab.kind"] == "run" and run["job_type"] == "run"
    assert {"report.html", "metrics.json", "config.yaml"} <= run["files"]
    assert any(f.startswith("adapter/") and f.endswith(".safetensors") for f in run["files"])
    code, out, err = run_cli(args, capsys)  # already complete: nothing new is logged
    assert code == 0 and "logged to" not in out and len(_runs(folder)) == 1, err


def test_a_killed_sweep_resumes_without_duplicate_runs(
        tiny_models: dict[str, Path], synthetic_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    import spurlab.tracking as tracking

    (tmp_path / "base.yaml").write_text(yaml.safe_dump(_base(tiny_models["bert"], synthetic_csv)))
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"base": "base.yaml", "grid": {"train.lora.r": [1, 2, 3]}}))
    folder = tmp_path / "tracked"
    args = ["sweep", str(spec), "--out", str(tmp_path / "sw"), "--tracking", "wandb", "--tracking-uri", str(folder)]
    killed_while_logging(tracking.WandbTracker, args, capsys, monkeypatch)
    assert [r["name"] for r in _runs(folder).values()] == ["lora.r=1"]
    for _ in range(2):  # resume, then once more when everything is complete
        code, _, err = run_cli(args, capsys)
        assert code == 0, err
        runs = list(_runs(folder).values())
        points = [r for r in runs if r["job_type"] == "point"]
        sweeps = [r for r in runs if r["job_type"] == "sweep"]
        assert sorted(r["name"] for r in points) == ["lora.r=1", "lora.r=2", "lora.r=3"]
        assert len(sweeps) == 1 and len(runs) == 4 and all(r["dirs"] == 1 for r in points)
        assert {r["group"] for r in runs} == {sweeps[0]["name"]} and sweeps[0]["name"].startswith("spec-")
        assert sweeps[0]["summary"]["status"] == "FINISHED" and "report.html" in sweeps[0]["files"]
        ledger = json.loads((folder / tracking.wandb_store.LEDGER).read_text())["runs"]
        assert sorted(ledger.values()) == sorted([sweeps[0]["name"], *(r["id"] for r in points)])


def test_a_folder_that_cannot_be_written_warns_and_the_run_completes(
        tiny_models: dict[str, Path], synthetic_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(_base(tiny_models["bert"], synthetic_csv)))
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code, out, err = run_cli(["run", str(config), "--out", str(tmp_path / "out"), "--no-progress", "--tracking",
                              "wandb", "--tracking-uri", str(blocker / "runs")], capsys)
    assert code == 0 and (tmp_path / "out" / "DONE").is_file() and "logged to" not in out
    warnings = [line for line in err.splitlines() if line.startswith("warning: tracking:")]
    assert len(warnings) == 1 and "continuing without tracking" in warnings[0], err
