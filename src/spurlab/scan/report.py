"""A scan's findings as a :class:`~spurlab.report.document.Report`: the findings table, example rows with the
finding highlighted in their text (when the texts are at hand), and the H(y|token) histogram."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from spurlab.report.document import Example, Figure, Report, Section, Table
from spurlab.scan.shapes import normalize_token, shapes_of, token_spans


def finding_spans(text: str, feature: str, kind: str, lowercase: bool = True,
                  tokens: list[str] | None = None) -> list[tuple[int, int]]:
    """Where a finding occurs in one text, read with the scanner's own tokenizer (a phrase: its ``tokens``)."""
    found = token_spans(text)
    if kind == "phrase":
        words = tuple(tokens or feature.split(" "))
        norm = [normalize_token(tok, lowercase) for _, _, tok in found]
        n = len(words)
        return [(found[i][0], found[i + n - 1][1]) for i in range(len(found) - n + 1) if tuple(norm[i:i + n]) == words]
    spans = []
    for start, end, token in found:
        hit = feature in shapes_of(token) if kind == "shape" else normalize_token(token, lowercase) == feature
        if hit:
            spans.append((start, end))
    return spans


def _findings_table(findings: list[dict[str, Any]]) -> Table:
    rows = [[f.get("score_rank", i + 1), f["feature"], f["kind"], f.get("position", "any"), f["label"], f["support"],
             f.get("p_label"), f.get("log10_p_adj"), f.get("inserted_share"),
             {True: "yes", False: "no", None: "not tested"}[f.get("explained_by_text")]
             + (" (rows read like another class: relabelled)" if f.get("relabelled") else ""),
             "yes" if f.get("planted") else "no"]
            for i, f in enumerate(findings)]
    return Table(["rank", "feature", "kind", "position", "label", "rows", "p(label | feature)", "log10 p (adj.)",
                  "inserted share", "explained by text", "reads as planted"], rows, key="findings",
                 caption="Ranked findings: features far more frequent in one label's rows than chance allows.")


def scan_report(findings_doc: dict[str, Any], texts: list[str] | None = None, labels: list[str] | None = None,
                histogram_png: Path | None = None, max_findings: int = 20) -> Report:
    """The report of one scan (``findings_doc`` is the content of ``findings.json``)."""
    summary, findings = findings_doc.get("summary", {}), findings_doc.get("findings", [])
    request = findings_doc.get("request") or {}
    config = findings_doc.get("config") or request.get("config") or {}
    provenance = {
        "dataset": str(summary.get("dataset")), "rows": str(summary.get("n_rows")),
        "labels": ", ".join(f"{k} ({v})" for k, v in (summary.get("label_counts") or {}).items()),
        "input sha256": str(request.get("input_sha256", "not recorded")),
        "test": f"{summary.get('correction')} at alpha {summary.get('alpha')}, {summary.get('n_tests')} tests",
        "format": f"{findings_doc.get('format')} version {findings_doc.get('version')}",
    }
    headline = Table(["findings", "reads as planted", "tokens", "subwords", "shapes", "context-tested",
                      "explained by text"],
                     [[summary.get("n_findings", len(findings)), summary.get("n_planted", "not recorded"),
                       *[(summary.get("n_findings_by_kind") or {}).get(k, 0)
                                                                   for k in ("token", "subword", "shape")],
                       (summary.get("context") or {}).get("tested", 0),
                       (summary.get("context") or {}).get("explained_by_text", 0)]],
                     key="headline", sortable=False)
    sections = [Section("Findings", "findings", tables=[_findings_table(findings)] if findings else [],
                        paragraphs=[] if findings else ["No findings: no feature is tied to one label beyond "
                                                        "chance at this significance level."])]
    if findings:
        examples = []
        lowercase = bool(config.get("lowercase", True))
        for f in findings[:max_findings]:
            for row in f.get("examples", []):
                if texts is not None and 0 <= row < len(texts):
                    label = labels[row] if labels is not None else ""
                    examples.append(Example(texts[row], finding_spans(texts[row], f["feature"], f["kind"], lowercase,
                                                                          f.get("tokens")),
                                            f"{f['feature']!s} · row {row}" + (f" · label {label}" if label else "")))
        note = [] if texts is not None else ["Example rows are shown by number only: give the data "
                                             "(spurlab report DIR --data FILE) to see them highlighted."]
        sections.append(Section("Example rows", "examples", paragraphs=note, examples=examples))
    if histogram_png is not None and Path(histogram_png).is_file():
        sections.append(Section("Entropy", "entropy", figures=[Figure.from_file(
            histogram_png, "H(label | token)", "Frequent tokens' label entropy; flagged tokens sit near zero.")]))
    n = summary.get("n_findings", len(findings))
    return Report(f"Scan of {summary.get('dataset')}", "scan", provenance, headline, sections,
                  {"n_findings": float(n)})


__all__ = ["finding_spans", "scan_report"]
