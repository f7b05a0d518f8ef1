"""The model under audit, loaded from whatever was handed over: a spurlab run folder, a spurlab or plain PEFT
adapter folder, or a full Hugging Face sequence-classification model folder.

Every refusal is one :class:`SpurlabError` line raised before anything is written: a folder that is none of
these, an adapter whose base cannot be found (offline: not in the local cache), a model that is not a sequence
classifier, pickle-only weights without ``allow_pickle``, remote code without ``trust_remote_code``."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from spurlab.errors import SpurlabError
from spurlab.models.adapters import load_adapter
from spurlab.models.config import ModelConfig
from spurlab.models.loading import check_local_folder, load_classifier, refuse_pickle
from spurlab.models.tokenizer import ensure_pad_token, load_tokenizer, not_found_error, quiet_transformers
from spurlab.train.loop import seed_everything

KINDS = ("run", "spurlab_adapter", "peft_adapter", "model")


@dataclass
class AuditedModel:
    """A classifier ready for inference, its tokenizer and class names, and what it was loaded from."""

    model: nn.Module
    tokenizer: Any
    label_names: list[str]
    kind: str  # one of KINDS
    path: Path
    base: str | None  # the base model an adapter was applied to

    def describe(self) -> dict[str, Any]:
        return {"path": str(self.path), "kind": self.kind, "base": self.base, "labels": self.label_names}


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SpurlabError(f"{path}: not readable JSON ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise SpurlabError(f"{path}: expected a JSON object")
    return data


def detect_kind(path: Path) -> str:
    """Which of :data:`KINDS` the folder ``path`` is; one line when it is none of them."""
    if not path.exists():
        raise SpurlabError(f"{path}: no such folder")
    if not path.is_dir():
        raise SpurlabError(f"{path}: not a folder (expected a run folder, an adapter folder or a model folder)")
    if (path / "config.yaml").is_file() and (path / "adapter" / "spurlab_model.json").is_file():
        return "run"
    if (path / "spurlab_model.json").is_file():
        return "spurlab_adapter"
    if (path / "adapter_config.json").is_file():
        return "peft_adapter"
    if (path / "config.json").is_file():
        return "model"
    raise SpurlabError(f"{path}: neither a spurlab run folder, an adapter folder (adapter_config.json) nor a model "
                       "folder (config.json)")


def load_audited(path: str | Path, *, base: str | None = None, labels: list[str] | None = None,
                 allow_pickle: bool = False, trust_remote_code: bool = False) -> AuditedModel:
    """Load the classifier at ``path`` (see the module docstring). ``base`` overrides the base model an adapter
    names; ``labels`` names the classes where the folder does not."""
    path = Path(path).expanduser()
    kind = detect_kind(path)
    if kind in ("run", "spurlab_adapter"):
        folder = path / "adapter" if kind == "run" else path
        return _spurlab_adapter(folder, path, kind, base, labels, allow_pickle, trust_remote_code)
    if kind == "peft_adapter":
        return _peft_adapter(path, base, labels, allow_pickle, trust_remote_code)
    return _full_model(path, labels, allow_pickle, trust_remote_code)


def _check_labels(labels: list[str] | None, n: int, where: str) -> list[str] | None:
    if labels is not None and len(labels) != n:
        raise SpurlabError(f"--labels names {len(labels)} classes, but {where} has {n}")
    return labels


def _spurlab_adapter(folder: Path, path: Path, kind: str, base: str | None, labels: list[str] | None,
                     allow_pickle: bool, trust_remote_code: bool) -> AuditedModel:
    info = _read_json(folder / "spurlab_model.json")
    names = info.get("label_names")
    if not isinstance(names, list) or len(names) < 2:
        raise SpurlabError(f"{folder / 'spurlab_model.json'}: no label_names list of two or more classes")
    names = _check_labels(labels, len(names), str(folder)) or [str(n) for n in names]
    base_name = base or info.get("base_model")
    if not isinstance(base_name, str) or not base_name:
        raise SpurlabError(f"{folder}: the adapter does not name its base model; give it with --base")
    head = info.get("head_kind", "auto")
    cfg = ModelConfig(name=base_name, head=head if head in ("sequence_classification", "pooled") else "auto",
                      pooling=info.get("pooling", "mean") if info.get("pooling") in ("mean", "last", "mean_last")
                      else "mean", allow_pickle=allow_pickle, trust_remote_code=trust_remote_code)
    if (folder / "tokenizer").is_dir():
        cfg.tokenizer = str(folder / "tokenizer")
    tokenizer = load_tokenizer(cfg)
    seed_everything(0)  # the head is replaced by the adapter's; seeding keeps any leftover init reproducible
    loaded = load_classifier(cfg, names, tokenizer=tokenizer)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        model = load_adapter(loaded, folder, allow_pickle=allow_pickle)
    return AuditedModel(model.eval(), tokenizer, names, kind, path, base_name)


def _adapter_classes(folder: Path) -> int | None:
    """The number of classes of a PEFT sequence-classification adapter, from its saved head's weight shape."""
    weights = folder / "adapter_model.safetensors"
    if not weights.is_file():
        return None
    from safetensors import safe_open

    try:
        with safe_open(str(weights), framework="pt") as handle:
            for key in handle.keys():  # noqa: SIM118 - safe_open handles are not iterable
                parts = key.split(".")
                if parts[-1] == "weight" and ("classifier" in parts or "score" in parts):
                    return int(handle.get_slice(key).get_shape()[0])
    except Exception as exc:  # a corrupt file: safetensors raises its own error types
        raise SpurlabError(f"{weights}: not a readable safetensors file ({str(exc).splitlines()[0]})") from None
    return None


def _peft_adapter(folder: Path, base: str | None, labels: list[str] | None, allow_pickle: bool,
                  trust_remote_code: bool) -> AuditedModel:
    from peft import PeftModel

    conf = _read_json(folder / "adapter_config.json")
    task = conf.get("task_type")
    if task not in (None, "SEQ_CLS"):
        raise SpurlabError(f"{folder}: a {task} adapter, not a sequence classifier (audit needs class predictions)")
    base_name = base or conf.get("base_model_name_or_path")
    if not isinstance(base_name, str) or not base_name:
        raise SpurlabError(f"{folder}: the adapter does not name its base model; give it with --base")
    refuse_pickle(folder, "adapter", allow_pickle, how="pass --allow-pickle")
    n = _adapter_classes(folder)
    if n is None:
        if labels is None:
            raise SpurlabError(f"{folder}: the adapter holds no classification head, so its classes are unknown; "
                               "name them with --labels")
        n = len(labels)
    names = _check_labels(labels, n, str(folder)) or [str(i) for i in range(n)]
    cfg = ModelConfig(name=base_name, head="sequence_classification", allow_pickle=allow_pickle,
                      trust_remote_code=trust_remote_code)
    tokenizer = load_tokenizer(cfg)
    seed_everything(0)
    loaded = load_classifier(cfg, names, tokenizer=tokenizer)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = PeftModel.from_pretrained(loaded.model, folder)
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise SpurlabError(f"{folder}: the adapter does not fit {base_name!r} "
                           f"({str(exc).splitlines()[0][:200]})") from None
    return AuditedModel(model.eval(), tokenizer, names, "peft_adapter", folder, base_name)


def _full_model(folder: Path, labels: list[str] | None, allow_pickle: bool,
                trust_remote_code: bool) -> AuditedModel:
    from transformers import AutoModelForSequenceClassification

    conf = _read_json(folder / "config.json")
    architectures = conf.get("architectures") or []
    if not any(str(a).endswith("ForSequenceClassification") for a in architectures):
        raise SpurlabError(f"{folder}: not a sequence-classification model (architectures: "
                           f"{', '.join(map(str, architectures)) or 'none'}); audit needs class predictions")
    refuse_pickle(folder, "model", allow_pickle, how="pass --allow-pickle")
    check_local_folder(folder, "model", trust_remote_code)
    cfg = ModelConfig(name=str(folder), allow_pickle=allow_pickle, trust_remote_code=trust_remote_code)
    tokenizer = load_tokenizer(cfg)
    ensure_pad_token(tokenizer)
    try:
        with quiet_transformers():
            model = AutoModelForSequenceClassification.from_pretrained(
                folder, use_safetensors=None if allow_pickle else True, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise not_found_error("model", str(folder), exc) from None
    if getattr(model.config, "pad_token_id", None) is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    id2label = getattr(model.config, "id2label", None) or {}
    n = int(model.config.num_labels)
    names = _check_labels(labels, n, str(folder)) or [str(id2label.get(i, i)) for i in range(n)]
    return AuditedModel(model.eval(), tokenizer, names, "model", folder, None)


__all__ = ["KINDS", "AuditedModel", "detect_kind", "load_audited"]
