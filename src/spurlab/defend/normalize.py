"""Text normalisation: the preprocessing many users believe protects them. Unicode NFKC, invisible format
characters removed, HTML tags stripped (entities unescaped), runs of one punctuation mark collapsed to one,
whitespace collapsed. Each step can be switched off; the manifest names the steps that changed each row and keeps
its original text, so the transform is reversible and its effect on a planted trigger is measurable.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from html.parser import HTMLParser

from spurlab.data.dataset import TextDataset
from spurlab.data.transform import TransformResult
from spurlab.defend.base import DefenseParams, register_defense

STEPS = ("nfkc", "invisible", "html", "punctuation", "whitespace")
_PUNCT_RUN = re.compile(r"([^\w\s])\1+")
_SPACE_RUN = re.compile(r"\s+")


class _TextOnly(HTMLParser):
    """The text of an HTML fragment: tags dropped, character references unescaped."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def strip_html(text: str) -> str:
    """``text`` without HTML tags, comments and declarations, entities unescaped; text without ``<`` or ``&``
    is returned as it is."""
    if "<" not in text and "&" not in text:
        return text
    parser = _TextOnly()
    parser.feed(text)
    parser.close()
    return "".join(parser.parts)


def remove_invisible(text: str) -> str:
    """``text`` without format characters (Unicode category Cf: zero-width space/joiner/non-joiner, BOM, bidi
    marks, soft hyphen, ...)."""
    return "".join(ch for ch in text if unicodedata.category(ch) != "Cf")


def normalize_text(text: str, steps: tuple[str, ...] = STEPS) -> tuple[str, list[str]]:
    """The normalised text and the steps that changed it, applied in the order of ``STEPS``."""
    changed = []
    for step in STEPS:
        if step not in steps:
            continue
        if step == "nfkc":
            new = unicodedata.normalize("NFKC", text)
        elif step == "invisible":
            new = remove_invisible(text)
        elif step == "html":
            new = strip_html(text)
        elif step == "punctuation":
            new = _PUNCT_RUN.sub(r"\1", text)
        else:
            new = _SPACE_RUN.sub(" ", text).strip()
        if new != text:
            changed.append(step)
            text = new
    return text, changed


def normalize(dataset: TextDataset, steps: tuple[str, ...] = STEPS) -> TransformResult:
    """Normalise every row's text; one manifest record (row, label, steps, original) per changed row."""
    texts, manifest = [], []
    labels = dataset.label_strings
    for row, text in enumerate(dataset.texts):
        new, changed = normalize_text(text, steps)
        texts.append(new)
        if changed:
            manifest.append({"row": row, "label": labels[row], "steps": changed, "original": text})
    frame = dataset.frame.copy()
    frame[dataset.text_col] = texts
    per_step = Counter(step for record in manifest for step in record["steps"])
    summary = {"dataset": dataset.name, "steps": [s for s in STEPS if s in steps], "n_rows": len(dataset),
               "n_rows_changed": len(manifest), "rows_changed_per_step": {s: per_step.get(s, 0) for s in STEPS
                                                                         if s in steps},
               "rows_changed_per_label": dict(Counter(r["label"] for r in manifest))}
    return TransformResult(dataset.with_frame(frame), manifest, summary)


@register_defense("normalize")
class Normalize(DefenseParams):
    """Unicode NFKC, invisible characters removed, HTML stripped, punctuation runs and whitespace collapsed."""

    nfkc: bool = True
    invisible: bool = True
    html: bool = True
    punctuation: bool = True
    whitespace: bool = True

    def apply(self, dataset: TextDataset) -> TransformResult:
        return normalize(dataset, tuple(s for s in STEPS if getattr(self, s)))


__all__ = ["STEPS", "Normalize", "normalize", "normalize_text", "remove_invisible", "strip_html"]
