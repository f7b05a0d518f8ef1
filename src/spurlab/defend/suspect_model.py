"""A model finetuned on the data being defended: what BKI and CUBE inspect.

Both defenses assume the backdoor is in the data, so a classifier finetuned on it has learnt the trigger, and
they look at how that model represents the rows. :func:`finetune_on` trains one with spurlab's own loop
(``finetune``: a :class:`~spurlab.train.config.TrainConfig`, by default LoRA r=8 for one epoch) and
:func:`representations` reads its last hidden layer, mean-pooled over each row's tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import Field

from spurlab.data.dataset import TextDataset
from spurlab.defend.base import DefenseParams
from spurlab.train.config import TrainConfig

DEFAULT_MODEL = "bundled:minilm"


def default_finetune() -> TrainConfig:
    return TrainConfig(method="lora", lr=1e-3, epochs=1, batch_size=32, max_length=64)


class SuspectModelParams(DefenseParams):
    """The parameters every defense that finetunes a model on the data has."""

    model: str = Field(DEFAULT_MODEL, description="the classifier finetuned on the data: HF name, folder or "
                                                  "bundled:<model>")
    finetune: TrainConfig = Field(default_factory=default_finetune,
                                  description="how it is finetuned (train: settings of a run config)")


@dataclass
class SuspectModel:
    model: Any
    tokenizer: Any
    device: Any
    precision: str
    max_length: int


def finetune_on(dataset: TextDataset, model_name: str, settings: TrainConfig) -> SuspectModel:
    """A classifier for ``dataset``'s labels, finetuned on its rows (seeded by ``settings.seed``)."""
    from spurlab.models.adapters import attach_trainable
    from spurlab.models.config import ModelConfig
    from spurlab.models.loading import load_classifier
    from spurlab.precision import resolve_precision
    from spurlab.runtime import resolve_device, torch_threads
    from spurlab.train.batching import encode
    from spurlab.train.loop import plan_steps, seed_everything, train_model

    with torch_threads(settings.threads):
        device = resolve_device(settings.device)
        precision = resolve_precision(settings.precision, device)
        seed_everything(settings.seed)
        loaded = load_classifier(ModelConfig(name=model_name), list(dataset.label_names))
        encoded = encode(loaded.tokenizer, dataset.texts, settings.max_length)
        model = attach_trainable(loaded, settings.method, settings.method_settings,
                                 total_steps=plan_steps(len(encoded), settings)[0])
        train_model(model, encoded, dataset.label_ids, settings, device, precision, loaded.head_modules,
                    progress=False, description="suspect model")
    return SuspectModel(model, loaded.tokenizer, device, precision, settings.max_length)


def representations(suspect: SuspectModel, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
    """The last hidden layer, mean-pooled over each text's tokens, as float32 rows in ``texts``' order."""
    import torch

    from spurlab.models.loading import place
    from spurlab.models.pooled import masked_mean
    from spurlab.precision import autocast
    from spurlab.train.batching import collate, encode, sorted_batches

    encoded = encode(suspect.tokenizer, texts, suspect.max_length)
    model = place(suspect.model, suspect.device).eval()
    out: np.ndarray | None = None
    with torch.inference_mode():
        for rows in sorted_batches(encoded.lengths, batch_size):
            batch = {k: v.to(suspect.device) for k, v in collate(encoded, rows).items()}
            with autocast(suspect.device, suspect.precision):
                hidden = model(**batch, output_hidden_states=True).hidden_states[-1]
            pooled = masked_mean(hidden.float(), batch["attention_mask"]).cpu().numpy()
            if out is None:
                out = np.zeros((len(encoded), pooled.shape[1]), dtype=np.float32)
            out[rows] = pooled
    return out if out is not None else np.zeros((0, 0), dtype=np.float32)


__all__ = ["SuspectModel", "SuspectModelParams", "default_finetune", "finetune_on", "representations"]
