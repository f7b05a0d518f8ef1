"""RAP: the loss by hand, the threshold over judged inputs only, and training on a tiny classifier (norms kept,
loss lowered, the model restored)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from spurlab.defend.rap import Rap, embedding_rows, rap_loss
from spurlab.defend.test_time import Classifier, threshold_for
from spurlab.errors import SpurlabError
from spurlab.evaluate.predict import predict_logits
from spurlab.models.config import ModelConfig
from spurlab.models.loading import load_classifier
from spurlab.train.batching import encode

pytestmark = pytest.mark.usefixtures("torch_threads")


def test_rap_loss_by_hand() -> None:
    drop = torch.tensor([0.05, 0.2, 0.5])
    # too small by 0.05 (weighted 2), in range, too large by 0.2: 2 * 0.05/3 + 0.2/3
    assert rap_loss(drop, 0.1, 0.3, scale=2.0).item() == pytest.approx(0.1)
    assert rap_loss(torch.tensor([0.1, 0.3]), 0.1, 0.3).item() == 0.0


def test_threshold_ignores_inputs_the_defense_does_not_judge() -> None:
    scores = np.array([-np.inf, -0.2, -0.1, -np.inf, -0.3])
    assert threshold_for(scores, 0.34) == -0.2  # one of the three judged inputs is rejected
    assert threshold_for(np.array([-np.inf, -np.inf]), 0.1) == np.inf


def test_bad_rap_settings_are_one_line() -> None:
    with pytest.raises(ValueError, match="drop_low"):
        Rap(drop_low=0.3, drop_high=0.1)


def _classifier(tiny_models: dict[str, Path]) -> Classifier:
    torch.manual_seed(0)
    loaded = load_classifier(ModelConfig(name=str(tiny_models["bert"])), ["neg", "pos"])
    model, tok = loaded.model.eval(), loaded.tokenizer

    def probabilities(texts: list[str]) -> np.ndarray:
        logits = predict_logits(model, encode(tok, texts, 32), torch.device("cpu"))
        return torch.softmax(torch.from_numpy(logits), dim=1).numpy()

    return Classifier(probabilities, model, tok, torch.device("cpu"), 32)


def test_rap_trains_only_the_word_and_restores_the_model(tiny_models: dict[str, Path]) -> None:
    classifier = _classifier(tiny_models)
    rng = np.random.default_rng(0)
    words = ["the", "movie", "was", "good", "bad", "day", "car", "very"]
    reference = [" ".join(rng.choice(words, 6)) for _ in range(40)]
    target = int(np.bincount(classifier.probabilities(reference).argmax(axis=1), minlength=2).argmax())
    weight = classifier.model.get_input_embeddings().weight
    before = weight.data.clone()
    rap = Rap(word="!", epochs=20, lr=0.5, drop_low=0.05, drop_high=0.5)
    ids = rap.word_ids(classifier.tokenizer)
    judged = [t for t, p in zip(reference, classifier.probabilities(reference).argmax(axis=1), strict=True)
              if p == target]
    untrained_drops = (classifier.probabilities(judged)[:, target]
                       - classifier.probabilities([f"! {t}" for t in judged])[:, target])
    untrained = rap_loss(torch.tensor(untrained_drops), 0.05, 0.5)
    trained_rows = rap.train_rows(classifier, reference, target)
    assert torch.equal(weight.data, before)  # training left the model as it was
    assert torch.allclose(trained_rows.norm(dim=1), before[ids].norm(dim=1), rtol=1e-5)
    assert not torch.allclose(trained_rows, before[ids])
    trained = rap_loss(torch.tensor(rap.drops(judged, classifier, reference, target)), 0.05, 0.5)
    assert trained.item() < untrained.item()
    scores = rap.suspicion(reference, classifier, reference, target)
    predicted = classifier.probabilities(reference).argmax(axis=1)
    assert np.all(np.isneginf(scores[predicted != target])) and np.all(np.isfinite(scores[predicted == target]))
    assert torch.equal(weight.data, before)
    with embedding_rows(classifier.model, ids, trained_rows):
        assert torch.equal(weight.data[ids], trained_rows)
    assert torch.equal(weight.data, before)
    with pytest.raises(SpurlabError, match="no clean calibration row is predicted as class"):
        Rap(word="!").train_rows(classifier, [reference[i] for i in np.flatnonzero(predicted != target)], target)
