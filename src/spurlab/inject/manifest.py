"""Manifest files and writing an injection result to a directory, atomically as a whole.

Manifest records (one JSON object per line, sorted keys): ``row`` (0-based row index), ``label``,
``config`` (position of the config that made the change), ``n_items`` (draws; a tag pair is one item),
``inserted`` (the inserted strings in text order), ``offsets`` (``[start, end)`` of each string in the new
text, in Python code points), ``cuts`` (the span to delete per string: the string and its one separator
space), ``original_sha256`` (of the original text, UTF-8) and, only when the original text was missing,
``original_missing: true``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spurlab.atomic import staged_outputs, write_json, write_text
from spurlab.errors import SpurlabError

if TYPE_CHECKING:
    from spurlab.inject.injector import InjectionResult

DATA_STEM = "data"
MANIFEST = "manifest.jsonl"
SUMMARY = "summary.json"


def manifest_text(records: Iterable[Mapping[str, Any]]) -> str:
    """JSONL with sorted keys: equal records give equal bytes."""
    return "".join(json.dumps(dict(r), sort_keys=True, ensure_ascii=False) + "\n" for r in records)


def write_manifest(path: str | Path, records: Iterable[Mapping[str, Any]]) -> None:
    write_text(path, manifest_text(records))


def read_manifest(path: str | Path) -> list[dict[str, Any]]:
    """Records of a manifest file; a malformed line raises one line naming it."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
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


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_result(result: InjectionResult, out_dir: str | Path) -> dict[str, Path]:
    """Write ``data.<ext>`` (input format), ``manifest.jsonl`` and ``summary.json`` (last) into ``out_dir``.

    Everything is first written into a staging folder and then moved into place, the summary last (after the
    old summary and any ``data.*`` of another format are removed), so a failure or a kill never leaves a
    summary that describes other files. Sets ``data_sha256``/``data_file``/``manifest_sha256`` and
    ``schema_version`` in the summary.
    """
    from spurlab.data.loaders import table_suffix, write_table
    from spurlab.outputs import DATA_FILES, SCHEMA_VERSION

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
