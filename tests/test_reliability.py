"""Regressions of defects found by testing spurlab from the outside, grouped by the mechanism that fixes them.
The one-line refusals are rows of ``test_bad_input.py``; here are the cases that need more than an exit code:
what a finished run, a written file or a printed table holds."""

from __future__ import annotations

import inspect
import json
import math
import os
import re
import stat
import typing
from pathlib import Path

import pandas as pd
import pytest
import typer
import yaml

from conftest import run_cli, synthetic_frame
from spurlab.atomic import write_json
from spurlab.cli.app import app
from spurlab.data.loaders import load_table

pytestmark = pytest.mark.usefixtures("torch_threads")


def _run_config(tmp_path: Path, model: Path, data: Path, **train: object) -> Path:
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({
        "name": "tiny", "data": {"spec": str(data), "test_size": 0.25},
        "injection": {"source": "date", "target_label": "pos"}, "model": {"name": str(model)},
        "train": {"mode": "lora", "epochs": 1, "batch_size": 16, "max_length": 16, "precision": "fp32", **train}}))
    return config


# -- finite numbers --------------------------------------------------------------------------------------------

def test_a_loss_that_becomes_nan_fails_the_run(tiny_models: dict[str, Path], synthetic_csv: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """A finite but absurd learning rate drives the loss to NaN: the run is marked failed, never DONE, and no
    metrics (which would be every prediction in one class) are written."""
    config = _run_config(tmp_path, tiny_models["bert"], synthetic_csv, lr=1e30)
    out = tmp_path / "out"
    code, _, err = run_cli(["run", str(config), "--out", str(out), "--no-progress"], capsys)
    assert code == 2 and err.count("\n") == 1 and "the loss became nan" in err, err
    status = json.loads((out / "status.json").read_text())
    assert status["status"] == "failed" and status["stage"] == "train"
    assert not (out / "DONE").exists() and not (out / "metrics.json").exists()


def test_json_never_holds_nan_or_infinity(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    write_json(path, {"a": math.nan, "b": [1.0, math.inf, -math.inf], "c": {"d": 0.5}})
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"a": None, "b": [1.0, None, None], "c": {"d": 0.5}}


def _float_options() -> list[tuple[str, str]]:
    """(command, option) for every float option of every command, read from the command functions."""
    found = []
    for info in app.registered_commands:
        name = info.name or info.callback.__name__.removesuffix("_command").replace("_", "-")
        hints = typing.get_type_hints(info.callback)
        for param, default in inspect.signature(info.callback).parameters.items():
            if hints.get(param) is float and isinstance(default.default, typer.models.OptionInfo):
                found.append((name, default.default.param_decls[0]))
    return found


def test_every_float_option_refuses_nan_and_inf(capsys: pytest.CaptureFixture[str]) -> None:
    options = _float_options()
    assert ("scan", "--inserted-boost") in options and ("demo", "--proportion") in options and len(options) >= 10
    for command, option in options:
        for value in ("nan", "inf", "-inf"):
            code, _, err = run_cli([command, option, value], capsys)
            assert code == 2 and "must be a finite number" in err and err.count("\n") == 1, (command, option, err)


# -- cells and labels read the same way from every format ------------------------------------------------------

def test_csv_cells_are_kept_as_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Ids with leading zeros and all-digit texts come back byte for byte; integer labels are ordered as
    numbers but keep their spelling."""
    frame = synthetic_frame(40)
    frame["id"] = [f"{i:06d}" for i in range(40)]
    frame.loc[0, "text"] = "00028"
    frame["label"] = ["10" if lab == "pos" else "02" for lab in frame["label"]]
    data = tmp_path / "d.csv"
    frame.to_csv(data, index=False)
    assert load_table(str(data)).label_names == ["02", "10"]
    out = tmp_path / "out"
    code, _, err = run_cli(["inject", str(data), "--target-label", "10", "--source", "fixed", "--token", "zz",
                            "--out", str(out)], capsys)
    assert code == 0, err
    written = pd.read_csv(out / "data.csv", dtype=str, keep_default_na=False)
    assert written["id"].tolist() == frame["id"].tolist()
    assert written.loc[0, "text"] == "00028"
    assert set(written["label"]) == {"02", "10"}


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_float_labels_have_one_name_in_every_format(fmt: str, tmp_path: Path) -> None:
    frame = synthetic_frame(20)
    frame["label"] = [1.0 if lab == "pos" else 0.0 for lab in frame["label"]]
    path = tmp_path / f"d.{fmt}"
    if fmt == "csv":
        frame.to_csv(path, index=False)
    elif fmt == "jsonl":
        frame.to_json(path, orient="records", lines=True)
    else:
        frame.to_parquet(path, index=False)
    dataset = load_table(str(path))
    assert dataset.label_names == ["0.0", "1.0"]
    assert dataset.label_ids.tolist() == [int(v) for v in frame["label"]]


def test_data_counts_rows_of_float_labels(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    frame = synthetic_frame(40)
    frame["label"] = [1.0 if lab == "pos" else 0.0 for lab in frame["label"]]
    frame.to_parquet(tmp_path / "d.parquet", index=False)
    code, out, err = run_cli(["data", str(tmp_path / "d.parquet"), "--test-size", "0.25"], capsys)
    assert code == 0, err
    counts = {m[1]: (int(m[2]), int(m[3])) for m in re.finditer(r"│\s*\d+ │ (\S+)\s*│\s*(\d+) │\s*(\d+) │", out)}
    assert counts == {"0.0": (15, 5), "1.0": (15, 5)}, out


# -- outputs look like every other output ----------------------------------------------------------------------

def test_adapter_files_have_the_mode_of_other_outputs(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    from spurlab.models import attach_trainable, load_classifier, save_trained
    from spurlab.models.config import ModelConfig

    loaded = load_classifier(ModelConfig(name=str(tiny_models["bert"])), ["neg", "pos"])
    model = attach_trainable(loaded, "lora")
    save_trained(model, loaded, "lora", tmp_path / "adapter", {"label_names": ["neg", "pos"]})
    umask = os.umask(0)
    os.umask(umask)
    files = [p for p in (tmp_path / "adapter").rglob("*") if p.is_file()]
    assert any(p.suffix == ".safetensors" for p in files)
    assert {stat.S_IMODE(p.stat().st_mode) for p in files} == {0o666 & ~umask}


# -- sweeps are checked whole before anything runs -------------------------------------------------------------

def _spec(tmp_path: Path, model: Path, data: Path, grid: dict) -> Path:
    base = yaml.safe_load(_run_config(tmp_path, model, data).read_text())
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(base))
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"base": "base.yaml", "grid": grid}))
    return spec


def test_a_sweep_with_an_invalid_point_writes_nothing(tiny_models: dict[str, Path], synthetic_csv: Path,
                                                      tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = _spec(tmp_path, tiny_models["bert"], synthetic_csv, {"train.seed": [1, -1]})
    code, _, err = run_cli(["sweep", str(spec), "--out", str(tmp_path / "sw")], capsys)
    assert code == 2 and "train.seed" in err and err.count("\n") == 1, err
    assert not (tmp_path / "sw").exists()


def test_a_huge_grid_is_refused_at_once(tiny_models: dict[str, Path], synthetic_csv: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    grid = {"train.seed": list(range(1000)), "data.seed": list(range(1000))}
    spec = _spec(tmp_path, tiny_models["bert"], synthetic_csv, grid)
    code, _, err = run_cli(["sweep", str(spec), "--out", str(tmp_path / "sw"), "--dry-run"], capsys)
    assert code == 2 and "1,000,000" in err and "--max-points" in err, err
    small = _spec(tmp_path, tiny_models["bert"], synthetic_csv, {"train.seed": [1, 2, 3]})
    code, _, err = run_cli(["sweep", str(small), "--out", str(tmp_path / "sw"), "--dry-run", "--max-points", "2"],
                           capsys)
    assert code == 2 and "3 points" in err, err
    code, out, err = run_cli(["sweep", str(small), "--out", str(tmp_path / "sw"), "--dry-run", "--max-points", "3"],
                             capsys)
    assert code == 0 and "3 grid points" in out, err
