"""Writing an audit: the output folder decision, ``audit.png`` and ``audit.json`` (moved into place last)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from spurlab.atomic import staged_outputs, write_json
from spurlab.audit.search import FORMAT, AuditReport
from spurlab.outputs import Outputs, State
from spurlab.outputs import out_state as outputs_state
from spurlab.report.audit_plots import plot_audit

OUTPUTS = ("audit.json", "audit.png")
AUDIT = Outputs(marker="audit.json", what="audit", format=FORMAT, owned=OUTPUTS)


def out_state(out_dir: Path, request: dict[str, Any], overwrite: bool) -> State:
    """``complete`` when ``out_dir`` holds the finished audit of the same request; another request's audit is
    refused unless ``overwrite``."""
    return outputs_state(out_dir, AUDIT, request, overwrite,
                         lambda folder, _: all((folder / name).is_file() for name in OUTPUTS))


def write_outputs(report: AuditReport, out_dir: Path) -> list[Path]:
    """``audit.png`` and ``audit.json`` (last), staged and moved into ``out_dir`` together."""
    doc = report.to_dict()
    with staged_outputs(out_dir, last="audit.json") as staging:
        plot_audit(doc, staging / "audit.png")
        write_json(staging / "audit.json", doc)
    return [out_dir / name for name in OUTPUTS]
