"""Why a detection case is missed: per-label row counts of the planted item's features, clean and poisoned.

For each case (dataset, source, location, proportion, planted exactly as ``bench.detection`` plants it), the
rows per label that hold each feature a planted string counts as (its shapes, or its tokens where it has no
shape) anywhere, as the first / last token, and where it reads as inserted, in the clean data and after
planting; the rank of the planted item and the top finding; and for planted marks (``!``) the share of
that mark's occurrences in the clean data that stand alone between whitespace (what the spacing rule reads).

Run: ``python -m bench.detection_counts [--case movie_reviews:punctuation:random:0.05 ...] [--no-misses]``: every
case at >= 5% that ``bench/results/detection.json`` records as missed, then the ``--case`` ones. Writes
``bench/results/detection_counts.md`` (the one in the repository:
``--case movie_reviews:punctuation:random:0.05 --case tweets:punctuation:end:0.05``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

from bench.detection import RESULTS, datasets, plant  # noqa: E402
from spurlab.atomic import write_text  # noqa: E402
from spurlab.scan.scanner import scan  # noqa: E402
from spurlab.scan.shapes import alone_flags, is_shape, normalize_token, token_spans  # noqa: E402
from spurlab.scan.stats import FeatureCounts, count_features  # noqa: E402

POSITIONS = ("any", "start", "end", "inserted")


def missed_cases(path: Path) -> list[tuple[str, str, str, float]]:
    grid = json.loads(path.read_text())["grid"]
    return [(r["dataset"], r["source"], r["location"], r["proportion"]) for r in grid
            if r["proportion"] >= 0.05 and not r["hit1"]]


def parse_case(text: str) -> tuple[str, str, str, float]:
    dataset, source, location, proportion = text.split(":")
    return dataset, source, location, float(proportion)


def feature_counts(counts: FeatureCounts, feature: str) -> dict[str, list[int]]:
    """Rows per label of ``feature`` at each position (absent positions left out)."""
    out = {}
    for col, (name, where) in enumerate(zip(counts.features, counts.positions, strict=True)):
        if name == feature:
            out[where] = counts.doc_freq[col].tolist()
    return out


def alone_share(texts: list[str], mark: str) -> tuple[int, int]:
    """(occurrences of ``mark`` standing alone between whitespace, all its occurrences)."""
    alone = total = 0
    for text in texts:
        spans = token_spans(text)
        for (_, _, tok), flag in zip(spans, alone_flags(text, spans), strict=True):
            if normalize_token(tok) == mark:
                total += 1
                alone += flag
    return alone, total


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", action="append", type=parse_case,
                        help="dataset:source:location:proportion (repeatable)")
    parser.add_argument("--no-misses", action="store_true", help="only the --case cases")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    cases = ([] if args.no_misses else missed_cases(args.out / "detection.json")) + (args.case or [])
    data = datasets(False, sorted({c[0] for c in cases}))
    clean_counts = {name: count_features(ds.texts, ds.label_ids, len(ds.label_names)) for name, ds in data.items()}
    lines = ["# Counts behind detection cases (`python -m bench.detection_counts`)", "",
             "Rows per label (in the dataset's label order) that hold each feature of the planted item, in the "
             "clean data -> after planting. Positions: anywhere, first token, last token, reads as inserted.", ""]
    for dname, source, location, prop in cases:
        ds = data[dname]
        res, hits = plant(ds, source, location, prop)
        report = scan(res.dataset)
        rank = next((i + 1 for i, f in enumerate(report.findings) if f.feature in hits), None)
        top = report.findings[0]
        poisoned = count_features(res.dataset.texts, res.dataset.label_ids, len(ds.label_names))
        lines += [f"## {dname}, {source} at {location}, {prop:.0%} of `{ds.label_names[0]}` "
                  f"({len(res.manifest)} rows)", "",
                  f"Labels {', '.join(ds.label_names)}. Rank of the planted item: {rank}; top finding `{top.feature}`"
                  f" ({top.position}, {top.label}, rows {list(top.counts.values())}).", "",
                  "| feature | " + " | ".join(POSITIONS) + " |", "|---|" + "---|" * len(POSITIONS)]
        shapes = {h for h in hits if is_shape(h)}
        for feature in sorted(shapes or hits):  # a planted item's shapes, or its tokens where it has none
            after = feature_counts(poisoned, feature)
            if not after:
                continue
            before = feature_counts(clean_counts[dname], feature)
            cells = [f"{before.get(w, '–')} -> {after.get(w, '–')}" for w in POSITIONS]
            lines.append(f"| `{feature}` | " + " | ".join(cells) + " |")
        if source == "punctuation":
            mark = next(iter(res.manifest))["inserted"][0]
            alone, total = alone_share(ds.texts, mark)
            lines += ["", f"In the clean data {alone:,} of {total:,} `{mark}` ({alone / max(total, 1):.0%}) stand "
                      "alone between whitespace."]
        lines.append("")
        print("\n".join(lines[-12:]), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    write_text(args.out / "detection_counts.md", "\n".join(lines))


if __name__ == "__main__":
    main()
