"""Load a causal language model and its tokenizer (for paraphrasing, perplexity and the stealthiness report):
by hub name, folder or ``bundled:<model>``, safetensors only unless ``allow_pickle``, every failure one line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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


__all__ = ["load_causal_lm"]
