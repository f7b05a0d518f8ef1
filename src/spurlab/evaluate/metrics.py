"""Classification metrics by hand (numpy): accuracy, balanced accuracy, macro/weighted F1, per-class P/R/F1,
confusion matrix, predicted-class counts, and the attack success rate of a spurious token."""

from __future__ import annotations

from typing import Any

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """``cm[i, j]`` = rows of true class i predicted as j."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return cm


def _div(a: np.ndarray | float, b: np.ndarray | float) -> np.ndarray:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return np.divide(a, b, out=np.zeros(np.broadcast(a, b).shape), where=b != 0)


def attack_success_rate(y_true: np.ndarray, y_pred: np.ndarray, token_class: int) -> float | None:
    """Share of rows whose true label is not ``token_class`` that are predicted as ``token_class``
    (None when there are no such rows)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    other = y_true != token_class
    if not other.any():
        return None
    return float((y_pred[other] == token_class).mean())


def compute_metrics(y_true: np.ndarray, y_pred: np.ndarray, label_names: list[str],
                    token_class: int | None = None) -> dict[str, Any]:
    """All metrics of one test set as a JSON-ready dict (schema: docs/metrics.md)."""
    y_true, y_pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    k = len(label_names)
    cm = confusion_matrix(y_true, y_pred, k)
    support = cm.sum(1)
    predicted = cm.sum(0)
    tp = np.diag(cm)
    precision = _div(tp, predicted)
    recall = _div(tp, support)
    f1 = _div(2 * precision * recall, precision + recall)
    present = support > 0
    seen = present | (predicted > 0)  # sklearn's convention for macro averages
    n = int(cm.sum())
    out: dict[str, Any] = {
        "n": n,
        "accuracy": float(tp.sum() / n) if n else 0.0,
        "balanced_accuracy": float(recall[present].mean()) if present.any() else 0.0,
        "macro_f1": float(f1[seen].mean()) if seen.any() else 0.0,
        "weighted_f1": float((f1 * support).sum() / n) if n else 0.0,
        "per_class": {
            name: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                   "support": int(support[i])}
            for i, name in enumerate(label_names)
        },
        "predicted_counts": {name: int(predicted[i]) for i, name in enumerate(label_names)},
        "confusion_matrix": cm.tolist(),
    }
    if token_class is not None:
        out["token_class"] = label_names[token_class]
        out["attack_success_rate"] = attack_success_rate(y_true, y_pred, token_class)
    return out
