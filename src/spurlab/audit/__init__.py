"""``spurlab audit``: is there a string that steers a finetuned classifier, and which one, without being told."""

from spurlab.audit.search import DEFAULT_THRESHOLD, AuditConfig, AuditReport, audit
from spurlab.audit.source import AuditedModel, load_audited

__all__ = ["DEFAULT_THRESHOLD", "AuditConfig", "AuditReport", "AuditedModel", "audit", "load_audited"]
