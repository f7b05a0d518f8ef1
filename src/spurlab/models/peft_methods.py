"""PEFT methods as training methods: a registry from ``train.method`` to the typed settings it reads
(``train.<method>``) and the PEFT config it builds. Every method's adapter is saved with PEFT's own
``save_pretrained`` and reloads with plain ``peft.PeftModel.from_pretrained``.

Target modules default per architecture: ``TARGET_MODULES`` (falling back to PEFT's LoRA table) for the low-rank
methods (LoRA, LoHa, LoKr, VeRA, AdaLoRA), PEFT's own IA³ tables (attention keys/values and the feed-forward
output) for IA³.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from pydantic import Field

from spurlab.data.config import Section
from spurlab.errors import SpurlabError
from spurlab.models.config import LoraSettings
from spurlab.registry import Registry

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


#: ``train.method`` values that are not PEFT methods.
PLAIN_METHODS = ("full", "head")


class LohaSettings(Section):
    """LoHa: a Hadamard product of two low-rank products (FedPara / LyCORIS)."""

    r: int = Field(8, gt=0)
    alpha: float | None = Field(None, gt=0, description="None = r")
    rank_dropout: float = Field(0.0, ge=0, lt=1)
    module_dropout: float = Field(0.0, ge=0, lt=1)
    target_modules: list[str] | None = Field(None, description="None = per-architecture default")


class LokrSettings(Section):
    """LoKr: a Kronecker product of a small matrix and a low-rank one (LyCORIS)."""

    r: int = Field(8, gt=0)
    alpha: float | None = Field(None, gt=0, description="None = r")
    rank_dropout: float = Field(0.0, ge=0, lt=1)
    module_dropout: float = Field(0.0, ge=0, lt=1)
    decompose_both: bool = Field(False, description="also decompose the left Kronecker factor")
    decompose_factor: int = Field(-1, description="-1 = the factor closest to the square root")
    target_modules: list[str] | None = Field(None, description="None = per-architecture default")


class VeraSettings(Section):
    """VeRA: frozen random low-rank matrices shared across layers, trained scaling vectors."""

    r: int = Field(256, gt=0)
    dropout: float = Field(0.0, ge=0, lt=1)
    d_initial: float = Field(0.1, gt=0, description="initial value of the d scaling vector")
    projection_seed: int = Field(0, ge=0, description="seed of the shared random projections")
    target_modules: list[str] | None = Field(None, description="None = per-architecture default")


class Ia3Settings(Section):
    """IA³: learned rescaling vectors on keys, values and the feed-forward activations."""

    target_modules: list[str] | None = Field(None, description="None = PEFT's IA3 default for the architecture")
    feedforward_modules: list[str] | None = Field(None, description="the target modules whose input is scaled "
                                                  "(None = PEFT's default)")


class AdaLoraSettings(Section):
    """AdaLoRA: SVD-form LoRA whose rank budget is pruned from ``init_r`` to ``target_r`` during training."""

    init_r: int = Field(12, gt=0, description="rank per layer at the start")
    target_r: int = Field(8, gt=0, description="average rank per layer at the end")
    alpha: float | None = Field(None, gt=0, description="None = init_r")
    dropout: float = Field(0.05, ge=0, lt=1)
    tinit: float = Field(0.1, ge=0, lt=1, description="share of the steps before the budget starts to shrink")
    tfinal: float = Field(0.2, ge=0, lt=1, description="share of the steps trained at the final budget")
    delta_t: int = Field(1, gt=0, description="steps between budget allocations")
    beta1: float = Field(0.85, gt=0, lt=1)
    beta2: float = Field(0.85, gt=0, lt=1)
    orth_reg_weight: float = Field(0.5, ge=0, description="weight of the orthogonality penalty on P and Q")
    target_modules: list[str] | None = Field(None, description="None = per-architecture default")


@dataclass(frozen=True)
class Targets:
    """What every PEFT config needs from the model being adapted."""

    model_type: str
    head_modules: list[str]
    task_type: str | None
    total_steps: int

    @property
    def exclude(self) -> str | None:
        heads = "|".join(re.escape(h) for h in self.head_modules)
        return rf"^({heads})(\..*)?$" if heads else None

    def modules(self, given: list[str] | None) -> list[str]:
        return list(given) if given else default_target_modules(self.model_type)


#: method name -> a factory: the method's validated settings -> (Targets -> its PEFT config)
PEFT_METHODS: Registry[Callable[[Targets], Any]] = Registry("PEFT method")

LORA_INIT: dict[str, Any] = {"default": True, "gaussian": "gaussian", "pissa": "pissa", "olora": "olora"}


def _common(t: Targets) -> dict[str, Any]:
    return {"exclude_modules": t.exclude, "modules_to_save": list(t.head_modules), "task_type": t.task_type}


def _lora(s: LoraSettings, t: Targets) -> Any:
    from peft import LoraConfig

    if s.use_dora and s.init in ("pissa", "olora"):
        raise SpurlabError(f"train.lora: init {s.init!r} with use_dora is not supported (the saved adapter could "
                           "not be converted to one of the original weights)")
    return LoraConfig(r=s.r, lora_alpha=s.alpha if s.alpha is not None else s.r, lora_dropout=s.dropout,
                      target_modules=t.modules(s.target_modules), use_dora=s.use_dora, use_rslora=s.use_rslora,
                      init_lora_weights=LORA_INIT[s.init], bias="none", fan_in_fan_out=t.model_type == "gpt2",
                      **_common(t))


def _loha(s: LohaSettings, t: Targets) -> Any:
    from peft import LoHaConfig

    return LoHaConfig(r=s.r, alpha=s.alpha if s.alpha is not None else s.r, rank_dropout=s.rank_dropout,
                      module_dropout=s.module_dropout, target_modules=t.modules(s.target_modules), **_common(t))


def _lokr(s: LokrSettings, t: Targets) -> Any:
    from peft import LoKrConfig

    return LoKrConfig(r=s.r, alpha=s.alpha if s.alpha is not None else s.r, rank_dropout=s.rank_dropout,
                      module_dropout=s.module_dropout, decompose_both=s.decompose_both,
                      decompose_factor=s.decompose_factor, target_modules=t.modules(s.target_modules), **_common(t))


def _vera(s: VeraSettings, t: Targets) -> Any:
    from peft import VeraConfig

    common = _common(t)
    common.pop("exclude_modules")  # VeRA takes no exclude list; the head is never a target by name
    return VeraConfig(r=s.r, vera_dropout=s.dropout, d_initial=s.d_initial, projection_prng_key=s.projection_seed,
                      save_projection=True, target_modules=t.modules(s.target_modules), bias="none", **common)


def _ia3(s: Ia3Settings, t: Targets) -> Any:
    from peft import IA3Config
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING as feedforward_table
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING as target_table

    targets = s.target_modules or target_table.get(t.model_type)
    feedforward = s.feedforward_modules if s.feedforward_modules is not None else feedforward_table.get(t.model_type)
    if not targets or feedforward is None:
        raise SpurlabError(f"train.ia3: no default target modules for model type {t.model_type!r}; give "
                           "target_modules and feedforward_modules")
    return IA3Config(target_modules=list(targets), feedforward_modules=list(feedforward), **_common(t))


def _adalora(s: AdaLoraSettings, t: Targets) -> Any:
    from peft import AdaLoraConfig

    if s.target_r > s.init_r:
        raise SpurlabError(f"train.adalora: target_r {s.target_r} is above init_r {s.init_r}")
    tinit, tfinal = int(s.tinit * t.total_steps), int(s.tfinal * t.total_steps)
    return AdaLoraConfig(init_r=s.init_r, target_r=s.target_r, lora_alpha=s.alpha if s.alpha is not None else s.init_r,
                         lora_dropout=s.dropout, tinit=tinit, tfinal=tfinal, deltaT=s.delta_t, beta1=s.beta1,
                         beta2=s.beta2, orth_reg_weight=s.orth_reg_weight, total_step=t.total_steps,
                         target_modules=t.modules(s.target_modules), **_common(t))


def _bind(build: Callable[[Any, Targets], Any]) -> Callable[[Any], Callable[[Targets], Any]]:
    return lambda settings: partial(build, settings)


PEFT_METHODS.add("lora", _bind(_lora), LoraSettings, "LoRA (DoRA, rsLoRA, PiSSA/OLoRA init)")
PEFT_METHODS.add("loha", _bind(_loha), LohaSettings, "LoHa (Hadamard product of low-rank products)")
PEFT_METHODS.add("lokr", _bind(_lokr), LokrSettings, "LoKr (Kronecker product)")
PEFT_METHODS.add("vera", _bind(_vera), VeraSettings, "VeRA (shared random projections, trained scalings)")
PEFT_METHODS.add("ia3", _bind(_ia3), Ia3Settings, "IA3 (learned rescaling vectors)")
PEFT_METHODS.add("adalora", _bind(_adalora), AdaLoraSettings, "AdaLoRA (adaptive rank budget)")


def is_peft(method: str) -> bool:
    return method in PEFT_METHODS


def peft_config(method: str, settings: Any, targets: Targets) -> Any:
    """The PEFT config of ``method`` with its validated ``settings`` (the ``train.<method>`` section)."""
    return PEFT_METHODS.get(method).factory(settings)(targets)


__all__ = [
    "PEFT_METHODS",
    "PLAIN_METHODS",
    "TARGET_MODULES",
    "AdaLoraSettings",
    "Ia3Settings",
    "LohaSettings",
    "LokrSettings",
    "Targets",
    "VeraSettings",
    "default_target_modules",
    "is_peft",
    "peft_config",
]
