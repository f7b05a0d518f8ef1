"""Make a loaded classifier trainable (a PEFT method, full, head-only) and save/reload it.

Saved layouts (``adapter/`` in a run folder), each with ``spurlab_model.json`` describing the head:

- a PEFT method (``lora``, ``loha``, ``lokr``, ``vera``, ``ia3``, ``adalora``): PEFT's ``adapter_config.json`` +
  ``adapter_model.safetensors`` (the method's weights and the trained head);
  ``peft.PeftModel.from_pretrained(base_classifier, folder)`` reloads it.
- ``full``: the whole model via ``save_pretrained`` (safetensors); a pooled model saves its backbone there and
  its head as ``head.safetensors``.
- ``head``: ``head.safetensors`` with the head's weights only (the backbone is the unchanged base model).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from spurlab.atomic import atomic_path, normalize_modes, write_json
from spurlab.errors import SpurlabError
from spurlab.models.loading import LoadedModel, is_quantized
from spurlab.models.peft_methods import PEFT_METHODS, Targets, is_peft, peft_config
from spurlab.models.pooled import PooledClassifier


def attach_trainable(loaded: LoadedModel, method: str, settings: Any = None, total_steps: int = 1) -> nn.Module:
    """Return the model to train: a PeftModel for a PEFT method (:mod:`spurlab.models.peft_methods`, with its
    ``settings``; ``total_steps`` for AdaLoRA's budget schedule) or the model itself with ``requires_grad`` set
    (``full``, ``head``)."""
    model = loaded.model
    if method == "full":
        for p in model.parameters():
            p.requires_grad_(True)
        return model
    if method == "head":
        for name, p in model.named_parameters():
            p.requires_grad_(name.split(".")[0] in loaded.head_modules)
        return model
    from peft import get_peft_model, prepare_model_for_kbit_training

    if is_quantized(model):  # QLoRA: fp32 norms and head, input gradients for the frozen quantized layers
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    if settings is None:
        settings = PEFT_METHODS.get(method).params()
    task_type = {"sequence_classification": "SEQ_CLS", "causal_lm": "CAUSAL_LM"}.get(loaded.head_kind)
    targets = Targets(loaded.model_type, list(loaded.head_modules), task_type, max(1, total_steps))
    config = peft_config(method, settings, targets)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # transformers v5 deprecations inside PEFT
            warnings.simplefilter("ignore", UserWarning)  # PEFT's notes on init and targets, not spurlab's output
            peft_model = get_peft_model(model, config)
    except (ValueError, TypeError, NotImplementedError) as exc:
        raise SpurlabError(f"train.{method}: {str(exc).splitlines()[0]}") from None
    if method == "lora" and getattr(settings, "init", "default") in CHANGES_BASE:
        _keep_initial_adapter(peft_model)
    return peft_model


#: LoRA inits that rewrite the base weights (to the residual of the principal part). The saved adapter is
#: converted to a plain LoRA of rank 2r on the original weights (``_as_plain_lora``), so it reloads on the
#: unchanged base model.
CHANGES_BASE = ("pissa", "olora")


def _keep_initial_adapter(model: nn.Module) -> None:
    """Keep the initial LoRA factors (B0, A0) with the model until :func:`save_trained` converts the adapter."""
    model.spurlab_initial_factors = {k.replace(".default.", "."): v.detach().clone()
                                     for k, v in model.state_dict().items() if ".lora_A." in k or ".lora_B." in k}


def _as_plain_lora(folder: Path, initial: dict[str, torch.Tensor]) -> None:
    """Rewrite a saved PiSSA/OLoRA adapter as a LoRA of the original weights: the trained change
    ``s (B A - B0 A0)`` is ``s [B, -B0] [A; A0]``, a LoRA of rank 2r with the same scaling ``s`` (alpha doubled,
    or times sqrt(2) with rsLoRA)."""
    config_path, weights_path = folder / "adapter_config.json", folder / "adapter_model.safetensors"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    state = load_file(str(weights_path))
    for key in [k for k in state if ".lora_A." in k]:
        b_key = key.replace(".lora_A.", ".lora_B.")
        state[key] = torch.cat([state[key], initial[key].to(state[key].dtype)], dim=0)
        state[b_key] = torch.cat([state[b_key], -initial[b_key].to(state[b_key].dtype)], dim=1)
    factor = 2 ** 0.5 if config.get("use_rslora") else 2.0
    config.update(r=2 * config["r"], lora_alpha=factor * config["lora_alpha"], init_lora_weights=True)
    _save_tensors(state, weights_path)
    write_json(config_path, config)


def _head_state(model: nn.Module, head_modules: list[str]) -> dict[str, torch.Tensor]:
    return {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()
            if k.split(".")[0] in head_modules}


def save_trained(model: nn.Module, loaded: LoadedModel, mode: str, folder: Path, info: dict) -> None:
    """Save what training changed into ``folder`` (safetensors), plus ``spurlab_model.json``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if is_peft(mode):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            model.save_pretrained(folder, safe_serialization=True)
        initial = getattr(model, "spurlab_initial_factors", None)
        if initial is not None:
            _as_plain_lora(folder, initial)
    elif mode == "full":
        if isinstance(model, PooledClassifier):
            model.backbone.save_pretrained(folder, safe_serialization=True)
            _save_tensors(_head_state(model, ["head"]), folder / "head.safetensors")
        else:
            model.save_pretrained(folder, safe_serialization=True)
    else:
        _save_tensors(_head_state(model, loaded.head_modules), folder / "head.safetensors")
    loaded.tokenizer.save_pretrained(folder / "tokenizer")
    write_json(folder / "spurlab_model.json", {"mode": mode, "head_kind": loaded.head_kind,
                                               "head_modules": loaded.head_modules,
                                               "model_type": loaded.model_type, **info})
    normalize_modes(folder)


def _save_tensors(state: dict[str, torch.Tensor], path: Path) -> None:
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata={"format": "pt"})


ADAPTER_WEIGHTS = {**{m: "adapter_model.safetensors" for m in PEFT_METHODS.names()}, "head": "head.safetensors"}


def load_adapter(loaded: LoadedModel, folder: Path, allow_pickle: bool = False) -> nn.Module:
    """Apply a folder written by :func:`save_trained` to a freshly loaded base classifier.

    Only safetensors weights are read unless ``allow_pickle`` (PEFT would otherwise fall back to a pickled
    ``adapter_model.bin``); a missing or malformed folder is one clear line.
    """
    from spurlab.models.loading import refuse_pickle

    folder = Path(folder)
    if not folder.is_dir():
        raise SpurlabError(f"adapter {folder}: no such folder")
    info_path = folder / "spurlab_model.json"
    if not info_path.is_file():
        raise SpurlabError(f"{folder}: not a spurlab adapter folder (no spurlab_model.json)")
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
        mode = info["mode"]
    except (OSError, ValueError, KeyError, TypeError):
        raise SpurlabError(f"{info_path}: malformed (expected a JSON object with a 'mode')") from None
    refuse_pickle(folder, "adapter", allow_pickle)
    weights = ADAPTER_WEIGHTS.get(mode)
    if weights is not None and not allow_pickle and not (folder / weights).is_file():
        raise SpurlabError(f"adapter {folder}: {weights} is missing")
    if is_peft(mode):
        from peft import PeftModel

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return PeftModel.from_pretrained(loaded.model, folder)
    model = loaded.model
    safe = None if allow_pickle else True
    if mode == "full" and not isinstance(model, PooledClassifier):
        from transformers import AutoModelForSequenceClassification

        return AutoModelForSequenceClassification.from_pretrained(folder, use_safetensors=safe)
    if mode == "full":
        from transformers import AutoModel

        model.backbone = AutoModel.from_pretrained(folder, use_safetensors=safe)
    missing = model.load_state_dict(load_file(str(folder / "head.safetensors")), strict=False)
    if missing.unexpected_keys:
        raise SpurlabError(f"{folder}: head weights do not match the model ({missing.unexpected_keys[:3]})")
    return model
