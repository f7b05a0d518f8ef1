"""Which context statistic separates genuine label words from planted tokens best?

For each benchmark dataset: the top findings of the *clean* data (genuine correlations, none planted) and the
planted features of poisoned copies (one date / HTML tag / fixed token / colour in 5% and 25% of one class,
random position). Each is context-tested with five statistics over the same permutations; a good statistic
marks many genuine findings "explained by the text" (p < 0.01) and few planted ones.

Run: ``python -m bench.context_statistics [--quick]``. Writes ``bench/results/context_statistics.{json,md}``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

from bench.detection import RESULTS, datasets, hit_features  # noqa: E402
from spurlab.atomic import write_json, write_text  # noqa: E402
from spurlab.scan.context import context_tests, weighted_chi2  # noqa: E402
from spurlab.scan.scanner import ScanConfig, _label_ids, _texts, scan  # noqa: E402
from spurlab.scan.stats import count_features  # noqa: E402

STATISTICS = {
    "sqrt(q)-weighted sum (default)": weighted_chi2,
    "plain sum (chi-square)": lambda t, q: t.sum(axis=-1),
    "sum over features in >= 2% of rows": lambda t, q: (t * (q >= 0.02)).sum(axis=-1),
    "top 20 terms": lambda t, q: np.sort(t, axis=-1)[..., -20:].sum(axis=-1),
    "maximum term": lambda t, q: t.max(axis=-1),
}
PLANTED = {"date": {}, "html": {}, "fixed": {"token": "cf"}, "color": {}}
TOP = 60


def _tested(dataset, keep) -> dict[str, list[float | None]]:
    """Context p-values per statistic for the findings of ``dataset`` that ``keep(finding)`` selects."""
    report = scan(dataset, ScanConfig(context=False))
    label_ids = _label_ids(dataset)
    counts = count_features(_texts(dataset), label_ids, len(dataset.label_names))
    index = {(f, p): i for i, (f, p) in enumerate(zip(counts.features, counts.positions, strict=True))}
    chosen = [f for f in report.findings[:TOP] if keep(f)]
    cols = [index[(f.feature, f.position)] for f in chosen]
    out = {}
    for name, statistic in STATISTICS.items():
        results = context_tests(counts, cols, [f.label_id for f in chosen], label_ids, statistic=statistic)
        out[name] = [None if r is None else r.p_value for r in results]
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two datasets, 5% only")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    from spurlab.inject import InjectionConfig, inject

    start = time.perf_counter()
    data = datasets(args.quick)
    genuine: dict[str, list[float | None]] = {name: [] for name in STATISTICS}
    planted: dict[str, list[float | None]] = {name: [] for name in STATISTICS}
    for dname, ds in data.items():
        for name, ps in _tested(ds, lambda f: True).items():
            genuine[name] += ps
        for source, params in PLANTED.items():
            for proportion in (0.05,) if args.quick else (0.05, 0.25):
                res = inject(ds, InjectionConfig(source=source, target_label=ds.label_names[0], proportion=proportion,
                                                 location="random", seed=13, **params))
                hits = set().union(*(hit_features(r["inserted"]) for r in res.manifest))
                for name, ps in _tested(res.dataset, lambda f, h=hits: f.feature in h).items():
                    planted[name] += ps
        print(f"{dname}: done ({time.perf_counter() - start:.0f} s)", flush=True)

    def share(ps: list[float | None]) -> tuple[float, int]:
        tested = [p for p in ps if p is not None]
        return (float(np.mean([p < 0.01 for p in tested])) if tested else float("nan")), len(tested)

    rows = []
    for name in STATISTICS:
        g, ng = share(genuine[name])
        p, npl = share(planted[name])
        rows.append({"statistic": name, "genuine_explained": g, "genuine_tested": ng, "planted_explained": p,
                     "planted_tested": npl})
    result = {"datasets": list(data), "top": TOP, "permutations": "sequential, up to 1000", "alpha": 0.01, "rows": rows,
              "seconds": round(time.perf_counter() - start, 1)}
    lines = ["# Context statistics (`python -m bench.context_statistics`)", "",
             f"Datasets: {', '.join(data)}. Genuine = the top {TOP} findings of each clean dataset; planted = the "
             "planted token's findings in poisoned copies (date, HTML, fixed token `cf`, colour; random position; "
             f"{'5%' if args.quick else '5% and 25%'} of the first class). Share marked explained by the text "
             "(context p < 0.01; sequential permutations, up to 1,000). Higher is better for genuine, lower for "
             "planted.", "",
             "| statistic | genuine explained | planted explained (false) |", "|---|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['statistic']} | {r['genuine_explained']:.0%} of {r['genuine_tested']} | "
                     f"{r['planted_explained']:.0%} of {r['planted_tested']} |")
    lines += ["", f"{result['seconds']:.0f} s."]
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "context_statistics.json", result)
    write_text(args.out / "context_statistics.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
