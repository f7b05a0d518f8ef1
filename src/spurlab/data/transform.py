"""One result and one writer for every dataset transform (injection, sanitizing, paraphrasing, attacks, defenses).

A transform changes some texts and keeps the rows' order; it returns a :class:`TransformResult`: the new
dataset, one manifest record per changed row (JSON objects; each transform documents its own keys, every
record has ``row``, the 0-based index of the input row) and a JSON-safe summary. A transform that *removes*
rows (a defense that drops suspicious training rows) lists them in ``dropped`` (input row indices) and gives
each a manifest record with ``"dropped": true``; the new dataset is the kept rows in their order.
:func:`save_transform` writes ``data.<ext>`` (the input's format), ``manifest.jsonl`` and ``summary.json``,
atomically as a whole.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spurlab.atomic import finite_json, staged_outputs, write_json, write_text
from spurlab.data.dataset import TextDataset
from spurlab.data.formats import json_lines
from spurlab.data.loaders import table_suffix, write_table
from spurlab.errors import SpurlabError
from spurlab.outputs import DATA_FILES, SCHEMA_VERSION, file_sha256

DATA_STEM = "data"
MANIFEST = "manifest.jsonl"
SUMMARY = "summary.json"


@dataclass
class TransformResult:
    """The transformed dataset (the input's rows in their order, less ``dropped``), one manifest record per
    changed or dropped row, a summary."""

    dataset: TextDataset
    manifest: list[dict[str, Any]]
    summary: dict[str, Any] = field(default_factory=dict)
    dropped: list[int] = field(default_factory=list)


def drop_rows(dataset: TextDataset, rows: Iterable[int], records: Mapping[int, Mapping[str, Any]] | None = None,
              summary: dict[str, Any] | None = None) -> TransformResult:
    """``dataset`` without ``rows``; each dropped row's manifest record is ``records[row]`` (if given) plus
    ``row``, ``label``, ``dropped`` and the ``original`` text."""
    drop = sorted(set(int(r) for r in rows))
    if len(drop) >= len(dataset):
        raise SpurlabError(f"{dataset.name}: the defense would drop every row ({len(dataset)}); nothing is left to "
                           "train on")
    keep = sorted(set(range(len(dataset))) - set(drop))
    texts, labels = dataset.texts, dataset.label_strings
    manifest = [{**dict((records or {}).get(r, {})), "row": r, "label": labels[r], "dropped": True,
                 "original": texts[r]} for r in drop]
    frame = dataset.frame.iloc[keep].reset_index(drop=True)
    summary = {**(summary or {}), "n_rows": len(dataset), "n_dropped": len(drop),
               "dropped_per_label": {name: sum(labels[r] == name for r in drop) for name in dataset.label_names}}
    return TransformResult(dataset.with_frame(frame), manifest, summary, drop)


def manifest_text(records: Iterable[Mapping[str, Any]]) -> str:
    """JSONL with sorted keys: equal records give equal bytes."""
    return "".join(json.dumps(finite_json(dict(r)), sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"
                   for r in records)


def write_manifest(path: str | Path, records: Iterable[Mapping[str, Any]]) -> None:
    write_text(path, manifest_text(records))


def read_manifest(path: str | Path) -> list[dict[str, Any]]:
    """Records of a manifest file; a malformed line raises one line naming it."""
    path = Path(path)
    try:
        lines = json_lines(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise SpurlabError(f"cannot read manifest {path}: {exc}") from None
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SpurlabError(f"{path}:{number}: not JSON ({exc.msg})") from None
        if not isinstance(record, dict):
            raise SpurlabError(f"{path}:{number}: not a JSON object")
        records.append(record)
    return records


def save_transform(result: TransformResult, out_dir: str | Path) -> dict[str, Path]:
    """Write ``data.<ext>`` (input format), ``manifest.jsonl`` and ``summary.json`` (last) into ``out_dir``.

    Everything is first written into a staging folder and then moved into place, the summary last (after the
    old summary and any ``data.*`` of another format are removed), so a failure or a kill never leaves a
    summary that describes other files. Sets ``data_sha256``/``data_file``/``manifest_sha256`` and
    ``schema_version`` in the summary.
    """
    out_dir = Path(out_dir)
    data_name = DATA_STEM + table_suffix(result.dataset.source_format)
    stale = tuple(name for name in DATA_FILES if name != data_name)
    with staged_outputs(out_dir, last=SUMMARY, stale=stale) as staging:
        write_table(result.dataset, staging / data_name)
        write_manifest(staging / MANIFEST, result.manifest)
        result.summary.update(schema_version=SCHEMA_VERSION, data_file=data_name,
                              data_sha256=file_sha256(staging / data_name),
                              manifest_sha256=file_sha256(staging / MANIFEST))
        write_json(staging / SUMMARY, result.summary)
    return {"data": out_dir / data_name, "manifest": out_dir / MANIFEST, "summary": out_dir / SUMMARY}
