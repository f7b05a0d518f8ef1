"""Device and precision choice: ``auto`` picks CUDA when present and bf16 autocast where the hardware has it."""

from __future__ import annotations

import contextlib

import torch

from spurlab.errors import SpurlabError


def cpu_bf16_supported() -> bool:
    """True when this CPU has AMX tiles, where bf16 autocast pays off. AVX512-BF16 alone is not enough:
    measured on such a CPU, bf16 autocast trained MiniLM LoRA several times slower than fp32."""
    return bool(getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)())


def bf16_supported(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return cpu_bf16_supported()
    return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """``fp32`` or ``bf16``; ``auto`` → bf16 when supported on ``device``."""
    if precision == "auto":
        return "bf16" if bf16_supported(device) else "fp32"
    if precision == "bf16" and device.type not in {"cpu", "cuda"}:
        raise SpurlabError(f"train.precision: bf16 autocast is not supported on {device.type}")
    return precision


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """Autocast to bf16 (weights stay fp32) or a no-op for fp32."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
