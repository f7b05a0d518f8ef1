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


class SentenceEmbedder:
    """An encoder loaded once, turning texts into unit-length mean-pooled last hidden states
    (sentence-transformers style)."""

    def __init__(self, name: str = DEFAULT_EMBEDDER, batch_size: int = 32, max_length: int = 256) -> None:
        from transformers import AutoModel

        self.tokenizer = load_tokenizer(name)
        try:
            with quiet_transformers():
                self.model = AutoModel.from_pretrained(resolve_model_name(name), use_safetensors=True).eval()
        except SpurlabError:
            raise
        except Exception as exc:
            raise not_found_error("embedding model", name, exc) from None
        self.batch_size, self.max_length = batch_size, max_length

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        vectors = []
        for start in range(0, len(texts), self.batch_size):
            enc = self.tokenizer(list(texts[start:start + self.batch_size]), return_tensors="pt", padding=True,
                                 truncation=True, max_length=self.max_length)
            with torch.inference_mode():
                hidden = self.model(**enc).last_hidden_state
            pooled = masked_mean(hidden, enc["attention_mask"])
            vectors.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
        return np.concatenate(vectors) if vectors else np.zeros((0, 0))


def sentence_embeddings(texts: Sequence[str], name: str, batch_size: int = 32, max_length: int = 256) -> np.ndarray:
    """Unit-length mean-pooled last hidden states of an encoder (sentence-transformers style)."""
    return SentenceEmbedder(name, batch_size, max_length)(texts)


__all__ = ["DEFAULT_EMBEDDER", "SentenceEmbedder", "sentence_embeddings"]
