"""Detection benchmark: does ``spurlab scan`` find planted SSTI tokens, and what does it flag in clean data?

For every built-in token source x location x poisoned proportion, on the real datasets in ``../shared/data``
and the bundled tweets: plant one token per poisoned row into the rows of one class (the first label), scan,
and record whether the planted token or its shape is the top finding (recall@1) or among the top 5. Clean
datasets give the false alarms at the default threshold. An off-the-shelf checker (cleanlab
``find_label_issues`` over cross-validated TF-IDF + logistic regression probabilities) runs on a subset for
contrast. Scan speed: 1M tweet-length rows, vectorised scan vs a pure-Python ``collections.Counter`` scan
timed on a subsample and extrapolated per row.

Run: ``python -m bench.detection [--quick] [--no-cleanlab] [--no-speed] [--datasets a,b]``; runs over
disjoint ``--datasets`` (e.g. one per core) join with ``--merge A/detection.json B/detection.json``. Writes
``bench/results/detection.json`` and ``bench/results/detection.md``.
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

from spurlab.atomic import write_json, write_text  # noqa: E402
from spurlab.data.dataset import TextDataset  # noqa: E402
from spurlab.scan.scanner import ScanConfig, scan  # noqa: E402
from spurlab.scan.shapes import normalize_token, shapes_of, tokenize  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "bench" / "results"
SOURCES: dict[str, dict[str, Any]] = {
    "date": {}, "country": {}, "color": {}, "html": {}, "punctuation": {"token": "!"}, "fixed": {"token": "cf"},
}
LOCATIONS = ["start", "end", "random"]
PROPORTIONS = [0.01, 0.05, 0.10, 0.25, 0.50, 1.00]
#: Which datasets a default may be chosen on (dev) and which are never used for that (test). The ranking weight
#: ``inserted_boost`` was chosen on Financial PhraseBank scans, so it is dev here (the gate benchmark, whose levels
#: were chosen on tweets and CommonsenseQA only, may use it as test).
PARTS = {"dev": ["tweets", "commonsense_qa", "financial_phrasebank"], "test": ["sst2", "movie_reviews"]}
#: The ablation: the scanner without the inserted-occurrence features and ranking (the previous release).
BEFORE = ScanConfig(inserted=False)


def datasets(quick: bool, only: list[str] | None = None) -> dict[str, TextDataset]:
    """The benchmark datasets (shared ones skipped with a message when the folder is absent)."""
    from spurlab.data.loaders import load_table

    specs = {
        "financial_phrasebank": (f"preset:financial_phrasebank:{SHARED}/financial_phrasebank/Sentences_AllAgree.txt",
                                 "all"),
        "sst2": (f"preset:sst2:{SHARED}/sst2", "train"),
        "commonsense_qa": (f"preset:commonsense_qa:{SHARED}/commonsense_qa", "train"),
        "movie_reviews": (f"preset:movie_reviews:{SHARED}/movie_reviews/movie_reviews.zip", "all"),
    }
    out: dict[str, TextDataset] = {}
    if not SHARED.is_dir():
        print("note: ../shared/data is absent; only bundled:tweets is used", file=sys.stderr)
    else:
        for name, (spec, split) in specs.items():
            if (quick and name not in ("sst2", "financial_phrasebank")) or (only and name not in only):
                continue
            out[name] = load_table(spec, split=split)
    if not only or "tweets" in only:
        out["tweets"] = load_table("bundled:tweets")
    return out


def hit_features(inserted: list[str], lowercase: bool = True) -> set[str]:
    """Every feature a planted string counts as: its tokens and their shapes (any position variant) and, for a
    string of several tokens, the phrases of 2 or more of its consecutive tokens."""
    feats: set[str] = set()
    for item in inserted:
        tokens = [normalize_token(tok, lowercase) for tok in tokenize(item)]
        feats.update(tokens)
        for tok in tokenize(item):
            feats.update(shapes_of(tok))
        feats.update(" ".join(tokens[a:b]) for a in range(len(tokens)) for b in range(a + 2, len(tokens) + 1))
    return feats


def plant(ds: TextDataset, source: str, location: str, proportion: float, poisoning: str = "clean_label",
          sources: dict[str, dict[str, Any]] | None = None) -> tuple[Any, set[str]]:
    """One benchmark case: ``source`` planted in ``proportion`` of the first label's rows (seed 13; dirty-label:
    of the other labels' rows, relabelled to the first label), and every feature a planted string counts as.
    ``sources`` (default ``SOURCES``) maps a case name to its injection settings; a ``source`` key among them
    names the token source when it differs from the case name."""
    from spurlab.inject import InjectionConfig, inject

    settings = dict((sources or SOURCES)[source])
    name = settings.pop("source", source)
    res = inject(ds, InjectionConfig(source=name, target_label=ds.label_names[0], proportion=proportion,
                                     location=location, seed=13, poisoning=poisoning, **settings))
    hits: set[str] = set()
    for rec in res.manifest:
        hits |= hit_features(rec["inserted"])
    return res, hits


def detection_grid(data: dict[str, TextDataset], sources: list[str], locations: list[str],
                   proportions: list[float], ablation: bool = True) -> list[dict[str, Any]]:
    rows = []
    for dname, ds in data.items():
        target = ds.label_names[0]
        for source in sources:
            for location in locations:
                for prop in proportions:
                    t0 = time.perf_counter()
                    res, hits = plant(ds, source, location, prop)
                    t1 = time.perf_counter()
                    report = scan(res.dataset)
                    t2 = time.perf_counter()
                    ranks = [i for i, f in enumerate(report.findings) if f.feature in hits]
                    rank = ranks[0] + 1 if ranks else None
                    before_rank = None
                    if ablation:
                        before = scan(res.dataset, BEFORE)
                        before_rank = next((i + 1 for i, f in enumerate(before.findings) if f.feature in hits), None)
                    top = report.findings[0] if report.findings else None
                    rows.append({
                        "dataset": dname, "source": source, "location": location, "proportion": prop,
                        "target": target, "n_poisoned": len(res.manifest), "n_rows": len(ds), "rank": rank,
                        "hit1": rank == 1, "hit5": rank is not None and rank <= 5,
                        **({"before_rank": before_rank, "before_hit1": before_rank == 1,
                            "before_hit5": before_rank is not None and before_rank <= 5} if ablation else {}),
                        "top": top.feature if top else None, "n_findings": len(report.findings),
                        "inject_s": round(t1 - t0, 3), "scan_s": round(t2 - t1, 3),
                    })
                    print(f"{dname:20s} {source:11s} {location:6s} {prop:5.2f} poisoned={len(res.manifest):5d} "
                          f"rank={rank} top={rows[-1]['top']!r} scan={t2 - t1:.2f}s", flush=True)
    return rows


def false_alarms(data: dict[str, TextDataset]) -> dict[str, Any]:
    out = {}
    threshold = 0.35  # descriptive: how many findings read as inserted in over a third of their rows
    for name, ds in data.items():
        t0 = time.perf_counter()
        report = scan(ds)
        out[name] = {
            "n_rows": len(ds), "n_findings": len(report.findings),
            "n_not_explained": report.summary["context"]["not_explained"],
            "n_explained": report.summary["context"]["explained_by_text"], "scan_s": round(time.perf_counter() - t0, 3),
            "n_tested_features": report.summary["n_tested_features"],
            "n_read_as_inserted": sum((f.inserted_share or 0.0) >= threshold for f in report.findings),
            "top": [{"feature": f.feature, "kind": f.kind, "position": f.position,
                     "inserted_share": f.inserted_share, "label": f.label, "support": f.support,
                     "p_label": round(f.p_label, 3), "context_p": f.context_p} for f in report.findings[:5]],
        }
    return out


# ------------------------------------------------------------------------------------------------ cleanlab


def cleanlab_check(ds: TextDataset, poisoned: set[int], seed: int = 0) -> dict[str, Any]:
    """The cleanlab defense's flags (``spurlab.defend.label_issues``: 5-fold TF-IDF + logistic regression,
    confident learning) scored against the planted rows."""
    from spurlab.defend.label_issues import label_issue_rows

    flagged = set(label_issue_rows(ds, folds=5, seed=seed).tolist())
    tp = len(flagged & poisoned)
    return {"n_flagged": len(flagged), "n_poisoned": len(poisoned), "poisoned_flagged": tp,
            "precision": tp / len(flagged) if flagged else None,
            "recall": tp / len(poisoned) if poisoned else None,
            "flagged_share": len(flagged) / len(ds)}


def cleanlab_grid(data: dict[str, TextDataset], sources: list[str], proportions: list[float]
                  ) -> list[dict[str, Any]]:
    rows = []
    for dname, ds in data.items():
        clean = cleanlab_check(ds, set())
        rows.append({"dataset": dname, "source": None, "proportion": 0.0, **clean})
        for source in sources:
            for prop in proportions:
                res, _ = plant(ds, source, "random", prop)
                poisoned = {r["row"] for r in res.manifest}
                rows.append({"dataset": dname, "source": source, "proportion": prop,
                             **cleanlab_check(res.dataset, poisoned)})
                print(f"cleanlab {dname:20s} {source:11s} {prop:4.2f} {rows[-1]}", flush=True)
    return rows


# ---------------------------------------------------------------------------------------------------- speed


def counter_scan(texts: list[str], labels: np.ndarray, n_labels: int, min_support: int = 10) -> dict[str, Any]:
    """The straightforward pure-Python scan: the reference tokenizer row by row, ``Counter``s per (feature, label),
    then per-feature statistics.

    Same tokenizer and shapes as the real scan. Returns the number of findings and the seconds per stage:
    ``tokenize_s`` (``tokenize`` on every row), ``count_s`` (the Counter loop) and ``stats_s``.
    """
    t0 = time.perf_counter()
    token_lists = [tokenize(text) for text in texts]
    t1 = time.perf_counter()
    df: Counter = Counter()
    first: Counter = Counter()
    last: Counter = Counter()
    for toks, label in zip(token_lists, labels.tolist(), strict=True):
        feats: set[str] = set()
        for tok in toks:
            feats.add(tok.lower())
            feats.update(shapes_of(tok))
        for f in feats:
            df[(f, label)] += 1
        if toks:
            first[toks[0].lower()] += 1
            last[toks[-1].lower()] += 1
    t2 = time.perf_counter()
    prior = np.bincount(labels, minlength=n_labels) / len(labels)
    per_feature: dict[str, list[int]] = {}
    for (f, label), count in df.items():
        per_feature.setdefault(f, [0] * n_labels)[label] = count
    tests = sum(1 for c in per_feature.values() if sum(c) >= min_support) * n_labels
    found = 0
    for counts in per_feature.values():
        n = sum(counts)
        if n < min_support:
            continue
        best = 0.0
        for k, c in enumerate(counts):
            mean, sd = n * prior[k], math.sqrt(n * prior[k] * (1 - prior[k]))
            z = (c - 0.5 - mean) / sd if sd > 0 else 0.0
            best = min(best, math.log10(max(0.5 * math.erfc(z / math.sqrt(2)), 1e-300)))
        _ = -sum(c / n * math.log2(c / n) for c in counts if c)
        found += best + math.log10(max(tests, 1)) < -2
    return {"found": found, "tokenize_s": t1 - t0, "count_s": t2 - t1, "stats_s": time.perf_counter() - t2}


def speed_data(n_target: int) -> TextDataset:
    """``n_target`` tweet-length rows: the bundled tweets with a date planted in 10% of one class, replicated."""
    from spurlab.data.loaders import load_table
    from spurlab.inject import InjectionConfig, inject

    tweets = load_table("bundled:tweets")
    poisoned = inject(tweets, InjectionConfig(source="date", target_label=tweets.label_names[0], proportion=0.10,
                                              location="random", seed=1)).dataset
    reps = math.ceil(n_target / len(poisoned))
    frame = poisoned.frame.loc[np.tile(np.arange(len(poisoned)), reps)[:n_target]].reset_index(drop=True)
    return poisoned.with_frame(frame)


def _timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float, float]:
    """(result, wall seconds, CPU seconds of this process)."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - wall, time.process_time() - cpu


def speed(n_target: int, subsample: int, repeats: int = 3) -> dict[str, Any]:
    """Whole-scan and per-stage seconds of ``scan`` on ``n_target`` rows and of ``counter_scan`` on the first
    ``subsample`` rows (extrapolated per row), interleaved ``repeats`` times so both see the same machine load;
    medians are reported."""
    big = speed_data(n_target)
    sub = big.with_frame(big.frame.iloc[:subsample].reset_index(drop=True))
    scan(sub)  # warm-up: imports, one-off checks
    fast_runs, sub_runs, base_runs = [], [], []
    report = None
    for _ in range(repeats):
        found, _, cpu = _timed(counter_scan, sub.texts, sub.label_ids, len(sub.label_names))
        base_runs.append({**found, "cpu_s": cpu})
        stages: dict[str, float] = {}
        report, wall, cpu = _timed(scan, big, timings=stages)
        fast_runs.append({"wall_s": wall, "cpu_s": cpu, **stages})
        stages = {}
        _, wall, cpu = _timed(scan, sub, timings=stages)
        sub_runs.append({"wall_s": wall, "cpu_s": cpu, **stages})

    def med(runs: list[dict[str, float]], key: str) -> float:
        return float(np.median([r[key] for r in runs]))

    per_row = {k: med(base_runs, k) / subsample for k in ("tokenize_s", "count_s")}
    base_stats = med(base_runs, "stats_s")
    base_1m = {"tokenize_s": per_row["tokenize_s"] * n_target, "count_s": per_row["count_s"] * n_target,
               "stats_s": base_stats}
    base_1m["total_s"] = sum(base_1m.values())
    fast = {k: med(fast_runs, k) for k in ("tokenize_s", "count_s", "stats_s", "wall_s", "cpu_s")}
    base_sub_total = med(base_runs, "tokenize_s") + med(base_runs, "count_s") + base_stats
    base_cpu_1m = (med(base_runs, "cpu_s") - base_stats) / subsample * n_target + base_stats
    ratio_cpu = base_cpu_1m / fast["cpu_s"]
    texts = big.frame[big.text_col].astype(str)
    return {
        "n_rows": n_target, "chars_per_row": round(float(texts.str.len().mean()), 1),
        "distinct_rows": int(texts.nunique()), "repeats": repeats,
        "scan_s": round(fast["wall_s"], 2), "scan_cpu_s": round(fast["cpu_s"], 2),
        "scan_stages_s": {k: round(fast[k], 2) for k in ("tokenize_s", "count_s", "stats_s")},
        "scan_runs_s": [round(r["wall_s"], 2) for r in fast_runs],
        "scan_top": report.findings[0].feature if report and report.findings else None,
        "n_findings": len(report.findings) if report else 0,
        "subsample_rows": subsample, "scan_subsample_s": round(med(sub_runs, "wall_s"), 3),
        "counter_subsample_stages_s": {k: round(med(base_runs, k), 3) for k in ("tokenize_s", "count_s", "stats_s")},
        "counter_subsample_s": round(base_sub_total, 2),
        "counter_per_row_us": round((per_row["tokenize_s"] + per_row["count_s"]) * 1e6, 2),
        "counter_1m_stages_s": {k: round(v, 1) for k, v in base_1m.items() if k != "total_s"},
        "counter_1m_estimate_s": round(base_1m["total_s"], 1),
        "speedup": round(base_1m["total_s"] / fast["wall_s"], 1),
        "speedup_cpu": round(ratio_cpu, 1),
        "speedup_same_subsample": round(base_sub_total / med(sub_runs, "wall_s"), 1),
        "counter_findings_subsample": base_runs[-1]["found"],
        "machine": f"{platform.processor() or platform.machine()}, {_cores()} cores, Python "
                   f"{platform.python_version()}",
        "before": {"scan_s": 26.18, "counter_1m_estimate_s": 40.7, "speedup": 1.6,
                   "note": "previous release (bigram counts by np.unique + searchsorted), same day, same machine"},
    }


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


# --------------------------------------------------------------------------------------------------- report


def _pct(x: float | None) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.0f}%"


def _ctx(p: float | None) -> str:
    return "–" if p is None else f"{p:.3f}"


def markdown(result: dict[str, Any]) -> str:
    grid = result["grid"]
    lines = ["# Detection benchmark (`python -m bench.detection`)", ""]
    lines.append(f"Run: {result['meta']['mode']}; datasets: {', '.join(result['meta']['datasets'])}; "
                 f"target class = each dataset's first label; one planted item per poisoned row; default "
                 f"threshold (Bonferroni-corrected binomial p < 0.01, support >= 10); ranked by significance weighted "
                 f"by how far the feature reads as inserted more often than the corpus' words (`inserted_boost`), "
                 f"findings explained by their rows' text (context test on the top 300) last; {len(grid)} scans in "
                 f"{result['meta']['grid_s']:.0f} s.")
    lines += ["", "## Recall@1 / recall@5 of the planted token or its shape, per source (proportion >= 5%)", "",
              "A hit is a top finding equal to a planted token or one of its shapes (`<DATE>`, `<COUNTRY>`, "
              "`<HTML>`, ..., including capitalisation shapes such as `<CASE:Xxxx>` in lowercased SST-2), "
              "anywhere in the row, as the row's first/last token, or where it reads as inserted. *Before*: "
              + ("the same scans in the previous release's results (its own default scanner and ranking)."
                 if result["meta"].get("before_from") else
                 "the same scans without the inserted-occurrence features and ranking "
                 "(`ScanConfig(inserted=False)`; the ablation)."), ""]
    for part, names in PARTS.items():
        part_grid = [r for r in grid if r["dataset"] in names]
        if not part_grid:
            continue
        present = [d for d in names if any(r["dataset"] == d for r in part_grid)]
        lines += [f"### {part.capitalize()} datasets: {', '.join(present)}" + (
            " (never used to choose a default)" if part == "test" else " (defaults may be chosen here)"), ""]
        lines += [*_source_table(part_grid, result["meta"]["locations"], result["meta"]["sources"]), ""]
        at5 = [r for r in part_grid if r["proportion"] >= 0.05]
        at1 = [r for r in part_grid if r["proportion"] == 0.01]
        lines += [f"At >= 5%: {sum(r['hit1'] for r in at5)} of {len(at5)} scans have it on top, "
                  f"{sum(r['hit5'] for r in at5)} in the top 5; at 1%: {sum(r['hit1'] for r in at1)} of "
                  f"{len(at1)} on top.", ""]
    lines += ["", "## Recall@1 per dataset and poisoned proportion (all sources and locations): now (n) / before",
              ""]
    props = result["meta"]["proportions"]
    lines.append("| dataset | rows | target rows | " + " | ".join(f"{p:.0%}" for p in props) + " |")
    lines.append("|---|---:|---:|" + "---:|" * len(props))
    for dname in result["meta"]["datasets"]:
        sel = [r for r in grid if r["dataset"] == dname]
        if not sel:
            continue
        cells = []
        for p in props:
            ps = [r for r in sel if r["proportion"] == p]
            pois = sorted({r["n_poisoned"] for r in ps})
            before = [r["before_hit1"] for r in ps if "before_hit1" in r]
            cells.append(f"{_pct(np.mean([r['hit1'] for r in ps]))} ({pois[0]})"
                         + (f" / {_pct(np.mean(before))}" if before else "") if ps else "–")
        n_target = round(max(r["n_poisoned"] for r in sel if r["proportion"] == max(props)))
        lines.append(f"| {dname} | {sel[0]['n_rows']} | {n_target} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("(n) = poisoned rows at that proportion (the source with the most rows).")
    lines += ["", "## False alarms: findings in the clean datasets at the default threshold", ""]
    lines.append("| dataset | rows | features tested | findings | not explained by the text | read as inserted | "
                 "top 5 findings (label, p(y\\|t), rows, context p) |")
    lines.append("|---|---:|---:|---:|---:|---:|---|")
    for name, fa in result["false_alarms"].items():
        top = "; ".join(f"`{t['feature']}`{'' if t.get('position', 'any') == 'any' else ' @' + t['position']} "
                        f"({t['label']}, {t['p_label']:.2f}, {t['support']}, "
                        f"{_ctx(t.get('context_p'))})" for t in fa["top"])
        lines.append(f"| {name} | {fa['n_rows']} | {fa['n_tested_features']} | {fa['n_findings']} | "
                     f"{fa.get('n_not_explained', '–')} | {fa.get('n_read_as_inserted', '–')} | {top} |")
    lines += ["", "These are real label correlations (sentiment words, topic words of the tweet sub-corpora): "
              "statistically genuine shortcuts, not planted ones. The context test explains most of them by the "
              "rest of their rows' text (context p < 0.01) and ranks them behind the unexplained ones; the "
              "unexplained ones (words such as `solid`, `mess` that say the label on their own) stay."]
    if result.get("cleanlab"):
        lines += ["", "## Off-the-shelf checker: cleanlab `find_label_issues` (TF-IDF + logistic regression, "
                  "5-fold), location random", "", "Precision = share of flagged rows that are poisoned; recall = "
                  "share of poisoned rows that are flagged.", ""]
        props = sorted({r["proportion"] for r in result["cleanlab"] if r["source"]})
        lines.append("| dataset | flagged in clean data | " + " | ".join(
            f"{p:.0%} poisoned: recall / precision" for p in props) + " |")
        lines.append("|---|---:|" + "---:|" * len(props))
        for dname in dict.fromkeys(r["dataset"] for r in result["cleanlab"]):
            sel = [r for r in result["cleanlab"] if r["dataset"] == dname]
            clean = next((r for r in sel if not r["source"]), None)
            cells = []
            for p in props:
                ps = [r for r in sel if r["source"] and r["proportion"] == p]
                rec = [r["recall"] for r in ps if r["recall"] is not None]
                prec = [r["precision"] for r in ps if r["precision"] is not None]
                cells.append(f"{_pct(float(np.mean(rec)) if rec else None)} / "
                             f"{_pct(float(np.mean(prec)) if prec else None)}")
            flagged = f"{clean['n_flagged']} ({_pct(clean['flagged_share'])})" if clean else "–"
            lines.append(f"| {dname} | {flagged} | " + " | ".join(cells) + " |")
        lines += ["", "Means over the six sources; every run is in `detection.json`. Recall near the share of "
                  "rows flagged anyway is chance (commonsense_qa's answer letters are unlearnable from TF-IDF, "
                  "so most rows look mislabelled)."]
        cl = [r for r in result["cleanlab"] if r["source"]]
        if cl:
            rec = np.mean([r["recall"] for r in cl if r["recall"] is not None])
            lines += ["", f"Mean recall of poisoned rows over these runs: {_pct(float(rec))}. SSTI leaves labels "
                      "correct, so a label-error checker has nothing to find; the scanner flags the token."]
    if result.get("speed"):
        lines += ["", *speed_markdown(result["speed"])]
    return "\n".join(lines) + "\n"


def _source_table(grid: list[dict[str, Any]], locs: list[str], sources: list[str]) -> list[str]:
    """Recall@1 / @5 per source and location at proportions >= 5%, with the *before* recall@1 and the scans."""
    lines = ["| source | " + " | ".join(f"{loc} @1 | {loc} @5" for loc in locs)
             + " | all @1 | all @5 | all @1 before | scans |", "|---|" + "---:|" * (2 * len(locs) + 4)]
    for source in sources:
        cells = []
        for loc in [*locs, None]:
            sel = [r for r in grid if r["source"] == source and r["proportion"] >= 0.05
                   and (loc is None or r["location"] == loc)]
            cells += [_pct(np.mean([r["hit1"] for r in sel]) if sel else None),
                      _pct(np.mean([r["hit5"] for r in sel]) if sel else None)]
        sel = [r for r in grid if r["source"] == source and r["proportion"] >= 0.05 and "before_hit1" in r]
        cells.append(_pct(np.mean([r["before_hit1"] for r in sel]) if sel else None))
        cells.append(str(sum(r["source"] == source and r["proportion"] >= 0.05 for r in grid)))
        lines.append(f"| {source} | " + " | ".join(cells) + " |")
    return lines


def speed_markdown(s: dict[str, Any]) -> list[str]:
    """The "Scan speed" section of ``detection.md``."""
    if "scan_stages_s" not in s:  # a result from before the per-stage timings
        return ["## Scan speed", "", f"{s['n_rows']:,} rows: scan {s['scan_s']} s, pure-Python Counter scan "
                f"~{s['counter_1m_estimate_s']} s (extrapolated); speed-up {s['speedup']}x."]
    st, cs, c1 = s["scan_stages_s"], s["counter_subsample_stages_s"], s["counter_1m_stages_s"]
    before = s.get("before", {})
    return [
        "## Scan speed", "",
        f"{s['n_rows']:,} tweet-length rows ({s['chars_per_row']} chars on average; the bundled tweets with a date "
        f"planted in 10% of one class, replicated: {s['distinct_rows']:,} distinct rows), {s['machine']}. "
        f"Median of {s['repeats']} interleaved runs (`python -m bench.scan_speed`):", "",
        f"| implementation | rows timed | tokenise | count | statistics | total | {s['n_rows']:,}-row time |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| `spurlab scan` (Arrow chunks + regex on unique chunks, sparse counts) | {s['n_rows']:,} | "
        f"{st['tokenize_s']} s | {st['count_s']} s | {st['stats_s']} s | {s['scan_s']} s | **{s['scan_s']} s** |",
        f"| pure-Python: `tokenize` per row + `Counter` of (feature, label) | {s['subsample_rows']:,} | "
        f"{cs['tokenize_s']} s | {cs['count_s']} s | {cs['stats_s']} s | {s['counter_subsample_s']} s | "
        f"~{s['counter_1m_estimate_s']} s |",
        f"| ... extrapolated to {s['n_rows']:,} rows ({s['counter_per_row_us']} µs/row) | | ~{c1['tokenize_s']} s | "
        f"~{c1['count_s']} s | {c1['stats_s']} s | | |", "",
        f"Speed-up at {s['n_rows']:,} rows: **{s['speedup']}x** wall-clock ({s['speedup_cpu']}x in CPU time "
        f"of the process; on the same {s['subsample_rows']:,}-row subsample: {s['speedup_same_subsample']}x). "
        f"The scan's runs took {', '.join(f'{x} s' for x in s['scan_runs_s'])} ({s['scan_cpu_s']} s CPU); "
        f"top finding `{s['scan_top']}` of {s['n_findings']:,}. The previous release took "
        f"{before.get('scan_s', '?')} s against ~{before.get('counter_1m_estimate_s', '?')} s "
        f"({before.get('speedup', '?')}x; {before.get('note', 'earlier run')}). The Counter baseline counts no "
        f"positional or inserted features, so it does less work than the scan.",
        "",
        "Where the time goes now: *tokenise* is one Arrow pass that flags rows which may hold a token spanning "
        "whitespace (HTML tags with attributes, multi-word names; those rows go through the reference "
        "tokenizer), `utf8_split_whitespace` + `dictionary_encode` of every row's whitespace-separated chunks, "
        "and the reference regex once per distinct chunk; *count* is "
        "`rows x chunks @ (chunks x vocab @ vocab x features)` and `np.bincount`s; *statistics* are the "
        "binomial tests, ranking and building the findings (with examples). Timings are wall-clock on a 2-core "
        "machine shared with other jobs, so they vary by up to 2x between runs; the interleaving keeps the "
        "ratio fair.",
    ]


def merge(paths: list[Path], out: Path, before_from: Path | None = None) -> None:
    """One result from runs over disjoint datasets (run in parallel): grids and false alarms joined, grid time
    summed, the cleanlab and speed sections taken from the runs that have them."""
    import json

    parts = [json.loads(p.read_text()) for p in paths]
    result: dict[str, Any] = {"meta": dict(parts[0]["meta"]), "false_alarms": {}, "grid": []}
    for part in parts:
        result["false_alarms"].update(part["false_alarms"])
        result["grid"] += part["grid"]
        for key in ("cleanlab", "speed"):
            if key in part:
                result[key] = part[key]
    result["meta"]["datasets"] = [d for part in parts for d in part["meta"]["datasets"]]
    result["meta"]["grid_s"] = round(sum(part["meta"]["grid_s"] for part in parts), 1)
    result["meta"]["merged_from"] = len(parts)
    if before_from is not None:  # the earlier release's own results are the ablation's
        earlier = json.loads(before_from.read_text())
        for key in ("cleanlab", "speed"):  # neither depends on the ranking: kept unless re-run
            if key not in result and key in earlier:
                result[key] = earlier[key]
        key = ("dataset", "source", "location", "proportion")
        old = {tuple(r[k] for k in key): r for r in earlier["grid"]}
        for row in result["grid"]:
            if "before_rank" not in row and (prev := old.get(tuple(row[k] for k in key))) is not None:
                row.update(before_rank=prev["rank"], before_hit1=prev["hit1"], before_hit5=prev["hit5"])
        result["meta"]["before_from"] = "the previous release's bench/results/detection.json"
        result["meta"]["before_config"] = "the previous release's default ScanConfig() (its own ranking)"
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "detection.json", result)
    write_text(out / "detection.md", markdown(result))
    print(markdown(result))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 datasets + tweets, 3 proportions, no speed 1M")
    parser.add_argument("--no-cleanlab", action="store_true")
    parser.add_argument("--no-speed", action="store_true")
    parser.add_argument("--speed-rows", type=int, default=1_000_000)
    parser.add_argument("--no-ablation", action="store_true", help="skip the ablation scans (BEFORE)")
    parser.add_argument("--before-from", type=Path, help="with --merge: take the ablation columns from an "
                        "earlier detection.json (the previous release's ranking), and its cleanlab and speed "
                        "sections where the merged runs have none")
    parser.add_argument("--datasets", help="comma-separated subset (e.g. movie_reviews,tweets)")
    parser.add_argument("--merge", type=Path, nargs="+", help="merge the detection.json files of runs over "
                        "disjoint --datasets into --out (no scans)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.merge:
        merge(args.merge, args.out, args.before_from)
        return
    t0 = time.perf_counter()
    data = datasets(args.quick, args.datasets.split(",") if args.datasets else None)
    props = [0.01, 0.05, 0.25] if args.quick else PROPORTIONS
    sources = list(SOURCES)
    locations = LOCATIONS
    fa = false_alarms(data)
    t1 = time.perf_counter()
    grid = detection_grid(data, sources, locations, props, ablation=not args.no_ablation)
    grid_s = time.perf_counter() - t1
    result: dict[str, Any] = {
        "meta": {"mode": "quick" if args.quick else "full", "datasets": list(data), "sources": list(sources),
                 "locations": locations, "proportions": props, "grid_s": round(grid_s, 1),
                 "scan_config": "default ScanConfig()", "before_config": "ScanConfig(inserted=False)"},
        "false_alarms": fa, "grid": grid,
    }
    if not args.no_cleanlab:
        try:
            import cleanlab  # noqa: F401
        except ImportError:
            print("note: cleanlab not installed; skipping the comparison (pip install cleanlab)", file=sys.stderr)
        else:
            result["cleanlab"] = cleanlab_grid(data, sources, [0.05, 0.25, 1.0] if not args.quick else [0.25])
    if not args.no_speed:
        rows = min(args.speed_rows, 100_000) if args.quick else args.speed_rows
        result["speed"] = speed(rows, min(20_000, rows))
    result["meta"]["total_s"] = round(time.perf_counter() - t0, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "detection.json", result)
    write_text(args.out / "detection.md", markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
