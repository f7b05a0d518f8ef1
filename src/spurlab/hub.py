"""Reaching the Hugging Face hub: fail fast with one line when it is not reachable.

Without this, an offline machine spends ~30 s in retries and ends in a multi-line traceback.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

from spurlab.errors import SpurlabError


def hub_offline() -> bool:
    """True when the user asked for offline mode (``HF_HUB_OFFLINE`` or ``TRANSFORMERS_OFFLINE``)."""
    return any(os.environ.get(var, "").lower() in {"1", "true", "yes", "on"}
               for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"))


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether a TCP connection to the hub's endpoint opens within ``timeout`` seconds."""
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    parsed = urlparse(endpoint)
    host = parsed.hostname or "huggingface.co"
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_hub(what: str) -> None:
    """Raise one clear line if ``what`` (e.g. ``dataset hf:stanfordnlp/imdb``) would need an unreachable hub.

    In offline mode nothing is checked: the libraries then use their local caches and fail fast by themselves.
    """
    if hub_offline():
        return
    if not hub_reachable():
        raise SpurlabError(
            f"cannot load {what}: the Hugging Face hub is not reachable from this machine "
            "(set HF_HUB_OFFLINE=1 to use a cached copy, or give a local path)"
        )
