"""A FLOP model of LoRA finetuning and inference per *useful* token (padding excluded).

For a sequence of ``n`` useful tokens, with ``N`` the weights of the linear layers inside the transformer
blocks (embeddings, pooler and the classification head are left out), ``P`` the LoRA adapter weights,
``L`` the number of blocks and ``d`` the attention width (heads × head size):

- forward: ``2·N·n`` (one multiply-add per weight per token) ``+ 2·P·n`` ``+ 4·L·d·n²`` (QKᵀ and AV);
- backward with frozen base weights: only activation gradients flow through the base weights, so
  ``2·N·n`` (no weight gradients), LoRA ``4·P·n`` (activation and weight gradients), attention ``8·L·d·n²``;
- training = forward + backward = ``(4·N + 6·P)·n + 12·L·d·n²``; inference = forward.

The attention terms count the full n×n score matrix also for causal models (the usual MFU convention).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from torch import nn

_BLOCK = re.compile(r"\.(layer|layers|h|blocks)\.\d+\.")


@dataclass
class FlopModel:
    """Per-model constants of the FLOP model (see the module docstring)."""

    block_linear_params: int  # N
    lora_params: int  # P
    layers: int  # L
    attention_width: int  # d

    def train_flops(self, lengths: Iterable[int]) -> float:
        """Training FLOPs (forward + backward) of one pass over sequences with these useful lengths."""
        lin, att = 4 * self.block_linear_params + 6 * self.lora_params, 12 * self.layers * self.attention_width
        return float(sum(lin * n + att * n * n for n in lengths))

    def forward_flops(self, lengths: Iterable[int]) -> float:
        """Inference FLOPs of sequences with these useful lengths."""
        lin, att = 2 * self.block_linear_params + 2 * self.lora_params, 4 * self.layers * self.attention_width
        return float(sum(lin * n + att * n * n for n in lengths))

    def as_dict(self) -> dict:
        return asdict(self)


def flop_model(model: nn.Module, lora_rank: int = 0, lora_targets: Iterable[str] = ()) -> FlopModel:
    """Count ``N`` from the ``nn.Linear`` modules inside the blocks of a plain (not yet PEFT-wrapped) model;
    ``P`` is what rank-``lora_rank`` adapters on the ``lora_targets`` leaves would add."""
    targets = set(lora_targets)
    base, lora = 0, 0
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) and _BLOCK.search(f".{name}."):
            base += module.weight.numel()
            if name.rsplit(".", 1)[-1] in targets:
                lora += lora_rank * (module.in_features + module.out_features)
    cfg = model.config
    layers = int(getattr(cfg, "num_hidden_layers", 0) or getattr(cfg, "n_layer", 0))
    heads = int(getattr(cfg, "num_attention_heads", 0) or getattr(cfg, "n_head", 0))
    head_dim = int(getattr(cfg, "head_dim", 0) or cfg.hidden_size // heads)
    return FlopModel(base, lora, layers, heads * head_dim)
