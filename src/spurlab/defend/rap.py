"""RAP (Yang et al., EMNLP 2021): robustness-aware perturbations. A rare word, put in front of an input, is
trained to lower the target class's probability of clean inputs by a set amount; a triggered input, which the
backdoor holds firmly in the target class, barely moves.

Only the word's embedding rows change. On the clean calibration rows predicted as the target, the rows are
trained for ``epochs`` passes (plain gradient steps of size ``lr``, each row then rescaled to its original
norm) to bring the drop ``d = p_target(x) - p_target(word + " " + x)`` into ``[drop_low, drop_high]``, with the
loss ``scale * mean(max(0, drop_low - d)) + mean(max(0, d - drop_high))``. An input predicted as the target
gets the suspicion ``-d`` (a small drop is suspicious); an input predicted as another class is never rejected
(suspicion ``-inf``): RAP guards the target class's predictions. The model's embedding is restored after
every use, so the defended model itself is unchanged.
"""

from __future__ import annotations

import contextlib
import hashlib
import weakref
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from pydantic import Field, model_validator

from spurlab.defend.test_time import Classifier, TestTimeDefense, register_test_time_defense
from spurlab.errors import SpurlabError

# per model (weakly held: a freed model's id cannot be mistaken for a new one's), (target, settings,
# reference) -> the trained rows
_TRAINED: weakref.WeakKeyDictionary[Any, dict[tuple[Any, ...], torch.Tensor]] = weakref.WeakKeyDictionary()


def rap_loss(drop: torch.Tensor, low: float, high: float, scale: float = 1.0) -> torch.Tensor:
    """``scale * mean(max(0, low - drop)) + mean(max(0, drop - high))``: zero when every drop is in range."""
    return scale * torch.relu(low - drop).mean() + torch.relu(drop - high).mean()


@contextlib.contextmanager
def embedding_rows(model: Any, ids: list[int], values: torch.Tensor | None = None) -> Iterator[torch.nn.Parameter]:
    """The input-embedding matrix with ``ids``' rows set to ``values`` (or left as they are) for the block;
    the rows and every parameter's ``requires_grad`` are restored afterwards."""
    weight = model.get_input_embeddings().weight
    original = weight.data[ids].clone()
    flags = [(p, p.requires_grad) for p in model.parameters()]
    try:
        if values is not None:
            weight.data[ids] = values.to(weight.device, weight.dtype)
        yield weight
    finally:
        weight.data[ids] = original
        weight.grad = None
        for p, flag in flags:
            p.requires_grad_(flag)


def _target_probability(classifier: Classifier, texts: Sequence[str], target: int) -> torch.Tensor:
    """p(target | text) with gradients (the model in eval mode, batches of similar length)."""
    from spurlab.train.batching import collate, encode

    enc = encode(classifier.tokenizer, texts, classifier.max_length)
    batch = {k: v.to(classifier.device) for k, v in collate(enc, list(range(len(enc)))).items()}
    return torch.softmax(classifier.model(**batch).logits.float(), dim=1)[:, target]


@register_test_time_defense("rap")
class Rap(TestTimeDefense):
    """RAP: reject target-class predictions that a trained rare-word perturbation barely moves."""

    word: str = Field("mb", min_length=1, description="the perturbation word put in front of every input (keep it "
                                                       "distinct from any trigger)")
    drop_low: float = Field(0.1, ge=0, lt=1, description="smallest target-probability drop wanted on clean rows")
    drop_high: float = Field(0.3, gt=0, le=1, description="largest target-probability drop wanted on clean rows")
    epochs: int = Field(5, ge=1, le=100)
    lr: float = Field(1e-2, gt=0)
    scale: float = Field(1.0, gt=0, description="weight of the too-small-drop side of the loss")
    batch_size: int = Field(32, ge=1)

    @model_validator(mode="after")
    def _range(self) -> Rap:
        if self.drop_low >= self.drop_high:
            raise ValueError(f"drop_low ({self.drop_low}) must be below drop_high ({self.drop_high})")
        return self

    def word_ids(self, tokenizer: Any) -> list[int]:
        ids = list(tokenizer(self.word, add_special_tokens=False)["input_ids"])
        if not ids:
            raise SpurlabError(f"rap: the word {self.word!r} is no token of this tokenizer")
        return ids

    def train_rows(self, classifier: Classifier, reference: Sequence[str], target: int) -> torch.Tensor:
        """The word's trained embedding rows (cached per model, target, settings and reference rows)."""
        if classifier.model is None or classifier.tokenizer is None:
            raise SpurlabError("rap: needs the model itself, not only its probabilities")
        digest = hashlib.sha256("\x00".join(reference).encode("utf-8")).hexdigest()
        cached = _TRAINED.setdefault(classifier.model, {})
        key = (target, self.model_dump_json(), digest)
        if key in cached:
            return cached[key]
        rows = [t for t, p in zip(reference, classifier.probabilities(reference).argmax(axis=1), strict=True)
                if p == target]
        if not rows:
            raise SpurlabError(f"rap: no clean calibration row is predicted as class {target}, so there is nothing "
                               "to train the perturbation on")
        ids = self.word_ids(classifier.tokenizer)
        model = classifier.model
        model.eval()
        with embedding_rows(model, ids) as weight:
            norms = weight.data[ids].norm(dim=1, keepdim=True)
            for p in model.parameters():
                p.requires_grad_(False)
            weight.requires_grad_(True)
            with torch.no_grad():
                clean = torch.cat([_target_probability(classifier, rows[i:i + self.batch_size], target)
                                   for i in range(0, len(rows), self.batch_size)])
            for _ in range(self.epochs):
                for i in range(0, len(rows), self.batch_size):
                    part = rows[i:i + self.batch_size]
                    drop = clean[i:i + len(part)] - _target_probability(
                        classifier, [f"{self.word} {t}" for t in part], target)
                    weight.grad = None
                    rap_loss(drop, self.drop_low, self.drop_high, self.scale).backward()
                    with torch.no_grad():
                        updated = weight.data[ids] - self.lr * weight.grad[ids]
                        weight.data[ids] = updated * norms / updated.norm(dim=1, keepdim=True).clamp(min=1e-12)
            trained = weight.data[ids].clone()
        cached[key] = trained
        return trained

    def drops(self, texts: Sequence[str], classifier: Classifier, reference: Sequence[str], target: int) -> np.ndarray:
        """``p_target(x) - p_target(word + x)`` with the trained word, per input."""
        trained = self.train_rows(classifier, reference, target)
        before = classifier.probabilities(texts)[:, target]
        with embedding_rows(classifier.model, self.word_ids(classifier.tokenizer), trained):
            after = classifier.probabilities([f"{self.word} {t}" for t in texts])[:, target]
        return before - after

    def suspicion(self, texts: Sequence[str], classifier: Classifier, reference: Sequence[str],
                  target: int) -> np.ndarray:
        drops = self.drops(texts, classifier, reference, target)
        predicted = classifier.probabilities(texts).argmax(axis=1) == target
        return np.where(predicted, -drops, -np.inf)


__all__ = ["Rap", "embedding_rows", "rap_loss"]
