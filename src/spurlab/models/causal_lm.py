"""Load a causal language model and its tokenizer (for paraphrasing, perplexity and the stealthiness report):
by hub name, folder or ``bundled:<model>``, safetensors only unless ``allow_pickle``, every failure one line."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from spurlab.errors import SpurlabError
from spurlab.runtime import resolve_device


def load_causal_lm(name: str, *, what: str, device: str = "auto", trust_remote_code: bool = False,
                   allow_pickle: bool = False, padding_side: str = "left") -> tuple[Any, Any, Any]:
    """(model in eval mode on its device, tokenizer with a pad token and ``padding_side``, device). ``what``
    names the model in error lines ("paraphrase model", "perplexity model")."""
    import torch

    from spurlab.hub import hub_offline, require_hub
    from spurlab.models.loading import check_local_folder, refuse_pickle
    from spurlab.models.registry import resolve_model_name
    from spurlab.models.tokenizer import load_tokenizer, not_found_error, quiet_transformers

    is_local = name.startswith(("bundled:", "/", "./", "../", "~")) or Path(name).expanduser().exists()
    if not is_local:  # a hub name: one line now instead of retries when the hub is unreachable
        require_hub(f"{what} {name!r}")
    folder = Path(resolve_model_name(name)).expanduser()
    refuse_pickle(folder, what, allow_pickle, "pass --allow-pickle (allow_pickle: true)")
    if folder.is_dir():
        check_local_folder(folder, what, trust_remote_code)
    tokenizer = load_tokenizer(name, trust_remote_code=trust_remote_code)
    tokenizer.padding_side = padding_side
    dev = resolve_device(device, f"{what} device")
    try:
        from transformers import AutoModelForCausalLM

        with quiet_transformers():
            model = AutoModelForCausalLM.from_pretrained(
                resolve_model_name(name), trust_remote_code=trust_remote_code, local_files_only=hub_offline(),
                dtype=torch.bfloat16 if dev.type == "cuda" else torch.float32,
                use_safetensors=None if allow_pickle else True)
    except SpurlabError:
        raise
    except Exception as exc:
        raise not_found_error(what, name, exc) from None
    model.to(dev).eval()
    return model, tokenizer, dev


def perplexities(texts: Sequence[str], model: Any, tokenizer: Any, device: Any, batch_size: int = 16,
                 max_length: int = 256, precision: str = "fp32") -> np.ndarray:
    """Per text: ``exp`` of the mean negative log-likelihood of its tokens after the first (NaN for a text of
    fewer than two tokens). ``precision`` is ``fp32`` or ``bf16`` (autocast; resolve ``auto`` first)."""
    import torch

    from spurlab.precision import autocast

    out = np.full(len(texts), np.nan)
    order = np.argsort([len(t) for t in texts], kind="stable")  # similar lengths share a batch: less padding
    for start in range(0, len(texts), batch_size):
        rows = order[start:start + batch_size]
        enc = tokenizer([texts[i] for i in rows], return_tensors="pt", padding=True, truncation=True,
                        max_length=max_length).to(device)
        with torch.inference_mode(), autocast(device, precision):
            logits = model(**enc).logits.float()
        targets, mask = enc["input_ids"][:, 1:], enc["attention_mask"][:, 1:].float()
        if tokenizer.padding_side == "left":  # a left-padded row's first real token has no context either
            first = enc["attention_mask"].float().argmax(dim=1)
            positions = torch.arange(mask.shape[1], device=mask.device)[None, :]
            mask = mask * (positions >= first[:, None]).float()
        nll = torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), targets, reduction="none")
        counts = mask.sum(dim=1)
        mean = (nll * mask).sum(dim=1) / counts.clamp(min=1)
        for row, value, n in zip(rows, mean.tolist(), counts.tolist(), strict=True):
            out[row] = math.exp(value) if n > 0 else np.nan
    return out


__all__ = ["load_causal_lm", "perplexities"]
