"""What the machine can do: measured matrix-multiply throughput per precision, and a short description."""

from __future__ import annotations

import os
import platform
import time
from datetime import UTC, datetime

import torch


def matmul_gflops(dtype: torch.dtype, size: int = 2048, seconds: float = 3.0) -> float:
    """Sustained GFLOP/s of square ``torch.mm`` in ``dtype`` on the CPU (2·n³ FLOPs each)."""
    a = torch.randn(size, size).to(dtype)
    b = torch.randn(size, size).to(dtype)
    for _ in range(2):
        torch.mm(a, b)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        torch.mm(a, b)
        count += 1
    elapsed = time.perf_counter() - start
    return 2 * size**3 * count / elapsed / 1e9


def matmul_peak(dtype: torch.dtype, sizes: tuple[int, ...] = (1024, 2048), seconds: float = 2.0,
                repeats: int = 2) -> dict[str, float]:
    """Best sustained GFLOP/s over a few square sizes and repeats (best-of filters out neighbours' load)."""
    per_size = {str(n): max(matmul_gflops(dtype, n, seconds) for _ in range(repeats)) for n in sizes}
    return {"gflops": max(per_size.values()), "per_size": per_size}


def _cpu_info() -> tuple[str, str]:
    cpu, flags = platform.processor() or platform.machine(), ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name") and cpu in ("", platform.machine(), platform.processor()):
                    cpu = line.split(":", 1)[1].strip()
                if line.startswith("flags"):
                    flags = line
                    break
    except OSError:
        pass
    return cpu, flags


def load_average() -> float | None:
    """1-minute load average (other processes competing for the cores make every number here noisier)."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def describe_machine() -> dict:
    """CPU model, cores, torch threads, bf16/AMX support, versions and the date, for the results header."""
    cpu, flags = _cpu_info()
    import transformers

    try:
        import peft

        peft_version = peft.__version__
    except ImportError:  # pragma: no cover
        peft_version = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "omp_env": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY") if k in os.environ},
        "amx": "amx_bf16" in flags,
        "avx512_bf16": "avx512_bf16" in flags,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft_version,
        "python": platform.python_version(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_average_1m": load_average(),
    }
