"""Load any Hugging Face model as a text classifier, plus its tokenizer (with a pad token)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from torch import nn

from spurlab.errors import SpurlabError
from spurlab.models.config import ModelConfig
from spurlab.models.pooled import PooledClassifier
from spurlab.models.registry import resolve_model_name
from spurlab.models.tokenizer import load_tokenizer, not_found_error, quiet_transformers

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


@dataclass
class LoadedModel:
    """A classifier and how it was built.

    ``head_kind`` is ``sequence_classification`` (an ``AutoModelForSequenceClassification``) or ``pooled``
    (a :class:`PooledClassifier`); ``head_modules`` are the top-level module names of the classification head
    (trained in every mode, saved with the adapter); ``model_type`` is the config's architecture family.
    """

    model: nn.Module
    tokenizer: object
    head_kind: str
    head_modules: list[str]
    model_type: str
    is_decoder: bool
    path: str



PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")


def pickle_files(folder: Path) -> list[str]:
    """Names of pickle checkpoints (``pytorch_model.bin``, ``*.pt``, ...) directly in ``folder``."""
    return sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix.lower() in PICKLE_SUFFIXES)


def refuse_pickle(folder: Path, what: str, allow_pickle: bool,
                  how: str = "set model.allow_pickle: true (--allow-pickle)") -> None:
    """One line when ``folder`` only has pickle weights and the user did not allow them (``how`` says how to
    allow them where the refusal happens)."""
    if allow_pickle or not folder.is_dir() or any(folder.glob("*.safetensors")):
        return
    found = pickle_files(folder)
    if found:
        raise SpurlabError(f"{what} {folder}: only pickle weights ({', '.join(found[:3])}), which can run code "
                           f"when loaded; convert them to safetensors, or {how} if you trust their source")


def check_model_source(cfg: ModelConfig) -> None:
    """Fail early, with one line, on a model that cannot or must not be loaded (before any output exists):
    pickle-only weights, corrupt safetensors, an unreadable config, code it would ignore or run without
    consent, or a config no model can be built from."""
    path = Path(resolve_model_name(cfg.name)).expanduser()
    refuse_pickle(path, "model", cfg.allow_pickle)
    if path.is_dir():
        check_local_folder(path, "model", cfg.trust_remote_code)
    hf_config = load_hf_config(cfg.name, cfg.trust_remote_code)
    if not cfg.trust_remote_code:
        _check_buildable(hf_config, cfg.name)


def check_local_folder(folder: Path, what: str, trust_remote_code: bool) -> None:
    """A local model folder's ``config.json`` is UTF-8 JSON, ships no code it would silently skip, and its
    safetensors files have readable headers."""
    config = folder / "config.json"
    if config.is_file():
        try:
            data = json.loads(config.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            raise SpurlabError(f"{config}: not UTF-8 text") from None
        except (OSError, ValueError) as exc:
            raise SpurlabError(f"{config}: not valid JSON ({str(exc).splitlines()[0]})") from None
        if isinstance(data, dict) and data.get("auto_map") and not trust_remote_code:
            raise SpurlabError(f"{what} {folder} ships its own code (auto_map in config.json), which spurlab runs only "
                               "with model.trust_remote_code: true; remove auto_map to use the stock class")
    for weights in sorted(folder.glob("*.safetensors")):
        try:
            with safe_open(str(weights), framework="pt") as handle:
                handle.keys()
        except Exception as exc:  # the safetensors parser raises its own error types
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise SpurlabError(f"{weights}: not a valid safetensors file ({first})") from None


def _check_buildable(hf_config: Any, name: str) -> None:
    """Build the model on the meta device (no memory, no weights): an impossible shape fails here, not after
    the run folder exists."""
    from transformers import AutoModel

    try:
        with torch.device("meta"), quiet_transformers():
            AutoModel.from_config(hf_config)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SpurlabError(f"model {name}: its config describes no model that can be built ({first})") from None


def load_hf_config(name: str, trust_remote_code: bool = False) -> object:
    """The ``PretrainedConfig`` of a model name (bundled names are resolved)."""
    from transformers import AutoConfig

    path = resolve_model_name(name)
    try:
        with quiet_transformers():
            return AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise not_found_error("model", name, exc) from None


def is_decoder_type(model_type: str) -> bool:
    """Decoder-only families classify from the last token and may lack a pad token."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

    return model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES


def has_sequence_classification(model_type: str) -> bool:
    from transformers.models.auto.modeling_auto import MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES

    return model_type in MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES


def check_quantization(cfg: ModelConfig, device: torch.device) -> None:
    """One line unless ``model.quantization`` can run here: it needs a CUDA device and bitsandbytes."""
    if cfg.quantization == "none":
        return
    if device.type != "cuda":
        raise SpurlabError(f"model.quantization: {cfg.quantization} (bitsandbytes, as in QLoRA) runs on CUDA only "
                           f"and this run's device is {device.type}; use quantization: none here")
    import importlib.util

    if importlib.util.find_spec("bitsandbytes") is None:
        raise SpurlabError(f"model.quantization: {cfg.quantization} needs bitsandbytes "
                           "(pip install 'spurlab[gpu]')")


def _quantization_kwargs(cfg: ModelConfig, device: torch.device | None) -> dict[str, Any]:
    """``from_pretrained`` arguments for quantized weights, placed on ``device`` (they cannot be moved later)."""
    if cfg.quantization == "none":
        return {}
    from transformers import BitsAndBytesConfig

    if cfg.quantization == "4bit":
        quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                   bnb_4bit_compute_dtype=torch.bfloat16)
    else:
        quant = BitsAndBytesConfig(load_in_8bit=True)
    index = device.index if device is not None and device.index is not None else 0
    return {"quantization_config": quant, "device_map": {"": index}}


def is_quantized(model: nn.Module) -> bool:
    """True for bitsandbytes-quantized weights (such a model stays on the device it was loaded to)."""
    return bool(getattr(model, "is_loaded_in_4bit", False) or getattr(model, "is_loaded_in_8bit", False))


def place(model: nn.Module, device: torch.device) -> nn.Module:
    """``model.to(device)``, except for quantized weights, which were placed when loaded."""
    return model if is_quantized(model) else model.to(device)


def _from_pretrained_kwargs(cfg: ModelConfig, device: torch.device | None) -> dict[str, Any]:
    """What every ``from_pretrained`` of ``cfg`` is given (pickle weights refused unless allowed)."""
    refuse_pickle(Path(resolve_model_name(cfg.name)).expanduser(), "model", cfg.allow_pickle)
    return {"dtype": _DTYPES[cfg.dtype], "trust_remote_code": cfg.trust_remote_code,
            "use_safetensors": None if cfg.allow_pickle else True, **_quantization_kwargs(cfg, device)}


def check_causal(cfg: ModelConfig) -> str:
    """The model type of a causal LM (generative finetuning); any other model is one line."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    model_type = str(getattr(load_hf_config(cfg.name, cfg.trust_remote_code), "model_type", "") or "")
    if model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES or not is_decoder_type(model_type):
        raise SpurlabError(f"task: sft needs a causal (decoder) language model; {cfg.name!r} is a "
                           f"{model_type or 'model of unknown type'} without a causal-LM head")
    return model_type


def load_causal_lm_model(cfg: ModelConfig, tokenizer: object, device: torch.device | None = None) -> LoadedModel:
    """``cfg``'s model with its language-modelling head, for generative finetuning (no classification head)."""
    from transformers import AutoModelForCausalLM

    model_type = check_causal(cfg)
    try:
        with quiet_transformers():
            model = AutoModelForCausalLM.from_pretrained(resolve_model_name(cfg.name),
                                                         **_from_pretrained_kwargs(cfg, device))
    except (OSError, ValueError) as exc:
        raise not_found_error("model", cfg.name, exc) from None
    _sync_pad_token(model, tokenizer)
    return LoadedModel(model, tokenizer, "causal_lm", [], model_type, True, resolve_model_name(cfg.name))


def load_classifier(cfg: ModelConfig, label_names: list[str], tokenizer: object | None = None,
                    device: torch.device | None = None) -> LoadedModel:
    """Build the classifier for ``label_names``; the head is randomly initialised (seed torch beforehand).
    ``device`` is where quantized weights are loaded (``model.quantization``; check it with
    :func:`check_quantization` first); other models are moved by the caller."""
    from transformers import AutoModel, AutoModelForSequenceClassification

    if cfg.trust_remote_code:
        print(f"warning: trust_remote_code is on: code shipped with {cfg.name!r} will run on this machine",
              flush=True)
    tokenizer = tokenizer if tokenizer is not None else load_tokenizer(cfg)
    hf_config = load_hf_config(cfg.name, cfg.trust_remote_code)
    model_type = str(getattr(hf_config, "model_type", "") or "")
    decoder = is_decoder_type(model_type)
    head = cfg.head
    if head == "auto":
        head = "sequence_classification" if has_sequence_classification(model_type) else "pooled"
    elif head == "sequence_classification" and not has_sequence_classification(model_type):
        raise SpurlabError(f"model.head: {cfg.name!r} ({model_type}) has no sequence-classification class; "
                           "use head: pooled")
    path = resolve_model_name(cfg.name)
    n = len(label_names)
    common = _from_pretrained_kwargs(cfg, device)
    try:
        with quiet_transformers():
            if head == "sequence_classification":
                model = AutoModelForSequenceClassification.from_pretrained(
                    path, num_labels=n, id2label=dict(enumerate(label_names)),
                    label2id={name: i for i, name in enumerate(label_names)}, **common)
                head_modules = _head_modules(model)
            else:
                backbone = AutoModel.from_pretrained(path, **common)
                model = PooledClassifier(backbone, n, cfg.pooling).to(_DTYPES[cfg.dtype])
                head_modules = ["head"]
    except (OSError, ValueError) as exc:
        raise not_found_error("model", cfg.name, exc) from None
    _sync_pad_token(model, tokenizer)
    return LoadedModel(model, tokenizer, head, head_modules, model_type, decoder, path)


def _head_modules(model: nn.Module) -> list[str]:
    """Top-level children with parameters that are not the pretrained backbone (``classifier``, ``score``)."""
    prefix = getattr(model, "base_model_prefix", "")
    return [name for name, child in model.named_children()
            if name != prefix and any(True for _ in child.parameters())]


def _sync_pad_token(model: nn.Module, tokenizer: object) -> None:
    """Make the model's config agree with the tokenizer's pad token (resize embeddings for a new token)."""
    backbone = model.backbone if isinstance(model, PooledClassifier) else model
    embeddings = backbone.get_input_embeddings() if hasattr(backbone, "get_input_embeddings") else None
    if embeddings is not None and len(tokenizer) > embeddings.num_embeddings:
        backbone.resize_token_embeddings(len(tokenizer))
    for config in {id(c): c for c in (model.config, backbone.config)}.values():
        config.pad_token_id = tokenizer.pad_token_id
