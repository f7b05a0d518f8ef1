"""Metrics against values worked out by hand (and cross-checked with scikit-learn)."""

from __future__ import annotations

import numpy as np
import pytest

from spurlab.evaluate.metrics import attack_success_rate, compute_metrics, confusion_matrix

# 10 rows, 3 classes. By hand: cm = [[2,2,0],[0,1,1],[1,0,3]] (rows = true, columns = predicted).
Y_TRUE = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 0])
Y_PRED = np.array([0, 1, 0, 1, 2, 2, 2, 0, 2, 1])
NAMES = ["a", "b", "c"]


def test_confusion_matrix_by_hand() -> None:
    assert confusion_matrix(Y_TRUE, Y_PRED, 3).tolist() == [[2, 2, 0], [0, 1, 1], [1, 0, 3]]


def test_three_class_metrics_by_hand() -> None:
    m = compute_metrics(Y_TRUE, Y_PRED, NAMES)
    assert m["n"] == 10
    assert m["accuracy"] == pytest.approx(0.6)
    # recall a=2/4, b=1/2, c=3/4; precision a=2/3, b=1/3, c=3/4
    assert m["balanced_accuracy"] == pytest.approx((0.5 + 0.5 + 0.75) / 3)
    f1 = {"a": 4 / 7, "b": 2 / 5, "c": 3 / 4}
    for name, value in f1.items():
        assert m["per_class"][name]["f1"] == pytest.approx(value)
    assert m["per_class"]["a"]["precision"] == pytest.approx(2 / 3)
    assert m["per_class"]["b"]["precision"] == pytest.approx(1 / 3)
    assert m["per_class"]["c"]["recall"] == pytest.approx(3 / 4)
    assert m["per_class"]["a"]["support"] == 4
    assert m["macro_f1"] == pytest.approx(sum(f1.values()) / 3)
    assert m["weighted_f1"] == pytest.approx((4 / 7 * 4 + 2 / 5 * 2 + 3 / 4 * 4) / 10)
    assert m["predicted_counts"] == {"a": 3, "b": 3, "c": 4}
    assert "attack_success_rate" not in m


def test_metrics_agree_with_sklearn() -> None:
    from sklearn import metrics as skm

    rng = np.random.default_rng(3)
    y_true, y_pred = rng.integers(0, 4, 200), rng.integers(0, 4, 200)
    m = compute_metrics(y_true, y_pred, list("wxyz"))
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred))
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y_true, y_pred))
    assert m["macro_f1"] == pytest.approx(skm.f1_score(y_true, y_pred, average="macro"))
    assert m["weighted_f1"] == pytest.approx(skm.f1_score(y_true, y_pred, average="weighted"))


def test_attack_success_rate_by_hand() -> None:
    # token class c (2): rows with true != 2 are 0-4 and 9; of their predictions [0,1,0,1,2,1] one is 2.
    assert attack_success_rate(Y_TRUE, Y_PRED, 2) == pytest.approx(1 / 6)
    # token class a (0): rows 3-8 predicted [1,2,2,2,0,2]: one is 0.
    assert attack_success_rate(Y_TRUE, Y_PRED, 0) == pytest.approx(1 / 6)
    assert attack_success_rate(np.array([1, 1]), np.array([1, 0]), 1) is None
    m = compute_metrics(Y_TRUE, Y_PRED, NAMES, token_class=2)
    assert m["token_class"] == "c"
    assert m["attack_success_rate"] == pytest.approx(1 / 6)


def test_flip_subset_absent_class() -> None:
    """On a flip set the token's class has no true rows: balanced accuracy ignores it, macro F1 counts it."""
    y_true, y_pred = np.array([0, 0, 0, 0]), np.array([1, 1, 0, 0])
    m = compute_metrics(y_true, y_pred, ["neg", "pos"], token_class=1)
    assert m["attack_success_rate"] == pytest.approx(0.5)
    assert m["balanced_accuracy"] == pytest.approx(0.5)
    assert m["macro_f1"] == pytest.approx((2 / 3 + 0.0) / 2)
    assert m["per_class"]["pos"]["precision"] == 0.0
    assert m["confusion_matrix"] == [[2, 2], [0, 0]]
