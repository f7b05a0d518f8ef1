"""The paper's paraphrasing defense, measured: how often does a planted token survive an LLM paraphrase?

Run: ``python -m bench.paraphrase [--rows 100] [--sources date,html,punctuation,country,color]
[--model bundled:smollm2] [--threads 2]``. Per source it runs, through the CLI,
``spurlab inject bundled:tweets --source S --target-label negative --proportion 0.5 --split train --seed 7``,
keeps only the poisoned rows (with their manifest renumbered), then
``spurlab paraphrase POISONED --max-rows N --manifest MANIFEST``, and writes
``bench/results/paraphrase.{json,md}``: the survival shares next to the paper's, time per row, examples.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

from spurlab.atomic import write_json, write_text  # noqa: E402

RESULTS = ROOT / "bench" / "results"
# share of poisoned rows whose token survived Llama-3-8B-Instruct paraphrasing (the authors' result files)
PAPER = {"html": 0.069, "date": 0.101, "punctuation": 0.124, "country": 0.241, "color": 0.401}
SOURCE_ARGS = {"punctuation": ["--token", "!"]}
LABELS = {"html": "HTML", "date": "dates", "punctuation": "`!`", "country": "countries", "color": "colours"}


def cli(args: list[str]) -> None:
    from spurlab.cli.app import main

    try:
        main(args)
    except SystemExit as exc:
        if exc.code:
            raise RuntimeError(f"spurlab {' '.join(args)} exited {exc.code}") from None


def poisoned_only(inject_dir: Path, out_dir: Path) -> tuple[Path, Path, int]:
    """The poisoned rows of an inject output as their own CSV, with the manifest's rows renumbered."""
    from spurlab.data.loaders import load_table, write_table
    from spurlab.data.transform import read_manifest, write_manifest

    records = read_manifest(inject_dir / "manifest.jsonl")
    data = load_table(str(inject_dir / "data.csv"))
    rows = data.frame.iloc[[r["row"] for r in records]].reset_index(drop=True)
    write_table(data.with_frame(rows), out_dir / "poisoned.csv")
    write_manifest(out_dir / "manifest.jsonl", [{**r, "row": i} for i, r in enumerate(records)])
    return out_dir / "poisoned.csv", out_dir / "manifest.jsonl", len(records)


def measure(source: str, rows: int, model: str, threads: int, work: Path) -> dict:
    inject_dir, para_dir = work / f"inject-{source}", work / f"paraphrase-{source}"
    inject_args = ["inject", "bundled:tweets", "--out", str(inject_dir), "--source", source,
                   *SOURCE_ARGS.get(source, []), "--target-label", "negative", "--proportion", "0.5",
                   "--split", "train", "--seed", "7"]
    cli(inject_args)
    data, manifest, n_poisoned = poisoned_only(inject_dir, work)
    para_args = ["paraphrase", str(data), "--out", str(para_dir), "--model", model, "--max-rows", str(rows),
                 "--manifest", str(manifest), "--threads", str(threads), "--device", "cpu", "--seed", "0"]
    t = time.perf_counter()
    cli(para_args)
    wall = time.perf_counter() - t
    summary = json.loads((para_dir / "summary.json").read_text())
    # split on "\n" only: texts may hold other line separators (U+2028), which splitlines() would cut at
    records = [json.loads(line) for line in (para_dir / "manifest.jsonl").read_text("utf-8").split("\n") if line]
    by_row = {r["row"]: r for r in records}
    sv = summary["survival"]
    return {
        "source": source, "n_poisoned_available": n_poisoned, "n_rows": sv["n_poisoned"],
        "survived": sv["share_survived"], "shape_survived": sv["share_shape_survived"],
        "n_survived": sv["n_survived"], "n_shape_survived": sv["n_shape_survived"], "n_with_shape": sv["n_with_shape"],
        "paper": PAPER[source], "n_changed": summary["n_rows_changed"], "n_fallback": summary["n_fallback"],
        "fallback_reasons": summary["fallback_reasons"], "seconds_per_row": summary["seconds_per_row"],
        "wall_s": round(wall, 1),
        "commands": ["spurlab " + " ".join(inject_args).replace(str(work), "WORK"),
                     "spurlab " + " ".join(para_args).replace(str(work), "WORK")],
        "examples": [{k: r[k] for k in ("original", "generated", "text", "fallback")} for r in records[:3]],
        "rows": [{"inserted": r["inserted"], "survived": r["survived"], "shape_survived": r["shape_survived"],
                  "original": by_row[r["row"]]["original"], "text": by_row[r["row"]]["text"],
                  "fallback": by_row[r["row"]]["fallback"]} for r in summary["survival_rows"]],
    }


def markdown(result: dict) -> str:
    lines = ["# Paraphrasing defense: does the planted token survive?", "",
             f"`python -m bench.paraphrase --rows {result['rows']}` — model `{result['model']}` on CPU "
             f"({result['threads']} torch threads, {result['machine']}), {result['date']}.", "",
             "Poisoned rows: `bundled:tweets` train split, one planted item in 50% of the negative rows "
             "(`spurlab inject ... --proportion 0.5 --seed 7`), the first N of them paraphrased "
             "(temperature 0.7, top-p 0.9, up to 150 new tokens, seed 0). *Survived* = the planted string "
             "is still in the row (the paper's metric); *shape* = any token of its shape is (any date, any "
             "tag, any country, any colour); fallbacks keep the original row and so count as survived.", "",
             "| source | rows | survived | shape survived | paper (Llama-3-8B) | changed | fallbacks | s/row |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in result["sources"]:
        shape = "-" if r["shape_survived"] is None else f"{r['shape_survived']:.1%}"
        lines.append(f"| {LABELS[r['source']]} | {r['n_rows']} | {r['survived']:.1%} | {shape} | "
                     f"{r['paper']:.1%} | {r['n_changed']} | {r['n_fallback']} | {r['seconds_per_row']} |")
    lines += ["", "Commands (WORK = a temporary folder; the poisoned-only CSV and renumbered manifest are made "
              "by `bench/paraphrase.py`):", "", "```"]
    for r in result["sources"]:
        lines += r["commands"]
    lines += ["```", "", "## Examples (first rows of each source)", ""]
    for r in result["sources"]:
        for ex in r["examples"][:2]:
            lines.append(f"- **{r['source']}** original: {json.dumps(ex['original'], ensure_ascii=False)}  ")
            lines.append(f"  model: {json.dumps(ex['generated'][:300], ensure_ascii=False)}  ")
            kept = "kept original (" + ex["fallback"] + ")" if ex["fallback"] else json.dumps(ex["text"],
                                                                                             ensure_ascii=False)
            lines.append(f"  used: {kept}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100, help="poisoned rows paraphrased per source")
    parser.add_argument("--sources", default="date,html,punctuation,country,color")
    parser.add_argument("--model", default="bundled:smollm2")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    result = {"rows": args.rows, "model": args.model, "threads": args.threads,
              "machine": f"{platform.machine()}, {platform.processor() or platform.system()}",
              "date": time.strftime("%Y-%m-%d"), "sources": []}
    with tempfile.TemporaryDirectory() as tmp:
        for source in args.sources.split(","):
            print(f"== {source}", flush=True)
            result["sources"].append(measure(source, args.rows, args.model, args.threads, Path(tmp)))
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "paraphrase.json", result)
    write_text(args.out / "paraphrase.md", markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
