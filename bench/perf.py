"""The performance benchmark (issue 5): spurlab against the script a user would otherwise write.

Every comparison runs in one process tree and one sitting, on the same data, model, seed, LoRA settings and
number of optimisation steps; results are reported as ratios and absolute numbers in
``bench/results/perf.json`` and ``bench/results/perf.md`` (see docs/performance.md).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.flops import flop_model
from bench.hardware import load_average, matmul_peak
from bench.recipes import TrainResult, pipeline_eval, plain_accuracy, trainer_recipe

RESULTS = Path(__file__).resolve().parent / "results"
SECTIONS = ("train", "eval", "scan", "flops", "overhead")
TARGETS = {"train_ratio": 1.3, "accuracy_points": 1.0, "eval_ratio": 3.0, "bf16_utilisation": 0.15,
           "overhead_share": 0.10}


@dataclass
class ModelCase:
    """One model's training comparison: the data size and the settings shared by every recipe."""

    key: str
    spec: str
    targets: list[str]
    n_train: int
    n_test: int
    max_length: int
    batch_size: int = 32
    fixed_steps: int = 2  # optimisation steps of the (very slow) fixed-512 recipe
    fixed_batch: int = 32
    rank: int = 8
    alpha: float = 16
    dropout: float = 0.05
    lr: float = 1e-3
    seed: int = 0


@dataclass
class Plan:
    cases: list[ModelCase]
    precisions: list[str]
    eval_texts: int
    overhead_train: int
    overhead_test: int
    matmul_seconds: float
    quick: bool = False
    notes: list[str] = field(default_factory=list)


def make_plan(quick: bool) -> Plan:
    """The full benchmark, or a tiny one (a few steps per recipe) to check that everything runs."""
    if quick:
        return Plan([ModelCase("minilm", "bundled:minilm", ["query", "value"], 96, 64, 128, fixed_steps=1,
                               fixed_batch=4),
                     ModelCase("smollm2", "bundled:smollm2", ["q_proj", "v_proj"], 32, 32, 64, batch_size=16,
                               fixed_steps=1, fixed_batch=2)],
                    ["fp32", "bf16"], 128, 128, 64, 0.5, quick=True)
    return Plan([ModelCase("minilm", "bundled:minilm", ["query", "value"], 2000, 1000, 128, fixed_steps=2),
                 ModelCase("smollm2", "bundled:smollm2", ["q_proj", "v_proj"], 256, 300, 64, fixed_steps=1,
                           fixed_batch=8)],
                ["fp32", "bf16"], 2000, 2000, 1000, 2.0)


# ----------------------------------------------------------------------------------------------- training


def _splits(case: ModelCase) -> Any:
    from spurlab.data import load_splits

    return load_splits("bundled:tweets", labels=None, max_train=case.n_train, max_test=case.n_test, seed=42)


def _train_cfg(case: ModelCase, precision: str, max_steps: int | None = None) -> Any:
    from spurlab.models.config import LoraSettings
    from spurlab.train.config import TrainConfig

    return TrainConfig(mode="lora", lora=LoraSettings(r=case.rank, alpha=case.alpha, dropout=case.dropout,
                                                      target_modules=case.targets),
                       lr=case.lr, weight_decay=0.0, batch_size=case.batch_size, epochs=1, max_steps=max_steps,
                       max_length=case.max_length, precision=precision, seed=case.seed, device="cpu")


def spurlab_train(case: ModelCase, splits: Any, precision: str, max_steps: int | None = None,
                  score: bool = True) -> tuple[TrainResult, Any]:
    """Train with spurlab's own API (load → attach LoRA → encode → train_model); times ``train_model``."""
    from spurlab.models import attach_trainable, load_classifier
    from spurlab.models.config import ModelConfig
    from spurlab.train import encode, seed_everything, train_model

    cfg = _train_cfg(case, precision, max_steps)
    seed_everything(case.seed)
    loaded = load_classifier(ModelConfig(name=case.spec), splits.train.label_names)
    model = attach_trainable(loaded, cfg.mode, cfg.lora)
    encoded = encode(loaded.tokenizer, splits.train.texts, case.max_length)
    stats = train_model(model, encoded, splits.train.label_ids, cfg, torch.device("cpu"), precision,
                        loaded.head_modules, progress=False)
    lengths = encoded.lengths
    tokens = int(lengths.sum()) if stats.examples == len(encoded) else int(lengths.mean() * stats.examples)
    padded = _padded_tokens(lengths, cfg) if stats.examples == len(encoded) else 0
    accuracy = None
    if score:
        accuracy = plain_accuracy(model, loaded.tokenizer, splits.test.texts, splits.test.label_ids.tolist(),
                                  case.max_length)
    return TrainResult(stats.seconds, stats.examples, tokens, accuracy, stats.steps, padded), loaded


def _padded_tokens(lengths: np.ndarray, cfg: Any) -> int:
    """Tokens spurlab's length-grouped batches actually compute (each batch padded to its longest row)."""
    from spurlab.train import length_grouped_batches

    batches = length_grouped_batches(lengths, cfg.batch_size, cfg.seed, cfg.group_by_length)
    return int(sum(len(rows) * int(lengths[rows].max()) for rows in batches))


def _row(recipe: str, case: ModelCase, precision: str, result: TrainResult, note: str = "") -> dict[str, Any]:
    return {"model": case.key, "recipe": recipe, "precision": precision, "steps": result.steps,
            "examples": result.examples, "seconds": round(result.seconds, 3),
            "examples_per_s": round(result.examples_per_s, 3), "useful_tokens": result.useful_tokens,
            "tokens_per_s": round(result.tokens_per_s, 1), "computed_tokens": result.padded_tokens or None,
            "accuracy": None if result.accuracy is None else round(result.accuracy, 4), "note": note,
            "load_average_1m": load_average()}


def bench_train(plan: Plan, log: Any) -> list[dict[str, Any]]:
    """spurlab vs Trainer+PEFT (dynamic padding, full epoch) vs Trainer+PEFT (fixed 512, a few steps)."""
    from spurlab.models import resolve_model_name

    rows: list[dict[str, Any]] = []
    for case in plan.cases:
        splits = _splits(case)
        path = resolve_model_name(case.spec)  # converts the bundled GGUF once, untimed
        labels, n_labels = splits.train.label_ids.tolist(), len(splits.train.label_names)
        test_texts, test_labels = splits.test.texts, splits.test.label_ids.tolist()
        common = dict(target_modules=case.targets, rank=case.rank, alpha=case.alpha, dropout=case.dropout,
                      lr=case.lr, weight_decay=0.0, seed=case.seed, test_texts=test_texts, test_labels=test_labels)
        for precision in plan.precisions:
            log(f"train {case.key} {precision}: warm-up")
            spurlab_train(case, splits, precision, max_steps=2, score=False)  # oneDNN kernels, lazy imports
            log(f"train {case.key} {precision}: spurlab ({case.n_train} rows, batch {case.batch_size})")
            result, _ = spurlab_train(case, splits, precision)
            rows.append(_row("spurlab", case, precision, result, "one epoch"))
            log(f"  {rows[-1]['examples_per_s']} ex/s, accuracy {rows[-1]['accuracy']}")
            log(f"train {case.key} {precision}: Trainer+PEFT, dynamic padding")
            result = trainer_recipe(path, splits.train.texts, labels, n_labels, batch_size=case.batch_size,
                                    bf16=precision == "bf16", max_length=case.max_length, pad_to_max=False,
                                    max_steps=None, **common)
            rows.append(_row("trainer_dynamic", case, precision, result, "one epoch"))
            log(f"  {rows[-1]['examples_per_s']} ex/s, accuracy {rows[-1]['accuracy']}")
            log(f"train {case.key} {precision}: Trainer+PEFT, padded to 512 ({case.fixed_steps} steps)")
            result = trainer_recipe(path, splits.train.texts, labels, n_labels, batch_size=case.fixed_batch,
                                    bf16=precision == "bf16", max_length=512, pad_to_max=True,
                                    max_steps=case.fixed_steps, **common)
            rows.append(_row("trainer_fixed512", case, precision, result,
                             f"{result.steps} steps of batch {case.fixed_batch}, throughput only"))
            log(f"  {rows[-1]['examples_per_s']} ex/s")
    return rows


# --------------------------------------------------------------------------------------------- evaluation


def bench_eval(plan: Plan, log: Any) -> list[dict[str, Any]]:
    """spurlab's predictor (tokenisation included) vs the text-classification pipeline, same model and texts."""
    from spurlab.evaluate.predict import predict
    from spurlab.models import load_classifier
    from spurlab.models.config import ModelConfig
    from spurlab.train import encode, seed_everything

    case = plan.cases[0]
    splits = _splits(ModelCase(**{**asdict(case), "n_train": plan.eval_texts}))
    texts = splits.train.texts[: plan.eval_texts]
    seed_everything(case.seed)
    loaded = load_classifier(ModelConfig(name=case.spec), splits.train.label_names)
    model, tok = loaded.model.eval(), loaded.tokenizer
    cpu = torch.device("cpu")
    rows: list[dict[str, Any]] = []

    def spurlab_predict(precision: str) -> tuple[float, np.ndarray]:
        predict(model, encode(tok, texts[:64], case.max_length), cpu, precision)  # warm-up
        start = time.perf_counter()
        preds = predict(model, encode(tok, texts, case.max_length), cpu, precision)
        return time.perf_counter() - start, preds

    reference: np.ndarray | None = None
    for name, run in (("spurlab_predict", lambda: spurlab_predict("fp32")),
                      ("spurlab_predict_bf16", lambda: spurlab_predict("bf16")),
                      ("pipeline_batch64", lambda: pipeline_eval(model, tok, texts, 64)),
                      ("pipeline_default", lambda: pipeline_eval(model, tok, texts, None))):
        log(f"eval {case.key}: {name} on {len(texts)} texts")
        seconds, preds = run()
        preds = np.asarray(preds)
        reference = preds if reference is None else reference
        rows.append({"model": case.key, "predictor": name, "texts": len(texts), "seconds": round(seconds, 3),
                     "texts_per_s": round(len(texts) / seconds, 1),
                     "agreement_with_spurlab_fp32": round(float((preds == reference).mean()), 4),
                     "load_average_1m": load_average()})
        log(f"  {rows[-1]['texts_per_s']} texts/s")
    return rows


# ---------------------------------------------------------------------------------------------- FLOPs


def bench_flops(plan: Plan, train_rows: list[dict[str, Any]], log: Any) -> dict[str, Any]:
    """Useful FLOP utilisation of each training row: FLOP model × useful tokens/s ÷ measured matmul GFLOP/s."""
    from spurlab.models import load_classifier
    from spurlab.models.config import ModelConfig
    from spurlab.train import encode

    log("flops: measuring matmul throughput (fp32, bf16)")
    peaks = {"fp32": matmul_peak(torch.float32, seconds=plan.matmul_seconds),
             "bf16": matmul_peak(torch.bfloat16, seconds=plan.matmul_seconds)}
    models: dict[str, Any] = {}
    rows = []
    for case in plan.cases:
        splits = _splits(case)
        loaded = load_classifier(ModelConfig(name=case.spec), splits.train.label_names)
        fm = flop_model(loaded.model, case.rank, case.targets)
        lengths = encode(loaded.tokenizer, splits.train.texts, case.max_length).lengths
        per_epoch = fm.train_flops(lengths.tolist())
        per_token = per_epoch / lengths.sum()
        models[case.key] = {**fm.as_dict(), "train_flops_per_useful_token": round(per_token),
                            "mean_useful_length": round(float(lengths.mean()), 2)}
        for row in train_rows:
            if row["model"] != case.key:
                continue
            achieved = per_token * row["tokens_per_s"] / 1e9
            rows.append({"model": case.key, "recipe": row["recipe"], "precision": row["precision"],
                         "useful_gflops": round(achieved, 2),
                         "utilisation": round(achieved / peaks[row["precision"]]["gflops"], 4)})
    return {"matmul_gflops": peaks, "models": models, "rows": rows}


# ---------------------------------------------------------------------------------------------- overhead


def bench_overhead(plan: Plan, log: Any) -> dict[str, Any]:
    """Wall time of a demo-sized ``spurlab run`` (a fresh process) against the training + evaluation inside it."""
    import yaml

    from spurlab.experiment.config import config_to_dict
    from spurlab.experiment.demo import demo_configs

    cfg = config_to_dict(demo_configs(plan.overhead_train)[1])  # token-negative: injection + spurious sets
    cfg["data"]["max_test"] = plan.overhead_test
    if plan.quick:
        cfg["train"]["epochs"] = 1
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "run.yaml"
        config.write_text(yaml.safe_dump(cfg), encoding="utf-8")
        out = Path(tmp) / "run"
        log(f"overhead: spurlab run ({cfg['data']['max_train']} train rows, {cfg['train']['epochs']} epochs)")
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "spurlab", "run", str(config), "--out", str(out),
                               "--no-progress"], capture_output=True, text=True, check=False)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            return {"error": (proc.stderr or proc.stdout).strip().splitlines()[-1:]}
        metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    timings = metrics["meta"]["timings"]
    work = timings["train_s"] + sum(v for k, v in timings.items() if k.startswith("eval_"))
    inside = timings["total_s"] - work
    return {"config": {k: cfg[k] for k in ("data", "train")}, "wall_s": round(wall, 3), "timings": timings,
            "startup_s": round(wall - timings["total_s"], 3), "work_s": round(work, 3),
            "overhead_s": round(wall - work, 3), "overhead_share": round((wall - work) / wall, 4),
            "in_process_overhead_share": round(inside / wall, 4), "precision": metrics["meta"]["precision"],
            "train_examples_per_s": round(metrics["meta"]["train_examples_per_second"], 2),
            "clean_accuracy": metrics["clean"].get("accuracy")}


# -------------------------------------------------------------------------------------------------- scan


def bench_scan(plan: Plan, log: Any) -> dict[str, Any]:
    """The scanner's speed, measured by the scanner's own benchmark (``bench.detection.speed``) when present."""
    try:
        from bench.detection import speed
    except ImportError as exc:
        return {"source": None, "note": f"not measured here: no scanner speed benchmark ({exc})"}
    rows = 100_000 if plan.quick else 200_000  # bench.detection itself reports the 1M-row figure
    log(f"scan: bench.detection.speed({rows:,} rows)")
    return {"source": "bench.detection.speed", "result": speed(rows, min(20_000, rows))}
