"""The one tokenizer loader: by hub id, local folder or ``bundled:<model>``, offline-first, with a pad token."""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from spurlab.errors import SpurlabError
from spurlab.hub import hub_offline
from spurlab.models.registry import resolve_model_name


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' load reports and progress bars (the head is newly initialised on purpose)."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        hf_logging.set_verbosity(level)


def not_found_error(what: str, name: str, exc: Exception) -> SpurlabError:
    """One line for a model or tokenizer that cannot be loaded: a bad folder, or absent from hub and cache."""
    if Path(name).expanduser().exists():
        return SpurlabError(f"{what} {name!r}: cannot load the local folder: {str(exc).splitlines()[0]}")
    if name.startswith(("/", "./", "../", "~")):
        return SpurlabError(f"{what} {name!r}: no such folder")
    hint = "the Hugging Face hub is unreachable (offline) and it is not in the local cache"
    if not hub_offline():
        hint = "not a local folder, and not found on the Hugging Face hub or in the local cache"
    return SpurlabError(f"{what} {name!r}: {hint}")


def ensure_pad_token(tokenizer: Any) -> bool:
    """Give a tokenizer without a pad token one: its EOS token, else a new ``[PAD]``. True if one was added."""
    if tokenizer.pad_token is not None:
        return False
    if tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
        return False
    tokenizer.add_special_tokens({"pad_token": "[PAD]"})
    return True


def load_tokenizer(source: Any, *, trust_remote_code: bool = False) -> Any:
    """A tokenizer with a pad token, from a ``ModelConfig`` (its ``tokenizer`` or else its ``name``), a hub id,
    a folder or ``bundled:<model>``; any other object is taken to be a tokenizer and returned as is.

    With ``HF_HUB_OFFLINE=1`` only local files are read; every failure is one :class:`SpurlabError` line."""
    from spurlab.models.config import ModelConfig

    if isinstance(source, ModelConfig):
        name, trust_remote_code = source.tokenizer or source.name, source.trust_remote_code
    elif isinstance(source, (str, os.PathLike)):
        name = str(source)
    else:
        return source
    path = resolve_model_name(name)
    try:
        from transformers import AutoTokenizer

        with quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code,
                                                      local_files_only=hub_offline())
    except SpurlabError:
        raise
    except Exception as exc:
        raise not_found_error("tokenizer", name, exc) from None
    ensure_pad_token(tokenizer)
    return tokenizer
