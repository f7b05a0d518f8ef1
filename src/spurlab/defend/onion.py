"""ONION (Qi et al., EMNLP 2021): remove the words whose deletion makes a row much more fluent (a training-data
defense), or reject the inputs that hold such a word (a test-time defense, ``evaluation.defense``).

For a row of words ``w_1..w_n`` with perplexity ``p_0`` under a causal LM, word ``i``'s suspicion is
``f_i = p_0 - p_i``, where ``p_i`` is the perplexity of the row without ``w_i``. Words with ``f_i > threshold``
are removed. A planted rare word or out-of-place token raises the perplexity, so deleting it lowers it a lot.
Words are whitespace-separated (as in the paper); a cleaned row is its kept words joined by single spaces.
All ``n + 1`` variants of a batch of rows are scored in padded batches of similar length.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any, Literal

import numpy as np
from pydantic import Field

from spurlab.data.dataset import TextDataset
from spurlab.data.transform import TransformResult
from spurlab.defend.base import DefenseParams, register_defense
from spurlab.defend.test_time import Classifier, TestTimeDefense, register_test_time_defense
from spurlab.errors import SpurlabError
from spurlab.runtime import torch_threads

DEFAULT_LM = "bundled:smollm2"


def suspicion_scores(words_per_row: list[list[str]], scorer: Any) -> list[np.ndarray]:
    """Per row, per word: ``p_0 - p_i`` (perplexity of the row minus that without the word). ``scorer`` maps a
    list of texts to their perplexities. Rows of one word get a score of 0 (nothing is left to compare)."""
    variants, spans = [], []
    for words in words_per_row:
        start = len(variants)
        variants.append(" ".join(words))
        if len(words) > 1:
            variants += [" ".join(words[:i] + words[i + 1:]) for i in range(len(words))]
        spans.append(start)
    ppl = np.asarray(scorer(variants), dtype=float)
    out = []
    for words, start in zip(words_per_row, spans, strict=True):
        if len(words) <= 1:
            out.append(np.zeros(len(words)))
            continue
        scores = ppl[start] - ppl[start + 1:start + 1 + len(words)]
        out.append(np.nan_to_num(scores, nan=0.0))
    return out


@register_defense("onion")
class Onion(DefenseParams):
    """ONION: drop words whose deletion lowers a causal LM's perplexity by more than ``threshold``."""

    model: str = Field(DEFAULT_LM, description="causal LM: HF name, folder or bundled:smollm2")
    threshold: float = Field(0.0, description="remove a word when the perplexity drops by more than this")
    batch_size: int = Field(32, ge=1)
    rows_per_chunk: int = Field(64, ge=1, description="rows whose variants are scored together")
    max_words: int = Field(64, ge=1, description="words of a row that are scored (the rest are kept)")
    max_length: int = Field(256, ge=8)
    device: str = "auto"
    precision: Literal["auto", "fp32", "bf16"] = Field("auto", description="as train.precision (auto measures)")
    threads: int | None = Field(None, ge=1)

    def apply(self, dataset: TextDataset) -> TransformResult:
        if len(dataset) == 0:
            raise SpurlabError(f"{dataset.name}: the dataset has no rows")
        from spurlab.models.causal_lm import load_causal_lm, perplexities
        from spurlab.precision import resolve_precision

        with torch_threads(self.threads):
            model, tokenizer, device = load_causal_lm(self.model, what="ONION model", device=self.device,
                                                      padding_side="right")
            precision = resolve_precision(self.precision, device)
            result = onion(dataset, lambda texts: perplexities(texts, model, tokenizer, device, self.batch_size,
                                                               self.max_length, precision),
                           threshold=self.threshold, rows_per_chunk=self.rows_per_chunk, max_words=self.max_words,
                           model=self.model)
            result.summary["precision"] = precision
            return result


@lru_cache(maxsize=2)
def _perplexity_scorer(name: str, device: str, precision: str, batch_size: int,
                       max_length: int) -> Callable[[list[str]], np.ndarray]:
    """A cached texts -> perplexities function (a test-time defense scores several sets with one LM)."""
    from spurlab.models.causal_lm import load_causal_lm, perplexities
    from spurlab.precision import resolve_precision

    model, tokenizer, dev = load_causal_lm(name, what="ONION model", device=device, padding_side="right")
    chosen = resolve_precision(precision, dev)
    return lambda texts: perplexities(texts, model, tokenizer, dev, batch_size, max_length, chosen)


@register_test_time_defense("onion")
class OnionTestTime(TestTimeDefense):
    """ONION at test time: an input's suspicion is its largest word-deletion perplexity drop."""

    model: str = Field(DEFAULT_LM, description="causal LM: HF name, folder or bundled:smollm2")
    batch_size: int = Field(32, ge=1)
    max_words: int = Field(64, ge=1, description="words of an input that are scored")
    max_length: int = Field(256, ge=8)
    device: str = "auto"
    precision: Literal["auto", "fp32", "bf16"] = "auto"

    def suspicion(self, texts: Sequence[str], classifier: Classifier, reference: Sequence[str],
                  target: int) -> np.ndarray:
        scorer = _perplexity_scorer(self.model, self.device, self.precision, self.batch_size, self.max_length)
        scores = suspicion_scores([t.split()[:self.max_words] for t in texts], scorer)
        return np.array([float(s.max()) if len(s) else 0.0 for s in scores])


def onion(dataset: TextDataset, scorer: Any, *, threshold: float = 0.0, rows_per_chunk: int = 64,
          max_words: int = 64, model: str = "") -> TransformResult:
    """ONION with a given perplexity ``scorer``; one manifest record per changed row (removed words, their
    word positions and scores, the original text)."""
    texts = dataset.texts
    labels = dataset.label_strings
    cleaned, manifest = list(texts), []
    removed_words: Counter[str] = Counter()
    for start in range(0, len(texts), rows_per_chunk):
        rows = list(range(start, min(start + rows_per_chunk, len(texts))))
        words = [texts[r].split() for r in rows]
        scores = suspicion_scores([w[:max_words] for w in words], scorer)
        for row, row_words, row_scores in zip(rows, words, scores, strict=True):
            drop = [i for i, s in enumerate(row_scores) if s > threshold]
            if not drop:
                continue
            dropped = set(drop)
            cleaned[row] = " ".join(w for i, w in enumerate(row_words) if i not in dropped)
            manifest.append({"row": row, "label": labels[row], "removed": [row_words[i] for i in drop],
                             "positions": drop, "scores": [round(float(row_scores[i]), 4) for i in drop],
                             "original": texts[row]})
            removed_words.update(row_words[i] for i in drop)
    frame = dataset.frame.copy()
    frame[dataset.text_col] = cleaned
    summary = {"dataset": dataset.name, "defense": "onion", "model": model, "threshold": threshold,
               "max_words": max_words, "n_rows": len(texts), "n_rows_changed": len(manifest),
               "n_removed": sum(len(r["removed"]) for r in manifest),
               "rows_changed_per_label": dict(Counter(r["label"] for r in manifest)),
               "most_removed": dict(removed_words.most_common(20))}
    return TransformResult(dataset.with_frame(frame), manifest, summary)


__all__ = ["Onion", "OnionTestTime", "onion", "suspicion_scores"]
