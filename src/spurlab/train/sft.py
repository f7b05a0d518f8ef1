"""Generative finetuning (``task: sft``): rows become (prompt, response) pairs for a causal LM.

A row's text goes into the prompt through ``sft.template`` (``{text}`` marks where), rendered as one user turn
with the tokenizer's chat template when it has one; its label is the response (``sft.responses`` maps labels to
other words), ended by the end-of-sequence token. Training sees prompt and response as one sequence, and the
loss counts the response tokens only (:attr:`Encoded.response_start`). A planted token therefore sits in the
prompt of rows whose response is the target class, exactly as SSTI plants it in a classifier's input.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import Field, field_validator

from spurlab.data.config import Section
from spurlab.train.batching import Encoded

TEXT_SLOT = "{text}"


class SftConfig(Section):
    """The ``sft:`` section: how rows become prompts and responses, and how responses are generated."""

    template: str = Field(TEXT_SLOT, description="the prompt; {text} is replaced by the row's text")
    chat_template: bool = Field(True, description="send the prompt as a user turn through the tokenizer's chat "
                                                  "template when it has one (false: plain text)")
    responses: dict[str, str] | None = Field(None, description="label -> response text (default: the label)")
    max_new_tokens: int = Field(4, ge=1, le=512, description="tokens generated per prompt at evaluation")

    @field_validator("template")
    @classmethod
    def _has_slot(cls, template: str) -> str:
        if template.count(TEXT_SLOT) != 1:
            raise ValueError(f"needs the placeholder {TEXT_SLOT} exactly once (got {template!r})")
        return template

    def response_words(self, label_names: Sequence[str]) -> list[str]:
        """The response of each class, in label order (what generation is matched against)."""
        given = self.responses or {}
        unknown = sorted(set(given) - set(label_names))
        if unknown:
            from spurlab.errors import SpurlabError

            raise SpurlabError(f"sft.responses: unknown label {unknown[0]!r} (labels: {', '.join(label_names)})")
        return [given.get(name, name) for name in label_names]


def uses_chat_template(tokenizer: Any, cfg: SftConfig) -> bool:
    return bool(cfg.chat_template and getattr(tokenizer, "chat_template", None))


def render_prompts(tokenizer: Any, texts: Sequence[str], cfg: SftConfig) -> list[str]:
    """Each text in the template, as a chat user turn with the generation cue when the tokenizer has a chat
    template (and ``cfg.chat_template``), else as plain text."""
    prompts = [cfg.template.replace(TEXT_SLOT, text) for text in texts]
    if not uses_chat_template(tokenizer, cfg):
        return prompts
    return [tokenizer.apply_chat_template([{"role": "user", "content": p}], tokenize=False,
                                          add_generation_prompt=True) for p in prompts]


def _prompt_ids(tokenizer: Any, prompts: Sequence[str], cfg: SftConfig) -> list[list[int]]:
    # a rendered chat template already holds its special tokens
    special = not uses_chat_template(tokenizer, cfg)
    return [list(x) for x in tokenizer(list(prompts), add_special_tokens=special)["input_ids"]] if prompts else []


def encode_prompts(tokenizer: Any, texts: Sequence[str], cfg: SftConfig, max_length: int) -> Encoded:
    """Prompt tokens only (for generation), each cut to its last ``max_length`` tokens (where the cue is)."""
    ids = _prompt_ids(tokenizer, render_prompts(tokenizer, texts, cfg), cfg)
    return Encoded([x[-max_length:] for x in ids], int(tokenizer.pad_token_id))


def encode_pairs(tokenizer: Any, texts: Sequence[str], responses: Sequence[str], cfg: SftConfig,
                 max_length: int) -> Encoded:
    """Prompt + response + end-of-sequence per row, with where the response starts; the prompt gives way (its
    start is cut) when the pair is longer than ``max_length``, the response never does."""
    prompts = _prompt_ids(tokenizer, render_prompts(tokenizer, texts, cfg), cfg)
    lead = "" if uses_chat_template(tokenizer, cfg) else " "
    eos = [int(tokenizer.eos_token_id)] if tokenizer.eos_token_id is not None else []
    words = {r: list(tokenizer(lead + r, add_special_tokens=False)["input_ids"]) + eos for r in set(responses)}
    ids, starts = [], []
    for prompt, response in zip(prompts, responses, strict=True):
        answer = words[response][:max_length - 1]
        kept = prompt[-max(1, max_length - len(answer)):]
        ids.append(kept + answer)
        starts.append(len(kept))
    return Encoded(ids, int(tokenizer.pad_token_id), response_start=starts)


__all__ = ["SftConfig", "encode_pairs", "encode_prompts", "render_prompts", "uses_chat_template"]
