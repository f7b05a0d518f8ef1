"""The paper's LLM-paraphrasing defense: rewrite every row with an instruction-tuned causal LM.

Each row goes through ``prompt`` (with the model's chat template when its tokenizer has one), is sampled
(temperature 0.7, top-p 0.9, up to 150 new tokens, as the paper) in left-padded batches, and is post-processed
by :mod:`spurlab.defend.paraphrase_rules` (first clean line; fall back to the input when empty or < 0.3x /
> 3x its length). Seeded per batch: the same seed, batch size and device give the same texts.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from pydantic import Field, field_validator

from spurlab.data.dataset import TextDataset
from spurlab.data.transform import TransformResult
from spurlab.defend.base import DefenseParams, get_defense, register_defense
from spurlab.defend.paraphrase_rules import postprocess
from spurlab.errors import SpurlabError
from spurlab.runtime import torch_threads

DEFAULT_MODEL = "bundled:smollm2"
DEFAULT_PROMPT = ("Paraphrase the following review using different words but keep the same meaning and "
                  "sentiment. Answer with the paraphrased review only.\n\nReview: {text}")


@register_defense("paraphrase")
class Paraphrase(DefenseParams):
    """The paper's LLM paraphrasing. Parameters are checked when it is built (configs fail early); the model is
    loaded on the first :meth:`apply`."""

    model: str = Field(DEFAULT_MODEL, description="HF model name, a folder or bundled:smollm2")
    prompt: str = Field(DEFAULT_PROMPT, description="instruction with {text} where the row goes")
    chat_template: bool = True
    temperature: float = Field(0.7, ge=0)
    top_p: float = Field(0.9, gt=0, le=1)
    max_new_tokens: int = Field(150, ge=1)
    seed: int = Field(0, ge=0, lt=2**63)
    batch_size: int = Field(8, ge=1)
    max_rows: int | None = Field(None, ge=1)
    threads: int | None = Field(None, ge=1)
    device: str = "auto"
    trust_remote_code: bool = False
    allow_pickle: bool = Field(False, description="also load pickle checkpoints (they can run code)")

    @field_validator("model")
    @classmethod
    def _model(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("give a Hugging Face model name, a folder or bundled:smollm2")
        return value

    @field_validator("prompt")
    @classmethod
    def _prompt(cls, value: str) -> str:
        if "{text}" not in value:
            raise ValueError("must contain {text} (where the row's text goes)")
        return value

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if value != "auto" and value.split(":")[0] not in ("cpu", "cuda", "mps"):
            raise ValueError(f"use auto, cpu, cuda[:N] or mps, got {value!r}")
        return value

    def params(self) -> dict[str, Any]:
        """Everything that decides the output (for summaries and resume requests)."""
        return {"model": self.model, "prompt": self.prompt, "chat_template": self.chat_template,
                "temperature": self.temperature, "top_p": self.top_p, "max_new_tokens": self.max_new_tokens,
                "seed": self.seed, "batch_size": self.batch_size, "max_rows": self.max_rows}

    def apply(self, dataset: TextDataset) -> TransformResult:
        if len(dataset) == 0:
            raise SpurlabError(f"{dataset.name}: the dataset has no rows")
        with torch_threads(self.threads):
            return self._apply(dataset)

    def _apply(self, dataset: TextDataset) -> TransformResult:
        t0 = time.perf_counter()
        generator = ParaphraseGenerator.load(self.model, self.device, self.trust_remote_code, self.allow_pickle)
        load_s = time.perf_counter() - t0
        texts = dataset.texts
        n = len(texts) if self.max_rows is None else min(self.max_rows, len(texts))
        todo = [i for i in range(n) if texts[i].strip()]  # blank rows have nothing to paraphrase
        t1 = time.perf_counter()
        answers: dict[int, str] = {}
        for b, start in enumerate(range(0, len(todo), self.batch_size)):
            rows = todo[start:start + self.batch_size]
            prompts = [generator.build_prompt(self.prompt, texts[i], self.chat_template) for i in rows]
            outs = generator.generate(prompts, temperature=self.temperature, top_p=self.top_p,
                                      max_new_tokens=self.max_new_tokens, seed=self.seed + b)
            answers.update(zip(rows, outs, strict=True))
        gen_s = time.perf_counter() - t1
        new_texts = list(texts)
        labels = dataset.label_strings
        manifest = []
        for row in todo:
            new, reason = postprocess(texts[row], answers[row])
            new_texts[row] = new
            manifest.append({"row": row, "label": labels[row], "original": texts[row], "text": new,
                             "changed": new != texts[row], "fallback": reason, "generated": answers[row]})
        frame = dataset.frame.copy()
        frame[dataset.text_col] = new_texts
        changed = [r for r in manifest if r["changed"]]
        summary = {
            "dataset": dataset.name, "defense": "paraphrase", **self.params(), "device": str(generator.device),
            "used_chat_template": self.chat_template and generator.has_chat_template,
            "n_rows": len(dataset), "n_rows_paraphrased": len(todo), "n_rows_changed": len(changed),
            "n_fallback": sum(r["fallback"] is not None for r in manifest),
            "fallback_reasons": dict(Counter(r["fallback"] for r in manifest if r["fallback"])),
            "rows_changed_per_label": dict(Counter(r["label"] for r in changed)),
            "model_load_s": round(load_s, 3), "generate_s": round(gen_s, 3),
            "seconds_per_row": round(gen_s / len(todo), 4) if todo else None,
        }
        return TransformResult(dataset.with_frame(frame), manifest, summary)


class ParaphraseGenerator:
    """A causal LM and its tokenizer (left padding), generating answers for batches of prompts."""

    def __init__(self, model: Any, tokenizer: Any, device: Any) -> None:
        self.model, self.tokenizer, self.device = model, tokenizer, device
        self.has_chat_template = bool(getattr(tokenizer, "chat_template", None))

    @classmethod
    def load(cls, name: str, device: str = "auto", trust_remote_code: bool = False, allow_pickle: bool = False
             ) -> ParaphraseGenerator:
        """Load by hub name, folder or ``bundled:<model>``; every failure is one :class:`SpurlabError` line.
        Only safetensors weights are read unless ``allow_pickle``, as for ``spurlab run``."""
        from spurlab.models.causal_lm import load_causal_lm

        model, tokenizer, dev = load_causal_lm(name, what="paraphrase model", device=device,
                                               trust_remote_code=trust_remote_code, allow_pickle=allow_pickle,
                                               padding_side="left")  # generation continues from the last position
        return cls(model, tokenizer, dev)

    def build_prompt(self, template: str, text: str, chat: bool = True) -> str:
        content = template.replace("{text}", text)
        if chat and self.has_chat_template:
            return self.tokenizer.apply_chat_template([{"role": "user", "content": content}], tokenize=False,
                                                      add_generation_prompt=True)
        return content

    def generate(self, prompts: list[str], *, temperature: float, top_p: float, max_new_tokens: int,
                 seed: int) -> list[str]:
        """One answer per prompt, sampled with a fixed seed (greedy at temperature 0)."""
        import torch

        from spurlab.models.tokenizer import quiet_transformers

        tok = self.tokenizer
        # a chat template already holds the special tokens (BOS); adding them again would double them
        enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=not self.has_chat_template)
        enc = {k: v.to(self.device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}
        eos = {i for i in (tok.eos_token_id, getattr(self.model.generation_config, "eos_token_id", None))
               if isinstance(i, int)}
        sampling = {"do_sample": True, "temperature": temperature, "top_p": top_p} if temperature > 0 else \
            {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), torch.inference_mode(), quiet_transformers():
            torch.manual_seed(seed)
            out = self.model.generate(**enc, max_new_tokens=max_new_tokens, pad_token_id=tok.pad_token_id,
                                      eos_token_id=sorted(eos) or None, **sampling)
        new = out[:, enc["input_ids"].shape[1]:]
        return [t.strip() for t in tok.batch_decode(new, skip_special_tokens=True)]


def paraphrase(dataset: TextDataset, **params: Any) -> TransformResult:
    """Paraphrase ``dataset`` (see :class:`Paraphrase` for the parameters)."""
    return get_defense("paraphrase", **params).apply(dataset)

