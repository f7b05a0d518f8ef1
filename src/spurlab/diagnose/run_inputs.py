"""Everything ``spurlab diagnose`` needs from a finished run folder, checked before anything is computed:
its config, data (the same splits, verified against the run's hash), tokenizer, the test-time injection of
each token class (with its manifest), and the base and finetuned models."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from spurlab.data.dataset import DatasetSplits
from spurlab.errors import SpurlabError
from spurlab.evaluate.spurious import injection_targets, spurious_injection_spec, token_classes
from spurlab.experiment.config import ExperimentConfig, load_experiment_config
from spurlab.experiment.run_folder import is_complete
from spurlab.experiment.runner import load_data, splits_sha256
from spurlab.inject import inject
from spurlab.models.adapters import load_adapter
from spurlab.models.loading import load_classifier, load_tokenizer
from spurlab.outputs import read_json_object
from spurlab.train.loop import seed_everything


@dataclass
class RunInputs:
    """A finished run, loaded: its resolved config, splits, tokenizer, metrics and token classes."""

    run_dir: Path
    cfg: ExperimentConfig
    splits: DatasetSplits
    tokenizer: Any
    metrics: dict[str, Any]
    token_classes: list[str]


@dataclass
class InjectedSet:
    """The run's spurious test set of one token class: all test rows, and the manifest record of each row."""

    token_class: str
    spec: dict[str, Any]
    texts: list[str]
    records: dict[int, dict[str, Any]]


def load_run(run_dir: str | Path, allow_pickle: bool = False) -> RunInputs:
    """Load and check a run folder; every problem is one :class:`SpurlabError` line. ``allow_pickle`` also
    loads pickle checkpoints (as ``model.allow_pickle`` in the run's config does)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise SpurlabError(f"{run_dir}: no such run folder")
    if not (run_dir / "config.yaml").is_file():
        raise SpurlabError(f"{run_dir}: not a spurlab run folder (no config.yaml; make one with spurlab run)")
    if not is_complete(run_dir):
        raise SpurlabError(f"{run_dir}: unfinished run (no DONE or metrics.json); finish it with spurlab run "
                           "first")
    if not (run_dir / "adapter" / "spurlab_model.json").is_file():
        raise SpurlabError(f"{run_dir}: the run folder has no adapter/spurlab_model.json")
    cfg = load_experiment_config(run_dir / "config.yaml")
    if cfg.task != "classify":
        raise SpurlabError(f"{run_dir}: a task: {cfg.task} run; diagnose compares a classifier's attention and "
                           "predictions, and generative runs are not supported yet")
    if allow_pickle:
        cfg.model.allow_pickle = True
    metrics = read_json_object(run_dir / "metrics.json") or {}
    splits = load_data(cfg)
    status = read_json_object(run_dir / "status.json") or {}
    recorded = status.get("data_sha256")
    if recorded is not None and recorded != splits_sha256(splits):
        raise SpurlabError(f"{run_dir}: the data of {cfg.data.spec!r} changed since the run was trained "
                           "(its rows no longer hash to status.json's data_sha256)")
    classes = token_classes(cfg.injections, cfg.evaluation, splits.label_names)
    if not classes:
        raise SpurlabError(f"{run_dir}: no injection configured (neither injection nor evaluation.injection in "
                           "config.yaml), so there is no spurious token to diagnose")
    tokenizer = load_tokenizer(cfg.model)
    if not getattr(tokenizer, "is_fast", False):
        raise SpurlabError(f"tokenizer of {cfg.model.tokenizer or cfg.model.name!r} is not a fast tokenizer: "
                           "diagnose needs its offset mapping to locate the injected token")
    return RunInputs(run_dir, cfg, splits, tokenizer, metrics, classes)


def default_token_class(run: RunInputs) -> str:
    """The class of the first training injection that has one, else the first spurious test class."""
    for conf in run.cfg.injections:
        for cls in injection_targets(conf):
            if cls in run.token_classes:
                return cls
    return run.token_classes[0]


def injected_sets(run: RunInputs) -> dict[str, InjectedSet]:
    """Each token class's spurious test set, built exactly as ``spurlab run`` builds it (same spec, seed)."""
    out: dict[str, InjectedSet] = {}
    for cls in run.token_classes:
        spec = spurious_injection_spec(run.cfg.injections, run.cfg.evaluation, cls)
        same = next((s for s in out.values() if s.spec == spec), None)
        if same is not None:  # identical settings give identical texts: inject once
            out[cls] = InjectedSet(cls, spec, same.texts, same.records)
            continue
        result = inject(run.splits.test, spec, check_collisions=False)
        out[cls] = InjectedSet(cls, spec, list(result.dataset.texts), {int(r["row"]): r for r in result.manifest})
    return out


def load_model(run: RunInputs, which: str) -> tuple[nn.Module, bool]:
    """(model, is_decoder): ``base`` is the backbone before finetuning with the run's seeded random head,
    ``finetuned`` the same with the run's ``adapter/`` applied; each call builds a fresh copy."""
    seed_everything(run.cfg.train.seed)  # as the run: the head's random init depends on it
    loaded = load_classifier(run.cfg.model, run.splits.label_names, tokenizer=run.tokenizer)
    if which == "base":
        return loaded.model, loaded.is_decoder
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # transformers v5 deprecations inside PEFT
        model = load_adapter(loaded, run.run_dir / "adapter", allow_pickle=run.cfg.model.allow_pickle)
    return model, loaded.is_decoder
