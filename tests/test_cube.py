"""CUBE: the minority clusters of each label are dropped (by hand on planted clusters), and the defense runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from spurlab.defend.cube import cube_clusters, minority_rows
from test_bki import defended_run_config, run_config

pytestmark = pytest.mark.usefixtures("torch_threads")


def test_minority_rows_by_hand() -> None:
    labels = np.array(["a"] * 6 + ["b"] * 4)
    clusters = np.array([0, 0, 0, 0, 1, -1, 2, 2, 2, 2])
    drop, sizes = minority_rows(labels, clusters)
    assert drop == [4, 5]  # label a: cluster 0 (4 rows) kept, cluster 1 and the noise point (1 each) dropped
    assert sizes == {"a": {"0": 4, "1": 1, "-1": 1}, "b": {"2": 4}}
    # a second cluster holding half of the label's rows or more is kept
    assert minority_rows(np.array(["a"] * 4), np.array([0, 0, 1, 1]))[0] == []


def test_planted_cluster_is_found_and_dropped() -> None:
    rng = np.random.default_rng(0)
    clean_a = rng.normal(0.0, 0.3, (80, 16))
    planted = rng.normal(0.0, 0.3, (12, 16)) + 6.0  # the poisoned rows of label a sit apart
    clean_b = rng.normal(0.0, 0.3, (90, 16)) - 6.0
    vectors = np.vstack([clean_a, planted, clean_b])
    labels = np.array(["a"] * 92 + ["b"] * 90)
    clusters = cube_clusters(vectors, dims=4, min_samples=5)
    drop, _ = minority_rows(labels, clusters)
    assert set(range(80, 92)) <= set(drop) and len(drop) <= 16  # the planted rows, and at most a few noise points


def test_cube_in_a_run(tiny_models: dict[str, Path], synthetic_csv: Path, tmp_path: Path,
                       capsys: pytest.CaptureFixture[str]) -> None:
    config = defended_run_config({"name": "cube", "min_samples": 5}, tiny_models["bert"], synthetic_csv, 0.2)
    run_config(config, tmp_path, capsys)
    summary = json.loads((tmp_path / "run" / "defense" / "summary.json").read_text())
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert summary["defense"] == "cube" and set(summary["cluster_sizes_per_label"]) == {"neg", "pos"}
    assert metrics["meta"]["n_train"] == summary["n_rows"] - summary["n_dropped"]
