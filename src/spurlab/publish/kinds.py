"""Which result a path holds, and its report."""

from __future__ import annotations

from pathlib import Path

from spurlab.diagnose.outputs import DIAGNOSIS
from spurlab.diagnose.report import diagnose_report
from spurlab.errors import SpurlabError
from spurlab.experiment.report import run_report
from spurlab.outputs import read_output
from spurlab.report.document import Report
from spurlab.report.html import REPORT_FILE, write_html
from spurlab.scan.outputs import FINDINGS
from spurlab.scan.report import scan_report
from spurlab.sweep.report import sweep_report
from spurlab.sweep.runner import SWEEP

GENERATOR = b'<meta name="generator" content="spurlab'
# kind -> the file that marks it
KINDS = {"sweep": SWEEP.marker, "run": "metrics.json", "scan": FINDINGS.marker, "diagnose": DIAGNOSIS.marker}


def result_kind(path: str | Path) -> str:
    """``run``, ``sweep``, ``scan`` or ``diagnose``; one line when ``path`` is none of them."""
    path = Path(path)
    if not path.exists():
        raise SpurlabError(f"{path}: no such file or folder")
    folder = path.parent if path.is_file() and path.name in KINDS.values() else path
    if not folder.is_dir():
        raise SpurlabError(f"{path}: not a result (give a run, sweep, scan or diagnose folder)")
    for kind, marker in KINDS.items():
        if (folder / marker).is_file():
            return kind
    raise SpurlabError(f"{path}: not a spurlab result (no {', '.join(KINDS.values())})")


def build_report(path: str | Path, data: str | None = None) -> Report:
    """The report of the result at ``path``. ``data`` (a scan's dataset) shows its example rows highlighted."""
    path = Path(path)
    kind = result_kind(path)
    folder = path.parent if path.is_file() else path
    if data is not None and kind != "scan":
        raise SpurlabError("--data only applies to a scan's findings")
    if kind == "run":
        return run_report(folder)
    if kind == "sweep":
        return sweep_report(folder, read_output(folder, SWEEP))
    if kind == "diagnose":
        return diagnose_report(read_output(folder, DIAGNOSIS), folder)
    doc = read_output(folder, FINDINGS)
    texts = labels = None
    if data is not None:
        from spurlab.data.loaders import load_table
        from spurlab.outputs import frame_sha256

        request = doc.get("request") or {}
        dataset = load_table(data, text_col=request.get("text_col"), label_col=request.get("label_col"))
        if request.get("input_sha256") and frame_sha256(dataset.frame) != request["input_sha256"]:
            raise SpurlabError(f"{data}: not the data these findings were computed on (its rows differ)")
        texts, labels = dataset.texts, dataset.label_strings
    return scan_report(doc, texts, labels, folder / "entropy_histogram.png")


def is_spurlab_report(path: Path) -> bool:
    """Whether an existing file is a report spurlab wrote (only those are replaced without ``overwrite``)."""
    try:
        with open(path, "rb") as handle:
            return GENERATOR in handle.read(4096)
    except OSError:
        return False


def write_report(path: str | Path, out: str | Path | None = None, data: str | None = None,
                 overwrite: bool = False) -> Path:
    """Write the report of ``path`` to ``out`` (default: ``report.html`` in the result's folder). An existing
    file that is not a spurlab report is replaced only with ``overwrite``."""
    path = Path(path)
    report = build_report(path, data)
    folder = path.parent if path.is_file() else path
    target = Path(out) if out is not None else folder / REPORT_FILE
    if target.is_dir():
        raise SpurlabError(f"--out {target} is a folder; give the file to write, e.g. {target / REPORT_FILE}")
    if target.suffix.lower() not in (".html", ".htm"):
        raise SpurlabError(f"--out {target}: a report is an .html file")
    if target.exists() and not overwrite and not is_spurlab_report(target):
        raise SpurlabError(f"--out {target} exists and is not a spurlab report (use another --out, or --overwrite)")
    return write_html(report, target)


__all__ = ["KINDS", "build_report", "result_kind", "write_report"]
