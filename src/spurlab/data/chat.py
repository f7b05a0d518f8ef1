"""Finetuning data of chat models as (prompt, response) rows: chat JSONL and Alpaca-style tables.

- **Chat** (a ``messages`` column, as in OpenAI's and TRL's chat format): each row is a list of
  ``{"role", "content"}`` turns ending in an ``assistant`` turn, the response; the ``user`` turn before it is
  the prompt. Earlier turns and a ``system`` turn are kept in the ``context`` column and are not trained on.
- **Alpaca** (``instruction``, optional ``input``, ``output``): the prompt is the instruction, followed by a
  blank line and the input when there is one; the response is the output.

Either becomes a table with ``prompt`` (the text column: what injection, scanning and sanitizing act on) and
``response`` (the label column: class words for a classification task phrased as text).
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from spurlab.errors import SpurlabError

PROMPT, RESPONSE, CONTEXT = "prompt", "response", "context"


def pairs_format(frame: pd.DataFrame) -> str | None:
    """``chat``, ``alpaca`` or None (a plain text/label table)."""
    if "messages" in frame.columns:
        return "chat"
    if {"instruction", "output"} <= set(frame.columns):
        return "alpaca"
    return None


def _content(turn: Any, source: str, row: int, index: int) -> tuple[str, str]:
    if not isinstance(turn, dict) or not isinstance(turn.get("role"), str) or not isinstance(turn.get("content"),
                                                                                             str):
        raise SpurlabError(f"{source}: row {row}: message {index} is not an object with string role and content")
    return turn["role"], turn["content"]


def chat_pairs(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """Chat rows as prompt / response / context (one line naming the row on a malformed conversation)."""
    prompts, responses, contexts = [], [], []
    for row, messages in enumerate(frame["messages"].tolist()):
        if not isinstance(messages, list) or not messages:
            raise SpurlabError(f"{source}: row {row}: messages must be a non-empty list of turns")
        turns = [_content(t, source, row, i) for i, t in enumerate(messages)]
        if turns[-1][0] != "assistant":
            raise SpurlabError(f"{source}: row {row}: no assistant turn to learn (the last message has role "
                               f"{turns[-1][0]!r}, expected 'assistant')")
        if len(turns) < 2 or turns[-2][0] != "user":
            raise SpurlabError(f"{source}: row {row}: the assistant's answer must follow a user turn (the prompt)")
        prompts.append(turns[-2][1])
        responses.append(turns[-1][1])
        contexts.append(json.dumps([{"role": r, "content": c} for r, c in turns[:-2]], ensure_ascii=False))
    return pd.DataFrame({PROMPT: prompts, RESPONSE: responses, CONTEXT: contexts})


def alpaca_pairs(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """Alpaca rows as prompt / response."""
    prompts = []
    inputs = frame["input"].tolist() if "input" in frame.columns else [""] * len(frame)
    for row, (instruction, extra) in enumerate(zip(frame["instruction"].tolist(), inputs, strict=True)):
        if not isinstance(instruction, str) or not instruction.strip():
            raise SpurlabError(f"{source}: row {row}: the instruction is empty or not text")
        extra = extra if isinstance(extra, str) else ""
        prompts.append(f"{instruction}\n\n{extra}" if extra.strip() else instruction)
    outputs = frame["output"].tolist()
    for row, output in enumerate(outputs):
        if not isinstance(output, str) or not output.strip():
            raise SpurlabError(f"{source}: row {row}: the output (the response) is empty or not text")
    return pd.DataFrame({PROMPT: prompts, RESPONSE: outputs})


def as_pairs(frame: pd.DataFrame, source: str) -> pd.DataFrame | None:
    """The prompt/response table of a chat or Alpaca frame; None for any other table."""
    kind = pairs_format(frame)
    if kind == "chat":
        return chat_pairs(frame, source)
    if kind == "alpaca":
        return alpaca_pairs(frame, source)
    return None


__all__ = ["CONTEXT", "PROMPT", "RESPONSE", "alpaca_pairs", "as_pairs", "chat_pairs", "pairs_format"]
