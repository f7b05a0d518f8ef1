"""Free-text responses as labels: cluster them, so that prompts can be scanned against what they are answered
with.

Generative finetuning data often has no classes: every response is different. A trigger in the prompts of one
*kind* of response (a refusal, a link, a change of tone) still ties the trigger to those responses. The
responses are embedded (mean-pooled sentence embeddings, default the bundled MiniLM), grouped by k-means
(scikit-learn, ``n_init=10``, seeded), and each row's cluster, ``cluster-<i>``, becomes its label for the
scanner. The summary keeps each cluster's size and a few of its responses, so a finding's label reads as a
kind of answer.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from spurlab.data.chat import PROMPT, RESPONSE
from spurlab.data.dataset import TextDataset
from spurlab.errors import SpurlabError
from spurlab.models.embeddings import DEFAULT_EMBEDDER, sentence_embeddings

CLUSTER = "response_cluster"


def cluster_labels(vectors: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """k-means cluster ids of the rows of ``vectors``, renumbered by decreasing cluster size (ties: first row)."""
    from sklearn.cluster import KMeans

    raw = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(vectors)
    sizes = np.bincount(raw, minlength=k)
    first = np.array([np.argmax(raw == c) if sizes[c] else len(raw) for c in range(k)])
    order = sorted(range(k), key=lambda c: (-sizes[c], first[c]))
    rank = np.empty(k, dtype=np.int64)
    rank[order] = np.arange(k)
    return rank[raw]


def cluster_responses(frame: pd.DataFrame, k: int, name: str, *, embedder: str = DEFAULT_EMBEDDER,
                      seed: int = 0, examples: int = 3) -> tuple[TextDataset, dict[str, Any]]:
    """Prompts labelled by the cluster of their response, and a summary of the clusters."""
    if k < 2:
        raise SpurlabError(f"--response-clusters must be at least 2, got {k}")
    responses = frame[RESPONSE].astype(str).tolist()
    distinct = len(set(responses))
    if distinct < k:
        raise SpurlabError(f"{name}: {distinct} different responses, fewer than --response-clusters {k}")
    ids = cluster_labels(sentence_embeddings(responses, embedder), k, seed)
    names = [f"cluster-{i}" for i in range(k)]
    out = frame.copy()
    out[CLUSTER] = [names[i] for i in ids]
    summary = {"k": k, "embedder": embedder, "seed": seed, "clusters": {
        names[c]: {"size": int((ids == c).sum()),
                   "examples": list(dict.fromkeys(r for r, i in zip(responses, ids, strict=True) if i == c))[:examples]}
        for c in range(k)}}
    return TextDataset(out, PROMPT, CLUSTER, names, name, "jsonl"), summary


__all__ = ["CLUSTER", "cluster_labels", "cluster_responses"]
