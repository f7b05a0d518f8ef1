"""Remove or mask flagged tokens and token shapes, with a manifest of every change.

Flagged features come from a scan (a :class:`ScanReport`, a list of findings, or ``findings.json``) or from
an automatic scan at a given ``alpha``. A token feature matches every token that normalises to it; a shape
matches every token of that shape (flagging ``<DATE>`` removes every date); a finding at position ``inserted``
only the occurrences that read as inserted (:mod:`spurlab.scan.inserted`), decided on the data being cleaned.
Subword findings (``--tokenizer`` scans) cannot be mapped back to text spans and are skipped, which the summary says.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field, field_validator

from spurlab.data.dataset import TextDataset
from spurlab.data.formats import read_bytes
from spurlab.data.transform import TransformResult
from spurlab.defend.base import DefenseParams, register_defense
from spurlab.errors import SpurlabError
from spurlab.scan.inserted import inserted_mask
from spurlab.scan.scanner import Finding, ScanConfig, ScanReport, scan
from spurlab.scan.shapes import alone_flags, normalize_token, shapes_of, token_spans

Mode = Literal["remove", "mask"]
DEFAULT_MASK = "[MASK]"

@dataclass
class FlagSet:
    """What to strip: normalised token strings and shape names, anywhere or only as a row's first/last token."""

    tokens: set[str] = field(default_factory=set)
    shapes: set[str] = field(default_factory=set)
    lowercase: bool = True
    skipped: list[str] = field(default_factory=list)  # findings that cannot be mapped to text
    at: dict[str, set[str]] = field(default_factory=lambda: {"start": set(), "end": set(), "inserted": set()})
    phrases: set[tuple[str, ...]] = field(default_factory=set)  # normalised word tokens of flagged phrases

    @classmethod
    def from_findings(cls, findings: Iterable[Finding], lowercase: bool = True) -> FlagSet:
        flags = cls(lowercase=lowercase)
        for f in findings:
            if f.kind == "phrase" and f.tokens:
                flags.phrases.add(tuple(normalize_token(t, lowercase) for t in f.tokens))
                continue
            if f.kind not in ("shape", "token"):
                flags.skipped.append(f.feature)
                continue
            name = f.feature if f.kind == "shape" else normalize_token(f.feature, lowercase)
            if f.position in flags.at:
                flags.at[f.position].add(name)
            elif f.kind == "shape":
                flags.shapes.add(name)
            else:
                flags.tokens.add(name)
        return flags

    def phrase_hits(self, tokens: list[str]) -> list[tuple[int, int]]:
        """``(first, stop)`` token ranges of flagged phrases in a row's tokens, longest first, left to right, not
        overlapping."""
        if not self.phrases:
            return []
        norm = [normalize_token(t, self.lowercase) for t in tokens]
        lengths = sorted({len(p) for p in self.phrases}, reverse=True)
        hits: list[tuple[int, int]] = []
        i = 0
        while i < len(norm):
            n = next((n for n in lengths if tuple(norm[i:i + n]) in self.phrases), 0)
            if n:
                hits.append((i, i + n))
            i += n or 1
        return hits

    def match(self, token: str, index: int = -2, n_tokens: int = -1, inserted: bool = False) -> str | None:
        """The flagged feature a token at ``index`` of ``n_tokens`` matches, or None.

        Positional features are named ``^feature`` (first token), ``feature$`` (last token) and ``+feature``
        (an occurrence that reads as inserted, ``inserted``: see ``spurlab.scan.inserted``).
        """
        names = (normalize_token(token, self.lowercase), *shapes_of(token))
        for name in names:
            if name in self.tokens or name in self.shapes:
                return name
        if index == 0:
            for name in names:
                if name in self.at["start"]:
                    return f"^{name}"
        if index == n_tokens - 1:
            for name in names:
                if name in self.at["end"]:
                    return f"{name}$"
        if inserted:
            for name in names:
                if name in self.at["inserted"]:
                    return f"+{name}"
        return None


def _strip(text: str, spans: list[tuple[int, int]], mode: Mode, mask: str) -> str:
    """Mask the given spans of ``text``, or remove them together with one neighbouring whitespace run."""
    out: list[str] = []
    pos = 0
    for start, end in spans:
        piece = text[pos:start]
        if mode == "mask":
            piece += mask
        elif start > 0 and text[start - 1].isspace() and (end == len(text) or text[end].isspace()):
            piece = piece.rstrip()
        out.append(piece)
        pos = end
    result = "".join(out) + text[pos:]
    if mode == "remove" and spans and not text[:spans[0][0]].strip():
        result = result.lstrip()
    return result


def sanitize_texts(texts: list[str], flags: FlagSet, mode: Mode = "remove", mask: str = DEFAULT_MASK
                   ) -> tuple[list[str], list[dict[str, Any]]]:
    """Sanitized texts and one manifest record per changed row."""
    out = list(texts)
    manifest = []
    all_spans = [token_spans(text) for text in texts]
    inserted = _inserted_flags(texts, all_spans, flags.lowercase) if flags.at["inserted"] else None
    for row, (text, spans) in enumerate(zip(texts, all_spans, strict=True)):
        ins = inserted[row] if inserted is not None else [False] * len(spans)
        phrase = flags.phrase_hits([tok for _, _, tok in spans])
        in_phrase = {i for a, b in phrase for i in range(a, b)}
        hits = sorted([(spans[a][0], spans[b - 1][1], text[spans[a][0]:spans[b - 1][1]],
                        " ".join(normalize_token(t, flags.lowercase) for _, _, t in spans[a:b])) for a, b in phrase]
                      + [(s, e, tok, feat) for i, (s, e, tok) in enumerate(spans) if i not in in_phrase
                         and (feat := flags.match(tok, i, len(spans), ins[i])) is not None])
        if not hits:
            continue
        out[row] = _strip(text, [(s, e) for s, e, _, _ in hits], mode, mask)
        manifest.append({"row": row, "removed": [h[2] for h in hits], "offsets": [[h[0], h[1]] for h in hits],
                         "features": [h[3] for h in hits]})
    return out, manifest


def _inserted_flags(texts: list[str], spans: list[list[tuple[int, int, str]]], lowercase: bool
                    ) -> list[list[bool]]:
    """Per row, per token: whether that occurrence reads as inserted, exactly as the scanner decides it."""
    lengths = np.fromiter(map(len, spans), dtype=np.int64, count=len(spans))
    flat = [normalize_token(tok, lowercase) for row in spans for _, _, tok in row]
    ids, uniques = pd.factorize(np.asarray(flat, dtype=object)) if flat else (np.zeros(0, dtype=np.int64), [])
    alone = np.fromiter((a for text, row in zip(texts, spans, strict=True) for a in alone_flags(text, row)),
                        dtype=bool, count=len(flat))
    mask = inserted_mask(np.asarray(ids, dtype=np.int64), lengths, alone, uniques).tolist()
    bounds = np.concatenate([[0], np.cumsum(lengths)]).tolist()
    return [mask[bounds[r]:bounds[r + 1]] for r in range(len(spans))]


def sanitize(dataset: TextDataset, findings: ScanReport | Iterable[Finding] | None = None, *,
             mode: Mode = "remove", alpha: float = 0.01, scan_config: ScanConfig | None = None,
             top: int | None = None, mask: str = DEFAULT_MASK, skip_explained: bool = False) -> TransformResult:
    """Strip flagged tokens/shapes from every row (all labels); ``findings=None`` scans first at ``alpha``.

    ``skip_explained`` drops the findings the context test explained by the text (genuine content words), then
    ``top`` keeps only the first ``top`` of the rest (they are ranked). Row order and other columns are kept.
    """
    if mode not in ("remove", "mask"):
        raise SpurlabError(f"unknown mode {mode!r} (use remove or mask)")
    if top is not None and top < 1:
        raise SpurlabError(f"--top must be at least 1, got {top}")
    if len(dataset) == 0:
        raise SpurlabError(f"{dataset.name}: the dataset has no rows")
    lowercase = True
    if findings is None:
        config = scan_config or ScanConfig(alpha=alpha)
        if scan_config is None:
            config.validate()
        report = scan(dataset, config)
        chosen, source = report.findings, f"auto scan (alpha={config.alpha}, {config.correction})"
        lowercase = config.lowercase
    elif isinstance(findings, ScanReport):
        chosen, source = findings.findings, "findings"
        lowercase = bool(findings.config.get("lowercase", True))
    else:
        chosen, source = list(findings), "findings"
    chosen = [f for f in chosen if not (skip_explained and f.explained_by_text)]
    chosen = chosen[:top] if top is not None else chosen
    flags = FlagSet.from_findings(chosen, lowercase)
    texts, manifest = sanitize_texts(dataset.texts, flags, mode, mask)
    labels = dataset.label_strings
    for record in manifest:
        record["label"] = labels[record["row"]]
        record["mode"] = mode
    frame = dataset.frame.copy()
    frame[dataset.text_col] = texts
    per_feature = Counter(f for r in manifest for f in r["features"])
    summary = {
        "dataset": dataset.name, "mode": mode, "source": source, "n_rows": len(dataset),
        "n_rows_changed": len(manifest), "n_removed": sum(len(r["removed"]) for r in manifest),
        "rows_changed_per_label": dict(Counter(r["label"] for r in manifest)),
        "removed_per_feature": dict(per_feature.most_common()),
        "flagged_tokens": sorted(flags.tokens), "flagged_shapes": sorted(flags.shapes),
        "flagged_first_token": sorted(flags.at["start"]), "flagged_last_token": sorted(flags.at["end"]),
        "flagged_inserted": sorted(flags.at["inserted"]),
        "flagged_phrases": sorted(" ".join(p) for p in flags.phrases),
        "skipped_findings": flags.skipped, "lowercase": lowercase, "skip_explained": skip_explained,
    }
    if mode == "mask":
        summary["mask"] = mask
    return TransformResult(dataset.with_frame(frame), manifest, summary)


def load_findings(path: str | Path) -> ScanReport:
    """Read ``findings.json``; a missing or malformed file is one clear line."""
    from spurlab.scan.scanner import report_from_dict

    path = Path(path)
    if not path.exists():
        raise SpurlabError(f"findings file not found: {path}")
    try:
        data = json.loads(read_bytes(path).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SpurlabError(f"{path}: not valid JSON ({exc})") from exc
    try:
        return report_from_dict(data)
    except SpurlabError as exc:
        raise SpurlabError(f"{path}: {exc}") from None


@register_defense("sanitize")
class ScanSanitize(DefenseParams):
    """Scan (or use given findings), then strip what was flagged."""

    alpha: float = Field(0.01, gt=0, le=1, description="significance level of the automatic scan")
    mode: Mode = "remove"
    findings: str | ScanReport | list[Finding] | None = Field(
        None, description="findings.json of 'spurlab scan' (a path), or findings; None = scan first")
    top: int | None = Field(None, ge=1, description="use only the first N (ranked) findings")
    skip_explained: bool = False

    @field_validator("findings")
    @classmethod
    def _readable_findings(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                load_findings(value)
            except SpurlabError as exc:
                raise ValueError(str(exc)) from None
        return value

    def apply(self, dataset: TextDataset) -> TransformResult:
        findings = load_findings(self.findings) if isinstance(self.findings, str) else self.findings
        return sanitize(dataset, findings, mode=self.mode, alpha=self.alpha, top=self.top,
                        skip_explained=self.skip_explained)
