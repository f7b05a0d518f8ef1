"""``spurlab scan --out``: ``findings.json`` (written last; it records the request), the H(y|t) histogram and
the HTML report."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from spurlab.atomic import staged_outputs, write_json
from spurlab.outputs import Outputs, State, out_state
from spurlab.report.entropy_histogram import plot_entropy_histogram
from spurlab.report.html import REPORT_FILE, write_html
from spurlab.scan.report import scan_report
from spurlab.scan.scanner import FORMAT, ScanReport

FINDINGS = Outputs(marker="findings.json", what="findings", format=FORMAT, check_schema=False,
                   owned=("findings.json", "entropy_histogram.png", REPORT_FILE))


def scan_state(out_dir: Path, request: dict[str, Any], overwrite: bool, inputs: Iterable[Path] = ()) -> State:
    """:func:`~spurlab.outputs.out_state` for a scan: complete when the histogram is there too."""
    return out_state(out_dir, FINDINGS, request, overwrite,
                     lambda folder, _: (folder / "entropy_histogram.png").is_file(), inputs=inputs)


def write_outputs(report: ScanReport, out: Path, request: dict[str, Any] | None = None, *,
                  texts: list[str] | None = None, labels: list[str] | None = None, html: bool = True) -> list[Path]:
    """``findings.json`` (with ``request``, what made it), ``entropy_histogram.png`` and (``html``) the
    ``report.html`` with example rows highlighted from ``texts``, moved into place together (findings last)."""
    hist = report.summary["histogram"]
    doc = {**report.to_dict(), "request": request}
    with staged_outputs(out, last="findings.json") as staging:
        plot_entropy_histogram(report.entropies, report.flagged_entropies, hist["max_entropy_bits"],
                               staging / "entropy_histogram.png", min_support=hist["min_support"],
                               title=f"{report.summary['dataset']}: H(y|token), tokens in > "
                                     f"{hist['min_support']} rows (n = {hist['n_tokens']})")
        if html:
            write_html(scan_report(doc, texts, labels, staging / "entropy_histogram.png"), staging / REPORT_FILE)
        write_json(staging / "findings.json", doc)
    return [out / "findings.json", out / "entropy_histogram.png", *([out / REPORT_FILE] if html else [])]
