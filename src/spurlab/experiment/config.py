"""One experiment = one typed config: YAML in, YAML out, dotted ``key=value`` overrides, one-line errors.

Each section's config lives with its stage (``data.config``, ``models.config``, ``train.config``,
``evaluate.config``, ``inject.config``, ``defend.base``); this module puts them together and reads and writes
the whole.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_serializer, field_validator, model_validator

from spurlab.config_io import apply_overrides, first_error, read_yaml
from spurlab.data.config import DataConfig, Section
from spurlab.defend.base import DefenseSpec
from spurlab.defend.test_time import TestTimeDefense, TestTimeDefenseSpec
from spurlab.errors import SpurlabError
from spurlab.evaluate.config import EvalConfig
from spurlab.inject.config import InjectionConfig, validate_injection
from spurlab.models.config import ModelConfig
from spurlab.train.config import TrainConfig
from spurlab.train.sft import SftConfig

__all__ = ["DataConfig", "EvalConfig", "ExperimentConfig", "ModelConfig", "TrainConfig", "config_from_dict",
           "config_to_dict", "dump_config", "load_experiment_config"]


class ExperimentConfig(Section):
    """The whole experiment: data → injection → model → training → evaluation."""

    name: str = Field("experiment", pattern=r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$",
                      description="letters, digits, . _ + - (it names the default run folder)")
    data: DataConfig
    injection: InjectionConfig | list[InjectionConfig] | None = Field(
        None, description="spurlab.inject.InjectionConfig fields (or a list of them); null = clean training"
    )
    defense: DefenseSpec | None = Field(
        None, description="a registered defense applied to the (poisoned) training set before training, "
        "e.g. {name: sanitize, alpha: 0.01}; null = none"
    )
    task: Literal["classify", "sft"] = Field(
        "classify", description="classify: a classification head; sft: a causal LM finetuned to answer each "
                                "row's prompt with its label's response (spurlab.train.sft)")
    sft: SftConfig = Field(default_factory=SftConfig, description="prompts and responses of task: sft")
    model: ModelConfig
    train: TrainConfig = Field(default_factory=TrainConfig)
    evaluation: EvalConfig = Field(default_factory=EvalConfig)

    @field_validator("injection", mode="before")
    @classmethod
    def _typed_injection(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [validate_injection(v, f"injection.{i}") for i, v in enumerate(value)]
        return None if value is None else validate_injection(value, "injection")

    @model_validator(mode="after")
    def _test_time_defenses(self) -> ExperimentConfig:
        given = self.evaluation.defense
        specs = given if isinstance(given, list) else [] if given is None else [given]
        for i, spec in enumerate(specs):
            where = f"evaluation.defense.{i}" if isinstance(given, list) else "evaluation.defense"
            try:
                TestTimeDefenseSpec.model_validate(spec)
            except ValidationError as exc:
                raise ValueError(f"{where}: {first_error(exc)}") from None
        if specs and self.task != "classify":
            raise ValueError("evaluation.defense: test-time defenses filter a classifier's inputs; task: "
                             f"{self.task} is not supported")
        return self

    @property
    def test_time_defenses(self) -> dict[str, TestTimeDefense]:
        """``evaluation.defense`` built, by a unique label (the name, then ``name-2``, ... for repeats)."""
        given = self.evaluation.defense
        specs = given if isinstance(given, list) else [] if given is None else [given]
        out: dict[str, TestTimeDefense] = {}
        for spec in specs:
            defense = TestTimeDefenseSpec.model_validate(spec).params
            label, n = defense.name, 1
            while label in out:
                n += 1
                label = f"{defense.name}-{n}"
            out[label] = defense
        return out

    @model_validator(mode="after")
    def _sft_has_no_head(self) -> ExperimentConfig:
        if self.task == "sft" and self.train.method == "head":
            raise ValueError("train.method: head does not apply to task: sft (a causal LM answers through its "
                             "language-modelling head; use lora or another PEFT method, or full)")
        if self.task == "sft" and self.model.head != "auto":
            raise ValueError("model.head does not apply to task: sft (remove it)")
        return self

    @model_validator(mode="after")
    def _quantized_weights_stay_frozen(self) -> ExperimentConfig:
        if self.model.quantization != "none" and self.train.method == "full":
            raise ValueError(f"model.quantization: {self.model.quantization} weights cannot be finetuned in full; "
                             "use a PEFT method (train.method: lora is QLoRA)")
        return self

    @field_serializer("injection")
    def _injection_as_given(self, value: InjectionConfig | list[InjectionConfig] | None) -> Any:
        if value is None:
            return None
        return [v.spec() for v in value] if isinstance(value, list) else value.spec()

    @property
    def injections(self) -> list[InjectionConfig]:
        """The training injections as a list (empty for a clean run)."""
        if self.injection is None:
            return []
        return [self.injection] if isinstance(self.injection, InjectionConfig) else list(self.injection)

    def injection_key(self, index: int) -> str:
        """The config key of training injection ``index`` (for messages)."""
        return f"injection.{index}" if isinstance(self.injection, list) else "injection"


def config_from_dict(data: dict[str, Any], source: str = "config") -> ExperimentConfig:
    """Validate a plain dict; any problem becomes one SpurlabError line naming the key."""
    if not isinstance(data, dict):
        raise SpurlabError(f"{source}: expected a mapping at the top level, got {type(data).__name__}")
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as exc:
        raise SpurlabError(f"{source}: {first_error(exc)}") from None


def load_experiment_config(path: str | Path, overrides: list[str] | None = None) -> ExperimentConfig:
    """Read a YAML config, apply overrides, validate."""
    path = Path(path)
    data = read_yaml(path, "config")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SpurlabError(f"{path}: expected a mapping at the top level")
    return config_from_dict(apply_overrides(data, overrides or []), source=str(path))


def config_to_dict(cfg: ExperimentConfig) -> dict[str, Any]:
    """The resolved config as plain data. Keys added after configs were first written are left out while at
    their default, so an unchanged experiment keeps its resolved config (its run folder and its sweep's hash
    are still recognised)."""
    data = cfg.model_dump(mode="json")
    if cfg.task == "classify":
        del data["task"], data["sft"]
    if cfg.model.quantization == "none":
        del data["model"]["quantization"]
    if cfg.evaluation.defense is None:
        del data["evaluation"]["defense"]
    return data


def dump_config(cfg: ExperimentConfig) -> str:
    """The resolved config as YAML (every default written out), loadable by ``load_experiment_config``."""
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False, allow_unicode=True)
