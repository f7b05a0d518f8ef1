"""What the test-time defenses cost: STRIP (on the bundled MiniLM classifier) and ONION (under the bundled
SmolLM2) in inputs per second, batched as spurlab runs them against one model call per text, in the same
sitting, with the largest difference between the two scores (they must agree).

Run: ``python -m bench.test_time`` (writes ``bench/results/test_time.json`` and ``test_time.md``).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

from bench.hardware import describe_machine  # noqa: E402
from spurlab.atomic import write_json, write_text  # noqa: E402
from spurlab.data.loaders import load_table  # noqa: E402
from spurlab.defend.onion import suspicion_scores  # noqa: E402
from spurlab.defend.strip import Strip  # noqa: E402
from spurlab.defend.test_time import Classifier  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def _minilm() -> Classifier:
    import torch

    from spurlab.evaluate.predict import predict_logits
    from spurlab.models.config import ModelConfig
    from spurlab.models.loading import load_classifier
    from spurlab.train.batching import encode

    torch.manual_seed(0)
    loaded = load_classifier(ModelConfig(name="bundled:minilm"), ["negative", "positive"])
    model, tok = loaded.model.eval(), loaded.tokenizer

    def probabilities(texts: list[str]) -> np.ndarray:
        logits = predict_logits(model, encode(tok, texts, 64), torch.device("cpu"))
        return torch.softmax(torch.from_numpy(logits), dim=1).numpy()

    return Classifier(probabilities, model, tok, torch.device("cpu"), 64)


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--onion-rows", type=int, default=16)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    tweets = load_table("bundled:tweets")
    pick = np.random.default_rng(0).permutation(len(tweets))
    texts = [tweets.texts[i] for i in pick[:args.rows]]
    reference = [tweets.texts[i] for i in pick[args.rows:2 * args.rows]]
    results = {}

    classifier = _minilm()
    one_by_one = Classifier(lambda ts: np.concatenate([classifier.probabilities([t]) for t in ts]))
    strip = Strip(repeat=5)
    batched, t_batched = _timed(lambda: strip.suspicion(texts, classifier, reference, 0))
    single, t_single = _timed(lambda: strip.suspicion(texts, one_by_one, reference, 0))
    results["strip"] = {"rows": len(texts), "copies_per_row": strip.repeat,
                        "batched_rows_per_s": len(texts) / t_batched, "single_rows_per_s": len(texts) / t_single,
                        "speedup": t_single / t_batched,
                        "max_abs_difference": float(np.max(np.abs(batched - single)))}
    print("strip", results["strip"], flush=True)

    from spurlab.models.causal_lm import load_causal_lm, perplexities

    model, tok, dev = load_causal_lm("bundled:smollm2", what="ONION model", device="cpu", padding_side="right")
    words = [t.split()[:64] for t in texts[:args.onion_rows]]
    batched_o, t_batched = _timed(lambda: suspicion_scores(words, lambda v: perplexities(v, model, tok, dev, 32)))
    single_o, t_single = _timed(lambda: suspicion_scores(
        words, lambda v: np.concatenate([perplexities([x], model, tok, dev, 1) for x in v])))
    diff = max(float(np.max(np.abs(a - b))) if len(a) else 0.0 for a, b in zip(batched_o, single_o, strict=True))
    results["onion"] = {"rows": len(words), "variants": sum(len(w) + 1 for w in words),
                        "batched_rows_per_s": len(words) / t_batched, "single_rows_per_s": len(words) / t_single,
                        "speedup": t_single / t_batched, "max_abs_difference": diff}
    print("onion", results["onion"], flush=True)

    args.out.mkdir(parents=True, exist_ok=True)
    machine = describe_machine()
    write_json(args.out / "test_time.json", {"machine": machine, "results": results})
    lines = ["# Test-time defense cost (`python -m bench.test_time`)", "",
             f"{machine['cpu']}, {machine['threads']} torch threads. Bundled tweets. STRIP: 5 perturbed copies per "
             "input on the bundled MiniLM classifier; ONION: every leave-one-word-out variant under SmolLM2-135M. "
             "Batched (as spurlab runs them) against one model call per text, same sitting; the scores must agree.",
             "", "| defense | inputs | batched inputs/s | one at a time inputs/s | speedup | largest score "
             "difference |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, r in results.items():
        lines.append(f"| {name} | {r['rows']} | {r['batched_rows_per_s']:.2f} | {r['single_rows_per_s']:.2f} | "
                     f"{r['speedup']:.1f}× | {r['max_abs_difference']:.2g} |")
    write_text(args.out / "test_time.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
