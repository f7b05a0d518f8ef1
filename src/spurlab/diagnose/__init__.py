"""After training: does a finetuned model rely on the spurious token? Attention and prediction flips."""

from spurlab.diagnose.diagnosis import DiagnosisReport, diagnose_run

__all__ = ["DiagnosisReport", "diagnose_run"]
