"""Where spurlab's training step spends its time (MiniLM, LoRA r=8 on query/value, batch 32).

``python -m bench.profile_train [--rows 512] [--steps 6] [--rounds 2] [--no-variants]``

1. A stage breakdown of spurlab's step (collate, forward, backward, clip + optimizer) and the top operators
   from ``torch.profiler``, in bf16 and fp32.
2. Variants that each change one thing, run with spurlab's own ``train_model`` for the same steps and
   interleaved in rounds (median taken) so that a neighbour's load hits every variant alike.
Writes ``bench/results/profile.json``; nothing under ``src/`` is changed (variants are configs or patches
applied to the objects in this process only).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bench.perf import RESULTS, ModelCase, _splits, _train_cfg

BASELINE = "fp32 (spurlab's precision: auto on a CPU without AMX)"
CASE = ModelCase("minilm", "bundled:minilm", ["query", "value"], 512, 64, 128)


def _setup(case: ModelCase, precision: str, dropout: float | None = None, weights: str = "float32",
           rows: int | None = None) -> tuple[nn.Module, Any, Any, Any]:
    from spurlab.models import attach_trainable, load_classifier
    from spurlab.models.config import ModelConfig
    from spurlab.train import encode, seed_everything

    splits = _splits(case)
    cfg = _train_cfg(case, precision)
    if dropout is not None:
        cfg.lora.dropout = dropout
    seed_everything(case.seed)
    loaded = load_classifier(ModelConfig(name=case.spec, dtype=weights), splits.train.label_names)
    model = attach_trainable(loaded, cfg.mode, cfg.lora)
    if weights != "float32":  # frozen base in bf16, trainable LoRA + head kept in fp32 for the optimizer
        for p in model.parameters():
            if p.requires_grad:
                p.data = p.data.float()
    texts = splits.train.texts[: rows or len(splits.train)]
    encoded = encode(loaded.tokenizer, texts, case.max_length)
    return model, encoded, splits.train.label_ids[: len(texts)], (cfg, loaded)


def stage_breakdown(case: ModelCase, precision: str, steps: int) -> dict[str, Any]:
    """spurlab's loop body, timed stage by stage, then the same steps under torch.profiler."""
    from spurlab.train import autocast, collate, length_grouped_batches
    from spurlab.train.loop import make_optimizer

    model, encoded, labels, (cfg, loaded) = _setup(case, precision)
    model.train()
    optimizer = make_optimizer(model, cfg, loaded.head_modules)
    params = [p for p in model.parameters() if p.requires_grad]
    batches = length_grouped_batches(encoded.lengths, cfg.batch_size, cfg.seed)
    cpu = torch.device("cpu")
    totals = {"collate": 0.0, "forward": 0.0, "backward": 0.0, "optimizer": 0.0}

    def step(rows: list[int], timed: bool) -> None:
        t0 = time.perf_counter()
        with torch.profiler.record_function("spurlab.collate"):
            batch = collate(encoded, rows, labels)
        target = batch.pop("labels")
        t1 = time.perf_counter()
        with torch.profiler.record_function("spurlab.forward"), autocast(cpu, precision):
            logits = model(**batch).logits
        loss = nn.functional.cross_entropy(logits.float(), target)
        t2 = time.perf_counter()
        with torch.profiler.record_function("spurlab.backward"):
            loss.backward()
        t3 = time.perf_counter()
        with torch.profiler.record_function("spurlab.optimizer"):
            torch.nn.utils.clip_grad_norm_(params, cfg.clip_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        t4 = time.perf_counter()
        if timed:
            for key, dt in zip(totals, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                totals[key] += dt

    for rows in batches[:2]:
        step(rows, False)
    chosen = batches[2: 2 + steps]
    for rows in chosen:
        step(rows, True)
    whole = sum(totals.values())
    acts = [torch.profiler.ProfilerActivity.CPU]
    with torch.profiler.profile(activities=acts, record_shapes=False) as prof:
        for rows in chosen:
            step(rows, False)
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=18, max_name_column_width=48)
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total_self = sum(e.self_cpu_time_total for e in events) or 1.0
    top = [{"op": e.key, "calls": e.count, "self_ms": round(e.self_cpu_time_total / 1e3, 1),
            "share": round(e.self_cpu_time_total / total_self, 4)} for e in events[:18]]
    examples = sum(len(r) for r in chosen)
    return {"precision": precision, "steps": len(chosen), "examples_per_s": round(examples / whole, 2),
            "stage_seconds": {k: round(v, 3) for k, v in totals.items()},
            "stage_share": {k: round(v / whole, 4) for k, v in totals.items()}, "top_ops": top, "table": table}


def no_dropout(model: nn.Module) -> None:
    """Every ``nn.Dropout`` (the model's own and PEFT's ``lora_dropout``) to p=0: no masks, fused attention."""
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0


def accuracy_check(case: ModelCase, log: Callable[[str], None]) -> list[dict[str, Any]]:
    """One full epoch per accuracy-relevant variant, scored by the benchmark's referee."""
    from bench.recipes import plain_accuracy
    from spurlab.train import train_model

    splits = _splits(case)
    out = []
    for name, precision, weights, patch in (("fp32", "fp32", "float32", None),
                                            ("fp32, every dropout 0", "fp32", "float32", no_dropout),
                                            ("bf16, bf16 frozen weights", "bf16", "bfloat16", None)):
        model, encoded, labels, (cfg, loaded) = _setup(case, precision, weights=weights)
        if patch is not None:
            patch(model)
        stats = train_model(model, encoded, labels, cfg, torch.device("cpu"), precision, loaded.head_modules,
                            progress=False)
        acc = plain_accuracy(model.float(), loaded.tokenizer, splits.test.texts, splits.test.label_ids.tolist(),
                             case.max_length)
        out.append({"variant": name, "examples_per_s": round(stats.examples_per_second, 2),
                    "accuracy": round(acc, 4)})
        log(f"accuracy check: {out[-1]}")
    return out


def _run_variant(case: ModelCase, steps: int, precision: str, dropout: float | None = None,
                 weights: str = "float32", threads: int | None = None,
                 patch: Callable[[nn.Module], None] | None = None) -> float:
    from spurlab.train import train_model

    model, encoded, labels, (cfg, loaded) = _setup(case, precision, dropout, weights)
    if patch is not None:
        patch(model)
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        cfg.max_steps = 2
        train_model(model, encoded, labels, cfg, torch.device("cpu"), precision, loaded.head_modules,
                    progress=False)  # warm-up
        cfg.max_steps = steps
        stats = train_model(model, encoded, labels, cfg, torch.device("cpu"), precision, loaded.head_modules,
                            progress=False)
    finally:
        torch.set_num_threads(before)
    return stats.examples_per_second


def variants(case: ModelCase, steps: int, rounds: int, log: Callable[[str], None]) -> list[dict[str, Any]]:
    """ex/s of spurlab's train_model under one-change variants, interleaved over ``rounds``."""
    plan: dict[str, dict[str, Any]] = {
        BASELINE: {"precision": "fp32"},
        "fp32, LoRA dropout 0": {"precision": "fp32", "dropout": 0.0},
        "fp32, every dropout 0 (LoRA + model)": {"precision": "fp32", "patch": no_dropout},
        "bf16 autocast": {"precision": "bf16"},
        "bf16, frozen weights stored in bf16": {"precision": "bf16", "weights": "bfloat16"},
        "bf16, bf16 frozen weights, every dropout 0": {"precision": "bf16", "weights": "bfloat16",
                                                       "patch": no_dropout},
    }
    seen: dict[str, list[float]] = {k: [] for k in plan}
    for r in range(rounds):
        for name, kwargs in plan.items():
            value = _run_variant(case, steps, **kwargs)
            seen[name].append(value)
            log(f"round {r + 1}: {name}: {value:.1f} ex/s")
    base = statistics.median(seen[BASELINE])
    return [{"variant": k, "examples_per_s": round(statistics.median(v), 2), "runs": [round(x, 2) for x in v],
             "vs_default": round(statistics.median(v) / base, 3)} for k, v in seen.items()]


def tokenisation(case: ModelCase) -> dict[str, Any]:
    """Seconds to tokenise the 2,000 benchmark tweets with spurlab's ``encode`` (fast tokenizer)."""
    from spurlab.models import load_tokenizer
    from spurlab.models.config import ModelConfig
    from spurlab.train import encode

    splits = _splits(ModelCase(**{**case.__dict__, "n_train": 2000}))
    tok = load_tokenizer(ModelConfig(name=case.spec))
    start = time.perf_counter()
    encode(tok, splits.train.texts, case.max_length)
    return {"rows": len(splits.train), "seconds": round(time.perf_counter() - start, 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_train", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=512)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--no-variants", action="store_true")
    parser.add_argument("--accuracy", type=int, default=0, metavar="ROWS",
                        help="also train one full epoch of ROWS tweets per variant and score its accuracy")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--out", type=Path, default=RESULTS / "profile.json")
    args = parser.parse_args(argv)
    from bench.__main__ import _quiet

    _quiet()
    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - start:6.1f}s] {message}", flush=True)

    case = ModelCase(**{**CASE.__dict__, "n_train": args.rows})
    result: dict[str, Any] = {"case": case.__dict__, "threads": torch.get_num_threads(),
                              "tokenisation": tokenisation(case)}
    for precision in ("bf16", "fp32"):
        log(f"profile {precision}")
        result[f"profile_{precision}"] = prof = stage_breakdown(case, precision, args.steps)
        log(f"{prof['examples_per_s']} ex/s; stages {prof['stage_share']}\n{prof['table']}")
    if not args.no_variants:
        result["variants"] = variants(case, args.steps, args.rounds, log)
        for v in result["variants"]:
            log(f"{v['variant']}: {v['examples_per_s']} ex/s ({v['vs_default']}× default)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    if args.accuracy:
        result["accuracy"] = accuracy_check(ModelCase(**{**CASE.__dict__, "n_train": args.accuracy,
                                                         "n_test": 1000}), log)
        args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
