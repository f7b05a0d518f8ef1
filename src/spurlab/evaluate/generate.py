"""Evaluation of generative finetuning: greedy generation in left-padded batches, matched to class words.

A generation is normalised (lower case, leading spaces and punctuation dropped) and matched to the class whose
normalised response word it starts with (the longest such word wins); one that starts with none is ``other``,
counted as wrong, and shown as its own column of the predicted counts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from spurlab.models.loading import place
from spurlab.precision import autocast
from spurlab.train.batching import Encoded, sorted_batches

OTHER = "(other)"  # the predicted-counts column of generations that match no class
_LEADING = re.compile(r"^[\W_]+")


def generate(model: Any, encoded: Encoded, device: torch.device, precision: str = "fp32", batch_size: int = 32,
             max_new_tokens: int = 4, eos_token_id: int | None = None) -> list[list[int]]:
    """Greedy continuations (new token ids, cut at the first end-of-sequence) of every prompt, in row order;
    prompts of similar length share a left-padded batch."""
    place(model, device)
    model.eval()
    out: list[list[int]] = [[] for _ in range(len(encoded))]
    for rows in sorted_batches(encoded.lengths, batch_size):
        width = max(len(encoded.ids[i]) for i in rows)
        ids = torch.full((len(rows), width), encoded.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for j, i in enumerate(rows):
            seq = encoded.ids[i]
            ids[j, width - len(seq):] = torch.tensor(seq, dtype=torch.long)
            mask[j, width - len(seq):] = 1
        with torch.inference_mode(), autocast(device, precision):
            generated = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device),
                                       max_new_tokens=max_new_tokens, do_sample=False,
                                       pad_token_id=encoded.pad_id, eos_token_id=eos_token_id)
        for j, i in enumerate(rows):
            new = generated[j, width:].tolist()
            if eos_token_id is not None and eos_token_id in new:
                new = new[:new.index(eos_token_id)]
            out[i] = new
    return out


def normalise(text: str) -> str:
    return _LEADING.sub("", text.strip().lower())


def match_classes(generations: Sequence[str], words: Sequence[str]) -> np.ndarray:
    """Per generation, the index of the class word it starts with (longest match), or ``len(words)`` (other)."""
    keys = sorted(((normalise(w), i) for i, w in enumerate(words)), key=lambda kv: -len(kv[0]))
    out = np.full(len(generations), len(words), dtype=np.int64)
    for row, text in enumerate(generations):
        norm = normalise(text)
        for key, index in keys:
            if key and norm.startswith(key):
                out[row] = index
                break
    return out


__all__ = ["OTHER", "generate", "match_classes", "normalise"]
