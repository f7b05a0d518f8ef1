"""Attention diagnostics: masked entropy, attention mass on spans, token spans (pure tensor math), and the
model passes that collect them per layer (used by ``spurlab diagnose`` and ``spurlab audit``).

Shapes: ``attn`` is one layer's attention probabilities ``(B, H, Q, K)`` with ``Q == K == T`` (self-attention;
each query row sums to 1 over the keys it may see); ``mask`` is the ``(B, T)`` attention mask (1 = real token,
0 = padding). Every function averages over heads and over *real* query positions only, so padding never
counts; rows without a real query give NaN. Entropies are in bits.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from spurlab.errors import InternalError, SpurlabError

LN2 = math.log(2.0)


def _query_mean(per_query: torch.Tensor, query_mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``per_query`` (B, H, Q) over heads and the queries where ``query_mask`` (B, Q) is true; (B,)."""
    weights = query_mask.to(per_query.dtype).unsqueeze(1).expand_as(per_query)
    # where() rather than multiplication: padded queries of causal models can hold NaN (fully masked rows)
    total = torch.where(weights > 0, per_query, torch.zeros_like(per_query)).sum(dim=(1, 2))
    count = weights.sum(dim=(1, 2))
    return torch.where(count > 0, total / count.clamp(min=1), torch.full_like(total, float("nan")))


def query_entropy(attn: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Shannon entropy (bits) of each query's distribution over the real keys: (B, H, Q)."""
    p = attn.float() * mask.to(torch.float32)[:, None, None, :]
    return -torch.special.xlogy(p, p).sum(-1) / LN2


def attention_entropy(attn: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per row: entropy of the attention distributions, mean over heads and real queries; (B,) bits."""
    return _query_mean(query_entropy(attn, mask), mask.bool())


def visible_keys(mask: torch.Tensor, causal: bool) -> torch.Tensor:
    """How many real keys each query may attend to: (B, Q) (all real tokens, or those up to it when causal)."""
    m = mask.to(torch.float32)
    return m.cumsum(-1) if causal else m.sum(-1, keepdim=True).expand_as(m)


def normalized_entropy(attn: torch.Tensor, mask: torch.Tensor, causal: bool) -> torch.Tensor:
    """Per row: entropy divided by its maximum ``log2(visible keys)``, mean over heads and the real queries
    that see more than one key; (B,) in [0, 1]. Unlike the raw entropy it does not grow with length."""
    n_keys = visible_keys(mask, causal)
    usable = mask.bool() & (n_keys > 1)
    ratio = query_entropy(attn, mask) / torch.log2(n_keys.clamp(min=2)).unsqueeze(1)
    return _query_mean(ratio, usable)


def span_mass(attn: torch.Tensor, mask: torch.Tensor, span: torch.Tensor) -> torch.Tensor:
    """Per row: the share of attention that real queries put on the keys where ``span`` (B, T) is true, mean
    over heads and real queries; (B,) in [0, 1]. Rows with an empty span give NaN."""
    keys = (span.bool() & mask.bool()).to(torch.float32)
    per_query = (attn.float() * keys[:, None, None, :]).sum(-1)
    out = _query_mean(per_query, mask.bool())
    return torch.where(keys.sum(-1) > 0, out, torch.full_like(out, float("nan")))


def token_positions(offsets: Sequence[tuple[int, int]], spans: Sequence[Sequence[int]]) -> list[int]:
    """Token positions whose character range ``[start, end)`` overlaps any span ``[start, end)``.

    ``offsets`` is a fast tokenizer's ``offset_mapping`` for one text; special tokens (empty range) never
    match. A word piece that straddles a span edge counts as part of the span.
    """
    out = []
    for i, (start, end) in enumerate(offsets):
        if end > start and any(start < s_end and end > s_start for s_start, s_end in spans):
            out.append(i)
    return out


def random_span(candidates: Sequence[int], length: int, rng: np.random.Generator) -> list[int]:
    """``length`` consecutive entries of ``candidates`` (e.g. a row's non-special token positions) starting at
    a uniformly random place; empty when there are fewer than ``length`` candidates or ``length < 1``."""
    if length < 1 or len(candidates) < length:
        return []
    start = int(rng.integers(0, len(candidates) - length + 1))
    return list(candidates[start: start + length])


def positions_mask(positions: Sequence[Sequence[int]], width: int) -> torch.Tensor:
    """A (B, width) bool mask with True at each row's listed positions (those < width)."""
    out = torch.zeros((len(positions), width), dtype=torch.bool)
    for row, pos in enumerate(positions):
        kept = [p for p in pos if p < width]
        if kept:
            out[row, kept] = True
    return out


def encode_with_offsets(tokenizer: Any, texts: list[str], max_length: int) -> tuple[Any, list[list[tuple[int, int]]]]:
    """spurlab's own encoding of ``texts`` (as the run's evaluation) and each row's character offsets."""
    from spurlab.train.batching import encode

    encoded = encode(tokenizer, texts, max_length)
    if not texts:
        return encoded, []
    out = tokenizer(texts, truncation=True, max_length=max_length, return_offsets_mapping=True)
    if [list(x) for x in out["input_ids"]] != encoded.ids:
        raise InternalError("the tokenizer's offset mapping does not match its encoding")
    return encoded, [[(int(s), int(e)) for s, e in row] for row in out["offset_mapping"]]


# -- model passes ---------------------------------------------------------------------------------------------

def use_eager_attention(model: nn.Module) -> None:
    """Switch every transformers model inside ``model`` to eager attention (sdpa returns no weights)."""
    from transformers import PreTrainedModel

    for module in model.modules():
        if isinstance(module, PreTrainedModel) and module.config._attn_implementation != "eager":
            module.set_attn_implementation("eager")


def backbone_of(model: nn.Module) -> nn.Module:
    """The transformer under a classifier: through a PEFT wrapper, a pooled head or a task head."""
    from spurlab.models.pooled import PooledClassifier

    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    if isinstance(inner, PooledClassifier):
        return inner.backbone
    return getattr(inner, "base_model", inner)


def layer_attentions(backbone: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
    out = backbone(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], output_attentions=True)
    attentions = getattr(out, "attentions", None)
    if not attentions or any(a is None for a in attentions):
        raise SpurlabError(f"{type(backbone).__name__} returned no attention weights (output_attentions=True "
                           "under eager attention); this architecture cannot be diagnosed")
    return tuple(attentions)


def attention_stats(model: nn.Module, encoded: Any, spans: dict[str, list[list[int]]], causal: bool,
                    device: torch.device, precision: str, batch_size: int) -> tuple[dict[str, np.ndarray], int]:
    """``entropy``, ``entropy_normalized`` and ``mass_<name>`` for each span set as (n_rows, n_layers) arrays,
    and the number of attention heads."""
    from spurlab.models.loading import place
    from spurlab.precision import autocast
    from spurlab.train.batching import collate, sorted_batches

    model.eval()
    place(model, device)
    backbone = backbone_of(model)
    out: dict[str, np.ndarray] = {}
    n_heads = 0
    with torch.inference_mode():
        for rows in sorted_batches(encoded.lengths, batch_size):
            batch = {k: v.to(device) for k, v in collate(encoded, rows).items()}
            mask = batch["attention_mask"]
            with autocast(device, precision):
                attentions = layer_attentions(backbone, batch)
            width, n_heads = mask.shape[1], attentions[0].shape[1]
            masks = {name: positions_mask([pos[r] for r in rows], width).to(device)
                     for name, pos in spans.items()}
            values: dict[str, list[torch.Tensor]] = {"entropy": [], "entropy_normalized": []}
            values.update({f"mass_{name}": [] for name in spans})
            for layer in attentions:
                layer = layer.float()
                values["entropy"].append(attention_entropy(layer, mask))
                values["entropy_normalized"].append(normalized_entropy(layer, mask, causal))
                for name, span in masks.items():
                    values[f"mass_{name}"].append(span_mass(layer, mask, span))
            for key, per_layer in values.items():
                if key not in out:
                    out[key] = np.full((len(encoded), len(per_layer)), np.nan)
                out[key][rows] = torch.stack(per_layer, dim=1).cpu().numpy()
    return out, n_heads
