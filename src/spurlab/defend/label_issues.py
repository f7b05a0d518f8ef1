"""Label-issue finding with cleanlab, as a defense: drop the rows whose label disagrees with what the rest of
the data predicts for them.

Out-of-fold class probabilities come from a TF-IDF + logistic-regression model (``folds``-fold stratified
cross-validation; the regression fitted by SGD, ``SGDClassifier(loss="log_loss")``, as accurate as lbfgs on the
tweets in a fiftieth of the time), and cleanlab's ``find_label_issues`` (confident learning, its default
``prune_by_noise_rate``) flags the rows to drop. It is the off-the-shelf checker the paper's warning is about:
a clean-label SSTI row carries its true label, so there is little for it to find; dirty-label rows are what it
is built for. Needs ``pip install 'spurlab[defenses]'`` (cleanlab).
"""

from __future__ import annotations

import importlib.util

import numpy as np
from pydantic import Field

from spurlab.data.dataset import TextDataset
from spurlab.data.transform import TransformResult, drop_rows
from spurlab.defend.base import DefenseParams, register_defense
from spurlab.errors import SpurlabError


def label_issue_rows(dataset: TextDataset, folds: int = 5, seed: int = 0) -> np.ndarray:
    """Indices of the rows cleanlab flags as label issues (out-of-fold TF-IDF + logistic regression)."""
    if importlib.util.find_spec("cleanlab") is None:
        raise SpurlabError("the cleanlab defense needs cleanlab (pip install 'spurlab[defenses]')")
    from cleanlab.filter import find_label_issues
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import SGDClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    y = dataset.label_ids
    smallest = int(np.bincount(y, minlength=len(dataset.label_names)).min())
    if smallest < folds:
        raise SpurlabError(f"{dataset.name}: the smallest class has {smallest} rows, fewer than folds={folds}")
    x = TfidfVectorizer(min_df=2, max_features=50_000, sublinear_tf=True).fit_transform(dataset.texts)
    probs = cross_val_predict(SGDClassifier(loss="log_loss", alpha=1e-5, random_state=seed), x, y,
                              cv=StratifiedKFold(folds, shuffle=True, random_state=seed), method="predict_proba")
    return np.flatnonzero(find_label_issues(y, probs))


@register_defense("cleanlab")
class LabelIssues(DefenseParams):
    """cleanlab: drop the rows confident learning flags as mislabelled."""

    folds: int = Field(5, ge=2, le=20, description="cross-validation folds for the out-of-fold probabilities")
    seed: int = Field(0, ge=0)

    def apply(self, dataset: TextDataset) -> TransformResult:
        rows = label_issue_rows(dataset, self.folds, self.seed)
        return drop_rows(dataset, rows.tolist(), summary={"dataset": dataset.name, "defense": "cleanlab",
                                                          "folds": self.folds, "seed": self.seed})


__all__ = ["LabelIssues", "label_issue_rows"]
