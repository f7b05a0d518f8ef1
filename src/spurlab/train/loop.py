"""The training loop: length-grouped dynamic batches, AdamW/Adafactor, warm-up + cosine/linear/constant
schedule, gradient accumulation and clipping, bf16 autocast, a rich progress bar with loss and examples/s."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from rich.markup import escape
from torch import nn

from spurlab.errors import SpurlabError
from spurlab.models.loading import place
from spurlab.precision import autocast
from spurlab.train.batching import Encoded, collate, length_grouped_batches
from spurlab.train.config import TrainConfig


@dataclass
class TrainStats:
    """What happened during training (goes into ``metrics.json`` → ``meta.train``)."""

    steps: int
    epochs: float
    examples: int
    seconds: float
    examples_per_second: float
    final_loss: float
    losses: list[float] = field(default_factory=list)  # mean loss per optimizer step
    trainable_parameters: int = 0
    total_parameters: int = 0


def seed_everything(seed: int) -> None:
    import random

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _param_groups(model: nn.Module, cfg: TrainConfig, head_modules: list[str]) -> list[dict]:
    """No weight decay on biases and norms; the head gets ``head_lr`` when set."""
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        no_decay = p.ndim < 2 or "norm" in name.lower()
        is_head = any(h in name.split(".") for h in head_modules)
        groups.setdefault((no_decay, is_head), []).append(p)
    out = []
    for (no_decay, is_head), params in groups.items():
        lr = cfg.head_lr if (is_head and cfg.head_lr) else cfg.lr
        out.append({"params": params, "lr": lr, "weight_decay": 0.0 if no_decay else cfg.weight_decay})
    return out


def make_optimizer(model: nn.Module, cfg: TrainConfig, head_modules: list[str]) -> torch.optim.Optimizer:
    groups = _param_groups(model, cfg, head_modules)
    if cfg.optimizer == "adafactor":
        from transformers.optimization import Adafactor

        return Adafactor(groups, lr=cfg.lr, scale_parameter=False, relative_step=False, warmup_init=False)
    return torch.optim.AdamW(groups, lr=cfg.lr)


def lr_lambda(kind: str, warmup: int, total: int):
    """Linear warm-up over ``warmup`` steps, then ``kind`` decay to 0 at ``total`` (constant stays at 1)."""

    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if kind == "constant":
            return 1.0
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        if kind == "linear":
            return max(0.0, 1.0 - progress)
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def plan_steps(n_rows: int, cfg: TrainConfig) -> tuple[int, int]:
    """(optimizer steps in total, batches per epoch)."""
    batches = max(1, math.ceil(n_rows / cfg.batch_size))
    if cfg.max_steps:
        return cfg.max_steps, batches
    per_epoch = max(1, math.ceil(batches / cfg.grad_accum))
    return max(1, math.ceil(cfg.epochs * per_epoch)), batches


def _batch_stream(encoded: Encoded, cfg: TrainConfig) -> Iterator[tuple[int, list[int]]]:
    lengths = encoded.lengths
    epoch = 0
    while True:
        for rows in length_grouped_batches(lengths, cfg.batch_size, cfg.seed + epoch, cfg.group_by_length):
            yield epoch, rows
        epoch += 1


@dataclass
class _AdaptiveRank:
    """AdaLoRA's two additions to a training step: the orthogonality penalty on its singular vectors P and Q
    (``||P^T P - I||_F^2 + ||Q Q^T - I||_F^2`` averaged over them, weighted by ``orth_reg_weight``) and the rank
    budget allocation after each optimizer step."""

    model: nn.Module
    weight: float

    @classmethod
    def of(cls, model: nn.Module) -> _AdaptiveRank | None:
        base = getattr(model, "base_model", None)
        if not hasattr(base, "update_and_allocate"):
            return None
        configs = getattr(model, "peft_config", {})
        weight = float(getattr(next(iter(configs.values()), None), "orth_reg_weight", 0.0) or 0.0)
        return cls(model, weight)

    def penalty(self) -> torch.Tensor | float:
        if not self.weight:
            return 0.0
        terms = []
        for name, p in self.model.named_parameters():
            if not p.requires_grad or p.ndim != 2 or ("lora_A" not in name and "lora_B" not in name):
                continue
            gram = p @ p.T if "lora_A" in name else p.T @ p  # Q Q^T (r x r) or P^T P (r x r)
            terms.append(((gram - torch.eye(gram.shape[0], device=p.device, dtype=p.dtype)) ** 2).sum())
        return self.weight * torch.stack(terms).mean() if terms else 0.0

    def allocate(self, step: int) -> None:
        self.model.base_model.update_and_allocate(step)


def response_loss(logits: torch.Tensor, input_ids: torch.Tensor, loss_mask: torch.Tensor) -> torch.Tensor:
    """Causal-LM loss over the response tokens: position ``t`` predicts token ``t + 1``, counted where token
    ``t + 1`` is in the mask; the mean over every counted token of the batch."""
    counted = loss_mask[:, 1:]
    if not bool(counted.any()):
        return logits.sum() * 0.0
    # only the counted positions are cast to fp32: a full (batch, length, vocabulary) copy is what costs memory
    return nn.functional.cross_entropy(logits[:, :-1][counted].float(), input_ids[:, 1:][counted])


def train_model(model: nn.Module, encoded: Encoded, labels: np.ndarray, cfg: TrainConfig,
                device: torch.device, precision: str, head_modules: list[str] | None = None,
                progress: bool = True, description: str = "training") -> TrainStats:
    """Train ``model`` in place on ``encoded`` rows with integer ``labels`` (a classifier), or on their response
    tokens when ``encoded.response_start`` is set (a causal LM; ``labels`` are then not used)."""
    if len(encoded) == 0:
        raise SpurlabError("training set is empty")
    seed_everything(cfg.seed)
    place(model, device)
    model.train()
    optimizer = make_optimizer(model, cfg, head_modules or [])
    total, batches_per_epoch = plan_steps(len(encoded), cfg)
    warmup = round(cfg.warmup_ratio * total)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(cfg.scheduler, warmup, total))
    params = [p for p in model.parameters() if p.requires_grad]
    stats = TrainStats(0, 0.0, 0, 0.0, 0.0, float("nan"),
                       trainable_parameters=sum(p.numel() for p in params),
                       total_parameters=sum(p.numel() for p in model.parameters()))
    stream = _batch_stream(encoded, cfg)
    adaptive = _AdaptiveRank.of(model)
    bar = _progress(progress)
    start = time.perf_counter()
    batches_seen = 0
    with bar:
        task = bar.add_task(escape(description), total=total, info="")
        for _step in range(total):
            step_loss, step_rows = 0.0, 0
            for _ in range(cfg.grad_accum):
                _, rows = next(stream)
                batch = {k: v.to(device) for k, v in collate(encoded, rows, labels).items()}
                target = batch.pop("labels")
                loss_mask = batch.pop("loss_mask", None)
                with autocast(device, precision):
                    logits = model(**batch).logits
                if loss_mask is None:
                    loss = nn.functional.cross_entropy(logits.float(), target)
                else:
                    loss = response_loss(logits, batch["input_ids"], loss_mask)
                if not torch.isfinite(loss):
                    raise SpurlabError(f"train: the loss became {loss.item()} at step {_step + 1} of {total} "
                                       "(lower train.lr, or check the data); the run is marked failed")
                objective = loss + adaptive.penalty() if adaptive is not None else loss
                (objective / cfg.grad_accum).backward()
                step_loss += loss.item() * len(rows)
                step_rows += len(rows)
                batches_seen += 1
            if cfg.clip_norm:
                torch.nn.utils.clip_grad_norm_(params, cfg.clip_norm)
            optimizer.step()
            if adaptive is not None:  # reads the gradients: before they are cleared
                adaptive.allocate(_step)
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            stats.losses.append(step_loss / step_rows)
            stats.examples += step_rows
            elapsed = time.perf_counter() - start
            bar.update(task, advance=1, info=f"loss {stats.losses[-1]:.4f}  {stats.examples / elapsed:.0f} ex/s")
    stats.seconds = time.perf_counter() - start
    stats.steps = total
    stats.epochs = batches_seen / batches_per_epoch
    stats.examples_per_second = stats.examples / stats.seconds if stats.seconds else 0.0
    stats.final_loss = float(np.mean(stats.losses[-max(1, len(stats.losses) // 10):]))
    model.eval()
    return stats


class _NoProgress:
    def __enter__(self) -> _NoProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def add_task(self, *args: object, **kwargs: object) -> int:
        return 0

    def update(self, *args: object, **kwargs: object) -> None:
        return None


def _progress(enabled: bool):
    if not enabled:
        return _NoProgress()
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TextColumn("{task.fields[info]}"))
