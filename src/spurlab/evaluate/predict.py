"""Batched inference: ``torch.inference_mode``, longest rows first, each batch padded to its own length."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from spurlab.models.loading import place
from spurlab.precision import autocast
from spurlab.train.batching import Encoded, collate, sorted_batches


def predict_logits(model: nn.Module, encoded: Encoded, device: torch.device, precision: str = "fp32",
                   batch_size: int = 128) -> np.ndarray:
    """Logits (n, n_classes) as float32, in the rows' original order."""
    model.eval()
    place(model, device)
    out: np.ndarray | None = None
    with torch.inference_mode():
        for rows in sorted_batches(encoded.lengths, batch_size):
            batch = {k: v.to(device) for k, v in collate(encoded, rows).items()}
            with autocast(device, precision):
                logits = model(**batch).logits
            values = logits.float().cpu().numpy()
            if out is None:
                out = np.zeros((len(encoded), values.shape[1]), dtype=np.float32)
            out[rows] = values
    return out if out is not None else np.zeros((0, 0), dtype=np.float32)


def predict(model: nn.Module, encoded: Encoded, device: torch.device, precision: str = "fp32",
            batch_size: int = 128) -> np.ndarray:
    """Predicted class ids in the rows' original order."""
    logits = predict_logits(model, encoded, device, precision, batch_size)
    return logits.argmax(axis=1) if len(logits) else np.zeros(0, dtype=np.int64)
