"""The data gate: ``spurlab scan --fail-on {planted,any}`` and its stable JSON document.

``planted`` fails on findings that read as planted (``Finding.planted``, decided by
``scanner.reads_as_planted``); ``any`` fails on every finding at the scan's
significance level. The document (``GATE_FORMAT``, version ``GATE_VERSION``) is documented in ``docs/scan.md``;
fields are only ever added within a version.
"""

from __future__ import annotations

from typing import Any, Literal

from spurlab.errors import SpurlabError
from spurlab.scan.scanner import Finding, ScanReport

FailOn = Literal["planted", "any"]
FAIL_ON: tuple[str, ...] = ("planted", "any")
GATE_FORMAT = "spurlab.scan.result"
GATE_VERSION = 1
#: Exit code of a scan whose gate failed (2 stays bad input, 1 an internal failure).
EXIT_FINDINGS = 3
#: The fields of each finding in the document, in order.
FINDING_FIELDS = ("feature", "kind", "position", "label", "support", "counts", "p_label", "log10_p_adj",
                  "planting_evidence", "explained_by_text", "planted", "examples")


def check_fail_on(value: str | None) -> FailOn | None:
    """``value`` as a gate level, or a one-line error naming the levels."""
    if value is None:
        return None
    if value not in FAIL_ON:
        raise SpurlabError(f"unknown --fail-on {value!r} (use {' or '.join(FAIL_ON)})")
    return value  # type: ignore[return-value]


def failing(report: ScanReport, fail_on: FailOn | None) -> list[Finding]:
    """The findings at or above ``fail_on`` (none without a gate)."""
    if fail_on is None:
        return []
    return [f for f in report.findings if fail_on == "any" or f.planted]


def gate_document(report: ScanReport, fail_on: FailOn | None) -> dict[str, Any]:
    """The stable JSON document of one scan: dataset summary, the gate's verdict and every finding, ranked."""
    s = report.summary
    flagged = failing(report, fail_on)
    return {
        "format": GATE_FORMAT, "version": GATE_VERSION,
        "dataset": s.get("dataset"), "n_rows": s.get("n_rows"), "labels": s.get("labels"),
        "alpha": s.get("alpha"), "correction": s.get("correction"),
        "planted_levels": {key: report.config.get(f"planted_{key}") for key in ("evidence", "share", "purity")},
        "n_findings": len(report.findings), "n_planted": sum(f.planted for f in report.findings),
        "gate": {"fail_on": fail_on, "failed": bool(flagged), "exit_code": EXIT_FINDINGS if flagged else 0,
                 "n_failing": len(flagged)},
        "findings": [{key: value for key, value in f.to_dict().items() if key in FINDING_FIELDS}
                     | {"rank": rank} for rank, f in enumerate(report.findings, start=1)],
    }


__all__ = ["EXIT_FINDINGS", "FAIL_ON", "GATE_FORMAT", "GATE_VERSION", "check_fail_on", "failing",
           "gate_document"]
