"""Seeded, stratified splitting and subsampling that keep the original row order within each part."""

from __future__ import annotations

import numpy as np

from spurlab.data.dataset import DatasetSplits, TextDataset
from spurlab.errors import SpurlabError


def stratified_indices(labels: list[str], fraction: float, seed: int) -> np.ndarray:
    """Pick ``round(n_label * fraction)`` rows of every label with a seeded generator; sorted row indices."""
    rng = np.random.default_rng(seed)
    labels_arr = np.asarray(labels, dtype=object)
    chosen: list[np.ndarray] = []
    for label in sorted(set(labels)):
        rows = np.flatnonzero(labels_arr == label)
        take = round(len(rows) * fraction)
        chosen.append(rng.permutation(rows)[:take])
    return np.sort(np.concatenate(chosen)) if chosen else np.empty(0, dtype=np.int64)


def stratified_split(dataset: TextDataset, test_size: float, seed: int) -> DatasetSplits:
    """Split one table into train and test with the same label proportions (seeded)."""
    if not 0.0 < test_size < 1.0:
        raise SpurlabError(f"test_size must be between 0 and 1 (got {test_size})")
    test_rows = stratified_indices(dataset.label_strings, test_size, seed)
    mask = np.zeros(len(dataset), dtype=bool)
    mask[test_rows] = True
    train = dataset.with_frame(dataset.frame[~mask])
    test = dataset.with_frame(dataset.frame[mask])
    if len(train) == 0 or len(test) == 0:
        raise SpurlabError(f"{dataset.name}: too few rows ({len(dataset)}) to split into train and test")
    return DatasetSplits(train, test, dataset.name)


def subsample(dataset: TextDataset, max_rows: int | None, seed: int) -> TextDataset:
    """At most ``max_rows`` rows, stratified by label and seeded; the dataset itself when it is small enough."""
    if max_rows is None or len(dataset) <= max_rows:
        return dataset
    if max_rows <= 0:
        raise SpurlabError(f"the row limit must be positive (got {max_rows})")
    rows = stratified_indices(dataset.label_strings, max_rows / len(dataset), seed)
    return dataset.with_frame(dataset.frame.iloc[rows])
