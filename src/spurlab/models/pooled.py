"""A classification head over ``AutoModel`` hidden states, for architectures without a sequence-classification
class (e.g. OpenELM). Unlike the paper's head, padding never leaks into the pooled vector."""

from __future__ import annotations

import torch
from torch import nn
from transformers.modeling_outputs import SequenceClassifierOutput


def masked_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``hidden`` (B, T, H) over positions where ``mask`` (B, T) is 1."""
    weights = mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)


def last_token(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Hidden state of the last position where ``mask`` is 1 (works for left and right padding)."""
    positions = torch.arange(mask.shape[1], device=mask.device).unsqueeze(0)
    index = (positions * mask.long()).argmax(dim=1)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), index]


class PooledClassifier(nn.Module):
    """``backbone`` (an ``AutoModel``) → pooling (mean / last / mean_last) → ``head`` (Linear)."""

    def __init__(self, backbone: nn.Module, num_labels: int, pooling: str = "mean") -> None:
        super().__init__()
        if pooling not in {"mean", "last", "mean_last"}:
            raise ValueError(f"unknown pooling {pooling!r}")
        self.backbone = backbone
        self.config = backbone.config
        self.pooling = pooling
        self.num_labels = num_labels
        hidden = _hidden_size(backbone.config)
        self.head = nn.Linear(hidden * (2 if pooling == "mean_last" else 1), num_labels)
        std = getattr(backbone.config, "initializer_range", 0.02)
        nn.init.normal_(self.head.weight, std=std)
        nn.init.zeros_(self.head.bias)

    def pool(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.pooling == "mean":
            return masked_mean(hidden, mask)
        if self.pooling == "last":
            return last_token(hidden, mask)
        return torch.cat([masked_mean(hidden, mask), last_token(hidden, mask)], dim=-1)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, **kwargs: object) -> SequenceClassifierOutput:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        out = self.backbone(input_ids=input_ids, attention_mask=attention_mask)
        hidden = out[0] if isinstance(out, tuple) else out.last_hidden_state
        logits = self.head(self.pool(hidden, attention_mask).to(self.head.weight.dtype))
        loss = nn.functional.cross_entropy(logits.float(), labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)


def _hidden_size(config: object) -> int:
    for attr in ("hidden_size", "d_model", "n_embd", "model_dim"):
        value = getattr(config, attr, None)
        if isinstance(value, int):
            return value
    raise ValueError(f"cannot tell the hidden size of {type(config).__name__}")
