"""The one in-memory shape every stage passes around: a table of rows plus which columns are text and label."""

from __future__ import annotations

import contextlib
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from spurlab.errors import SpurlabError

# what a label cell holds when it holds nothing, whatever the file format wrote for it
MISSING_LABELS = frozenset({"", "nan", "NaN", "NAN", "NA", "N/A", "n/a", "na", "null", "NULL", "Null", "None", "none",
                            "<NA>", "#N/A"})
INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))
INTEGER = re.compile(r"[+-]?\d+")


def is_missing_label(value: object) -> bool:
    """True for a label cell that holds no label (None, NaN, or a missing-value word such as ``NA``)."""
    if value is None or value is pd.NA:
        return True
    if isinstance(value, (float, np.floating)):
        return math.isnan(value)
    return isinstance(value, str) and value.strip() in MISSING_LABELS


def label_to_str(value: object) -> str:
    """The one string form of a label value, the same for every file format: strings as written, integers in
    decimal, other numbers as Python writes them (``1.0`` stays ``"1.0"``, as a CSV file would hold it)."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    return str(value)


def label_order(values: pd.Series) -> list[str]:
    """A stable id order for label values: numeric for integer labels (kept as written: ``"01"`` stays),
    lexicographic otherwise. Labels that are one number written two ways (``1``/``01``/``1.0``), or that differ
    only in whitespace or invisible characters, are refused with one line."""
    # pd.unique would merge 1 and 1.0 in an object column (equal hashes), hiding that they were written apart
    distinct = values if values.dtype == object else pd.unique(values)
    names = sorted({label_to_str(v) for v in distinct if not is_missing_label(v)})
    check_label_names(names)
    if names and all(INTEGER.fullmatch(n) for n in names):
        return sorted(names, key=int)
    return names


def check_label_names(names: list[str]) -> None:
    """Refuse label names that a reader would take for one label."""
    by_number: dict[float, list[str]] = defaultdict(list)
    by_visible: dict[str, list[str]] = defaultdict(list)
    for name in names:
        with contextlib.suppress(ValueError):
            number = float(name)
            if math.isfinite(number):
                by_number[number].append(name)
        by_visible[name.translate(INVISIBLE).strip()].append(name)
    for same in by_number.values():
        if len(same) > 1:
            raise SpurlabError(f"labels {', '.join(map(repr, same[:3]))} are one number written differently; "
                               "write each label one way")
    for same in by_visible.values():
        if len(same) > 1:
            raise SpurlabError(f"labels {', '.join(map(repr, same[:3]))} differ only in whitespace or invisible "
                               "characters; clean the label column")


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
            try:
                self.label_names = label_order(self.frame[self.label_col])
            except SpurlabError as exc:
                raise SpurlabError(f"{self.name}: {exc}") from None

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
