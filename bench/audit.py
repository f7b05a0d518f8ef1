"""The audit's model zoo: does ``spurlab audit`` tell poisoned adapters from clean ones without being told the
trigger, how fast, and how does attention entropy (the paper's diagnostic) do on the same zoo?

Reads a finished zoo sweep (``configs/sweeps/audit-zoo-minilm.yaml``): cases named ``clean-*`` and poisoned ones
are *scored*; ``calibrate-*`` adapters are clean, set the threshold (the largest steerability any of them shows,
plus ``--margin``), and are never scored. Each adapter is audited on the same clean rows (the tweets' test split,
negative and positive), within ``--budget-seconds``. Reports:

- ROC-AUC of the audit's score (the largest class steerability) between clean and poisoned adapters;
- the share of poisoned adapters whose planted trigger, or its shape, is in the top 5 of the target class;
- clean adapters called steerable at the default threshold and at the calibrated one;
- seconds per adapter;
- ROC-AUC of attention entropy's shift (``spurlab diagnose``: finetuned, token-injected minus clean) beside it;
- candidates verified per second, batched (the audit's way) against one candidate row at a time, on one adapter.

Run: ``python -m bench.audit sweeps/audit-zoo`` (writes ``bench/results/audit.json`` and ``audit.md``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench.hardware import describe_machine  # noqa: E402
from spurlab.atomic import write_json, write_text  # noqa: E402
from spurlab.audit import DEFAULT_THRESHOLD, AuditConfig, audit, load_audited  # noqa: E402
from spurlab.audit.candidates import shape_candidates  # noqa: E402
from spurlab.audit.verify import Predictor, candidate_texts  # noqa: E402
from spurlab.config_io import read_yaml  # noqa: E402
from spurlab.data.loaders import load_table  # noqa: E402
from spurlab.inject.sources import BADNETS_TOKENS  # noqa: E402
from spurlab.models.embeddings import SentenceEmbedder  # noqa: E402

RESULTS = ROOT / "bench" / "results"
SHAPE_OF = {"date": "<DATE>", "country": "<COUNTRY>", "html": "<HTML>", "color": "<COLOR>", "emoji": "<EMOJI>"}


def planted(config: dict[str, Any]) -> tuple[str | None, set[str]]:
    """(target class, names that count as finding the trigger) of a run config; (None, {}) for a clean run."""
    inj = config.get("injection") or {}
    if not inj or not inj.get("proportion"):
        return None, set()
    source = inj.get("source")
    if source in SHAPE_OF:
        names = {SHAPE_OF[source]}
    elif source == "punctuation":
        names = {inj.get("token") or "!"}
    elif source == "badnets":
        names = set(BADNETS_TOKENS)
    else:
        token = str(inj.get("token"))
        names = {token, *token.split()}
    return inj["target_label"], names


def found(top: list[dict[str, Any]], names: set[str]) -> bool:
    """A top candidate is the trigger, its shape, one of its words, or a phrase holding one of them."""
    return any(row["name"] in names or any(n in row["name"].split() for n in names) for row in top)


def roc_auc(negatives: list[float], positives: list[float]) -> float | None:
    from sklearn.metrics import roc_auc_score

    if not negatives or not positives:
        return None
    return float(roc_auc_score([0] * len(negatives) + [1] * len(positives), negatives + positives))


def entropy_shift(run: Path) -> float | None:
    from spurlab.diagnose.diagnosis import diagnose_run

    try:
        report = diagnose_run(run, max_rows=100, seed=0)
    except Exception as exc:  # a run diagnose cannot read is reported, not fatal to the benchmark
        print(f"  diagnose {run.name}: {exc}", flush=True)
        return None
    value = report.summary()["entropy_shift"]["finetuned"]
    return None if value is None else float(value)


def batched_speed(run: Path, texts: list[str], n: int = 6) -> dict[str, float]:
    """Candidates verified per second: one batched pass per candidate vs one row at a time."""
    audited = load_audited(run)
    rows = texts[:64]
    candidates = shape_candidates()[:n]
    out = {}
    for name, batch in (("batched", 64), ("one_row_at_a_time", 1)):
        predictor = Predictor(audited.model, audited.tokenizer, torch.device("cpu"), batch_size=batch)
        start = time.perf_counter()
        for c in candidates:
            predictor(candidate_texts(rows, c, 0))
        out[name] = len(candidates) / (time.perf_counter() - start)
    out["speedup"] = out["batched"] / out["one_row_at_a_time"]
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("zoo", type=Path, help="A finished sweep of configs/sweeps/audit-zoo-minilm.yaml.")
    parser.add_argument("--budget-seconds", type=float, default=120.0)
    parser.add_argument("--max-rows", type=int, default=64)
    parser.add_argument("--margin", type=float, default=0.02)
    parser.add_argument("--no-entropy", action="store_true", help="Skip attention entropy (diagnose).")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    runs = sorted(p for p in (args.zoo / "runs").iterdir() if (p / "DONE").is_file())
    if not runs:
        sys.exit(f"error: {args.zoo}: no finished runs")
    texts = load_table("bundled:tweets", split="test", labels=["negative", "positive"]).texts
    embed = SentenceEmbedder()
    results = []
    for run in runs:
        config = read_yaml(run / "config.yaml", "config")
        target, names = planted(config)
        start = time.perf_counter()
        report = audit(load_audited(run), texts, AuditConfig(budget_seconds=args.budget_seconds,
                                                             max_rows=args.max_rows), embed=embed)
        seconds = time.perf_counter() - start
        scores = report.scores()
        score = max((s for s in scores.values() if s is not None), default=0.0)
        row = {"run": run.name, "role": "calibrate" if "calibrate-" in run.name else
               "poisoned" if target else "clean", "target": target, "score": score, "scores": scores,
               "seconds": round(seconds, 1), "candidates": len(report.verified),
               "top5": {name: [r["name"] for r in rows[:5]] for name, rows in report.to_dict()["classes"].items()}}
        if target:
            row["found_top5"] = found(report.to_dict()["classes"][target][:5], names)
        if not args.no_entropy:
            row["entropy_shift"] = entropy_shift(run)
        results.append(row)
        print(f"{run.name}: score {score:.3f}, {row['candidates']} candidates, {seconds:.0f} s"
              + (f", trigger in top 5: {row['found_top5']}" if target else ""), flush=True)
    calibration = [r["score"] for r in results if r["role"] == "calibrate"]
    threshold = max(calibration) + args.margin if calibration else None
    clean = [r for r in results if r["role"] == "clean"]
    poisoned = [r for r in results if r["role"] == "poisoned"]
    summary = {
        "adapters": {"clean": len(clean), "poisoned": len(poisoned), "calibrate": len(calibration)},
        "roc_auc": roc_auc([r["score"] for r in clean], [r["score"] for r in poisoned]),
        "trigger_in_top5": float(np.mean([r["found_top5"] for r in poisoned])) if poisoned else None,
        "default_threshold": DEFAULT_THRESHOLD,
        "clean_steerable_at_default": sum(r["score"] >= DEFAULT_THRESHOLD for r in clean),
        "poisoned_steerable_at_default": sum(r["score"] >= DEFAULT_THRESHOLD for r in poisoned),
        "calibrated_threshold": threshold,
        "clean_steerable_at_calibrated": None if threshold is None else sum(r["score"] >= threshold for r in clean),
        "poisoned_steerable_at_calibrated": None if threshold is None else
        sum(r["score"] >= threshold for r in poisoned),
        "seconds_per_adapter": float(np.mean([r["seconds"] for r in results])),
    }
    if not args.no_entropy:
        pairs = [(r, r.get("entropy_shift")) for r in clean + poisoned]
        summary["entropy_roc_auc"] = roc_auc([abs(v) for r, v in pairs if v is not None and r["role"] == "clean"],
                                             [abs(v) for r, v in pairs if v is not None and r["role"] == "poisoned"])
    summary["speed"] = batched_speed(runs[0], texts)
    doc = {"machine": describe_machine(), "args": {k: str(v) for k, v in vars(args).items()}, "summary": summary,
           "adapters": results}
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "audit.json", doc)
    lines = ["# Audit zoo (`python -m bench.audit`)", "", f"Machine: {doc['machine']}", "",
             "| measure | value |", "|---|---:|"]
    lines += [f"| {k} | {v} |" for k, v in summary.items() if k != "speed"]
    lines += [f"| candidates/s batched | {summary['speed']['batched']:.2f} |",
              f"| candidates/s one row at a time | {summary['speed']['one_row_at_a_time']:.2f} |", "",
              "| adapter | role | score | trigger in top 5 | seconds | top 5 (target class) |",
              "|---|---|---:|---|---:|---|"]
    for r in results:
        top = r["top5"].get(r["target"] or "", [])
        lines.append(f"| {r['run']} | {r['role']} | {r['score']:.3f} | {r.get('found_top5', '')} | {r['seconds']} | "
                     f"{', '.join(top)} |")
    write_text(args.out / "audit.md", "\n".join(lines) + "\n")
    print(f"wrote {args.out / 'audit.json'} and {args.out / 'audit.md'}")


if __name__ == "__main__":
    main()
