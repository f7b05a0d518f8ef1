"""Make a loaded classifier trainable (LoRA / DoRA / rsLoRA via PEFT, full, head-only) and save/reload it.

Saved layouts (``adapter/`` in a run folder), each with ``spurlab_model.json`` describing the head:

- ``lora``: PEFT's ``adapter_config.json`` + ``adapter_model.safetensors`` (LoRA weights and the trained
  head); ``peft.PeftModel.from_pretrained(base_classifier, folder)`` reloads it.
- ``full``: the whole model via ``save_pretrained`` (safetensors); a pooled model saves its backbone there and
  its head as ``head.safetensors``.
- ``head``: ``head.safetensors`` with the head's weights only (the backbone is the unchanged base model).
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from spurlab.atomic import atomic_path, normalize_modes, write_json
from spurlab.errors import SpurlabError
from spurlab.models.config import LoraSettings
from spurlab.models.loading import LoadedModel
from spurlab.models.pooled import PooledClassifier

# Per-architecture LoRA targets. The paper: q/k/v + "dense" for BERT encoders, qkv_proj + out_proj for OpenELM.
TARGET_MODULES: dict[str, list[str]] = {
    "bert": ["query", "key", "value", "dense"],
    "roberta": ["query", "key", "value", "dense"],
    "xlm-roberta": ["query", "key", "value", "dense"],
    "electra": ["query", "key", "value", "dense"],
    "distilbert": ["q_lin", "k_lin", "v_lin", "out_lin"],
    "deberta-v2": ["query_proj", "key_proj", "value_proj", "dense"],
    "llama": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "mistral": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "qwen2": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "qwen3": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "gemma": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "gemma2": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "phi": ["q_proj", "k_proj", "v_proj", "dense"],
    "phi3": ["qkv_proj", "o_proj"],
    "gpt2": ["c_attn", "c_proj"],
    "openelm": ["qkv_proj", "out_proj"],
}


def default_target_modules(model_type: str) -> list[str]:
    """LoRA target module names for an architecture family (falls back to PEFT's own table)."""
    if model_type in TARGET_MODULES:
        return list(TARGET_MODULES[model_type])
    try:
        from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as peft_table
    except ImportError:  # pragma: no cover - very old/new PEFT
        peft_table = {}
    if model_type in peft_table:
        return list(peft_table[model_type])
    raise SpurlabError(f"train.lora.target_modules: no default for model type {model_type!r}; list them")


def attach_trainable(loaded: LoadedModel, mode: str, settings: LoraSettings | None = None) -> nn.Module:
    """Return the model to train: a PeftModel (``lora``, with ``settings``) or the model itself with
    ``requires_grad`` set (``full``, ``head``)."""
    model = loaded.model
    if mode == "full":
        for p in model.parameters():
            p.requires_grad_(True)
        return model
    if mode == "head":
        for name, p in model.named_parameters():
            p.requires_grad_(name.split(".")[0] in loaded.head_modules)
        return model
    from peft import LoraConfig, get_peft_model

    cfg = settings or LoraSettings()
    targets = cfg.target_modules or default_target_modules(loaded.model_type)
    heads = "|".join(re.escape(h) for h in loaded.head_modules)
    lora = LoraConfig(
        r=cfg.r,
        lora_alpha=cfg.alpha if cfg.alpha is not None else cfg.r,
        lora_dropout=cfg.dropout,
        target_modules=targets,
        exclude_modules=rf"^({heads})(\..*)?$" if heads else None,
        modules_to_save=list(loaded.head_modules),
        use_dora=cfg.use_dora,
        use_rslora=cfg.use_rslora,
        bias="none",
        fan_in_fan_out=loaded.model_type == "gpt2",
        task_type="SEQ_CLS" if loaded.head_kind == "sequence_classification" else None,
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # transformers v5 deprecations inside PEFT
            return get_peft_model(model, lora)
    except ValueError as exc:
        raise SpurlabError(f"train.lora.target_modules: {str(exc).splitlines()[0]}") from None


def _head_state(model: nn.Module, head_modules: list[str]) -> dict[str, torch.Tensor]:
    return {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()
            if k.split(".")[0] in head_modules}


def save_trained(model: nn.Module, loaded: LoadedModel, mode: str, folder: Path, info: dict) -> None:
    """Save what training changed into ``folder`` (safetensors), plus ``spurlab_model.json``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if mode == "lora":
        model.save_pretrained(folder, safe_serialization=True)
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


ADAPTER_WEIGHTS = {"lora": "adapter_model.safetensors", "head": "head.safetensors"}


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
    if mode == "lora":
        from peft import PeftModel

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
