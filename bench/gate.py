"""Data-gate benchmark: does ``spurlab scan --fail-on planted`` fail on poisoned data and pass clean data?

The datasets are split once: *dev* (bundled tweets, CommonsenseQA), where the gate's levels
(``ScanConfig.planted_*``) may be chosen, and *test* (SST-2, movie reviews, Financial PhraseBank), which no
default was chosen on. Per dataset: the clean data and four seeded half-size subsamples of it (clean cases), and
every source (``SOURCES``) x location at 5% and 10% of the first label's rows, clean-label, plus every source
dirty-label at a random location (poisoned cases). Each scan records
every finding the context test did not explain with its planting evidence, share of its label's rows and
purity lower bound, so one scan per case gives the gate's outcome under every rule of the grid.

Run: ``python -m bench.gate --part dev`` and ``python -m bench.gate --part test`` (one per core, about 15 minutes
each on 2 cores), then ``python -m bench.gate --summarize``: it picks the rule on dev alone (``choose_rule``) and
writes ``bench/results/gate.md`` with both parts' outcomes and the trade-off.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

from bench.detection import SOURCES as DETECTION_SOURCES  # noqa: E402
from bench.detection import datasets, plant  # noqa: E402
from spurlab.atomic import write_json, write_text  # noqa: E402
from spurlab.data.dataset import TextDataset  # noqa: E402
from spurlab.defend.sanitize import sanitize  # noqa: E402
from spurlab.outputs import read_json_object  # noqa: E402
from spurlab.scan.scanner import PLANTED_EVIDENCE, PLANTED_PURITY, PLANTED_SHARE, ScanReport, scan  # noqa: E402

RESULTS = ROOT / "bench" / "results"
PARTS = {"dev": ["tweets", "commonsense_qa"], "test": ["sst2", "movie_reviews", "financial_phrasebank"]}
#: The detection benchmark's SSTI sources, a BadNets-style rare word (its ``fixed`` "cf"), a planted phrase, an
#: AddSent sentence, and the symbol-and-digit sources (a random price, time, percentage, short link, e-mail
#: address, hex string or emoji per row).
SYMBOL_SOURCES = ("price", "time", "percent", "link", "email", "hex", "emoji")
SOURCES = {**DETECTION_SOURCES, "phrase": {"source": "fixed", "token": "by the way"},
           "addsent": {"source": "fixed", "token": "I watched this 3D movie"},
           **{name: {} for name in SYMBOL_SOURCES}}
LOCATIONS = ["start", "end", "random"]
PROPORTIONS = [0.05, 0.10]
SUBSAMPLES = 4


def _evidence(report: ScanReport, hits: set[str] | None = None) -> dict[str, Any]:
    """The largest planting evidence among unexplained findings (all of them, and those of planted features),
    and every unexplained finding's evidence, class share and purity (to try other gate rules offline). A
    relabelled finding counts as unexplained, as ``scanner.reads_as_planted`` counts it."""
    unexplained = [f for f in report.findings if f.explained_by_text is False or f.relabelled]
    label_counts = report.summary["label_counts"]
    best = max(unexplained, key=lambda f: f.planting_evidence or 0.0, default=None)
    planted = [f for f in unexplained if hits and f.feature in hits]
    return {
        "n_findings": len(report.findings), "n_unexplained": len(unexplained),
        "max_evidence": (best.planting_evidence or 0.0) if best else None,
        "max_evidence_feature": best.feature if best else None,
        "max_evidence_planted": max((f.planting_evidence or 0.0 for f in planted), default=None),
        "top": report.findings[0].feature if report.findings else None,
        "top_is_planted": bool(hits and report.findings and report.findings[0].feature in hits),
        "n_relabelled": sum(bool(f.relabelled) for f in report.findings),
        "unexplained": [{"feature": f.feature, "position": f.position, "evidence": f.planting_evidence,
                         "class_share": f.counts[f.label] / max(label_counts[f.label], 1), "p_label": f.p_label,
                         "purity_lb": f.purity_lb, "support": f.support, "planted": bool(hits and f.feature in hits)}
                        for f in unexplained],
    }


def run_part(part: str) -> list[dict[str, Any]]:
    data = datasets(quick=False, only=PARTS[part])
    rows: list[dict[str, Any]] = []
    for name, ds in data.items():
        rng = np.random.default_rng(7)
        cases: list[tuple[str, TextDataset, set[str] | None, dict[str, Any], list | None]] = [
            ("clean", ds, None, {}, None)]
        for i in range(SUBSAMPLES):
            keep = np.sort(rng.choice(len(ds), size=len(ds) // 2, replace=False))
            cases.append(("clean", ds.with_frame(ds.frame.iloc[keep].reset_index(drop=True)), None,
                          {"subsample": i}, None))
        for source in SOURCES:
            for location in LOCATIONS:
                for prop in PROPORTIONS:
                    res, hits = plant(ds, source, location, prop, sources=SOURCES)
                    cases.append(("poisoned", res.dataset, hits, {"source": source, "location": location,
                                                                  "proportion": prop,
                                                                  "n_poisoned": len(res.manifest)}, res.manifest))
            for prop in PROPORTIONS:
                res, hits = plant(ds, source, "random", prop, poisoning="dirty_label", sources=SOURCES)
                cases.append(("poisoned", res.dataset, hits, {"source": source, "location": "random",
                                                              "proportion": prop, "poisoning": "dirty_label",
                                                              "n_poisoned": len(res.manifest)}, res.manifest))
        for kind, case, hits, info, manifest in cases:
            t0 = time.perf_counter()
            report = scan(case)
            row = {"part": part, "dataset": name, "case": kind, "n_rows": len(case), **info,
                   **_evidence(report, hits), "scan_s": round(time.perf_counter() - t0, 2)}
            if manifest is not None:
                row["sanitized_share"] = sanitized_share(ds, case, report, manifest)
            rows.append(row)
            print(f"{part} {name:20s} {kind:8s} {info} max_ev={row['max_evidence']} "
                  f"({row['max_evidence_feature']!r}) planted_ev={row['max_evidence_planted']}", flush=True)
    return rows


def sanitized_share(original: TextDataset, poisoned: TextDataset, report: ScanReport, manifest: list) -> float:
    """Share of the poisoned rows that ``sanitize --top 1`` leaves with no planted item: no inserted string occurs
    in the sanitized row more often than in the row before poisoning."""
    cleaned = sanitize(poisoned, report.findings, top=1).dataset.texts
    before = original.texts
    done = 0
    for record in manifest:
        row = int(record["row"])
        items = [x for item in record["inserted"] for x in ([item] if isinstance(item, str) else item)]
        done += all(cleaned[row].count(x) <= before[row].count(x) for x in items)
    return done / len(manifest) if manifest else 1.0


Rule = tuple[float, float, float]  # (planting evidence, class share, purity lower bound)
GRID: list[Rule] = [(e, sh, pu) for e in (0.1, 0.2, 0.3, 0.4, 0.5) for sh in (0.01, 0.02, 0.03, 0.04, 0.05)
                    for pu in (0.8, 0.85, 0.9, 0.95)]
DEFAULT: Rule = (PLANTED_EVIDENCE, PLANTED_SHARE, PLANTED_PURITY)


def fails(row: dict[str, Any], rule: Rule) -> bool:
    """Whether ``scan --fail-on planted`` exits 3 on this case under ``rule`` (``scanner.reads_as_planted``)."""
    evidence, share, purity = rule
    return any((u["evidence"] or 0.0) >= evidence or (u["class_share"] >= share and u["purity_lb"] >= purity)
               for u in row["unexplained"])


def outcome(rows: list[dict[str, Any]], rule: Rule, poisoning: str | None = None) -> dict[str, int]:
    """Poisoned cases failed (of which poisoning, if given) and clean cases failed, under ``rule``."""
    poisoned = [r for r in rows if r["case"] == "poisoned"
                and (poisoning is None or r.get("poisoning", "clean_label") == poisoning)]
    clean = [r for r in rows if r["case"] == "clean"]
    return {"poisoned_failed": sum(fails(r, rule) for r in poisoned), "n_poisoned": len(poisoned),
            "clean_failed": sum(fails(r, rule) for r in clean), "n_clean": len(clean)}


def choose_rule(dev: list[dict[str, Any]]) -> Rule:
    """On dev only: fewest clean cases failed, then most poisoned cases failed, then the most conservative rule
    (highest purity, share and evidence levels)."""
    def key(rule: Rule) -> tuple:
        o = outcome(dev, rule)
        return (-o["clean_failed"], o["poisoned_failed"], rule[2], rule[1], rule[0])

    return max(GRID, key=key)


def _pct(k: int, n: int) -> str:
    return f"{k}/{n} ({k / n:.0%})" if n else "-"


def summarize() -> str:
    parts = {p: (read_json_object(RESULTS / f"gate-{p}.json") or {}).get("rows", []) for p in PARTS}
    chosen = choose_rule(parts["dev"]) if parts["dev"] else DEFAULT
    lines = ["# Data-gate benchmark (`python -m bench.gate`)", "",
             f"Dev datasets: {', '.join(PARTS['dev'])}; test datasets: {', '.join(PARTS['test'])}. Poisoned cases "
             f"per dataset: {len(SOURCES)} sources x {len(LOCATIONS)} locations x "
             f"{' and '.join(f'{p:.0%}' for p in PROPORTIONS)} of the first label's rows (clean-label; sources "
             f"{', '.join(SOURCES)}), plus each "
             f"source dirty-label at a random location at the same rates (rows of the other labels get the token "
             f"and the first label); clean cases: each dataset and {SUBSAMPLES} seeded half-size subsamples.", "",
             "`scan --fail-on planted` exits 3 when a finding the context test did not explain has planting "
             "evidence >= E, or is in >= S of its label's rows with a purity lower bound >= P "
             "(`scanner.reads_as_planted`).", "",
             f"Rule chosen on dev only (fewest dev clean cases failed, then most dev poisoned cases failed, then the "
             f"most conservative): E = {chosen[0]}, S = {chosen[1]}, P = {chosen[2]}; shipped default: "
             f"E = {DEFAULT[0]}, S = {DEFAULT[1]}, P = {DEFAULT[2]}.", "",
             "## Outcome at the default", "",
             "| part | poisoned failed (exit 3) | clean-label | dirty-label | clean cases failed |",
             "|---|---:|---:|---:|---:|"]
    for part, rows in parts.items():
        if not rows:
            lines.append(f"| {part} | not run | | | |")
            continue
        o, cl, dl = outcome(rows, DEFAULT), outcome(rows, DEFAULT, "clean_label"), outcome(rows, DEFAULT,
                                                                                           "dirty_label")
        cells = [_pct(x["poisoned_failed"], x["n_poisoned"]) for x in (o, cl, dl)]
        lines.append(f"| {part} | {' | '.join(cells)} | {_pct(o['clean_failed'], o['n_clean'])} |")
    lines += ["", "## Ranking and sanitizing", "",
              "Top = the top finding is the planted item or its shape; sanitized = `sanitize --top 1` leaves no "
              "planted item in >= 99% of the poisoned rows.", "",
              "| part | poisoning | top finding planted | sanitized |", "|---|---|---:|---:|"]
    for part, rows in parts.items():
        for kind in ("clean_label", "dirty_label"):
            mine = [r for r in rows if r["case"] == "poisoned" and r.get("poisoning", "clean_label") == kind]
            if mine:
                lines.append(f"| {part} | {kind.replace('_', '-')} | "
                             f"{_pct(sum(r['top_is_planted'] for r in mine), len(mine))} | "
                             f"{_pct(sum(r.get('sanitized_share', 0.0) >= 0.99 for r in mine), len(mine))} |")
    lines += ["", "## Per dataset at the default", "",
              "| part | dataset | clean-label failed | dirty-label failed | clean failed | top finding is the "
              "planted one (clean-label / dirty-label) | relabelled findings in clean cases |",
              "|---|---|---:|---:|---:|---:|---:|"]
    for part, rows in parts.items():
        for name in PARTS[part]:
            mine = [r for r in rows if r["dataset"] == name]
            if not mine:
                continue
            cl, dl = outcome(mine, DEFAULT, "clean_label"), outcome(mine, DEFAULT, "dirty_label")
            top = {kind: [r["top_is_planted"] for r in mine if r["case"] == "poisoned"
                          and r.get("poisoning", "clean_label") == kind] for kind in ("clean_label", "dirty_label")}
            lines.append(f"| {part} | {name} | {_pct(cl['poisoned_failed'], cl['n_poisoned'])} | "
                         f"{_pct(dl['poisoned_failed'], dl['n_poisoned'])} | {_pct(cl['clean_failed'], cl['n_clean'])}"
                         f" | {sum(top['clean_label'])}/{len(top['clean_label'])} / "
                         f"{sum(top['dirty_label'])}/{len(top['dirty_label'])} | "
                         f"{sum(r.get('n_relabelled', 0) for r in mine if r['case'] == 'clean')} |")
    for part in ("test", "dev"):
        lines += ["", f"## Per trigger kind, {part} datasets at the default", "",
                  "Top = the top finding is the planted item or its shape (recall@1); gate = `--fail-on planted` "
                  "exits 3; sanitized = `sanitize --top 1` leaves no planted item in the row (mean share of poisoned "
                  "rows, and the cases where it is >= 99%).", "",
                  "| source | top, clean-label | top, dirty-label | gate, clean-label | gate, dirty-label | "
                  "sanitized (mean) | sanitized >= 99% |", "|---|---:|---:|---:|---:|---:|---:|"]
        for source in SOURCES:
            mine = [r for r in parts[part] if r["case"] == "poisoned" and r["source"] == source]
            if not mine:
                continue
            by = {k: [r for r in mine if r.get("poisoning", "clean_label") == k]
                  for k in ("clean_label", "dirty_label")}
            shares = [r["sanitized_share"] for r in mine if "sanitized_share" in r]
            cells = [_pct(sum(r["top_is_planted"] for r in by[k]), len(by[k])) for k in by]
            cells += [_pct(sum(fails(r, DEFAULT) for r in by[k]), len(by[k])) for k in by]
            cells += [f"{np.mean(shares):.1%}" if shares else "-", _pct(sum(x >= 0.99 for x in shares), len(shares))]
            lines.append(f"| {source} | " + " | ".join(cells) + " |")
    lines += ["", "## Trade-off: clean cases failed against poisoned cases failed", "",
              "Each row is one rule of the grid the dev choice searched (evidence E, share S, purity P); shown: "
              "the default and, per purity level, the rule with E and S at the default.", "",
              "| E | S | P | dev poisoned failed | dev clean failed | test poisoned failed | test clean failed |",
              "|---:|---:|---:|---:|---:|---:|---:|"]
    for rule in [r for r in GRID if r[0] == DEFAULT[0] and r[1] == DEFAULT[1]] + [(DEFAULT[0], 1.01, 1.01)]:
        d, t = outcome(parts["dev"], rule), outcome(parts["test"], rule)
        mark = " (default)" if rule == DEFAULT else (" (evidence only)" if rule[1] > 1 else "")
        lines.append(f"| {rule[0]} | {rule[1] if rule[1] <= 1 else '-'} | {rule[2] if rule[2] <= 1 else '-'}{mark} | "
                     f"{_pct(d['poisoned_failed'], d['n_poisoned'])} | {_pct(d['clean_failed'], d['n_clean'])} | "
                     f"{_pct(t['poisoned_failed'], t['n_poisoned'])} | {_pct(t['clean_failed'], t['n_clean'])} |")
    missed = [r for r in parts["test"] if r["case"] == "poisoned" and not fails(r, DEFAULT)]
    if missed:
        lines += ["", "Test poisoned cases the gate passes at the default: " + "; ".join(
            f"{r['dataset']} {r['source']} {r['location']} {r['proportion']:.0%}"
            + (" dirty-label" if r.get("poisoning") == "dirty_label" else "") for r in missed) + "."]
    lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=sorted(PARTS))
    ap.add_argument("--summarize", action="store_true")
    args = ap.parse_args()
    if args.part:
        t0 = time.perf_counter()
        rows = run_part(args.part)
        write_json(RESULTS / f"gate-{args.part}.json", {"rows": rows, "seconds": round(time.perf_counter() - t0)})
    if args.summarize or not args.part:
        text = summarize()
        write_text(RESULTS / "gate.md", text)
        print(text)


if __name__ == "__main__":
    main()
