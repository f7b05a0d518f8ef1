"""Stealthiness of each attack on real data: ``spurlab stealth``'s measures (ΔPPL under SmolLM2, MiniLM
similarity, Δ spelling errors) for every injection source of the gate benchmark, planted at random positions
in 10% of the bundled tweets' negative rows, 200 rows measured per source.

Run: ``python -m bench.stealth`` (writes ``bench/results/stealth.json`` and ``stealth.md``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

from bench.gate import SOURCES  # noqa: E402
from spurlab.atomic import write_json, write_text  # noqa: E402
from spurlab.data.loaders import load_table  # noqa: E402
from spurlab.inject import InjectionConfig, inject  # noqa: E402
from spurlab.inject.stealth import stealthiness  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-rows", type=int, default=200)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    tweets = load_table("bundled:tweets")
    rows = {}
    for name, settings in SOURCES.items():
        t0 = time.perf_counter()
        settings = dict(settings)
        source = settings.pop("source", name)
        res = inject(tweets, InjectionConfig(source=source, target_label="negative", proportion=0.1,
                                             location="random", seed=5, **settings))
        changed = [r["row"] for r in res.manifest]
        rows[name] = stealthiness([tweets.texts[r] for r in changed], [res.dataset.texts[r] for r in changed],
                                  max_rows=args.max_rows, seed=0)
        rows[name]["seconds"] = round(time.perf_counter() - t0, 1)
        print(name, rows[name], flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "stealth.json", rows)
    lines = ["# Stealthiness of each injection source (`python -m bench.stealth`)", "",
             f"Bundled tweets, 10% of the negative rows poisoned at random positions (seed 5), {args.max_rows} "
             "poisoned rows measured against their originals per source. ΔPPL: perplexity under "
             "SmolLM2-135M-Instruct, poisoned minus original; similarity: cosine of all-MiniLM-L6-v2 "
             "mean-pooled embeddings; Δ spelling: words pyspellchecker does not know, poisoned minus original.",
             "", "| source | median PPL original → poisoned | median ΔPPL | mean ΔPPL | mean similarity | min "
             "similarity | mean Δ spelling errors |", "|---|---:|---:|---:|---:|---:|---:|"]
    for name, r in rows.items():
        p = r["perplexity"]
        lines.append(f"| {name} | {p['original']['median']:.1f} → {p['poisoned']['median']:.1f} | "
                     f"{p['delta']['median']:+.1f} | {p['delta']['mean']:+.1f} | {r['similarity']['mean']:.3f} | "
                     f"{r['similarity']['min']:.3f} | {r['spelling']['delta']['mean']:+.2f} |")
    write_text(args.out / "stealth.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
