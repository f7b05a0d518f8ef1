"""Spurious test sets: the clean test split with a class's token planted at test time.

``spurious:<class>`` puts the token into 100% of the test rows of every class (the paper's Table 1);
``spurious-flip:<class>`` is the subset of those rows whose true class is another one, where any prediction of
``<class>`` is the token steering the model (the attack success rate).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from spurlab.data.dataset import TextDataset, label_to_str
from spurlab.errors import SpurlabError
from spurlab.evaluate.config import EvalConfig
from spurlab.inject import InjectionConfig, inject


@dataclass
class SpuriousSet:
    """One class's all-rows-injected test set and how it was made."""

    token_class: str
    dataset: TextDataset
    injection: dict[str, Any]
    n_modified: int


def injection_targets(config: InjectionConfig) -> list[str]:
    """The classes an injection plants its token in (none for an every-label injection)."""
    target = config.target_label
    if target is None:
        return []
    values = target if isinstance(target, list) else [target]
    return [label_to_str(v) for v in values]


def token_classes(injections: list[InjectionConfig], evaluation: EvalConfig, label_names: list[str]) -> list[str]:
    """Classes that get spurious test sets (``evaluation.spurious_classes``; ``auto`` → see EvalConfig)."""
    wanted = evaluation.spurious_classes
    if wanted == "auto":
        classes = [c for conf in injections if conf.proportion > 0 for c in injection_targets(conf)]
        if not classes and evaluation.injection is not None:
            classes = list(label_names)
        classes = list(dict.fromkeys(classes))
    else:
        classes = [label_to_str(c) for c in wanted]
    unknown = [c for c in classes if c not in label_names]
    if unknown:
        raise SpurlabError(f"evaluation.spurious_classes: unknown class {unknown[0]!r} "
                           f"(labels: {', '.join(label_names)})")
    return classes


def spurious_injection_spec(injections: list[InjectionConfig], evaluation: EvalConfig, token_class: str
                            ) -> dict[str, Any]:
    """The injection settings used at test time for ``token_class``: every row, seed ``evaluation.seed``."""
    template = evaluation.injection
    if template is None:
        matching = [c for c in injections if token_class in injection_targets(c)]
        if not matching:
            raise SpurlabError(f"evaluation.injection: class {token_class!r} has no training token; "
                               "give the test-time token settings")
        template = matching[0]
    spec = template.spec()
    spec.update(target_label=None, proportion=1.0, seed=evaluation.seed)
    return spec


def build_spurious_sets(injections: list[InjectionConfig], evaluation: EvalConfig, test: TextDataset
                        ) -> list[SpuriousSet]:
    sets = []
    for cls in token_classes(injections, evaluation, test.label_names):
        spec = spurious_injection_spec(injections, evaluation, cls)
        result = inject(test, spec, check_collisions=False)
        sets.append(SpuriousSet(cls, result.dataset, spec, len(result.manifest)))
    return sets
