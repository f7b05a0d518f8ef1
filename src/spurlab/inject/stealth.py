"""How visible an attack is, measured as the backdoor literature does, on the rows it changed:

- **ΔPPL**: perplexity of each poisoned row minus that of its original under a causal LM (default the bundled
  SmolLM2-135M-Instruct). Perplexity is ``exp`` of the mean next-token negative log-likelihood over the row's
  tokens after the first. A planted date or a rare word raises it; a fluent sentence barely does.
- **semantic similarity**: cosine similarity of mean-pooled sentence embeddings of the original and the
  poisoned row (default the bundled all-MiniLM-L6-v2, a sentence-embedding model).
- **Δ spelling errors**: words (runs of letters and apostrophes) that pyspellchecker's English dictionary does
  not know, in the poisoned row minus the original.

At most ``max_rows`` changed rows are measured, a seeded sample.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from spurlab.errors import SpurlabError
from spurlab.models.embeddings import DEFAULT_EMBEDDER, sentence_embeddings

DEFAULT_LM = "bundled:smollm2"
_WORD = re.compile(r"[A-Za-z][A-Za-z']*")


def spelling_errors(texts: Sequence[str]) -> np.ndarray:
    """Per text: words pyspellchecker's English dictionary does not know."""
    try:
        from spellchecker import SpellChecker
    except ImportError:
        raise SpurlabError("the spelling measure needs pyspellchecker: pip install pyspellchecker") from None
    checker = SpellChecker(language="en")
    return np.array([len(checker.unknown([w.lower() for w in _WORD.findall(t)])) for t in texts], dtype=float)


def _stats(values: np.ndarray) -> dict[str, float | None]:
    finite = values[np.isfinite(values)]
    if not finite.size:
        return {"mean": None, "median": None}
    return {"mean": round(float(finite.mean()), 4), "median": round(float(np.median(finite)), 4)}


def stealthiness(original: Sequence[str], poisoned: Sequence[str], *, lm: str | None = DEFAULT_LM,
                 embedder: str | None = DEFAULT_EMBEDDER, max_rows: int = 200, seed: int = 0, device: str = "auto",
                 batch_size: int = 16, precision: str = "auto") -> dict[str, Any]:
    """The stealthiness report of ``poisoned`` against ``original`` (aligned lists of the changed rows). A
    measure whose model is None is left out. ``precision`` is the LM's, as ``train.precision``."""
    if len(original) != len(poisoned):
        raise SpurlabError(f"stealthiness: {len(original)} original rows but {len(poisoned)} poisoned ones")
    if not original:
        raise SpurlabError("stealthiness: no changed rows to measure")
    picked = np.sort(np.random.default_rng(seed).permutation(len(original))[:max_rows])
    before, after = [original[i] for i in picked], [poisoned[i] for i in picked]
    report: dict[str, Any] = {"n_rows": len(picked), "n_changed": len(original), "seed": seed}
    if lm is not None:
        from spurlab.models.causal_lm import load_causal_lm, perplexities
        from spurlab.precision import resolve_precision

        model, tokenizer, dev = load_causal_lm(lm, what="perplexity model", device=device, padding_side="right")
        chosen = resolve_precision(precision, dev)
        ppl_before = perplexities(before, model, tokenizer, dev, batch_size, precision=chosen)
        ppl_after = perplexities(after, model, tokenizer, dev, batch_size, precision=chosen)
        report["perplexity"] = {"model": lm, "precision": chosen, "original": _stats(ppl_before),
                                "poisoned": _stats(ppl_after), "delta": _stats(ppl_after - ppl_before)}
    if embedder is not None:
        vectors = sentence_embeddings([*before, *after], embedder)
        similarity = np.sum(vectors[:len(before)] * vectors[len(before):], axis=1)
        report["similarity"] = {"model": embedder, **_stats(similarity),
                                "min": round(float(similarity.min()), 4)}
    errors = spelling_errors(after) - spelling_errors(before)
    report["spelling"] = {"checker": "pyspellchecker (en)", "delta": _stats(errors),
                          "rows_with_more_errors": int(np.sum(errors > 0))}
    return report


__all__ = ["DEFAULT_EMBEDDER", "DEFAULT_LM", "spelling_errors", "stealthiness"]
