"""BKI: word importance and keyword scores by hand, the rows dropped, and the defense in a run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import run_cli
from spurlab.data.dataset import TextDataset
from spurlab.defend.bki import bki, keyword_scores, word_importance

pytestmark = pytest.mark.usefixtures("torch_threads")


def _represent(texts: list[str]) -> np.ndarray:
    """A representation that jumps by 10 when `cf` is present and grows by 1 per word."""
    return np.array([[10.0 if "cf" in t.split() else 0.0, float(len(t.split()))] for t in texts])


def test_word_importance_by_hand() -> None:
    got = word_importance([["a", "cf", "b"], ["solo"]], _represent)
    assert got[0].tolist() == [1.0, 10.0, 1.0] and got[1].tolist() == [0.0]


def test_keyword_scores_by_hand() -> None:
    scores = keyword_scores([[("cf", 10.0), ("a", 1.0)], [("cf", 8.0)], [("b", 1.0)]])
    assert scores == {"cf": pytest.approx(math.log10(2) * 9.0), "a": 0.0, "b": 0.0}


def test_bki_drops_the_rows_of_the_keyword() -> None:
    texts = ["a cf b", "c d e", "cf f g h", "i j", "k l cf"]
    data = TextDataset(pd.DataFrame({"text": texts, "label": ["x", "y", "x", "y", "x"]}))
    result = bki(data, _represent, top_words=1)
    assert result.summary["keyword"] == "cf" and result.dropped == [0, 2, 4]
    assert result.dataset.texts == ["c d e", "i j"]
    assert [r["row"] for r in result.manifest] == [0, 2, 4]
    assert all(r["dropped"] and r["keyword"] == "cf" and r["importance"] == 10.0 for r in result.manifest)
    assert result.summary["n_dropped"] == 3 and result.summary["dropped_per_label"] == {"x": 3, "y": 0}


def defended_run_config(defense: dict, model: Path, data: Path, proportion: float = 1.0) -> dict:
    """A tiny run whose training-data defense finetunes its own suspect model (the tiny BERT, 5 full steps)."""
    return {"name": defense["name"], "data": {"spec": str(data), "test_size": 0.25},
            "injection": {"source": "fixed", "token": "zq", "target_label": "pos", "proportion": proportion},
            "defense": {**defense, "model": str(model),
                        "finetune": {"method": "full", "max_steps": 5, "batch_size": 16, "max_length": 16,
                                     "precision": "fp32", "lr": 1e-3}},
            "model": {"name": str(model)},
            "train": {"method": "lora", "max_steps": 2, "batch_size": 16, "max_length": 16, "precision": "fp32"},
            "evaluation": {"base": False}}


def run_config(config: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """Write ``config`` and ``spurlab run`` it into ``tmp_path/run`` (must succeed); the config's path."""
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    code, _, err = run_cli(["run", str(path), "--out", str(tmp_path / "run")], capsys)
    assert code == 0, err
    return path


def test_bki_in_a_run(tiny_models: dict[str, Path], synthetic_csv: Path, tmp_path: Path,
                      capsys: pytest.CaptureFixture[str]) -> None:
    config = defended_run_config({"name": "bki"}, tiny_models["bert"], synthetic_csv)
    path = run_config(config, tmp_path, capsys)
    summary = json.loads((tmp_path / "run" / "defense" / "summary.json").read_text())
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert summary["defense"] == "bki" and summary["keyword"]
    assert metrics["meta"]["n_train"] == summary["n_rows"] - summary["n_dropped"]
    assert metrics["meta"]["defense"]["keyword"] == summary["keyword"]
    poisoned = {json.loads(line)["row"] for line in (tmp_path / "run" / "injection" / "manifest.jsonl").open()}
    dropped = {json.loads(line)["row"] for line in (tmp_path / "run" / "defense" / "manifest.jsonl").open()}
    detection = metrics["meta"]["defense"]
    assert detection["rows_touched"] == len(dropped) == summary["n_dropped"]
    assert detection["recall"] == pytest.approx(len(dropped & poisoned) / len(poisoned))
    assert detection["precision"] == (pytest.approx(len(dropped & poisoned) / len(dropped)) if dropped else None)
    config["defense"]["top_words"] = 0
    path.write_text(yaml.safe_dump(config))
    code, _, err = run_cli(["run", str(path), "--out", str(tmp_path / "bad")], capsys)
    assert code == 2 and "top_words" in err and len(err.strip().splitlines()) == 1
