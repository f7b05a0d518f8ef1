"""The ``data:`` section of an experiment config."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Section(BaseModel):
    """Base of every config section: unknown keys are errors, numbers must be finite, assignments are
    validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class DataConfig(Section):
    """Which dataset to load and how to split/subsample it (see ``spurlab.data.loaders.load_splits``)."""

    spec: str = Field(description="file path (csv/tsv/jsonl/parquet), hf:<id>, preset:<name> or bundled:tweets")
    text_col: str | None = None
    label_col: str | None = None
    labels: list[str] | None = Field(None, description="keep only these classes (in this order)")
    encoding: str | None = None
    test_size: float = Field(0.3, gt=0, lt=1)
    seed: int = Field(42, ge=0, lt=2**63)
    max_train: int | None = Field(None, gt=0)
    max_test: int | None = Field(None, gt=0)
