"""Spurious test sets: the clean test split with a class's token planted at test time.

``spurious:<class>`` puts the token into 100% of the test rows of every class (the paper's Table 1);
``spurious-flip:<class>`` is the subset of those rows whose true class is another one, where any prediction of
``<class>`` is the token steering the model (the attack success rate).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from spurlab.config import ExperimentConfig
from spurlab.data.dataset import TextDataset, label_to_str
from spurlab.errors import SpurlabError


@dataclass
class SpuriousSet:
    """One class's all-rows-injected test set and how it was made."""

    token_class: str
    dataset: TextDataset
    injection: dict[str, Any]
    n_modified: int


def _targets(spec: dict[str, Any]) -> list[str]:
    target = spec.get("target_label")
    if target is None:
        return []
    values = target if isinstance(target, list) else [target]
    return [label_to_str(v) for v in values]


def token_classes(cfg: ExperimentConfig, label_names: list[str]) -> list[str]:
    """Classes that get spurious test sets (``evaluation.spurious_classes``; ``auto`` → see EvalConfig)."""
    wanted = cfg.evaluation.spurious_classes
    if wanted == "auto":
        classes = [c for spec in cfg.injections if spec.get("proportion", 1.0) > 0 for c in _targets(spec)]
        if not classes and cfg.evaluation.injection is not None:
            classes = list(label_names)
        classes = list(dict.fromkeys(classes))
    else:
        classes = [label_to_str(c) for c in wanted]
    unknown = [c for c in classes if c not in label_names]
    if unknown:
        raise SpurlabError(f"evaluation.spurious_classes: unknown class {unknown[0]!r} "
                           f"(labels: {', '.join(label_names)})")
    return classes


def spurious_injection_spec(cfg: ExperimentConfig, token_class: str) -> dict[str, Any]:
    """The injection settings used at test time for ``token_class``: every row, seed ``evaluation.seed``."""
    template = cfg.evaluation.injection
    if template is None:
        matching = [s for s in cfg.injections if token_class in _targets(s)]
        if not matching:
            raise SpurlabError(f"evaluation.injection: class {token_class!r} has no training token; "
                               "give the test-time token settings")
        template = matching[0]
    spec = dict(template)
    spec.update(target_label=None, proportion=1.0, seed=cfg.evaluation.seed)
    return spec


def build_spurious_sets(cfg: ExperimentConfig, test: TextDataset) -> list[SpuriousSet]:
    from spurlab.inject import inject

    sets = []
    for cls in token_classes(cfg, test.label_names):
        spec = spurious_injection_spec(cfg, cls)
        result = inject(test, spec, check_collisions=False)
        sets.append(SpuriousSet(cls, result.dataset, spec, len(result.manifest)))
    return sets
