"""Sentence embeddings: unit-length mean-pooled hidden states of an encoder (default the bundled MiniLM, a
sentence-embedding model), for the stealth report's similarity and for clustering free-text responses."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from spurlab.errors import SpurlabError
from spurlab.models.pooled import masked_mean
from spurlab.models.registry import resolve_model_name
from spurlab.models.tokenizer import load_tokenizer, not_found_error, quiet_transformers

DEFAULT_EMBEDDER = "bundled:minilm"


def sentence_embeddings(texts: Sequence[str], name: str, batch_size: int = 32, max_length: int = 256) -> np.ndarray:
    """Unit-length mean-pooled last hidden states of an encoder (sentence-transformers style)."""
    import torch
    from transformers import AutoModel

    tokenizer = load_tokenizer(name)
    try:
        with quiet_transformers():
            model = AutoModel.from_pretrained(resolve_model_name(name), use_safetensors=True).eval()
    except SpurlabError:
        raise
    except Exception as exc:
        raise not_found_error("embedding model", name, exc) from None
    vectors = []
    for start in range(0, len(texts), batch_size):
        enc = tokenizer(list(texts[start:start + batch_size]), return_tensors="pt", padding=True, truncation=True,
                        max_length=max_length)
        with torch.inference_mode():
            hidden = model(**enc).last_hidden_state
        pooled = masked_mean(hidden, enc["attention_mask"])
        vectors.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
    return np.concatenate(vectors) if vectors else np.zeros((0, 0))


__all__ = ["DEFAULT_EMBEDDER", "sentence_embeddings"]
