"""``--tracking mlflow`` against a real local MLflow store: what a run logs, a sweep as parent and children,
no duplicate children when a killed sweep is resumed, and tracking that cannot work never fails the run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from conftest import require_package, run_cli

pytestmark = pytest.mark.usefixtures("torch_threads")


def _base(model: Path, data: Path) -> dict:
    return {"name": "tracked", "data": {"spec": str(data), "test_size": 0.25},
            "injection": {"source": "fixed", "token": "zq", "target_label": "pos"},
            "model": {"name": str(model)},
            "train": {"mode": "lora", "max_steps": 2, "batch_size": 16, "max_length": 16, "precision": "fp32",
                      "lora": {"r": 4}}}


def _runs(uri: str) -> list:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("spurlab")
    return [] if experiment is None else client.search_runs([experiment.experiment_id])


def killed_while_logging(tracker: type, args: list[str], capsys: pytest.CaptureFixture[str],
                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Run ``spurlab ARGS`` killed (KeyboardInterrupt) while ``tracker`` logs its second point; exit 130."""
    real = tracker.log_run_folder
    calls = {"n": 0}

    def dies_on_the_second(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(self, *a, **k)

    monkeypatch.setattr(tracker, "log_run_folder", dies_on_the_second)
    code, _, _ = run_cli(args, capsys)
    assert code == 130
    monkeypatch.setattr(tracker, "log_run_folder", real)


def test_a_run_is_logged_once_with_its_config_metrics_and_artifacts(
        tiny_models: dict[str, Path], synthetic_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    require_package("mlflow")
    from mlflow.tracking import MlflowClient

    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(_base(tiny_models["bert"], synthetic_csv)))
    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    args = ["run", str(config), "--out", str(tmp_path / "out"), "--no-progress", "--tracking", "mlflow",
            "--tracking-uri", uri]
    code, out, err = run_cli(args, capsys)
    assert code == 0 and "logged to" in out, err
    runs = _runs(uri)
    assert len(runs) == 1
    run = runs[0]
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert run.data.metrics["clean.accuracy"] == metrics["clean"]["accuracy"]
    assert run.data.metrics["spurious_pos.attack_success_rate"] == metrics["spurious:pos"]["attack_success_rate"]
    assert run.data.params["train.lora.r"] == "4" and run.data.params["injection.token"] == "zq"
    assert run.data.tags["spurlab.kind"] == "run" and run.info.status == "FINISHED"
    client = MlflowClient(uri)
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"report.html", "metrics.json", "config.yaml", "adapter"} <= names
    assert any(a.path.endswith(".safetensors") for a in client.list_artifacts(run.info.run_id, "adapter"))
    code, _, err = run_cli(args, capsys)  # already complete: nothing new is logged
    assert code == 0 and len(_runs(uri)) == 1, err


def test_a_killed_sweep_resumes_without_duplicate_children(
        tiny_models: dict[str, Path], synthetic_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    require_package("mlflow")
    import spurlab.tracking as tracking

    (tmp_path / "base.yaml").write_text(yaml.safe_dump(_base(tiny_models["bert"], synthetic_csv)))
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"base": "base.yaml", "grid": {"train.lora.r": [1, 2, 3]}}))
    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    args = ["sweep", str(spec), "--out", str(tmp_path / "sw"), "--tracking", "mlflow", "--tracking-uri", uri]
    killed_while_logging(tracking.MlflowTracker, args, capsys, monkeypatch)
    for _ in range(2):  # resume, then once more when everything is complete
        code, _, err = run_cli(args, capsys)
        assert code == 0, err
        runs = _runs(uri)
        parents = [r for r in runs if r.data.tags.get("spurlab.kind") == "sweep"]
        children = [r for r in runs if r.data.tags.get("mlflow.parentRunId")]
        assert len(parents) == 1 and len(runs) == 4
        assert sorted(r.data.tags["spurlab.point_key"] for r in children) == ["lora.r=1", "lora.r=2", "lora.r=3"]
        assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parents[0].info.run_id}
        assert parents[0].info.status == "FINISHED"


def test_tracking_that_cannot_work_warns_and_the_run_completes(
        tiny_models: dict[str, Path], synthetic_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    require_package("mlflow")
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(_base(tiny_models["bert"], synthetic_csv)))
    code, _, err = run_cli(["run", str(config), "--out", str(tmp_path / "out"), "--no-progress", "--tracking",
                            "mlflow", "--tracking-uri", "http://127.0.0.1:9"], capsys)
    assert code == 0 and (tmp_path / "out" / "DONE").is_file()
    warnings = [line for line in err.splitlines() if line.startswith("warning: tracking:")]
    assert len(warnings) == 1 and "continuing without tracking" in warnings[0], err
    for args, words in ((["--tracking", "neptune"], "unknown tracking 'neptune'"),
                        (["--tracking-uri", "sqlite:///x.db"], "--tracking-uri needs --tracking mlflow")):
        code, _, err = run_cli(["run", str(config), "--out", str(tmp_path / "other"), *args], capsys)
        assert code == 2 and words in err and err.count("\n") == 1, err
        assert not (tmp_path / "other").exists()
