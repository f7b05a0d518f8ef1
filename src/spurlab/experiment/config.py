"""One experiment = one typed config: YAML in, YAML out, dotted ``key=value`` overrides, one-line errors.

Defaults follow the paper where that is cheap (LoRA on q/k/v + dense, dropout 0.05, cosine schedule with 5%
warm-up, clip 1.0, 70/30 split with seed 42) and differ where the paper's setting is too slow for a laptop
(AdamW at a larger lr instead of Adafactor 1e-4 over 500 steps of batch 128; max_length 128, not 1024).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from spurlab.errors import SpurlabError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(_Section):
    """Which dataset to load and how to split/subsample it (see ``spurlab.data.loaders.load_splits``)."""

    spec: str = Field(description="file path (csv/tsv/jsonl/parquet), hf:<id>, preset:<name> or bundled:tweets")
    text_col: str | None = None
    label_col: str | None = None
    labels: list[str] | None = Field(None, description="keep only these classes (in this order)")
    encoding: str | None = None
    test_size: float = Field(0.3, gt=0, lt=1)
    seed: int = 42
    max_train: int | None = Field(None, gt=0)
    max_test: int | None = Field(None, gt=0)


class ModelConfig(_Section):
    """The pretrained model turned into a classifier."""

    name: str = Field(description="HF hub id, local folder, bundled:minilm or bundled:smollm2")
    head: Literal["auto", "sequence_classification", "pooled"] = Field(
        "auto", description="auto: AutoModelForSequenceClassification when the architecture has one, else pooled"
    )
    pooling: Literal["mean", "last", "mean_last"] = Field(
        "mean", description="pooled head only: masked mean, last non-pad token, or both concatenated (paper)"
    )
    tokenizer: str | None = Field(None, description="a different tokenizer (OpenELM borrows Llama-2's)")
    trust_remote_code: bool = Field(False, description="run Python code shipped with the model (only for "
                                    "sources you trust; printed when on)")
    allow_pickle: bool = Field(False, description="also load pickle checkpoints (pytorch_model.bin, .pt, "
                               "adapter_model.bin); off = safetensors only")
    dtype: Literal["float32", "bfloat16"] = Field("float32", description="weights dtype when loading")


class LoraSettings(_Section):
    r: int = Field(8, gt=0)
    alpha: float | None = Field(None, gt=0, description="None = same as r (the paper uses r = alpha)")
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] | None = Field(None, description="None = per-architecture default")
    use_dora: bool = False
    use_rslora: bool = False


class TrainConfig(_Section):
    """Finetuning: LoRA (default), full finetuning, or the classification head only."""

    mode: Literal["lora", "full", "head"] = "lora"
    lora: LoraSettings = Field(default_factory=LoraSettings)
    lr: float = Field(5e-4, gt=0)
    head_lr: float | None = Field(None, gt=0, description="learning rate of the head; None = lr")
    optimizer: Literal["adamw", "adafactor"] = "adamw"
    weight_decay: float = Field(0.01, ge=0)
    scheduler: Literal["cosine", "linear", "constant"] = "cosine"
    warmup_ratio: float = Field(0.05, ge=0, lt=1)
    epochs: float = Field(1.0, gt=0)
    max_steps: int | None = Field(None, gt=0, description="optimizer steps; overrides epochs")
    batch_size: int = Field(16, gt=0)
    grad_accum: int = Field(1, gt=0)
    max_length: int = Field(128, gt=1)
    clip_norm: float | None = Field(1.0, gt=0)
    seed: int = 0
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    device: str = Field("auto", description="auto, cpu, cuda, cuda:0, mps")
    group_by_length: bool = True
    threads: int | None = Field(None, gt=0, description="CPU threads for torch; None = torch's default (all "
                                "cores); 1 is faster when other processes compete for the cores")

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if value != "auto" and value.split(":")[0] not in {"cpu", "cuda", "mps", "xpu"}:
            raise ValueError(f"unknown device {value!r} (auto, cpu, cuda, cuda:N, mps)")
        return value


class EvalConfig(_Section):
    """Clean and spurious test sets."""

    spurious_classes: Literal["auto"] | list[str] = Field(
        "auto", description="auto: every class that has a token in training (or all classes when "
        "evaluation.injection is set on a clean run)"
    )
    injection: dict[str, Any] | None = Field(
        None, description="token settings for test-time injection; None = the training injection of that class"
    )
    flip: bool = Field(True, description="also evaluate spurious-flip:<class> (other classes' rows only)")
    base: bool = Field(True, description="also evaluate the model before finetuning (zero-shot head)")
    batch_size: int = Field(128, gt=0)
    seed: int = 1234


class ExperimentConfig(_Section):
    """The whole experiment: data → injection → model → training → evaluation."""

    name: str = Field("experiment", pattern=r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$",
                      description="letters, digits, . _ + - (it names the default run folder)")
    data: DataConfig
    injection: dict[str, Any] | list[dict[str, Any]] | None = Field(
        None, description="spurlab.inject.InjectionConfig fields (or a list of them); null = clean training"
    )
    defense: dict[str, Any] | None = Field(
        None, description="a registered defense applied to the (poisoned) training set before training, "
        "e.g. {name: sanitize, alpha: 0.01}; null = none"
    )
    model: ModelConfig
    train: TrainConfig = Field(default_factory=TrainConfig)
    evaluation: EvalConfig = Field(default_factory=EvalConfig)

    @model_validator(mode="after")
    def _check_injection(self) -> ExperimentConfig:
        for where, spec in _injection_specs(self):
            _validate_injection(spec, where)
        if self.defense is not None:
            _validate_defense(self.defense)
        return self

    @property
    def injections(self) -> list[dict[str, Any]]:
        """The training injections as a list (empty for a clean run)."""
        if self.injection is None:
            return []
        return [self.injection] if isinstance(self.injection, dict) else list(self.injection)


def _injection_specs(cfg: ExperimentConfig) -> list[tuple[str, dict[str, Any]]]:
    specs = [(f"injection.{i}" if isinstance(cfg.injection, list) else "injection", s)
             for i, s in enumerate(cfg.injections)]
    if cfg.evaluation.injection is not None:
        specs.append(("evaluation.injection", cfg.evaluation.injection))
    return specs


def _validate_injection(spec: dict[str, Any], where: str) -> None:
    """Check an injection dict against ``spurlab.inject.InjectionConfig`` (when the injector is installed)."""
    try:
        from spurlab.inject import InjectionConfig
    except ImportError:  # the injector is optional at config time; run time needs it
        return
    try:
        InjectionConfig.model_validate(spec)
    except ValidationError as exc:
        raise ValueError(_first_error(exc, prefix=where)) from None


def _validate_defense(spec: dict[str, Any]) -> None:
    """A defense section names a registered defense and only that defense's parameters."""
    from spurlab.defend import get_defense

    params = dict(spec)
    name = params.pop("name", None)
    if not isinstance(name, str):
        raise ValueError("defense.name: required (e.g. sanitize)")
    try:
        get_defense(name, **params)
    except SpurlabError as exc:
        raise ValueError(f"defense: {exc}") from None


def _first_error(exc: ValidationError, prefix: str = "") -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in (prefix, *err["loc"]) if p != "")
    if err["type"] == "extra_forbidden":
        return f"{loc}: unknown key"
    if err["type"] == "missing":
        return f"{loc}: required key is missing"
    msg = err["msg"].removeprefix("Value error, ")
    if msg.startswith(f"{loc}:") or (loc and msg.startswith(loc.split(".")[0] + ".")):
        return msg  # already names its key (nested injection errors)
    value = err.get("input")
    shown = "" if isinstance(value, (dict, list)) or value is None else f" (got {value!r})"
    return f"{loc}: {msg}{shown}" if loc else msg


def config_from_dict(data: dict[str, Any], source: str = "config") -> ExperimentConfig:
    """Validate a plain dict; any problem becomes one SpurlabError line naming the key."""
    if not isinstance(data, dict):
        raise SpurlabError(f"{source}: expected a mapping at the top level, got {type(data).__name__}")
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as exc:
        raise SpurlabError(f"{source}: {_first_error(exc)}") from None


def parse_overrides(overrides: list[str]) -> list[tuple[list[str], Any]]:
    """``train.lr=1e-3`` → ``(["train", "lr"], 0.001)``; values are parsed as YAML scalars/lists."""
    parsed = []
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise SpurlabError(f"override {item!r}: expected dotted.key=value")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            value = raw
        parsed.append(([p for p in key.strip().split(".")], value))
    return parsed


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """A copy of ``data`` with dotted overrides applied (intermediate mappings are created)."""
    data = copy.deepcopy(data)
    for path, value in parse_overrides(overrides):
        node = data
        for i, part in enumerate(path[:-1]):
            child = node.get(part) if isinstance(node, dict) else None
            if child is None:
                child = {}
                node[part] = child
            elif not isinstance(child, dict):
                raise SpurlabError(f"override {'.'.join(path)}: {'.'.join(path[: i + 1])} is not a mapping")
            node = child
        node[path[-1]] = value
    return data


def load_config(path: str | Path, overrides: list[str] | None = None) -> ExperimentConfig:
    """Read a YAML config, apply overrides, validate."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpurlabError(f"cannot read config {path}: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise SpurlabError(f"{path}:{where} invalid YAML: {getattr(exc, 'problem', None) or exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SpurlabError(f"{path}: expected a mapping at the top level")
    return config_from_dict(apply_overrides(data, overrides or []), source=str(path))


def config_to_dict(cfg: ExperimentConfig) -> dict[str, Any]:
    return cfg.model_dump(mode="json")


def dump_config(cfg: ExperimentConfig) -> str:
    """The resolved config as YAML (every default written out), loadable by ``load_config``."""
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False, allow_unicode=True)
