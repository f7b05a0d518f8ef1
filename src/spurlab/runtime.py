"""Where code runs and when: device resolution, torch CPU threads scoped to a block, UTC timestamps.

torch is imported inside the functions, so modules that only need timestamps stay light.
"""

from __future__ import annotations

import contextlib
import os
import platform
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from spurlab.errors import SpurlabError


def now() -> str:
    """The current UTC time, ISO 8601 to the second (what every spurlab file records)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def machine() -> dict[str, Any]:
    """Where a result was computed: OS, CPU architecture and model, cores, Python (for provenance)."""
    cpu = platform.processor()
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
        cpu = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), cpu)
    return {"platform": platform.platform(), "cpu": cpu or platform.machine(), "cores": os.cpu_count(),
            "python": platform.python_version()}


def cache_dir() -> Path:
    """spurlab's cache root (converted bundled models, the precision probe): ``$SPURLAB_CACHE`` or
    ``~/.cache/spurlab``; created by whoever writes there first."""
    root = os.environ.get("SPURLAB_CACHE")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "spurlab"


def resolve_device(name: str = "auto", what: str = "train.device") -> Any:
    """``auto`` → CUDA when present, else CPU; an explicit device that is not there is one line naming ``what``."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SpurlabError(f"{what}: {name!r} requested but CUDA is not available")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise SpurlabError(f"{what}: {name!r} requested but this machine has {torch.cuda.device_count()} CUDA "
                           "device(s)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise SpurlabError(f"{what}: {name!r} requested but MPS is not available")
    return device


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block on ``threads`` torch CPU threads (None: leave as is); the previous count is restored."""
    import torch

    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
