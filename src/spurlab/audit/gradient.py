"""Gradient-guided pre-selection (HotFlip-style): which vocabulary words would move predictions to a class
most if inserted, estimated to first order from one backward pass instead of trying every word.

A placeholder word goes to a seeded word boundary of each clean row. For class ``k`` the objective is the
summed log-probability of ``k``; its gradient ``g`` with respect to the placeholder's input embedding says how
the objective changes when that embedding moves. Replacing the placeholder by word ``v`` moves it by
``E[v] - E[placeholder]``, so ``(E[v] - E[placeholder]) . g`` (averaged over rows) estimates the gain of ``v``.
One forward and one backward pass per class and batch score the whole vocabulary."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from spurlab.audit.verify import insert_with_spans
from spurlab.errors import SpurlabError
from spurlab.models.loading import place as place_model


def input_embeddings(model: nn.Module) -> nn.Module:
    """The token-embedding module of a classifier (Hugging Face, PEFT-wrapped, or spurlab's pooled head)."""
    for owner in (model, getattr(model, "backbone", None)):
        getter = getattr(owner, "get_input_embeddings", None)
        if getter is not None:
            try:
                module = getter()
            except (AttributeError, NotImplementedError):
                continue
            if module is not None:
                return module
    raise SpurlabError(f"{type(model).__name__}: no input embeddings to take gradients at")


def gradient_scores(model: nn.Module, tokenizer: Any, texts: Sequence[str], vocab_ids: np.ndarray, n_classes: int,
                    placeholder: str, device: torch.device, *, max_length: int = 128, batch_size: int = 32,
                    seed: int = 0) -> np.ndarray:
    """(n_classes, len(vocab_ids)): the first-order gain of each word in the log-probability of each class, mean
    over ``texts`` (see the module docstring). ``placeholder`` should be one word piece."""
    embedding = input_embeddings(model)
    weight = embedding.weight.detach().float()
    ids = torch.as_tensor(np.asarray(vocab_ids, dtype=np.int64))
    ph_ids = tokenizer(" " + placeholder, add_special_tokens=False)["input_ids"]
    rows, item_spans = insert_with_spans(texts, [placeholder] * len(texts), seed)
    spans = [(s[0][0], s[0][1]) for s in item_spans]
    total = torch.zeros(n_classes, weight.shape[1])
    counted = 0
    captured: list[torch.Tensor] = []

    def hook(_module: nn.Module, _inputs: Any, output: torch.Tensor) -> torch.Tensor:
        output = output.detach().requires_grad_(True)
        captured.append(output)
        return output

    model.eval()
    place_model(model, device)
    handle = embedding.register_forward_hook(hook)
    try:
        for start in range(0, len(rows), batch_size):
            batch_texts = rows[start:start + batch_size]
            enc = tokenizer(batch_texts, return_offsets_mapping=True, truncation=True, max_length=max_length,
                            padding=True, return_tensors="pt")
            offsets = enc.pop("offset_mapping")
            where = torch.zeros(enc["input_ids"].shape, dtype=torch.bool)
            for j, (lo, hi) in enumerate(spans[start:start + batch_size]):
                inside = (offsets[j, :, 0] >= lo) & (offsets[j, :, 1] <= hi) & (offsets[j, :, 1] > offsets[j, :, 0])
                where[j] = inside
            keep = where.any(dim=1)  # rows whose placeholder survived truncation
            if not bool(keep.any()):
                continue
            captured.clear()
            logits = model(**{k: v.to(device) for k, v in enc.items()}).logits.float()
            logp = torch.log_softmax(logits, dim=-1)
            for k in range(n_classes):
                grad = torch.autograd.grad(logp[keep, k].sum(), captured[0], retain_graph=k < n_classes - 1)[0]
                total[k] += (grad.float().cpu() * where.unsqueeze(-1)).sum(dim=(0, 1))
            counted += int(keep.sum())
    finally:
        handle.remove()
        model.zero_grad(set_to_none=True)
    if counted == 0:
        raise SpurlabError("gradient pre-selection: the placeholder was truncated away in every row")
    mean = total / counted
    base = weight[torch.as_tensor(ph_ids)].mean(dim=0) if ph_ids else torch.zeros(weight.shape[1])
    return ((weight[ids] - base) @ mean.T).T.numpy()


__all__ = ["gradient_scores", "input_embeddings"]
