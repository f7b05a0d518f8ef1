"""The ``train:`` section of an experiment config: LoRA (default), full finetuning or the head only.

Defaults follow the paper where that is cheap (LoRA on q/k/v + dense, dropout 0.05, cosine schedule with 5%
warm-up, clip 1.0) and differ where its setting is too slow for a laptop (AdamW at a larger lr instead of
Adafactor 1e-4 over 500 steps of batch 128; max_length 128, not 1024).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from spurlab.data.config import Section
from spurlab.models.config import LoraSettings


class TrainConfig(Section):
    """Finetuning: LoRA (default), full finetuning, or the classification head only."""

    mode: Literal["lora", "full", "head"] = "lora"
    lora: LoraSettings = Field(default_factory=LoraSettings)
    lr: float = Field(5e-4, gt=0)
    head_lr: float | None = Field(None, gt=0, description="learning rate of the head; None = lr")
    optimizer: Literal["adamw", "adafactor"] = "adamw"
    weight_decay: float = Field(0.01, ge=0)
    scheduler: Literal["cosine", "linear", "constant"] = "cosine"
    warmup_ratio: float = Field(0.05, ge=0, lt=1)
    epochs: float = Field(1.0, gt=0)
    max_steps: int | None = Field(None, gt=0, description="optimizer steps; overrides epochs")
    batch_size: int = Field(16, gt=0)
    grad_accum: int = Field(1, gt=0)
    max_length: int = Field(128, gt=1)
    clip_norm: float | None = Field(1.0, gt=0)
    seed: int = Field(0, ge=0, lt=2**63)
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    device: str = Field("auto", description="auto, cpu, cuda, cuda:0, mps")
    group_by_length: bool = True
    threads: int | None = Field(None, gt=0, description="CPU threads for torch; None = torch's default (all "
                                "cores); 1 is faster when other processes compete for the cores")

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if value != "auto" and value.split(":")[0] not in {"cpu", "cuda", "mps", "xpu"}:
            raise ValueError(f"unknown device {value!r} (auto, cpu, cuda, cuda:N, mps)")
        return value
