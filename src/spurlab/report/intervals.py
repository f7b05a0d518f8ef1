"""Confidence intervals for the proportions a report shows (accuracy, attack success)."""

from __future__ import annotations

from typing import Any

import numpy as np

RESAMPLES = 10_000


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float] | None:
    """The Wilson score interval of ``successes`` out of ``n`` (None when ``n`` is 0)."""
    if n <= 0:
        return None
    from scipy.stats import binomtest  # scipy is slow to import; only reports need it

    ci = binomtest(int(successes), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def accuracy_interval(metrics: dict[str, Any]) -> tuple[float, float] | None:
    """The CI of a test set's accuracy, from its confusion matrix."""
    matrix = metrics.get("confusion_matrix")
    if not matrix:
        return None
    correct = sum(matrix[i][i] for i in range(len(matrix)))
    return wilson_interval(correct, sum(map(sum, matrix)))


def attack_interval(metrics: dict[str, Any], label_names: list[str]) -> tuple[float, float] | None:
    """The CI of attack success: rows whose true class is not the token's class, predicted as it. None when the
    stored rate is not that share (then no interval is claimed)."""
    cls, rate, matrix = metrics.get("token_class"), metrics.get("attack_success_rate"), metrics.get("confusion_matrix")
    if cls not in label_names or rate is None or not matrix:
        return None
    j = label_names.index(cls)
    others = [row for i, row in enumerate(matrix) if i != j]
    n = sum(map(sum, others))
    hits = sum(row[j] for row in others)
    if n == 0 or abs(hits / n - rate) > 1e-9:
        return None
    return wilson_interval(hits, n)


def bootstrap_interval(values: np.ndarray, confidence: float = 0.95, seed: int = 0) -> tuple[float, float] | None:
    """Percentile bootstrap interval of the mean (None for fewer than 2 values; a point when all are equal)."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if len(values) < 2:
        return None
    if np.all(values == values[0]):
        return float(values[0]), float(values[0])
    from scipy.stats import bootstrap  # slow to import; only reports need it

    result = bootstrap((values,), np.mean, confidence_level=confidence, n_resamples=RESAMPLES,
                       method="percentile", random_state=np.random.default_rng(seed))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def fmt_interval(ci: tuple[float, float] | None, digits: int = 3) -> str:
    return "–" if ci is None else f"[{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"


__all__ = ["accuracy_interval", "attack_interval", "bootstrap_interval", "fmt_interval", "wilson_interval"]
