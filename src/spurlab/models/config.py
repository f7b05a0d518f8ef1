"""The ``model:`` section of an experiment config, and the LoRA settings of ``train.lora``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from spurlab.data.config import Section


class ModelConfig(Section):
    """The pretrained model turned into a classifier."""

    name: str = Field(description="HF hub id, local folder, bundled:minilm or bundled:smollm2")
    head: Literal["auto", "sequence_classification", "pooled"] = Field(
        "auto", description="auto: AutoModelForSequenceClassification when the architecture has one, else pooled"
    )
    pooling: Literal["mean", "last", "mean_last"] = Field(
        "mean", description="pooled head only: masked mean, last non-pad token, or both concatenated (paper)"
    )
    tokenizer: str | None = Field(None, description="a different tokenizer (OpenELM borrows Llama-2's)")
    trust_remote_code: bool = Field(False, description="run Python code shipped with the model (only for "
                                    "sources you trust; printed when on)")
    allow_pickle: bool = Field(False, description="also load pickle checkpoints (pytorch_model.bin, .pt, "
                               "adapter_model.bin); off = safetensors only")
    dtype: Literal["float32", "bfloat16"] = Field("float32", description="weights dtype when loading")
    quantization: Literal["none", "4bit", "8bit"] = Field(
        "none", description="bitsandbytes-quantized frozen weights: 4bit (NF4, double quantization, bf16 "
                            "compute: QLoRA with train.method lora) or 8bit; CUDA only")


class LoraSettings(Section):
    r: int = Field(8, gt=0)
    alpha: float | None = Field(None, gt=0, description="None = same as r (the paper uses r = alpha)")
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] | None = Field(None, description="None = per-architecture default")
    use_dora: bool = False
    use_rslora: bool = False
    init: Literal["default", "gaussian", "pissa", "olora"] = Field(
        "default", description="default: PEFT's (Kaiming-uniform A, zero B); gaussian; pissa or olora: from the "
                               "weights' SVD / QR (the base weights are changed by the init)")
