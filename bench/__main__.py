"""``python -m bench [--quick] [--only train,eval,scan,flops,overhead]``: run the performance benchmark."""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

from bench.hardware import describe_machine, load_average
from bench.perf import RESULTS, SECTIONS, bench_eval, bench_flops, bench_overhead, bench_scan, bench_train, make_plan
from bench.report import eval_ratios, to_markdown, train_ratios, verdicts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks that everything runs")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated subset of {','.join(SECTIONS)}")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for perf.json and perf.md")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads for every recipe and the spurlab run subprocess (default: torch's)")
    parser.add_argument("--models", default=None, help="comma-separated subset of the models (minilm, smollm2)")
    parser.add_argument("--precisions", default=None, help="comma-separated subset of fp32, bf16")
    args = parser.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(only) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)} (choose from {', '.join(SECTIONS)})")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # inherited by the `spurlab run` subprocess
    plan = make_plan(args.quick)
    if args.models:
        keep = {m.strip() for m in args.models.split(",")}
        plan.cases = [case for case in plan.cases if case.key in keep]
        if not plan.cases:
            parser.error(f"no model among {args.models!r}")
    if args.precisions:
        plan.precisions = [p for p in plan.precisions if p in {x.strip() for x in args.precisions.split(",")}]
    _quiet()
    start = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - start:7.1f}s] {message}", flush=True)

    results: dict[str, Any] = {"machine": describe_machine(), "quick": plan.quick, "sections": only}
    previous = _previous(args.out / "perf.json")
    sections = {"train": lambda: bench_train(plan, log), "eval": lambda: bench_eval(plan, log),
                "flops": lambda: bench_flops(plan, _rows(results.get("train")), log),
                "overhead": lambda: bench_overhead(plan, log), "scan": lambda: bench_scan(plan, log)}
    if "flops" in only and "train" not in only and previous.get("quick") == plan.quick:
        results["train"] = _rows(previous.get("train"))  # utilisation of the last training measurements
    args.out.mkdir(parents=True, exist_ok=True)
    for name in ("train", "eval", "flops", "overhead", "scan"):
        if name in only:
            try:
                results[name] = sections[name]()
            except Exception as exc:  # one failing section must not lose the others' measurements
                log(f"{name} failed: {type(exc).__name__}: {exc}")
                results[name] = {"error": f"{type(exc).__name__}: {exc}"}
            _write(args.out, results, start)  # after every section: a crash later keeps what was measured
    log(f"wrote {args.out / 'perf.json'} and {args.out / 'perf.md'}")
    return 0


def _write(out: Path, results: dict[str, Any], start: float) -> None:
    """Derive ratios and verdicts, then write perf.json and perf.md."""
    results["train_ratios"] = train_ratios(_rows(results.get("train")))
    results["eval_ratios"] = eval_ratios(_rows(results.get("eval")))
    results["verdicts"] = verdicts(results)
    results["load_average_end"] = load_average()
    results["seconds"] = round(time.perf_counter() - start, 1)
    (out / "perf.json").write_text(json.dumps(results, indent=2, default=_plain) + "\n", encoding="utf-8")
    (out / "perf.md").write_text(to_markdown(results) + "\n", encoding="utf-8")


def _rows(section: Any) -> list[dict[str, Any]]:
    return section if isinstance(section, list) else []


def _plain(value: Any) -> Any:
    """numpy scalars (and anything else json cannot take) as plain Python values."""
    item = getattr(value, "item", None)
    return item() if callable(item) else str(value)


def _quiet() -> None:
    """No load reports, progress bars or deprecation chatter from transformers in the benchmark's log."""
    import warnings

    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning)


def _previous(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


if __name__ == "__main__":
    raise SystemExit(main())
