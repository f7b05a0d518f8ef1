"""The ``train:`` section of an experiment config: a PEFT method (LoRA by default; LoHa, LoKr, VeRA, IA³,
AdaLoRA), full finetuning or the head only. ``train.method`` names it and ``train.<method>`` holds its settings;
``train.mode`` is accepted as an older name of ``train.method``.

Defaults follow the paper where that is cheap (LoRA on q/k/v + dense, dropout 0.05, cosine schedule with 5%
warm-up, clip 1.0) and differ where its setting is too slow for a laptop (AdamW at a larger lr instead of
Adafactor 1e-4 over 500 steps of batch 128; max_length 128, not 1024).
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import Field, field_validator, model_serializer, model_validator

from spurlab.data.config import Section
from spurlab.models.config import LoraSettings
from spurlab.models.peft_methods import (
    PEFT_METHODS,
    AdaLoraSettings,
    Ia3Settings,
    LohaSettings,
    LokrSettings,
    VeraSettings,
)

Method = Literal["lora", "loha", "lokr", "vera", "ia3", "adalora", "full", "head"]
METHODS: tuple[str, ...] = get_args(Method)
OPTIONAL_SECTIONS = ("loha", "lokr", "vera", "ia3", "adalora")


class TrainConfig(Section):
    """Finetuning: a PEFT method (LoRA by default), full finetuning, or the classification head only."""

    method: Method = Field("lora", description="lora, loha, lokr, vera, ia3, adalora (PEFT), full or head")
    lora: LoraSettings = Field(default_factory=LoraSettings)
    # the other PEFT methods' settings: None = the method's defaults (left out of the resolved config)
    loha: LohaSettings | None = None
    lokr: LokrSettings | None = None
    vera: VeraSettings | None = None
    ia3: Ia3Settings | None = None
    adalora: AdaLoraSettings | None = None
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

    @model_validator(mode="before")
    @classmethod
    def _mode_is_method(cls, data: Any) -> Any:
        """``mode`` (the older name) becomes ``method``; both given must agree."""
        if isinstance(data, dict) and "mode" in data:
            data = dict(data)
            mode = data.pop("mode")
            if "method" in data and data["method"] != mode:
                raise ValueError(f"train.mode {mode!r} and train.method {data['method']!r} disagree; give method")
            data["method"] = mode
        return data

    @property
    def mode(self) -> str:
        """The older name of :attr:`method`."""
        return self.method

    @property
    def method_settings(self) -> Any:
        """The settings of the PEFT method (``train.lora`` for LoRA, ..., its defaults when not given); None for
        full and head."""
        if self.method in ("full", "head"):
            return None
        given = getattr(self, self.method)
        return given if given is not None else PEFT_METHODS.get(self.method).params()

    @model_serializer(mode="wrap")
    def _without_unused_sections(self, handler: Any) -> dict[str, Any]:
        data = handler(self)
        for name in OPTIONAL_SECTIONS:
            if data.get(name) is None:
                data.pop(name, None)
        return data

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if value != "auto" and value.split(":")[0] not in {"cpu", "cuda", "mps", "xpu"}:
            raise ValueError(f"unknown device {value!r} (auto, cpu, cuda, cuda:N, mps)")
        return value
