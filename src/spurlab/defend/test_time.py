"""Test-time defenses: filter the inputs of a trained classifier by a suspicion score per input.

A test-time defense is a registered pydantic model (like the training-data defenses of
:mod:`spurlab.defend.base`) with ``suspicion(texts, classifier, reference, target) -> scores``: higher is more
suspicious. ``classifier`` gives the model's class probabilities (and the model itself, for defenses that
perturb it), ``reference`` is clean text the defense may learn from, and ``target`` is the class an attack
would steer to (the protected class). An input is rejected when its score is above a threshold set on clean
calibration rows so that a share ``frr`` of them would be rejected.

In a run (``evaluation.defense: {name: strip, ...}``) the clean test rows are split, seeded, into a calibration
part (``calibration``, default half), which sets the threshold and serves as the reference text, and an
evaluation part, on which every number is measured, per spurious test set (its token's class is the target):

- **FRR**: clean inputs rejected; **FAR**: triggered inputs (the set's rows of other classes) let through;
- **CACC** before and after: clean inputs classified correctly, where a rejected input counts as not
  classified correctly after the defense (the cost of rejecting it);
- **ASR** before and after: triggered inputs predicted as the target, where a rejected input counts as a
  failed attack after the defense.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_serializer, model_validator

from spurlab.defend.base import named_params
from spurlab.errors import SpurlabError
from spurlab.registry import Registry

Probabilities = Callable[[Sequence[str]], np.ndarray]


@dataclass
class Classifier:
    """The defended model: ``probabilities(texts)`` (rows of class probabilities), and for defenses that work on
    the model itself the model, its tokenizer, device and ``max_length``."""

    probabilities: Probabilities
    model: Any = None
    tokenizer: Any = None
    device: Any = None
    max_length: int = 128


class TestTimeDefense(BaseModel):
    """Base of a test-time defense's parameters (unknown keys are errors)."""

    __test__ = False  # not a pytest class
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    name: ClassVar[str] = ""

    frr: float = Field(0.01, ge=0, lt=1, description="share of clean calibration inputs the threshold rejects")
    calibration: float = Field(0.5, gt=0, lt=1, description="share of the clean test rows that set the threshold")
    seed: int = Field(0, ge=0)

    def suspicion(self, texts: Sequence[str], classifier: Classifier, reference: Sequence[str],
                  target: int) -> np.ndarray:
        raise NotImplementedError


TEST_TIME_DEFENSES: Registry[TestTimeDefense] = Registry("test-time defense")


def register_test_time_defense(name: str) -> Callable[[type[TestTimeDefense]], type[TestTimeDefense]]:
    """Class decorator: make a :class:`TestTimeDefense` subclass nameable in ``evaluation.defense``."""

    def wrap(cls: type[TestTimeDefense]) -> type[TestTimeDefense]:
        if not (isinstance(cls, type) and issubclass(cls, TestTimeDefense)):
            raise TypeError("register_test_time_defense expects a TestTimeDefense subclass")
        TEST_TIME_DEFENSES.add(name, lambda params: params, cls, (cls.__doc__ or "").strip().split("\n")[0])
        cls.name = name
        return cls

    return wrap


class TestTimeDefenseSpec(BaseModel):
    """``evaluation.defense``: a registered test-time defense's name and validated parameters."""

    __test__ = False
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    name: str
    params: TestTimeDefense

    @model_validator(mode="before")
    @classmethod
    def _from_mapping(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and isinstance(data.get("params"), TestTimeDefense):
            return data
        return named_params(data, TEST_TIME_DEFENSES, "strip")

    @model_serializer
    def _as_given(self) -> dict[str, Any]:
        return {"name": self.name, **self.params.model_dump(mode="json", exclude_unset=True)}


def threshold_for(scores: np.ndarray, frr: float) -> float:
    """The score above which a share of at most ``frr`` of ``scores`` lies (those inputs are rejected). Scores of
    ``-inf`` mark inputs a defense does not judge (RAP: predicted as another class) and take no part."""
    judged = np.asarray(scores, dtype=float)
    judged = judged[np.isfinite(judged)]
    if len(judged) == 0:
        return float("inf")  # nothing to calibrate on: reject nothing
    ordered = np.sort(judged)[::-1]
    k = int(len(ordered) * frr)  # rejected calibration inputs
    return float(ordered[k]) if k < len(ordered) else float("-inf")


def calibration_split(n: int, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded (calibration rows, evaluation rows), both sorted; each part has at least one row."""
    if n < 2:
        raise SpurlabError(f"evaluation.defense: needs at least 2 clean test rows to calibrate, got {n}")
    order = np.random.default_rng(seed).permutation(n)
    k = min(max(1, round(n * share)), n - 1)
    return np.sort(order[:k]), np.sort(order[k:])


def evaluate_defense(defense: TestTimeDefense, classifier: Classifier, clean_texts: Sequence[str],
                     clean_labels: np.ndarray, triggered: Mapping[int, Sequence[str]]) -> dict[str, Any]:
    """FRR, FAR, CACC and ASR before and after filtering, per target class (see the module docstring).
    ``triggered`` maps a token class id to the clean rows with the token inserted, aligned with
    ``clean_texts``."""
    start = time.perf_counter()
    calib, held = calibration_split(len(clean_texts), defense.calibration, defense.seed)
    reference = [clean_texts[i] for i in calib]
    texts = [clean_texts[i] for i in held]
    labels = np.asarray(clean_labels)[held]
    clean_correct = classifier.probabilities(texts).argmax(axis=1) == labels
    out: dict[str, Any] = {"name": defense.name, "params": defense.model_dump(mode="json"),
                           "n_calibration": len(calib), "n_evaluated": len(held),
                           "cacc_before": float(clean_correct.mean()), "spurious": {}}
    for cls, rows in triggered.items():
        other = held[labels != cls]
        if len(other) == 0:
            continue
        threshold = threshold_for(defense.suspicion(reference, classifier, reference, cls), defense.frr)
        clean_rejected = defense.suspicion(texts, classifier, reference, cls) > threshold
        poisoned = [rows[i] for i in other]
        rejected = defense.suspicion(poisoned, classifier, reference, cls) > threshold
        hit = classifier.probabilities(poisoned).argmax(axis=1) == cls
        out["spurious"][int(cls)] = {
            "threshold": threshold, "frr": float(clean_rejected.mean()),
            "cacc_after": float((clean_correct & ~clean_rejected).mean()), "n": len(other),
            "far": float((~rejected).mean()), "asr_before": float(hit.mean()),
            "asr_after": float((hit & ~rejected).mean())}
    out["seconds"] = round(time.perf_counter() - start, 3)
    return out


__all__ = ["TEST_TIME_DEFENSES", "Classifier", "TestTimeDefense", "TestTimeDefenseSpec", "calibration_split",
           "evaluate_defense", "register_test_time_defense", "threshold_for"]
