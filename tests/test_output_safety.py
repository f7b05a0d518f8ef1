"""``--out`` never loses the user's files: a folder holding files spurlab did not write is refused (``--overwrite``
forces), an input that is one of the outputs is refused even with ``--overwrite``, an empty ``--out`` is a
usage error; what an interrupted write was moving into place is still recognised as spurlab's."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml

from conftest import run_cli, synthetic_frame
from spurlab.atomic import MOVING


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture()
def data(tmp_path: Path) -> Path:
    path = tmp_path / "d.csv"
    synthetic_frame(60).to_csv(path, index=False)
    return path


def test_inject_into_the_folder_of_its_own_input_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                            ) -> None:
    folder = tmp_path / "d"
    folder.mkdir()
    synthetic_frame(60).to_csv(folder / "data.csv", index=False)
    before = _digest(folder)
    for extra in ([], ["--overwrite"]):
        code, _, err = run_cli(["inject", str(folder / "data.csv"), "--out", str(folder), *extra], capsys)
        assert code == 2 and err.count("\n") == 1 and "would overwrite the input" in err, err
        assert _digest(folder) == before


@pytest.mark.parametrize("command", ["inject", "sanitize", "scan"])
def test_user_files_in_out_are_neither_overwritten_nor_deleted(command: str, data: Path, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    for name, text in {"data.csv": "mine\n", "data.parquet": "mine", "data.jsonl": "{}\n",
                       "manifest.jsonl": "{}\n", "entropy_histogram.png": "mine"}.items():
        (out / name).write_text(text)
    before = _digest(out)
    extra = ["--auto"] if command == "sanitize" else []
    code, _, err = run_cli([command, str(data), "--out", str(out), *extra], capsys)
    assert code == 2 and err.count("\n") == 1 and "holds files spurlab did not write" in err, err
    assert _digest(out) == before
    # --overwrite is the user's say-so
    code, _, err = run_cli([command, str(data), "--out", str(out), *extra, "--overwrite"], capsys)
    assert code == 0, err


def test_a_finished_output_with_a_user_file_beside_it_is_refused(data: Path, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert run_cli(["inject", str(data), "--out", str(out)], capsys)[0] == 0
    (out / "notes.txt").write_text("mine")
    code, _, err = run_cli(["inject", str(data), "--out", str(out)], capsys)
    assert code == 2 and "notes.txt" in err


def test_an_interrupted_move_is_recognised_and_finished(data: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    ref, out = tmp_path / "ref", tmp_path / "out"
    assert run_cli(["inject", str(data), "--out", str(ref)], capsys)[0] == 0
    out.mkdir()
    # killed while moving: data and manifest in place, the summary not yet, the journal says what was moving
    for name in ("data.csv", "manifest.jsonl"):
        (out / name).write_bytes((ref / name).read_bytes())
    (out / MOVING).write_text(json.dumps(["data.csv", "manifest.jsonl", "summary.json"]))
    assert run_cli(["inject", str(data), "--out", str(out)], capsys)[0] == 0
    assert _digest(out) == _digest(ref)


def test_empty_out_is_a_usage_error(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for command in (["inject", str(data)], ["scan", str(data)], ["sanitize", str(data), "--auto"]):
        code, _, err = run_cli([*command, "--out", ""], capsys)
        assert code == 2 and err.count("\n") == 1 and "--out" in err and "must not be empty" in err


def test_run_folder_with_user_files_or_holding_the_data(tiny_models: dict[str, Path], data: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.yaml").write_text("name: tiny\n")
    (out / "my-notes.txt").write_text("mine")
    cfg = {"name": "tiny", "data": {"spec": str(data)}, "model": {"name": str(tiny_models["bert"])},
           "train": {"max_steps": 1, "precision": "fp32", "max_length": 16}, "evaluation": {"base": False}}
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(cfg))
    code, _, err = run_cli(["run", str(config), "--out", str(out), "--no-progress"], capsys)
    assert code == 2 and "my-notes.txt" in err and (out / "my-notes.txt").read_text() == "mine"
    # the data inside the run folder: refused even with --overwrite, which would clear the folder
    inside = out / "d.csv"
    inside.write_bytes(data.read_bytes())
    config.write_text(yaml.safe_dump({**cfg, "data": {"spec": str(inside)}}))
    code, _, err = run_cli(["run", str(config), "--out", str(out), "--no-progress", "--overwrite"], capsys)
    assert code == 2 and "holds the input" in err and inside.is_file()
