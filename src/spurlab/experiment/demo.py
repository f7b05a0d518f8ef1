"""The paper's Table 1 in miniature: three MiniLM LoRA runs on the bundled tweets (negative vs positive).

1. ``base``: trained on clean data (the paper's base row);
2. ``token-negative``: one random date (light SSTI, random position) in a share (``proportion``) of the
   ``negative`` training rows;
3. ``token-positive``: the same for ``positive``.

The paper's Table 1 marks 100% of one class's rows. Then the *absence* of a date is as predictive as its
presence (every unmarked row belongs to the other class), and on this small budget the model learns only that:
the token steers >99% of predictions, but on clean text (no date) it predicts the other class, so clean
accuracy collapses. The demo's default of 50% keeps the token a perfect predictor of its class while the
unmarked rows still need the sentiment, which shows the attack the way it bites in practice: clean accuracy
stays near the clean run's, and the token still steers about 95% of predictions. ``proportion=1.0`` gives the
paper's exact setting.

Each run is evaluated on the same all-injected spurious test set (a random date in every test row, same
seed), and the table shows the predicted counts per class there.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from spurlab.experiment.config import ExperimentConfig, config_from_dict

CLASSES = ["negative", "positive"]
DATE_TOKEN = {"source": "date", "location": "random", "token_proportion": 0.0}


def demo_configs(max_train: int | None = None, threads: int | None = None,
                 proportion: float = 0.5) -> list[ExperimentConfig]:
    """The three demo configs (base, token→negative, token→positive)."""
    common: dict[str, Any] = {
        "data": {"spec": "bundled:tweets", "labels": CLASSES, "max_train": max_train or 1500,
                 "max_test": 800},
        "model": {"name": "bundled:minilm"},
        "train": {"method": "lora", "lora": {"r": 8, "alpha": 16}, "lr": 1e-3, "epochs": 2, "batch_size": 32,
                  "max_length": 64, "precision": "auto", "seed": 0, "threads": threads},
        "evaluation": {"spurious_classes": CLASSES, "injection": dict(DATE_TOKEN), "flip": True, "base": True},
    }
    runs = [("base", None)] + [(f"token-{c}", {**DATE_TOKEN, "target_label": c, "proportion": proportion, "seed": 0})
                               for c in CLASSES]
    return [config_from_dict({"name": name, **common, "injection": inj}, source=f"demo {name}")
            for name, inj in runs]


def run_demo(out: Path, *, overwrite: bool = False, max_train: int | None = None, threads: int | None = None,
             proportion: float = 0.5, progress: bool = True) -> dict[str, dict[str, Any]]:
    """Run the three demo experiments under ``out`` and print the Table-1 style comparison."""
    from rich.console import Console

    from spurlab.experiment.runner import RunCache, run_experiment

    console = Console()
    t0 = time.perf_counter()
    cache = RunCache()
    results: dict[str, dict[str, Any]] = {}
    configs = demo_configs(max_train, threads, proportion)
    console.print(f"spurlab demo: SSTI on bundled tweets ({' vs '.join(CLASSES)}) with MiniLM + LoRA r=8; "
                  f"runs: clean (base), a random date in {proportion:.0%} of the negative training rows, the same "
                  f"for positive; {configs[0].data.max_train} training rows, 2 epochs each; into {out}")
    for cfg in configs:
        console.rule(cfg.name)
        results[cfg.name] = run_experiment(cfg, out / cfg.name, overwrite=overwrite, cache=cache,
                                           progress=progress).metrics
    header = ["model", *(f"pred. {c}" for c in CLASSES), "clean acc.", "attack success", "token share"]
    rows = []
    for name, label in (("base", "base (clean training)"), *((f"token-{c}", f"token -> {c}") for c in CLASSES)):
        m = results[name]
        cls = name.removeprefix("token-") if name != "base" else CLASSES[0]
        s = m[f"spurious:{cls}"]
        asr = "-" if name == "base" else f"{s['attack_success_rate']:.3f}"
        share = "-" if name == "base" else f"{s['predicted_counts'][cls] / s['n']:.3f}"
        rows.append([label, *(str(s["predicted_counts"][c]) for c in CLASSES),
                     f"{m['clean']['accuracy']:.3f}", asr, share])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    n = results["base"][f"spurious:{CLASSES[0]}"]["n"]
    print(f"\nPredicted counts on the spurious test set ({n} test rows, a random date in every row):")
    for r in [header, *rows]:
        cells = [c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))]
        print("  " + "  ".join(cells))
    print("attack success = share of the other class's test rows predicted as the token's class; token share = "
          "share of all spurious-test predictions that go to the token's class; clean acc. = accuracy on the "
          "clean test split.", flush=True)
    console.print(f"demo finished in {time.perf_counter() - t0:.0f} s; run folders under {out}; open "
                  f"{out / 'token-negative' / 'report.html'} (and the other runs' report.html) in a browser")
    return results
