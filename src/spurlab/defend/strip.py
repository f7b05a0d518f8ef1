"""STRIP (Gao et al., 2019; its text form as in the backdoor literature): a triggered input keeps its
prediction however much of it is replaced, a clean one does not.

Each input gets ``repeat`` perturbed copies. A copy replaces ``m = int(n_words * swap_ratio)`` word positions,
drawn uniformly with replacement, by the highest-tf-idf words of one randomly drawn clean reference row, in
decreasing tf-idf order (scikit-learn's ``TfidfVectorizer`` with English stop words, fitted on the reference
rows; a reference row with fewer such words than ``m`` repeats them). The input's entropy is the mean, over its
copies, of the Shannon entropy (bits) of the model's class probabilities; its suspicion is minus that entropy.
All copies of a chunk of inputs are classified in one batched call.

OpenBackdoor's STRIP averages the entropies after reshaping them to ``(repeat, n)`` although its copies are
laid out input by input, which mixes the copies of different inputs; spurlab averages each input's own copies.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import Field

from spurlab.defend.test_time import Classifier, Probabilities, TestTimeDefense, register_test_time_defense
from spurlab.errors import SpurlabError


def entropy_bits(probabilities: np.ndarray) -> np.ndarray:
    """Shannon entropy in bits of each row of class probabilities (0 log 0 = 0)."""
    p = np.clip(np.asarray(probabilities, dtype=float), 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log2(np.where(p > 0, p, 1.0)), 0.0)
    return -terms.sum(axis=1)


class Donors:
    """Replacement words: per clean reference row, its words by decreasing tf-idf."""

    def __init__(self, reference: Sequence[str]) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        vectorizer = TfidfVectorizer(use_idf=True, smooth_idf=True, norm=None, stop_words="english")
        try:
            matrix = vectorizer.fit_transform(list(reference)).tocsr()
        except ValueError:  # no word survives the stop words
            raise SpurlabError("strip: the clean reference rows have no words to perturb with") from None
        vocab = vectorizer.get_feature_names_out()
        self.words: list[list[str]] = []
        for i in range(matrix.shape[0]):
            row = matrix.getrow(i)
            order = np.argsort(-row.data, kind="stable")
            self.words.append([str(vocab[row.indices[j]]) for j in order])
        self.words = [w for w in self.words if w]
        if not self.words:
            raise SpurlabError("strip: the clean reference rows have no words to perturb with")

    def perturb(self, text: str, swap_ratio: float, rng: np.random.Generator) -> str:
        words = text.split()
        m = int(len(words) * swap_ratio)
        if m == 0:
            return " ".join(words)
        donor = self.words[int(rng.integers(len(self.words)))]
        for i, position in enumerate(rng.integers(0, len(words), m)):
            words[int(position)] = donor[i % len(donor)]
        return " ".join(words)


def strip_entropy(texts: Sequence[str], probabilities: Probabilities, donors: Donors, *, repeat: int,
                  swap_ratio: float, seed: int, chunk: int = 256) -> np.ndarray:
    """Per input, the mean entropy (bits) of the predictions on its ``repeat`` perturbed copies."""
    rng = np.random.default_rng(seed)
    out = np.zeros(len(texts))
    for start in range(0, len(texts), chunk):
        part = texts[start:start + chunk]
        copies = [donors.perturb(t, swap_ratio, rng) for t in part for _ in range(repeat)]
        entropy = entropy_bits(probabilities(copies)).reshape(len(part), repeat)
        out[start:start + len(part)] = entropy.mean(axis=1)
    return out


@register_test_time_defense("strip")
class Strip(TestTimeDefense):
    """STRIP: reject inputs whose predictions stay certain under heavy word replacement (low entropy)."""

    repeat: int = Field(5, ge=1, le=1000, description="perturbed copies per input")
    swap_ratio: float = Field(0.5, gt=0, le=1, description="share of an input's words replaced per copy")

    def suspicion(self, texts: Sequence[str], classifier: Classifier, reference: Sequence[str],
                  target: int) -> np.ndarray:
        donors = Donors(reference)
        return -strip_entropy(texts, classifier.probabilities, donors, repeat=self.repeat, swap_ratio=self.swap_ratio,
                              seed=self.seed)


__all__ = ["Donors", "Strip", "entropy_bits", "strip_entropy"]
