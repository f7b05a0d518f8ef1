"""Device and precision choice. ``auto`` is decided by measurement on a CPU, not by its name.

Whether bf16 autocast pays off on a CPU depends on more than its feature flags: AMX tiles make it fast, but
so can AVX512-BF16 alone on some CPUs, while on others autocast's casts cost more than the matmuls save. So
``auto`` times one training step (forward and backward) of a MiniLM-sized transformer layer in fp32 and in bf16
autocast, on the threads the run will use, and picks bf16 only when it is at least ``BF16_MARGIN`` times as
fast. The timings are cached per CPU model, feature flags, torch version and thread count
(:func:`spurlab.runtime.cache_dir`), so the probe (a few seconds) runs once per machine. On CUDA, ``auto`` is
bf16 wherever the device supports it.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from spurlab.atomic import write_json
from spurlab.errors import SpurlabError
from spurlab.runtime import cache_dir, machine, now

BF16_MARGIN = 1.05  # bf16 must be this much faster: fp32 is the safer numerics, so a tie goes to fp32
PROBE_SHAPE = {"batch": 32, "seq": 64, "hidden": 384, "heads": 12, "ffn": 1536}  # MiniLM's layer, the demo's batch
CACHE_FILE = "precision.json"
_CPU_FLAGS = ("amx_tile", "amx_bf16", "avx512_bf16", "avx512f", "avx2")

Timings = dict[str, float]


@dataclass(frozen=True)
class PrecisionChoice:
    """What ``train.precision`` resolved to and why (recorded in the run log and ``metrics.json``)."""

    requested: str
    precision: str
    reason: str
    seconds_per_step: Timings | None = None  # the probe's fp32 and bf16 timings, when measured

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def probe_step_seconds(device: torch.device, repeats: int = 4) -> Timings:
    """Best-of-``repeats`` seconds of one forward+backward step of a MiniLM-sized layer, fp32 and bf16 autocast
    (interleaved, so a neighbour's load hits both alike)."""
    gen = torch.Generator().manual_seed(0)
    s = PROBE_SHAPE
    layer = nn.TransformerEncoderLayer(s["hidden"], s["heads"], s["ffn"], dropout=0.0, batch_first=True).to(device)
    x = torch.randn(s["batch"], s["seq"], s["hidden"], generator=gen).to(device)
    best = {"fp32": float("inf"), "bf16": float("inf")}
    for i in range(repeats + 1):
        for name in best:
            layer.zero_grad(set_to_none=True)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            with autocast(device, name):
                out = layer(x)
            out.float().pow(2).mean().backward()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if i:  # the first round warms up both paths
                best[name] = min(best[name], time.perf_counter() - start)
    return best


def decide(timings: Timings, margin: float = BF16_MARGIN) -> tuple[str, str]:
    """``(precision, reason)`` from measured seconds per step: bf16 when it is at least ``margin`` times as fast."""
    speedup = timings["fp32"] / timings["bf16"]
    verdict = (("bf16", f"at least {margin:g}x") if speedup >= margin else ("fp32", f"below {margin:g}x"))
    return verdict[0], (f"measured bf16 autocast at {speedup:.2f}x fp32's speed ({verdict[1]}; "
                        f"{timings['fp32'] * 1e3:.0f} vs {timings['bf16'] * 1e3:.0f} ms per probe step)")


def _cache_key(device: torch.device) -> str:
    flags: set[str] = set()
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
        line = next((ln for ln in handle if ln.startswith("flags")), "")
        flags = set(line.split(":", 1)[-1].split())
    return "|".join([machine()["cpu"], ",".join(f for f in _CPU_FLAGS if f in flags) or "-",
                     f"torch {torch.__version__}", f"threads {torch.get_num_threads()}", device.type])


def cached_timings(device: torch.device, measure: Callable[[], Timings] | None = None) -> tuple[Timings, bool]:
    """The probe's timings for this machine, from the cache or measured now (then cached when the cache folder
    is writable; a read-only home only means measuring again next time). Returns ``(timings, from_cache)``."""
    path = cache_dir() / CACHE_FILE
    key = _cache_key(device)
    cache: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        loaded = json.loads(path.read_text(encoding="utf-8"))
        cache = loaded if isinstance(loaded, dict) else {}
    entry = cache.get(key)
    if isinstance(entry, dict) and all(isinstance(entry.get(k), (int, float)) and entry[k] > 0
                                       for k in ("fp32", "bf16")):
        return {"fp32": float(entry["fp32"]), "bf16": float(entry["bf16"])}, True
    timings = (measure or (lambda: probe_step_seconds(device)))()
    cache[key] = {**timings, "measured_at": now()}
    with contextlib.suppress(SpurlabError):
        write_json(path, cache)
    return timings, False


def choose_precision(precision: str, device: torch.device,
                     measure: Callable[[], Timings] | None = None) -> PrecisionChoice:
    """Resolve ``train.precision`` on ``device``; ``auto`` on a CPU measures (see the module docstring).
    ``measure`` replaces the probe (tests inject timings through it)."""
    if precision == "bf16" and device.type not in {"cpu", "cuda"}:
        raise SpurlabError(f"train.precision: bf16 autocast is not supported on {device.type}")
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise SpurlabError("train.precision: bf16 needs a CUDA device with bf16 support (compute capability 8.0 "
                           "or newer); this one has none, use fp32 or auto")
    if precision != "auto":
        return PrecisionChoice(precision, precision, "set in the config")
    if device.type == "cuda":
        ok = torch.cuda.is_bf16_supported()
        return PrecisionChoice("auto", "bf16" if ok else "fp32",
                               f"this CUDA device {'supports' if ok else 'does not support'} bf16")
    if device.type != "cpu":
        return PrecisionChoice("auto", "fp32", f"bf16 autocast is not supported on {device.type}")
    timings, cached = cached_timings(device, measure)
    chosen, reason = decide(timings)
    return PrecisionChoice("auto", chosen, reason + (" (cached)" if cached else ""), timings)


def resolve_precision(precision: str, device: torch.device) -> str:
    """``fp32`` or ``bf16`` (see :func:`choose_precision`, which also says why)."""
    return choose_precision(precision, device).precision


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """Autocast to bf16 (weights stay fp32) or a no-op for fp32."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
