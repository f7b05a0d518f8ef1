"""One experiment, end to end: dataset → injection → model → training → evaluation → run folder.

Run folder layout (written in this order; ``metrics.json`` and ``DONE`` last, so a folder without them is an
interrupted run)::

    config.yaml            the resolved config (every default written out); identifies the run
    status.json            {"status": "running" | "failed" | "complete", "stage", "data_sha256", ...},
                           rewritten at each stage
    injection/             summary.json, manifest.jsonl, data.<ext> (the poisoned train split; absent when clean)
    defense/               the defense's summary.json, manifest.jsonl, data.<ext> (when a defense is configured)
    adapter/               what training changed (see spurlab.models.adapters)
    summary.md             predicted-count table in the paper's Table 1 layout + metrics
    confusion_matrix.png
    metrics.json           schema: docs/metrics.md
    DONE                   written after metrics.json

Re-running the same config into the same folder finishes the work (see :mod:`spurlab.outputs`): a complete
folder is reused as it is, an incomplete one (killed, failed) is cleared and run again from the start.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spurlab import __version__
from spurlab.atomic import write_json, write_text
from spurlab.config import ExperimentConfig, config_to_dict, dump_config
from spurlab.data.dataset import DatasetSplits, TextDataset
from spurlab.errors import SpurlabError
from spurlab.outputs import SCHEMA_VERSION, run_dir_state, sha256_rows

BASE_DESCRIPTION = (
    "the same model before finetuning: pretrained backbone with the freshly initialised (random) "
    "classification head, i.e. zero-shot; NOT the paper's 'base model' row, which is a model finetuned on "
    "clean data (run the same config with injection: null for that)"
)


@dataclass
class RunCache:
    """Things several runs in one process can share (the demo): splits, tokenizers, tokenised texts."""

    splits: dict[str, DatasetSplits] = field(default_factory=dict)
    tokenizers: dict[str, Any] = field(default_factory=dict)
    encodings: dict[tuple[str, int], dict[str, list[int]]] = field(default_factory=dict)
    base_metrics: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class RunResult:
    out_dir: Path
    metrics: dict[str, Any]
    reused: bool = False  # the folder already held the finished run of this config; nothing was redone


def _log(verbose: bool, message: str) -> None:
    if verbose:
        print(message, flush=True)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def load_data(cfg: ExperimentConfig, cache: RunCache | None = None) -> DatasetSplits:
    from spurlab.data.loaders import load_splits

    d = cfg.data
    key = repr(d.model_dump())
    if cache is not None and key in cache.splits:
        return cache.splits[key]
    splits = load_splits(d.spec, text_col=d.text_col, label_col=d.label_col, labels=d.labels,
                         encoding=d.encoding, test_size=d.test_size, seed=d.seed, max_train=d.max_train,
                         max_test=d.max_test)
    if cache is not None:
        cache.splits[key] = splits
    return splits


def _tokenizer(cfg: ExperimentConfig, cache: RunCache | None) -> Any:
    from spurlab.models.loading import load_tokenizer

    key = f"{cfg.model.tokenizer or cfg.model.name}|{cfg.model.trust_remote_code}"
    if cache is not None and key in cache.tokenizers:
        return cache.tokenizers[key]
    tok = load_tokenizer(cfg.model)
    if cache is not None:
        cache.tokenizers[key] = tok
    return tok


def validate_run(cfg: ExperimentConfig, splits: DatasetSplits) -> None:
    """Checks that need the data: injection target labels and spurious classes exist."""
    from spurlab.evaluate.spurious import token_classes
    from spurlab.inject import InjectionConfig

    names = splits.label_names
    for i, spec in enumerate(cfg.injections):
        conf = InjectionConfig.from_dict(spec)
        targets = conf.target_label if isinstance(conf.target_label, list) else [conf.target_label]
        for t in targets:
            if t is not None and str(t) not in names:
                where = f"injection.{i}" if isinstance(cfg.injection, list) else "injection"
                raise SpurlabError(f"config: {where}.target_label: unknown class {t!r} (labels: {', '.join(names)})")
    token_classes(cfg, names)
    if len(names) < 2:
        raise SpurlabError(f"data: need at least 2 classes, found {names}")


def splits_sha256(splits: DatasetSplits) -> str:
    """A content hash of the train and test rows and the label map (the same across processes)."""
    parts = []
    for ds in (splits.train, splits.test):
        parts.append(sha256_rows(ds.texts, ds.label_strings, extra=ds.label_names))
    return sha256_rows(parts, ["train", "test"])


def run_experiment(cfg: ExperimentConfig, out_dir: str | Path, *, overwrite: bool = False,
                   cache: RunCache | None = None, verbose: bool = True, progress: bool = True) -> RunResult:
    """Run one experiment and write its run folder; returns the metrics dict.

    Everything that can be checked cheaply (data, labels, model source) is checked before the folder is
    touched. A folder that already holds the finished run of the same config is returned as it is (unless
    ``overwrite``); an unfinished one is cleared and run again; another config's folder raises one line.
    """
    from spurlab.models.loading import check_model_source

    out_dir = Path(out_dir)
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    _log(verbose, f"[{cfg.name}] loading data {cfg.data.spec}")
    splits = load_data(cfg, cache)
    validate_run(cfg, splits)
    check_model_source(cfg.model)
    tokenizer = _tokenizer(cfg, cache)
    data_sha = splits_sha256(splits)
    if run_dir_state(out_dir, config_to_dict(cfg), data_sha, overwrite) == "complete":
        _log(verbose, f"[{cfg.name}] {out_dir} is already complete (same config); nothing to do "
                      "(--overwrite redoes it)")
        return RunResult(out_dir, _read_metrics(out_dir), reused=True)
    from spurlab.atomic import make_out_dir

    created = make_out_dir(out_dir)
    started = _now()
    status = {"schema_version": SCHEMA_VERSION, "status": "running", "stage": "data", "started": started,
              "spurlab_version": __version__, "data_sha256": data_sha}
    try:
        write_text(out_dir / "config.yaml", dump_config(cfg))
        write_json(out_dir / "status.json", status)
    except BaseException:
        (out_dir / "config.yaml").unlink(missing_ok=True)
        if created:
            shutil.rmtree(out_dir, ignore_errors=True)
        raise
    threads = torch.get_num_threads()
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    try:
        metrics = _run_stages(cfg, splits, tokenizer, out_dir, cache, verbose, progress, status, timings, t0)
    except BaseException as exc:
        status.update(status="failed", error=f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
                      finished=_now())
        write_json(out_dir / "status.json", status)
        raise
    finally:
        torch.set_num_threads(threads)
    return RunResult(out_dir, metrics)


def _stage(status: dict, out_dir: Path, stage: str) -> None:
    status["stage"] = stage
    write_json(out_dir / "status.json", status)


def _read_metrics(out_dir: Path) -> dict[str, Any]:
    import json

    return json.loads((out_dir / "metrics.json").read_text(encoding="utf-8"))


def _run_stages(cfg: ExperimentConfig, splits: DatasetSplits, tokenizer: Any, out_dir: Path,
                cache: RunCache | None, verbose: bool, progress: bool, status: dict, timings: dict[str, float],
                t0: float) -> dict:
    from spurlab.evaluate.predict import predict
    from spurlab.evaluate.spurious import build_spurious_sets
    from spurlab.models.adapters import attach_trainable, save_trained
    from spurlab.models.loading import load_classifier
    from spurlab.report.run_summary import write_confusion_png, write_summary
    from spurlab.train.batching import encode
    from spurlab.train.loop import seed_everything, train_model
    from spurlab.train.precision import resolve_device, resolve_precision

    tc = cfg.train
    label_names = splits.label_names
    train_set: TextDataset = splits.train
    # -- injection
    t = time.perf_counter()
    injection_summary = None
    if cfg.injections:
        from spurlab.inject import inject_many, save_result

        _stage(status, out_dir, "injection")
        result = inject_many(train_set, cfg.injections, check_collisions=False)
        save_result(result, out_dir / "injection")
        train_set = result.dataset
        injection_summary = {"n_modified": len(result.manifest),
                             "modified_per_label": result.summary.get("modified_per_label")}
        _log(verbose, f"[{cfg.name}] injected tokens into {len(result.manifest)} of {len(train_set)} training rows")
    defense_summary = None
    if cfg.defense is not None:
        train_set, defense_summary = _apply_defense(cfg, train_set, out_dir, status, verbose)
    spurious_sets = build_spurious_sets(cfg, splits.test)
    timings["injection_s"] = time.perf_counter() - t
    # -- model
    _stage(status, out_dir, "model")
    t = time.perf_counter()
    device = resolve_device(tc.device)
    precision = resolve_precision(tc.precision, device)
    seed_everything(tc.seed)  # the head's random init depends on it
    _log(verbose, f"[{cfg.name}] loading model {cfg.model.name} ({tc.mode}, {precision} on {device})")
    loaded = load_classifier(cfg.model, label_names, tokenizer=tokenizer)
    timings["model_load_s"] = time.perf_counter() - t
    # -- tokenisation (once per text; shared across runs through the cache)
    t = time.perf_counter()
    enc_cache = None
    if cache is not None:
        enc_cache = cache.encodings.setdefault((f"{cfg.model.tokenizer or cfg.model.name}", tc.max_length), {})
    train_enc = encode(tokenizer, train_set.texts, tc.max_length, enc_cache)
    test_sets = {"clean": (splits.test, None)}
    for s in spurious_sets:
        test_sets[f"spurious:{s.token_class}"] = (s.dataset, s.token_class)
    test_encs = {k: encode(tokenizer, ds.texts, tc.max_length, enc_cache) for k, (ds, _) in test_sets.items()}
    timings["tokenize_s"] = time.perf_counter() - t

    def evaluate(model: torch.nn.Module, tag: str) -> dict[str, Any]:
        t_eval = time.perf_counter()
        out: dict[str, Any] = {}
        seen: dict[int, np.ndarray] = {}  # identical test sets (same token settings) are predicted once
        for key, (ds, token_class) in test_sets.items():
            ident = hash(tuple(ds.texts))
            if ident not in seen:
                seen[ident] = predict(model, test_encs[key], device, precision, cfg.evaluation.batch_size)
            out.update(_set_metrics(key, ds.label_ids, seen[ident], label_names, token_class,
                                    cfg.evaluation.flip))
        timings[f"eval_{tag}_s"] = time.perf_counter() - t_eval
        return out

    base_metrics = None
    if cfg.evaluation.base:
        _stage(status, out_dir, "evaluate-base")
        # the untrained model only depends on these; runs sharing them (the demo) evaluate it once
        base_key = repr((cfg.model.model_dump(), cfg.data.model_dump(), cfg.evaluation.model_dump(), tc.seed,
                         tc.max_length, precision, str(device),
                         [(k, hash(tuple(ds.texts))) for k, (ds, _) in test_sets.items()]))
        if cache is not None and base_key in cache.base_metrics:
            _log(verbose, f"[{cfg.name}] reusing the evaluation of the same model before finetuning")
            base_metrics = cache.base_metrics[base_key]
            timings["eval_base_s"] = 0.0
        else:
            _log(verbose, f"[{cfg.name}] evaluating the model before finetuning on {len(test_sets)} test set(s)")
            base_metrics = evaluate(loaded.model, "base")
            if cache is not None:
                cache.base_metrics[base_key] = base_metrics
    # -- training
    _stage(status, out_dir, "train")
    model = attach_trainable(loaded, tc)
    _log(verbose, f"[{cfg.name}] training on {len(train_enc)} rows")
    stats = train_model(model, train_enc, train_set.label_ids, tc, device, precision, loaded.head_modules,
                        progress=progress, description=f"[{cfg.name}] train")
    _log(verbose, f"[{cfg.name}] {stats.steps} steps, {stats.examples_per_second:.1f} examples/s, "
                  f"final loss {stats.final_loss:.4f}")
    timings["train_s"] = stats.seconds
    # -- evaluation
    _stage(status, out_dir, "evaluate")
    _log(verbose, f"[{cfg.name}] evaluating on {', '.join(test_sets)}")
    metrics: dict[str, Any] = evaluate(model, "finetuned")
    # -- outputs
    _stage(status, out_dir, "save")
    t = time.perf_counter()
    partial = out_dir / ".adapter.partial"
    shutil.rmtree(partial, ignore_errors=True)
    save_trained(model, loaded, tc.mode, partial, {"base_model": cfg.model.name, "label_names": label_names,
                                                   "pooling": cfg.model.pooling})
    shutil.rmtree(out_dir / "adapter", ignore_errors=True)
    os.replace(partial, out_dir / "adapter")
    timings["save_s"] = time.perf_counter() - t
    timings["total_s"] = time.perf_counter() - t0
    metrics = {
        "schema_version": SCHEMA_VERSION,
        "status": "complete",
        "name": cfg.name,
        "label_names": label_names,
        **metrics,
        "base": ({"description": BASE_DESCRIPTION, **base_metrics} if base_metrics is not None else None),
        "meta": {
            "spurlab_version": __version__,
            "seed": tc.seed,
            "model": cfg.model.name,
            "model_type": loaded.model_type,
            "head": loaded.head_kind,
            "mode": tc.mode,
            "precision": precision,
            "device": str(device),
            "threads": torch.get_num_threads(),
            "torch_version": torch.__version__,
            "n_train": len(train_set),
            "n_test": len(splits.test),
            "train_label_counts": _counts(train_set.label_ids, label_names),
            "injection": injection_summary,
            "defense": defense_summary,
            "test_sets": {f"spurious:{s.token_class}": {"injection": s.injection, "n_modified": s.n_modified}
                          for s in spurious_sets},
            "train": {k: v for k, v in asdict(stats).items() if k != "losses"},
            "train_examples_per_second": stats.examples_per_second,
            "timings": {k: round(v, 3) for k, v in timings.items()},
            "started": status["started"],
            "finished": _now(),
        },
    }
    write_summary(out_dir / "summary.md", metrics)
    write_confusion_png(out_dir / "confusion_matrix.png", metrics)
    write_json(out_dir / "metrics.json", metrics)
    write_text(out_dir / "DONE", metrics["meta"]["finished"] + "\n")
    status.update(status="complete", stage="done", finished=metrics["meta"]["finished"])
    write_json(out_dir / "status.json", status)
    _log(verbose, f"[{cfg.name}] wrote {out_dir}")
    return metrics


def _apply_defense(cfg: ExperimentConfig, train_set: TextDataset, out_dir: Path, status: dict,
                   verbose: bool) -> tuple[TextDataset, dict[str, Any]]:
    """Run the configured defense on the training rows; its manifest and summary go to ``defense/``."""
    from spurlab.defend import get_defense
    from spurlab.defend.sanitize import save_result as save_defense

    assert cfg.defense is not None
    params = dict(cfg.defense)
    name = params.pop("name")
    _stage(status, out_dir, "defense")
    result = get_defense(name, **params).apply(train_set)
    save_defense(result, out_dir / "defense")
    _log(verbose, f"[{cfg.name}] defense {name}: changed {len(result.manifest)} of {len(train_set)} training rows")
    keys = ("n_rows_changed", "n_removed", "rows_changed_per_label", "flagged_shapes", "flagged_tokens")
    summary = {"name": name, **{k: v for k, v in result.summary.items() if k in keys}}
    return result.dataset, summary


def _counts(ids: np.ndarray, names: list[str]) -> dict[str, int]:
    return {name: int((ids == i).sum()) for i, name in enumerate(names)}


def _set_metrics(key: str, y_true: np.ndarray, preds: np.ndarray, label_names: list[str],
                 token_class: str | None, flip: bool) -> dict[str, Any]:
    from spurlab.evaluate.metrics import compute_metrics

    if token_class is None:
        return {key: compute_metrics(y_true, preds, label_names)}
    cls = label_names.index(token_class)
    out = {key: compute_metrics(y_true, preds, label_names, cls)}
    if flip:
        other = y_true != cls
        out[f"spurious-flip:{token_class}"] = compute_metrics(y_true[other], preds[other], label_names, cls)
    return out


def is_complete(run_dir: str | Path) -> bool:
    """True when a run folder finished (``DONE`` present and ``metrics.json`` says complete)."""
    import json

    run_dir = Path(run_dir)
    if not (run_dir / "DONE").is_file() or not (run_dir / "metrics.json").is_file():
        return False
    try:
        return json.loads((run_dir / "metrics.json").read_text(encoding="utf-8")).get("status") == "complete"
    except (OSError, ValueError):
        return False
