"""The paper's post-processing of an LLM paraphrase, as pure functions.

The answer's first clean line is kept: blank lines, chatter ("Here's a paraphrase:", "Sure! ...", "I'm
sorry ..."), notes ("Note: ...") and lines ending in a colon are dropped, up to two leading labels
("Paraphrased review:", "The review is:") are cut from the line they introduce and surrounding quotes are
removed. The result falls back to the input when it is empty or its
length is below 0.3x or above 3x the input's.
"""

from __future__ import annotations

import re

MIN_RATIO = 0.3
MAX_RATIO = 3.0

# lines that talk about the answer instead of being it
_META = re.compile(
    r"^\W{0,3}(?:note\b|here(?:'s|’s| is| are)\b|sure\b|certainly\b|of course\b|okay\b|ok\b|i hope\b"
    r"|i'm sorry\b|i am sorry\b|i'd be happy\b|i would be happy\b|i can't\b|i cannot\b)",
    re.IGNORECASE)
# "Paraphrase:", "Paraphrased review:", "**Revised version:**", "The review is:" in front of the answer
_LABEL = re.compile(r"^\W{0,3}(?:[\w'’-]+\s+){0,3}(?:paraphrase[ds]?|rewrite|rewritten|version|review|text|tweet"
                    r"|sentence|is)\s*(?:\*\*)?\s*:\s*(?:\*\*)?\s*", re.IGNORECASE)
_QUOTES = "\"'“”‘’`"


def _unquote(line: str) -> str:
    line = line.strip().strip("*").strip()
    if len(line) >= 2 and line[0] in _QUOTES and line[-1] in _QUOTES:
        line = line[1:-1].strip()
    return line


def extract_paraphrase(answer: str) -> str:
    """The first clean line of a model's answer ("" when there is none)."""
    for raw in answer.splitlines():
        line = raw.strip()
        if not line or _META.match(line) or line.endswith(":"):  # an introduction, not the answer
            continue
        for _ in range(2):  # "Slightly edited version: Review: ..."
            line = _LABEL.sub("", line, count=1)
        line = _unquote(line)
        if line:
            return line
    return ""


def fallback_reason(original: str, candidate: str, min_ratio: float = MIN_RATIO,
                    max_ratio: float = MAX_RATIO) -> str | None:
    """Why ``candidate`` must not replace ``original`` (``empty``, ``too_short``, ``too_long``), or None."""
    if not candidate.strip():
        return "empty"
    ratio = len(candidate) / max(len(original), 1)
    if ratio < min_ratio:
        return "too_short"
    if ratio > max_ratio:
        return "too_long"
    return None


def postprocess(original: str, answer: str) -> tuple[str, str | None]:
    """The text that replaces ``original`` and the fallback reason (None when the paraphrase is used)."""
    candidate = extract_paraphrase(answer)
    reason = fallback_reason(original, candidate)
    return (original, reason) if reason else (candidate, None)
