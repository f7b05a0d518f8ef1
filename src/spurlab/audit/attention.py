"""Where the model looks when the found trigger is in the text: per layer, the share of attention real tokens
put on the trigger's word pieces, against a random run of as many word pieces of the clean text (the
attention code of ``spurlab diagnose``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from spurlab.audit.candidates import Candidate
from spurlab.audit.source import AuditedModel
from spurlab.audit.verify import insert_with_spans
from spurlab.errors import SpurlabError
from spurlab.evaluate import attention as att
from spurlab.models.loading import is_decoder_type


def _layer_means(values: np.ndarray) -> list[float | None]:
    out: list[float | None] = []
    for column in values.T:
        finite = column[np.isfinite(column)]
        out.append(float(finite.mean()) if len(finite) else None)
    return out


def trigger_attention(audited: AuditedModel, rows: Sequence[str], candidate: Candidate, *, seed: int,
                      device: torch.device, precision: str = "fp32", max_length: int = 128,
                      batch_size: int = 16) -> dict[str, Any]:
    """``{"trigger": [...], "random_span": [...]}``: per layer, the mean attention mass on the inserted
    candidate's pieces and on a random span of the same length in the clean row; ``{"error": ...}`` where the
    architecture returns no attention weights."""
    model, tokenizer = audited.model, audited.tokenizer
    items = candidate.items(len(rows), np.random.default_rng([seed, 1]))
    texts, spans = insert_with_spans(rows, items, seed)
    injected, inj_offsets = att.encode_with_offsets(tokenizer, list(texts), max_length)
    clean, clean_offsets = att.encode_with_offsets(tokenizer, list(rows), max_length)
    trigger_pos = [att.token_positions(off, span) for off, span in zip(inj_offsets, spans, strict=True)]
    rng = np.random.default_rng(seed)
    random_pos = [att.random_span([i for i, (a, b) in enumerate(off) if b > a], max(len(pos), 1), rng)
                  for off, pos in zip(clean_offsets, trigger_pos, strict=True)]
    model_type = str(getattr(getattr(att.backbone_of(model), "config", None), "model_type", "") or "")
    causal = is_decoder_type(model_type)
    try:
        att.use_eager_attention(model)
        inj, _ = att.attention_stats(model, injected, {"trigger": trigger_pos}, causal, device, precision,
                                     batch_size)
        base, _ = att.attention_stats(model, clean, {"random_span": random_pos}, causal, device, precision,
                                      batch_size)
    except (SpurlabError, TypeError, ValueError) as exc:
        return {"error": str(exc).splitlines()[0][:200]}
    trigger, random = _layer_means(inj["mass_trigger"]), _layer_means(base["mass_random_span"])
    ratio = [None if t is None or not r else t / r for t, r in zip(trigger, random, strict=True)]
    return {"candidate": candidate.name, "rows": len(rows), "trigger": trigger, "random_span": random,
            "ratio": ratio}


__all__ = ["trigger_attention"]
