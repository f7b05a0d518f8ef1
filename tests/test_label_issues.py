"""The cleanlab defense: flipped labels are found and their rows dropped; without cleanlab, one line."""

from __future__ import annotations

import importlib.util

import pytest

from conftest import require_package, synthetic_frame
from spurlab.data.dataset import TextDataset
from spurlab.defend import get_defense
from spurlab.defend.label_issues import label_issue_rows
from spurlab.errors import SpurlabError


def _flipped() -> tuple[TextDataset, set[int]]:
    frame = synthetic_frame(300, seed=1)
    flipped = set(range(0, 300, 20))  # 15 rows relabelled to the other class
    frame.loc[list(flipped), "label"] = frame.loc[list(flipped), "label"].map({"neg": "pos", "pos": "neg"})
    return TextDataset(frame), flipped


def test_cleanlab_drops_flipped_labels() -> None:
    require_package("cleanlab")
    data, flipped = _flipped()
    found = set(label_issue_rows(data).tolist())
    assert len(found & flipped) >= 12 and len(found - flipped) <= 10  # 13 of 15 and 6 of 285 when written
    result = get_defense("cleanlab").apply(data)
    assert set(result.dropped) == found and len(result.dataset) == 300 - len(found)
    assert result.summary["n_dropped"] == len(found) and all(r["dropped"] for r in result.manifest)


def test_cleanlab_errors_are_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    data, _ = _flipped()
    with pytest.raises(SpurlabError, match="smallest class has 135 rows, fewer than folds=200"):
        label_issue_rows(data, folds=200)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "cleanlab" else real(name, *a))
    with pytest.raises(SpurlabError, match=r"needs cleanlab \(pip install 'spurlab\[defenses\]'\)"):
        label_issue_rows(data)
