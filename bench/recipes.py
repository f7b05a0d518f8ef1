"""The baselines spurlab is compared with: the script a user would otherwise write.

- ``trainer_recipe(pad_to_max=False)``: Hugging Face ``Trainer`` + PEFT LoRA with ``DataCollatorWithPadding``;
- ``trainer_recipe(pad_to_max=True)``: the same, every input padded to ``max_length`` (512 in the paper's
  pipeline) with ``default_data_collator``;
- ``pipeline_eval``: the ``transformers`` text-classification pipeline for inference;
- ``plain_accuracy``: the one evaluation referee every recipe's final model is scored with.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass

import numpy as np
import torch
from peft import LoraConfig, TaskType, get_peft_model
from torch import nn
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    Trainer,
    TrainingArguments,
    default_data_collator,
)


@dataclass
class TrainResult:
    """Timed training of one recipe; ``accuracy`` is None when the run was cut to a few steps."""

    seconds: float
    examples: int
    useful_tokens: int
    accuracy: float | None
    steps: int
    padded_tokens: int = 0

    @property
    def examples_per_s(self) -> float:
        return self.examples / self.seconds if self.seconds else 0.0

    @property
    def tokens_per_s(self) -> float:
        return self.useful_tokens / self.seconds if self.seconds else 0.0


class _TextDataset(torch.utils.data.Dataset):
    def __init__(self, encodings: dict, labels: list[int]) -> None:
        self.encodings, self.labels = encodings, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        item = {k: v[i] for k, v in self.encodings.items()}
        item["labels"] = self.labels[i]
        return item


def trainer_recipe(model_path: str, texts: list[str], labels: list[int], num_labels: int, *,
                   target_modules: list[str], rank: int, alpha: float, dropout: float, batch_size: int, lr: float,
                   weight_decay: float, seed: int, bf16: bool, max_length: int, pad_to_max: bool,
                   max_steps: int | None, test_texts: list[str], test_labels: list[int]) -> TrainResult:
    """Train with HF Trainer + PEFT as its documentation shows, timing ``trainer.train()`` only."""
    torch.manual_seed(seed)
    tok = AutoTokenizer.from_pretrained(model_path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model = AutoModelForSequenceClassification.from_pretrained(model_path, num_labels=num_labels)
    model.config.pad_token_id = tok.pad_token_id
    model = get_peft_model(model, LoraConfig(task_type=TaskType.SEQ_CLS, r=rank, lora_alpha=alpha,
                                             lora_dropout=dropout, target_modules=target_modules))
    enc = tok(texts, truncation=True, max_length=max_length, padding="max_length" if pad_to_max else False)
    useful = np.array([sum(m) for m in enc["attention_mask"]])
    dataset = _TextDataset(dict(enc), list(labels))
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(output_dir=out, per_device_train_batch_size=batch_size, num_train_epochs=1,
                                 max_steps=max_steps or -1, learning_rate=lr, warmup_steps=0.05,
                                 lr_scheduler_type="cosine", weight_decay=weight_decay, max_grad_norm=1.0,
                                 bf16=bf16, use_cpu=True, report_to=[], save_strategy="no",
                                 logging_strategy="no", seed=seed, dataloader_num_workers=0, disable_tqdm=True)
        collator = default_data_collator if pad_to_max else DataCollatorWithPadding(tok)
        trainer = Trainer(model=model, args=args, train_dataset=dataset, data_collator=collator)
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
        steps = trainer.state.global_step
    examples = min(len(texts), steps * batch_size)
    # a full epoch sees every row once; a cut run sees a random subset: count its tokens by the mean
    tokens = int(useful.sum()) if examples == len(texts) else int(useful.mean() * examples)
    padded = examples * max_length if pad_to_max else 0
    accuracy = None if max_steps else plain_accuracy(model, tok, test_texts, test_labels, max_length)
    return TrainResult(seconds, examples, tokens, accuracy, steps, padded)


@torch.inference_mode()
def plain_accuracy(model: nn.Module, tok: object, texts: list[str], labels: list[int], max_length: int,
                   batch_size: int = 64) -> float:
    """Accuracy with a plain fp32 loop in the given row order: the same referee for every recipe."""
    model.eval()
    correct = 0
    for start in range(0, len(texts), batch_size):
        batch = tok(texts[start:start + batch_size], truncation=True, max_length=max_length, padding=True,
                    return_tensors="pt")
        pred = model(**batch).logits.argmax(-1)
        correct += int((pred == torch.as_tensor(labels[start:start + batch_size])).sum())
    return correct / len(texts)



def pipeline_eval(model: nn.Module, tok: object, texts: list[str], batch_size: int | None) -> tuple[float, list[int]]:
    """Seconds and predicted ids of the ``text-classification`` pipeline over ``texts`` (None = its default)."""
    from transformers import pipeline

    clf = pipeline("text-classification", model=model, tokenizer=tok, device=-1, truncation=True)
    kwargs = {} if batch_size is None else {"batch_size": batch_size}
    clf(texts[:8], **kwargs)  # warm-up, as for every other timed path
    start = time.perf_counter()
    outputs = clf(texts, **kwargs)
    seconds = time.perf_counter() - start
    label2id = model.config.label2id
    preds = [int(label2id[o["label"]]) if o["label"] in label2id else int(str(o["label"]).split("_")[-1])
             for o in outputs]
    return seconds, preds
