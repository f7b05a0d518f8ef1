"""``precision: auto`` against fp32 and bf16 on the machine it runs on.

Trains the demo's MiniLM LoRA run (a random date in the negative tweets, r=8) at ``fp32``, ``bf16`` and
``auto``, interleaved over ``--rounds`` rounds (best-of per precision, so a neighbour's load hits all alike),
and reports training examples/s, the final loss, what ``auto`` chose and why (its probe measured afresh, not
read from the cache), and auto's speed as a share of the faster fixed precision.

Run: ``python -m bench.precision`` (writes ``bench/results/precision.json`` and ``precision.md``).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

from bench.hardware import describe_machine  # noqa: E402
from spurlab.atomic import write_json, write_text  # noqa: E402
from spurlab.config_io import read_yaml  # noqa: E402
from spurlab.experiment.config import config_from_dict  # noqa: E402
from spurlab.experiment.runner import RunCache, run_experiment  # noqa: E402

RESULTS = ROOT / "bench" / "results"
PRECISIONS = ("fp32", "bf16", "auto")


def _config(precision: str, n_train: int) -> Any:
    data = read_yaml(ROOT / "configs" / "demo-minilm.yaml", "config")
    data["data"].update(max_train=n_train, max_test=100)
    data["train"].update(precision=precision, epochs=1)
    data["evaluation"].update(flip=False, base=False)
    return config_from_dict(data, source=f"demo-minilm precision={precision}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--n-train", type=int, default=960)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    best: dict[str, dict[str, Any]] = {}
    cache = RunCache()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["SPURLAB_CACHE"] = str(Path(tmp) / "cache")  # auto measures afresh, once
        for r in range(args.rounds):
            for precision in PRECISIONS:
                result = run_experiment(_config(precision, args.n_train), Path(tmp) / f"{precision}-{r}",
                                        cache=cache, verbose=False, progress=False, report=False)
                meta = result.metrics["meta"]
                speed = meta["train_examples_per_second"]
                print(f"round {r} {precision}: {speed:.1f} examples/s ({meta['precision']})", flush=True)
                if precision not in best or speed > best[precision]["examples_per_second"]:
                    best[precision] = {"examples_per_second": round(speed, 1), "chosen": meta["precision"],
                                       "final_loss": round(meta["train"]["final_loss"], 4),
                                       "choice": meta["precision_choice"]}
    faster = max(("fp32", "bf16"), key=lambda p: best[p]["examples_per_second"])
    share = best["auto"]["examples_per_second"] / best[faster]["examples_per_second"]
    out = {"machine": describe_machine(), "rounds": args.rounds, "n_train": args.n_train, "results": best,
           "faster": faster, "auto_share_of_faster": round(share, 3)}
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "precision.json", out)
    m = out["machine"]
    lines = ["# `precision: auto` against fp32 and bf16 (`python -m bench.precision`)", "",
             f"{m.get('cpu')}, {m.get('threads')} torch threads, torch {m.get('torch')}. The demo's MiniLM "
             f"LoRA r=8 run, {args.n_train} training rows, 1 epoch; best of {args.rounds} interleaved rounds.", "",
             "| precision | training examples/s | final loss |", "|---|---:|---:|"]
    for p in PRECISIONS:
        label = f"auto (→ {best[p]['chosen']})" if p == "auto" else p
        lines.append(f"| {label} | {best[p]['examples_per_second']:.1f} | {best[p]['final_loss']:.4f} |")
    lines += ["", f"auto chose {best['auto']['chosen']}: {best['auto']['choice']['reason']}.",
              f"auto runs at {share:.1%} of the faster fixed precision ({faster})."]
    write_text(args.out / "precision.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
