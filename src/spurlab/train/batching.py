"""Tokenise once, group similar lengths into batches, pad each batch only to its own longest row."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class Encoded:
    """Token ids per row (unpadded) and the pad id to use when batching them. ``response_start`` (generative
    finetuning) is where each row's response begins: the loss counts the tokens from there on."""

    ids: list[list[int]]
    pad_id: int
    response_start: list[int] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(x) for x in self.ids), dtype=np.int64, count=len(self.ids))


def encode(tokenizer: object, texts: Sequence[str], max_length: int, cache: dict | None = None) -> Encoded:
    """Tokenise ``texts`` with truncation, no padding; ``cache`` (text → ids) avoids re-tokenising rows."""
    texts = list(texts)
    if cache is None:
        ids = tokenizer(texts, truncation=True, max_length=max_length)["input_ids"] if texts else []
        return Encoded([list(x) for x in ids], int(tokenizer.pad_token_id))
    missing = list(dict.fromkeys(t for t in texts if t not in cache))
    if missing:
        out = tokenizer(missing, truncation=True, max_length=max_length)["input_ids"]
        cache.update(zip(missing, (list(x) for x in out), strict=True))
    return Encoded([cache[t] for t in texts], int(tokenizer.pad_token_id))


def collate(encoded: Encoded, rows: Sequence[int], labels: np.ndarray | None = None) -> dict[str, torch.Tensor]:
    """Right-pad the given rows to their longest one: input_ids, attention_mask (and labels; and ``loss_mask``,
    True on response tokens, for generative finetuning)."""
    width = max(len(encoded.ids[i]) for i in rows)
    input_ids = torch.full((len(rows), width), encoded.pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for j, i in enumerate(rows):
        seq = encoded.ids[i]
        input_ids[j, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[j, : len(seq)] = 1
    batch = {"input_ids": input_ids, "attention_mask": mask}
    if encoded.response_start is not None:
        loss_mask = torch.zeros((len(rows), width), dtype=torch.bool)
        for j, i in enumerate(rows):
            loss_mask[j, encoded.response_start[i]: len(encoded.ids[i])] = True
        batch["loss_mask"] = loss_mask
    if labels is not None:
        batch["labels"] = torch.as_tensor(labels[list(rows)], dtype=torch.long)
    return batch


def length_grouped_batches(lengths: np.ndarray, batch_size: int, seed: int, group_by_length: bool = True,
                           mega: int = 32) -> list[list[int]]:
    """Shuffled batches of row indices; with grouping, rows are sorted by length inside shuffled chunks of
    ``mega`` batches and the batches are shuffled again, so batches are near-uniform in length yet random."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(lengths))
    if not group_by_length:
        return [order[i: i + batch_size].tolist() for i in range(0, len(order), batch_size)]
    batches: list[list[int]] = []
    chunk = batch_size * mega
    for start in range(0, len(order), chunk):
        part = order[start: start + chunk]
        part = part[np.argsort(-lengths[part], kind="stable")]
        batches.extend(part[i: i + batch_size].tolist() for i in range(0, len(part), batch_size))
    rng.shuffle(batches)  # type: ignore[arg-type]
    return batches


def sorted_batches(lengths: np.ndarray, batch_size: int) -> Iterator[list[int]]:
    """Inference batches: longest rows first, so padding is minimal and memory peaks early."""
    order = np.argsort(-lengths, kind="stable")
    for i in range(0, len(order), batch_size):
        yield order[i: i + batch_size].tolist()
