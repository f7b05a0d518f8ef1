"""Evaluation: metrics, batched prediction, spurious test sets."""

from spurlab.evaluate.metrics import attack_success_rate, compute_metrics, confusion_matrix
from spurlab.evaluate.predict import predict, predict_logits
from spurlab.evaluate.spurious import SpuriousSet, build_spurious_sets, spurious_injection_spec, token_classes

__all__ = [
    "SpuriousSet",
    "attack_success_rate",
    "build_spurious_sets",
    "compute_metrics",
    "confusion_matrix",
    "predict",
    "predict_logits",
    "spurious_injection_spec",
    "token_classes",
]
