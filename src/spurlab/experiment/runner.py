"""One experiment, end to end: dataset → injection → (defense) → model → training → evaluation → run folder.

The stages are named functions over one :class:`RunContext`; :mod:`spurlab.experiment.run_folder` owns the
folder's layout and the decision about an existing one.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spurlab import __version__
from spurlab.atomic import make_out_dir, write_json, write_text
from spurlab.data.dataset import DatasetSplits, TextDataset
from spurlab.data.loaders import load_splits, spec_files
from spurlab.data.transform import TransformResult, save_transform
from spurlab.defend.test_time import Classifier, TestTimeDefense, evaluate_defense
from spurlab.errors import SpurlabError
from spurlab.evaluate.generate import OTHER, generate, match_classes
from spurlab.evaluate.metrics import compute_metrics
from spurlab.evaluate.predict import predict, predict_logits
from spurlab.evaluate.spurious import SpuriousSet, build_spurious_sets, token_classes
from spurlab.experiment.config import ExperimentConfig, config_to_dict, dump_config
from spurlab.experiment.report import run_report
from spurlab.experiment.run_folder import read_metrics, run_dir_state
from spurlab.inject import inject_many
from spurlab.models.adapters import attach_trainable, save_trained
from spurlab.models.loading import (
    LoadedModel,
    check_causal,
    check_model_source,
    check_quantization,
    load_causal_lm_model,
    load_classifier,
    load_tokenizer,
)
from spurlab.outputs import SCHEMA_VERSION, already_complete, sha256_rows
from spurlab.precision import PrecisionChoice, choose_precision
from spurlab.report.html import REPORT_FILE, write_html
from spurlab.report.run_summary import write_confusion_png, write_summary
from spurlab.runtime import machine, now, resolve_device, torch_threads
from spurlab.train.batching import Encoded, encode
from spurlab.train.loop import TrainStats, plan_steps, seed_everything, train_model
from spurlab.train.sft import encode_pairs, encode_prompts

BASE_DESCRIPTION = (
    "the same model before finetuning: pretrained backbone with the freshly initialised (random) "
    "classification head, i.e. zero-shot; NOT the paper's 'base model' row, which is a model finetuned on "
    "clean data (run the same config with injection: null for that)"
)
BASE_DESCRIPTION_SFT = (
    "the same causal LM before finetuning, answering the same prompts (zero-shot); NOT the paper's 'base model' "
    "row, which is a model finetuned on clean data (run the same config with injection: null for that)"
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


@dataclass
class RunContext:
    """What the stages of one run share: inputs, options, what earlier stages made, and the status file."""

    cfg: ExperimentConfig
    splits: DatasetSplits
    tokenizer: Any
    out_dir: Path
    cache: RunCache | None
    verbose: bool
    progress: bool
    status: dict[str, Any]
    t0: float
    timings: dict[str, float] = field(default_factory=dict)
    train_set: TextDataset | None = None
    injection_summary: dict[str, Any] | None = None
    defense_summary: dict[str, Any] | None = None
    spurious_sets: list[SpuriousSet] = field(default_factory=list)
    device: Any = None
    precision: str = "fp32"
    precision_choice: PrecisionChoice | None = None
    poisoned_rows: set[int] = field(default_factory=set)  # training rows the injection changed
    loaded: LoadedModel | None = None
    # name -> (dataset, token class or None for the clean set)
    test_sets: dict[str, tuple[TextDataset, str | None]] = field(default_factory=dict)
    train_enc: Encoded | None = None
    test_encs: dict[str, Encoded] = field(default_factory=dict)

    def log(self, message: str) -> None:
        if self.verbose:
            print(f"[{self.cfg.name}] {message}", flush=True)

    def stage(self, name: str) -> None:
        self.status["stage"] = name
        write_json(self.out_dir / "status.json", self.status)


def load_data(cfg: ExperimentConfig, cache: RunCache | None = None) -> DatasetSplits:
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
    key = f"{cfg.model.tokenizer or cfg.model.name}|{cfg.model.trust_remote_code}"
    if cache is not None and key in cache.tokenizers:
        return cache.tokenizers[key]
    tok = load_tokenizer(cfg.model)
    if cache is not None:
        cache.tokenizers[key] = tok
    return tok


def validate_run(cfg: ExperimentConfig, splits: DatasetSplits) -> None:
    """Checks before anything is written: injection target labels and spurious classes exist, the device is
    there (and can hold quantized weights when asked), a bf16 precision can run on it."""
    device = resolve_device(cfg.train.device)
    check_quantization(cfg.model, device)
    if cfg.task == "sft":
        check_causal(cfg.model)
        cfg.sft.response_words(splits.label_names)
    if cfg.train.precision == "bf16":
        choose_precision("bf16", device)
    names = splits.label_names
    for i, conf in enumerate(cfg.injections):
        targets = conf.target_label if isinstance(conf.target_label, list) else [conf.target_label]
        for t in targets:
            if t is not None and str(t) not in names:
                raise SpurlabError(f"config: {cfg.injection_key(i)}.target_label: unknown class {t!r} "
                                   f"(labels: {', '.join(names)})")
    token_classes(cfg.injections, cfg.evaluation, names)
    if len(names) < 2:
        raise SpurlabError(f"data: need at least 2 classes, found {names}")


def splits_sha256(splits: DatasetSplits) -> str:
    """A content hash of the train and test rows and the label map (the same across processes)."""
    parts = []
    for ds in (splits.train, splits.test):
        parts.append(sha256_rows(ds.texts, ds.label_strings, extra=ds.label_names))
    return sha256_rows(parts, ["train", "test"])


def run_experiment(cfg: ExperimentConfig, out_dir: str | Path, *, overwrite: bool = False,
                   cache: RunCache | None = None, verbose: bool = True, progress: bool = True,
                   report: bool = True) -> RunResult:
    """Run one experiment and write its run folder (with ``report.html`` unless not ``report``); returns the
    metrics dict.

    Everything that can be checked cheaply (data, labels, model source) is checked before the folder is
    touched. A folder that already holds the finished run of the same config is returned as it is (unless
    ``overwrite``); an unfinished one is cleared and run again; another config's folder raises one line.
    """
    out_dir = Path(out_dir)
    t0 = time.perf_counter()
    if verbose:
        print(f"[{cfg.name}] loading data {cfg.data.spec}", flush=True)
    splits = load_data(cfg, cache)
    validate_run(cfg, splits)
    check_model_source(cfg.model)
    tokenizer = _tokenizer(cfg, cache)
    data_sha = splits_sha256(splits)
    if run_dir_state(out_dir, config_to_dict(cfg), data_sha, overwrite, spec_files(cfg.data.spec)) == "complete":
        if verbose:
            print(f"[{cfg.name}] {already_complete(out_dir, 'same config')}", flush=True)
        if report and not (out_dir / REPORT_FILE).is_file():  # killed between DONE and the report
            write_run_report(out_dir)
        return RunResult(out_dir, read_metrics(out_dir), reused=True)
    status = _start_folder(cfg, out_dir, data_sha)
    ctx = RunContext(cfg, splits, tokenizer, out_dir, cache, verbose, progress, status, t0)
    try:
        with torch_threads(cfg.train.threads):
            metrics = _run_stages(ctx)
    except BaseException as exc:
        status.update(status="failed", error=f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
                      finished=now())
        write_json(out_dir / "status.json", status)
        raise
    if report:
        write_run_report(out_dir)
    return RunResult(out_dir, metrics)


def write_run_report(out_dir: Path) -> None:
    """``report.html`` of a finished run folder, written after ``DONE``: the run is complete without it."""
    write_html(run_report(out_dir), out_dir / REPORT_FILE)


def _start_folder(cfg: ExperimentConfig, out_dir: Path, data_sha: str) -> dict[str, Any]:
    """Create the run folder with ``config.yaml`` and a ``running`` status; nothing is left if that fails."""
    created = make_out_dir(out_dir)
    status = {"schema_version": SCHEMA_VERSION, "status": "running", "stage": "data", "started": now(),
              "spurlab_version": __version__, "data_sha256": data_sha}
    try:
        write_text(out_dir / "config.yaml", dump_config(cfg))
        write_json(out_dir / "status.json", status)
    except BaseException:
        (out_dir / "config.yaml").unlink(missing_ok=True)
        if created:
            shutil.rmtree(out_dir, ignore_errors=True)
        raise
    return status


def _run_stages(ctx: RunContext) -> dict[str, Any]:
    _prepare_data(ctx)
    _load_model(ctx)
    _tokenize(ctx)
    base_metrics = _evaluate_base(ctx)
    model, stats = _train(ctx)
    ctx.stage("evaluate")
    ctx.log(f"evaluating on {', '.join(ctx.test_sets)}")
    metrics = _evaluate(ctx, model, "finetuned")
    defenses = ctx.cfg.test_time_defenses  # every one on the same trained model
    if defenses:
        metrics["test_time_defenses"] = {label: _test_time_defense(ctx, model, d) for label, d in defenses.items()}
    return _save(ctx, model, stats, metrics, base_metrics)


def _test_time_defense(ctx: RunContext, model: torch.nn.Module, defense: TestTimeDefense) -> dict[str, Any]:
    """``evaluation.defense`` on the finetuned classifier: calibrated on part of the clean test rows, measured
    on the rest and on the same rows of every spurious set (:func:`spurlab.defend.test_time.evaluate_defense`)."""
    ctx.stage("test-time-defense")
    cfg, names, test = ctx.cfg, ctx.splits.label_names, ctx.splits.test

    def probabilities(texts: Sequence[str]) -> np.ndarray:
        logits = predict_logits(model, encode(ctx.tokenizer, texts, cfg.train.max_length), ctx.device, ctx.precision,
                                cfg.evaluation.batch_size)
        return torch.softmax(torch.from_numpy(logits), dim=1).numpy()

    triggered = {names.index(s.token_class): s.dataset.texts for s in ctx.spurious_sets
                 if len(s.dataset) == len(test)}
    classifier = Classifier(probabilities, model, ctx.tokenizer, ctx.device, cfg.train.max_length)
    result = evaluate_defense(defense, classifier, test.texts, test.label_ids, triggered)
    result["spurious"] = {f"spurious:{names[c]}": v for c, v in result["spurious"].items()}
    ctx.timings[f"test_time_{defense.name}_s"] = ctx.timings.get(f"test_time_{defense.name}_s", 0) + result["seconds"]
    for key, v in result["spurious"].items():
        ctx.log(f"test-time defense {defense.name} on {key}: FRR {v['frr']:.3f}, clean accuracy "
                f"{result['cacc_before']:.3f} -> {v['cacc_after']:.3f}, attack success {v['asr_before']:.3f} -> "
                f"{v['asr_after']:.3f} (FAR {v['far']:.3f})")
    return result


def _prepare_data(ctx: RunContext) -> None:
    """Injection, then the defense, on the training rows; the spurious test sets."""
    cfg = ctx.cfg
    t = time.perf_counter()
    ctx.train_set = ctx.splits.train
    if cfg.injections:
        ctx.stage("injection")
        result = inject_many(ctx.train_set, cfg.injections, check_collisions=False)
        save_transform(result, ctx.out_dir / "injection")
        ctx.train_set = result.dataset
        ctx.poisoned_rows = {int(r["row"]) for r in result.manifest}
        ctx.injection_summary = {"n_modified": len(result.manifest),
                                 "modified_per_label": result.summary.get("modified_per_label")}
        ctx.log(f"injected tokens into {len(result.manifest)} of {len(ctx.train_set)} training rows")
    if cfg.defense is not None:
        _apply_defense(ctx)
    ctx.spurious_sets = build_spurious_sets(cfg.injections, cfg.evaluation, ctx.splits.test)
    ctx.timings["injection_s"] = time.perf_counter() - t


def _apply_defense(ctx: RunContext) -> None:
    """Run the configured defense on the training rows; its manifest and summary go to ``defense/``."""
    assert ctx.cfg.defense is not None and ctx.train_set is not None
    name = ctx.cfg.defense.name
    ctx.stage("defense")
    start = time.perf_counter()
    result = ctx.cfg.defense.build().apply(ctx.train_set)
    seconds = time.perf_counter() - start
    save_transform(result, ctx.out_dir / "defense")
    changed = len(result.manifest) - len(result.dropped)
    ctx.log(f"defense {name}: changed {changed} and dropped {len(result.dropped)} of {len(ctx.train_set)} "
            "training rows")
    keys = ("n_rows_changed", "n_removed", "rows_changed_per_label", "flagged_shapes", "flagged_tokens",
            "n_dropped", "dropped_per_label", "keyword")
    ctx.defense_summary = {"name": name, **{k: v for k, v in result.summary.items() if k in keys},
                           "seconds": round(seconds, 3), **_detection(result, ctx.poisoned_rows)}
    ctx.train_set = result.dataset


def _detection(result: TransformResult, poisoned: set[int]) -> dict[str, Any]:
    """How well a defense's touched rows (changed or dropped) match the poisoned ones: precision and recall
    (None where undefined)."""
    touched = {int(r["row"]) for r in result.manifest}
    hits = len(touched & poisoned)
    return {"rows_touched": len(touched), "poisoned_touched": hits,
            "precision": hits / len(touched) if touched else None,
            "recall": hits / len(poisoned) if poisoned else None}


def _load_model(ctx: RunContext) -> None:
    tc = ctx.cfg.train
    ctx.stage("model")
    t = time.perf_counter()
    ctx.device = resolve_device(tc.device)
    ctx.precision_choice = choose_precision(tc.precision, ctx.device)
    ctx.precision = ctx.precision_choice.precision
    seed_everything(tc.seed)  # the head's random init depends on it
    ctx.log(f"precision {ctx.precision} ({tc.precision}: {ctx.precision_choice.reason})")
    ctx.log(f"loading model {ctx.cfg.model.name} ({tc.mode}, {ctx.precision} on {ctx.device})")
    if ctx.cfg.task == "sft":
        ctx.loaded = load_causal_lm_model(ctx.cfg.model, ctx.tokenizer, device=ctx.device)
    else:
        ctx.loaded = load_classifier(ctx.cfg.model, ctx.splits.label_names, tokenizer=ctx.tokenizer,
                                     device=ctx.device)
    ctx.timings["model_load_s"] = time.perf_counter() - t


def _tokenize(ctx: RunContext) -> None:
    """Tokenise every text once (shared across runs through the cache)."""
    assert ctx.train_set is not None
    cfg = ctx.cfg
    t = time.perf_counter()
    enc_cache = None
    if ctx.cache is not None:
        enc_cache = ctx.cache.encodings.setdefault((f"{cfg.model.tokenizer or cfg.model.name}",
                                                    cfg.train.max_length), {})
    ctx.test_sets = {"clean": (ctx.splits.test, None)}
    for s in ctx.spurious_sets:
        ctx.test_sets[f"spurious:{s.token_class}"] = (s.dataset, s.token_class)
    if cfg.task == "sft":  # prompts and responses; the test sets are prompts to answer
        words = cfg.sft.response_words(ctx.splits.label_names)
        ctx.train_enc = encode_pairs(ctx.tokenizer, ctx.train_set.texts, [words[i] for i in ctx.train_set.label_ids],
                                     cfg.sft, cfg.train.max_length)
        ctx.test_encs = {k: encode_prompts(ctx.tokenizer, ds.texts, cfg.sft, cfg.train.max_length)
                         for k, (ds, _) in ctx.test_sets.items()}
    else:
        ctx.train_enc = encode(ctx.tokenizer, ctx.train_set.texts, cfg.train.max_length, enc_cache)
        ctx.test_encs = {k: encode(ctx.tokenizer, ds.texts, cfg.train.max_length, enc_cache)
                         for k, (ds, _) in ctx.test_sets.items()}
    ctx.timings["tokenize_s"] = time.perf_counter() - t


def _evaluate(ctx: RunContext, model: torch.nn.Module, tag: str) -> dict[str, Any]:
    """Metrics on every test set; identical test sets (same token settings) are predicted once."""
    t = time.perf_counter()
    out: dict[str, Any] = {}
    seen: dict[int, np.ndarray] = {}
    names = ctx.splits.label_names
    if ctx.cfg.task == "sft":  # a generation that is no class word is its own column, counted as wrong
        names = [*names, OTHER]
    for key, (ds, token_class) in ctx.test_sets.items():
        ident = hash(tuple(ds.texts))
        if ident not in seen:
            seen[ident] = _predict(ctx, model, ctx.test_encs[key])
        out.update(_set_metrics(key, ds.label_ids, seen[ident], names, token_class, ctx.cfg.evaluation.flip))
    ctx.timings[f"eval_{tag}_s"] = time.perf_counter() - t
    return out


def _predict(ctx: RunContext, model: torch.nn.Module, encoded: Encoded) -> np.ndarray:
    """Class ids of a classifier's argmax, or of a causal LM's greedy answers (``len(labels)``: no class)."""
    batch = ctx.cfg.evaluation.batch_size
    if ctx.cfg.task != "sft":
        return predict(model, encoded, ctx.device, ctx.precision, batch)
    tokenizer = ctx.tokenizer
    new = generate(model, encoded, ctx.device, ctx.precision, batch, ctx.cfg.sft.max_new_tokens,
                   tokenizer.eos_token_id)
    texts = tokenizer.batch_decode(new, skip_special_tokens=True)
    return match_classes(texts, ctx.cfg.sft.response_words(ctx.splits.label_names))


def _evaluate_base(ctx: RunContext) -> dict[str, Any] | None:
    """The model before finetuning; runs that share everything it depends on (the demo) evaluate it once."""
    cfg = ctx.cfg
    if not cfg.evaluation.base:
        return None
    assert ctx.loaded is not None
    ctx.stage("evaluate-base")
    base_key = repr((cfg.model.model_dump(), cfg.data.model_dump(), cfg.evaluation.model_dump(), cfg.train.seed,
                     cfg.train.max_length, ctx.precision, str(ctx.device),
                     [(k, hash(tuple(ds.texts))) for k, (ds, _) in ctx.test_sets.items()]))
    if ctx.cache is not None and base_key in ctx.cache.base_metrics:
        ctx.log("reusing the evaluation of the same model before finetuning")
        ctx.timings["eval_base_s"] = 0.0
        return ctx.cache.base_metrics[base_key]
    ctx.log(f"evaluating the model before finetuning on {len(ctx.test_sets)} test set(s)")
    metrics = _evaluate(ctx, ctx.loaded.model, "base")
    if ctx.cache is not None:
        ctx.cache.base_metrics[base_key] = metrics
    return metrics


def _train(ctx: RunContext) -> tuple[torch.nn.Module, TrainStats]:
    assert ctx.loaded is not None and ctx.train_enc is not None and ctx.train_set is not None
    tc = ctx.cfg.train
    ctx.stage("train")
    model = attach_trainable(ctx.loaded, tc.method, tc.method_settings,
                             total_steps=plan_steps(len(ctx.train_enc), tc)[0])
    ctx.log(f"training on {len(ctx.train_enc)} rows")
    stats = train_model(model, ctx.train_enc, ctx.train_set.label_ids, tc, ctx.device, ctx.precision,
                        ctx.loaded.head_modules, progress=ctx.progress, description=f"[{ctx.cfg.name}] train")
    ctx.log(f"{stats.steps} steps, {stats.examples_per_second:.1f} examples/s, final loss {stats.final_loss:.4f}")
    ctx.timings["train_s"] = stats.seconds
    return model, stats


def _save(ctx: RunContext, model: torch.nn.Module, stats: TrainStats, metrics: dict[str, Any],
          base_metrics: dict[str, Any] | None) -> dict[str, Any]:
    """The adapter, the summary, the figure, ``metrics.json`` and ``DONE`` (last)."""
    assert ctx.loaded is not None and ctx.train_set is not None
    cfg, tc, out_dir = ctx.cfg, ctx.cfg.train, ctx.out_dir
    ctx.stage("save")
    t = time.perf_counter()
    partial = out_dir / ".adapter.partial"
    shutil.rmtree(partial, ignore_errors=True)
    save_trained(model, ctx.loaded, tc.method, partial, {"base_model": cfg.model.name,
                                                       "label_names": ctx.splits.label_names,
                                                       "pooling": cfg.model.pooling})
    shutil.rmtree(out_dir / "adapter", ignore_errors=True)
    os.replace(partial, out_dir / "adapter")
    ctx.timings["save_s"] = time.perf_counter() - t
    ctx.timings["total_s"] = time.perf_counter() - ctx.t0
    label_names = ctx.splits.label_names
    metrics = {
        "schema_version": SCHEMA_VERSION,
        "status": "complete",
        "name": cfg.name,
        "label_names": label_names,
        **metrics,
        "base": ({"description": BASE_DESCRIPTION_SFT if cfg.task == "sft" else BASE_DESCRIPTION, **base_metrics}
                 if base_metrics is not None else None),
        "meta": {
            "spurlab_version": __version__,
            "seed": tc.seed,
            "model": cfg.model.name,
            "model_type": ctx.loaded.model_type,
            "head": ctx.loaded.head_kind,
            "task": cfg.task,
            "mode": tc.method,  # the training method (named mode before train.method existed)
            "method": tc.method,
            "precision": ctx.precision,
            "precision_choice": ctx.precision_choice.as_dict() if ctx.precision_choice else None,
            "device": str(ctx.device),
            "threads": torch.get_num_threads(),
            "torch_version": torch.__version__,
            "machine": machine(),
            "n_train": len(ctx.train_set),
            "n_test": len(ctx.splits.test),
            "train_label_counts": _counts(ctx.train_set.label_ids, label_names),
            "injection": ctx.injection_summary,
            "defense": ctx.defense_summary,
            "test_sets": {f"spurious:{s.token_class}": {"injection": s.injection, "n_modified": s.n_modified}
                          for s in ctx.spurious_sets},
            "train": {k: v for k, v in asdict(stats).items() if k != "losses"},
            "train_examples_per_second": stats.examples_per_second,
            "timings": {k: round(v, 3) for k, v in ctx.timings.items()},
            "started": ctx.status["started"],
            "finished": now(),
        },
    }
    write_summary(out_dir / "summary.md", metrics)
    write_confusion_png(out_dir / "confusion_matrix.png", metrics)
    write_json(out_dir / "metrics.json", metrics)
    write_text(out_dir / "DONE", metrics["meta"]["finished"] + "\n")
    ctx.status.update(status="complete", stage="done", finished=metrics["meta"]["finished"])
    write_json(out_dir / "status.json", ctx.status)
    ctx.log(f"wrote {out_dir}")
    return metrics


def _counts(ids: np.ndarray, names: list[str]) -> dict[str, int]:
    return {name: int((ids == i).sum()) for i, name in enumerate(names)}


def _set_metrics(key: str, y_true: np.ndarray, preds: np.ndarray, label_names: list[str],
                 token_class: str | None, flip: bool) -> dict[str, Any]:
    if token_class is None:
        return {key: compute_metrics(y_true, preds, label_names)}
    cls = label_names.index(token_class)
    out = {key: compute_metrics(y_true, preds, label_names, cls)}
    if flip:
        other = y_true != cls
        out[f"spurious-flip:{token_class}"] = compute_metrics(y_true[other], preds[other], label_names, cls)
    return out
