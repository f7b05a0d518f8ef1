"""Writing a diagnosis: the output folder decision (fresh / already complete / refused), the two figures
(drawn by :mod:`spurlab.report.diagnose_plots`), and
``diagnose.json`` moved into place last."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from spurlab.atomic import finite_json, staged_outputs, write_json
from spurlab.diagnose.diagnosis import FORMAT, OUTPUTS, DiagnosisReport
from spurlab.diagnose.report import diagnose_report
from spurlab.diagnose.run_inputs import RunInputs
from spurlab.outputs import Outputs, State
from spurlab.outputs import out_state as outputs_state
from spurlab.report.diagnose_plots import plot_attention
from spurlab.report.html import REPORT_FILE, write_html

DIAGNOSIS = Outputs(marker="diagnose.json", what="diagnosis", format=FORMAT, owned=(*OUTPUTS, REPORT_FILE))

def request_of(run: RunInputs, *, max_rows: int, seed: int, token_class: str) -> dict[str, Any]:
    """What a diagnosis depends on: the run (by its finish time and config name) and the options."""
    return {"run_name": run.cfg.name, "run_finished": run.metrics.get("meta", {}).get("finished"),
            "max_rows": max_rows, "seed": seed, "token_class": token_class}


def out_state(out_dir: Path, request: dict[str, Any], overwrite: bool) -> State:
    """``complete`` when ``out_dir`` holds the finished diagnosis of the same request; another request's
    diagnosis (or a foreign ``diagnose.json``) is refused unless ``overwrite``."""
    return outputs_state(out_dir, DIAGNOSIS, request, overwrite,
                         lambda folder, _: all((folder / name).is_file() for name in OUTPUTS))


def write_outputs(report: DiagnosisReport, out_dir: Path, html: bool = True) -> list[Path]:
    """The figures, ``report.html`` (``html``) and ``diagnose.json`` (last), staged and moved into ``out_dir``
    together."""
    with staged_outputs(out_dir, last="diagnose.json") as staging:
        plot_attention(report, staging / "attention_entropy.png", "entropy")
        plot_attention(report, staging / "attention_mass.png", "mass")
        doc = report.to_dict()
        if html:
            write_html(diagnose_report(json.loads(json.dumps(finite_json(doc))), staging), staging / REPORT_FILE)
        write_json(staging / "diagnose.json", doc)
    return [out_dir / name for name in (*OUTPUTS, *([REPORT_FILE] if html else []))]
