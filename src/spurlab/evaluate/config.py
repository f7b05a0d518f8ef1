"""The ``evaluation:`` section of an experiment config: which spurious test sets, and how they are made."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_serializer, field_validator

from spurlab.data.config import Section
from spurlab.inject.config import InjectionConfig, validate_injection


class EvalConfig(Section):
    """Clean and spurious test sets."""

    spurious_classes: Literal["auto"] | list[str] = Field(
        "auto", description="auto: every class that has a token in training (or all classes when "
        "evaluation.injection is set on a clean run)"
    )
    injection: InjectionConfig | None = Field(
        None, description="token settings for test-time injection; None = the training injection of that class"
    )
    flip: bool = Field(True, description="also evaluate spurious-flip:<class> (other classes' rows only)")
    base: bool = Field(True, description="also evaluate the model before finetuning (zero-shot head)")
    defense: dict[str, Any] | list[dict[str, Any]] | None = Field(
        None, description="registered test-time defenses filtering the finetuned model's inputs, e.g. {name: "
        "strip, frr: 0.01} or a list of them, each measured on the same model (spurlab.defend.test_time); "
        "validated with the whole config")
    batch_size: int = Field(128, gt=0)
    seed: int = Field(1234, ge=0, lt=2**63)

    @field_validator("injection", mode="before")
    @classmethod
    def _typed_injection(cls, value: Any) -> Any:
        return None if value is None else validate_injection(value, "evaluation.injection")

    @field_serializer("injection")
    def _injection_as_given(self, value: InjectionConfig | None) -> Any:
        return None if value is None else value.spec()
