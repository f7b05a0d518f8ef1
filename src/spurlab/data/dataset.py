"""The one in-memory shape every stage passes around: a table of rows plus which columns are text and label."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from spurlab.errors import SpurlabError


def label_order(values: pd.Series) -> list[str]:
    """A stable id order for label values: numeric order for integer labels, lexicographic for strings."""
    uniques = pd.unique(values.dropna())
    if len(uniques) and all(_is_int_like(v) for v in uniques):
        return [str(v) for v in sorted(int(v) for v in uniques)]
    return sorted(str(v) for v in uniques)


def _is_int_like(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, np.integer)):
        return True
    if isinstance(value, (float, np.floating)):
        return float(value).is_integer()
    return False


def label_to_str(value: object) -> str:
    """The canonical string form of one label value (``1.0`` and ``1`` both become ``"1"``)."""
    if _is_int_like(value):
        return str(int(value))  # type: ignore[arg-type]
    return str(value)


@dataclass
class TextDataset:
    """Rows of a labelled text dataset.

    ``frame`` keeps every original column in the original row order (index 0..n-1). Labels stay as they
    were read; ``label_names`` fixes their id order (id = position), which is saved with every output.
    ``source_format`` is the file format the rows came from (csv, tsv, jsonl, parquet), used when writing
    a modified copy back in the same format.
    """

    frame: pd.DataFrame
    text_col: str = "text"
    label_col: str = "label"
    label_names: list[str] = field(default_factory=list)
    name: str = "dataset"
    source_format: str = "parquet"

    def __post_init__(self) -> None:
        self.frame = self.frame.reset_index(drop=True)
        for col in (self.text_col, self.label_col):
            if col not in self.frame.columns:
                cols = ", ".join(map(str, self.frame.columns))
                raise SpurlabError(f"{self.name}: no column {col!r} (columns: {cols})")
        if not self.label_names:
            self.label_names = label_order(self.frame[self.label_col])

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def texts(self) -> list[str]:
        return self.frame[self.text_col].astype(str).tolist()

    @property
    def label_strings(self) -> list[str]:
        return [label_to_str(v) for v in self.frame[self.label_col].tolist()]

    @property
    def label_ids(self) -> np.ndarray:
        """Label ids (positions in ``label_names``) as int64; raises on a label outside the map."""
        index = {name: i for i, name in enumerate(self.label_names)}
        ids = []
        for value in self.label_strings:
            if value not in index:
                raise SpurlabError(f"{self.name}: label {value!r} is not in the label map {self.label_names}")
            ids.append(index[value])
        return np.asarray(ids, dtype=np.int64)

    def label_id(self, label: object) -> int:
        """The id of a label given by name or by id; one-line error for an unknown one."""
        name = label_to_str(label)
        if name in self.label_names:
            return self.label_names.index(name)
        raise SpurlabError(f"{self.name}: unknown label {label!r} (labels: {', '.join(self.label_names)})")

    def with_frame(self, frame: pd.DataFrame) -> TextDataset:
        """A copy with new rows and the same columns roles, label map and name."""
        return TextDataset(frame, self.text_col, self.label_col, list(self.label_names), self.name,
                           self.source_format)


@dataclass
class DatasetSplits:
    """A train and a test split that share one label map."""

    train: TextDataset
    test: TextDataset
    name: str = "dataset"

    @property
    def label_names(self) -> list[str]:
        return self.train.label_names
