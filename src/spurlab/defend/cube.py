"""CUBE (Cui et al., NeurIPS 2022): poisoned rows form their own small cluster in the representation space of
a model trained on them; keep each label's main cluster and drop the small ones.

A model is finetuned on the (poisoned) data (:mod:`spurlab.defend.suspect_model`); its mean-pooled last hidden
layer is reduced to ``dims`` dimensions by PCA (CUBE uses UMAP, which spurlab does not depend on) and clustered
by HDBSCAN (scikit-learn; ``min_samples``, by default ``min(100, max(5, n // 20))``: CUBE uses 100 on datasets of
thousands). Then, per label, the cluster holding most of the label's rows is kept, and every other cluster of
its rows, HDBSCAN's noise included, that holds fewer than half of them is dropped.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
from pydantic import Field

from spurlab.data.dataset import TextDataset
from spurlab.data.transform import TransformResult, drop_rows
from spurlab.defend.base import register_defense
from spurlab.defend.suspect_model import SuspectModelParams, finetune_on, representations


def cube_clusters(vectors: np.ndarray, dims: int = 10, min_samples: int | None = None, seed: int = 0) -> np.ndarray:
    """HDBSCAN cluster ids (-1: noise) of ``vectors`` after PCA to ``dims`` dimensions."""
    from sklearn.cluster import HDBSCAN
    from sklearn.decomposition import PCA

    x = np.asarray(vectors, dtype=np.float64)
    if x.shape[1] > dims:
        x = PCA(n_components=min(dims, len(x)), random_state=seed).fit_transform(x)
    samples = min_samples if min_samples is not None else min(100, max(5, len(x) // 20))
    return HDBSCAN(min_samples=min(samples, len(x)), copy=True).fit_predict(x)


def minority_rows(labels: np.ndarray, clusters: np.ndarray) -> tuple[list[int], dict[str, Any]]:
    """Rows to drop: per label, those outside its largest cluster, in clusters (or noise) holding fewer than
    half of the label's rows. Also the per-label cluster sizes."""
    drop: list[int] = []
    sizes: dict[str, Any] = {}
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        counts = Counter(clusters[rows].tolist())
        sizes[str(label)] = {str(c): n for c, n in counts.most_common()}
        if len(counts) < 2:
            continue
        largest = max(counts, key=lambda c: (counts[c], -c))
        for cluster, n in counts.items():
            if cluster != largest and n < 0.5 * len(rows):
                drop.extend(int(r) for r in rows[clusters[rows] == cluster])
    return sorted(drop), sizes


@register_defense("cube")
class Cube(SuspectModelParams):
    """CUBE: cluster a suspect model's representations; drop each label's small clusters."""

    dims: int = Field(10, ge=2, description="PCA dimensions before clustering")
    min_samples: int | None = Field(None, ge=2, description="HDBSCAN's min_samples; None: min(100, max(5, n/20))")
    seed: int = Field(0, ge=0)

    def apply(self, dataset: TextDataset) -> TransformResult:
        suspect = finetune_on(dataset, self.model, self.finetune)
        clusters = cube_clusters(representations(suspect, dataset.texts), self.dims, self.min_samples, self.seed)
        labels = np.asarray(dataset.label_strings, dtype=object)
        drop, sizes = minority_rows(labels, clusters)
        summary = {"dataset": dataset.name, "defense": "cube", "model": self.model,
                   "n_clusters": len(set(clusters.tolist()) - {-1}), "cluster_sizes_per_label": sizes}
        return drop_rows(dataset, drop, {r: {"cluster": int(clusters[r])} for r in drop}, summary)


__all__ = ["Cube", "cube_clusters", "minority_rows"]
