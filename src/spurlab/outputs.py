"""What to do with an output folder that already exists: start, reuse a finished result, redo, or refuse.

A command re-run with the same inputs into the same ``--out`` finishes the work: a finished folder is reported
as complete and left alone (``overwrite`` redoes it), an unfinished one (a crash, a kill) is redone from a
clean state, and a folder made from other inputs is refused with one line so nothing is mixed up. Every
command decides this with :func:`out_state`: its outputs end with one *marker* file, written last, that
records the request (inputs and options) the outputs answer. Run folders add their own contract on top
(:mod:`spurlab.experiment.run_folder`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from spurlab.atomic import is_leftover, moving_names
from spurlab.errors import SpurlabError

SCHEMA_VERSION = 1  # of status.json / metrics.json (run folders) and summary.json (transform outputs)
DATA_FILES = tuple(f"data{ext}" for ext in (".csv", ".tsv", ".jsonl", ".parquet"))

State = Literal["fresh", "complete"]


def sha256_rows(texts: Iterable[str], labels: Iterable[str], extra: Iterable[str] = ()) -> str:
    """A content hash of rows (text, label) that does not depend on the process (no ``hash()``)."""
    digest = hashlib.sha256()
    for part in extra:
        digest.update(part.encode("utf-8", "surrogatepass") + b"\x00")
    for text, label in zip(texts, labels, strict=True):
        digest.update(text.encode("utf-8", "surrogatepass") + b"\x1f" + label.encode("utf-8") + b"\x1e")
    return digest.hexdigest()


def frame_sha256(frame: pd.DataFrame) -> str:
    """A content hash of a whole table (every column, in order)."""
    digest = hashlib.sha256(json.dumps([str(c) for c in frame.columns]).encode("utf-8"))
    try:
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    except TypeError:  # unhashable cells (lists, dicts): hash their JSON instead
        digest.update(frame.to_json(orient="values", force_ascii=False).encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def entries(folder: Path) -> list[Path]:
    """What ``folder`` holds, without the leftovers of interrupted atomic writes."""
    return [p for p in folder.iterdir() if not is_leftover(p)] if folder.is_dir() else []


def read_json_object(path: Path) -> dict[str, Any] | None:
    """A JSON object from ``path``; None if it is missing, unreadable or not an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def check_schema(path: Path, data: dict[str, Any] | None) -> None:
    """Refuse a file written by an incompatible spurlab version (another ``schema_version``)."""
    if data is None:
        return
    version = data.get("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        raise SpurlabError(f"{path} has schema_version {version!r}, this spurlab writes {SCHEMA_VERSION}: "
                           "it comes from an incompatible version (use another --out, or --overwrite)")


@dataclass(frozen=True)
class Outputs:
    """What one command writes into ``--out``: the marker file it writes last, and how to read it."""

    marker: str  # e.g. summary.json; it holds the request under "request"
    what: str  # words for messages: "output", "findings", "diagnosis", "sweep"
    format: str | None = None  # the marker's "format" value, when it has one
    owned: tuple[str, ...] = ()  # every name the command writes into --out (the marker included)
    check_schema: bool = True
    request_key: str = "request"  # where the marker holds the request


def read_output(folder: Path, outputs: Outputs) -> dict[str, Any]:
    """The marker file of a finished output of this kind; one line when it is missing or of another kind."""
    path = Path(folder) / outputs.marker
    data = read_json_object(path)
    if data is None or (outputs.format is not None and data.get("format") != outputs.format):
        raise SpurlabError(f"{path}: not the {outputs.what} of spurlab (unreadable, or another format)")
    return data


def out_state(out_dir: Path, outputs: Outputs, request: Any, overwrite: bool,
              complete: Callable[[Path, dict[str, Any]], bool],
              difference: Callable[[dict[str, Any]], str] | None = None, inputs: Iterable[Path] = ()) -> State:
    """``complete`` when ``out_dir`` holds the finished outputs of the same ``request``, else ``fresh``.

    Refused with one line: an input that is one of the files the command writes (always); unless
    ``overwrite``, a folder holding files spurlab did not write there (anything but ``outputs.owned``, and
    without a marker anything at all, except what an interrupted write was moving into place), a marker of
    another request (``difference`` may say how it differs), a file in the marker's place that spurlab did not
    write, or one of an incompatible version. ``complete(out_dir, marker)`` checks the other outputs are there.
    """
    if out_dir.exists() and not out_dir.is_dir():
        raise SpurlabError(f"--out {out_dir} exists and is not a directory")
    refuse_input_overwrite(out_dir, outputs.owned, inputs)
    if overwrite:
        return "fresh"
    path = out_dir / outputs.marker
    present = {p.name for p in entries(out_dir)}
    if not path.exists():
        refuse_foreign(out_dir, present - (moving_names(out_dir) & set(outputs.owned)))
        return "fresh"
    marker = read_json_object(path)
    if marker is None or (outputs.format is not None and marker.get("format") != outputs.format):
        raise SpurlabError(f"{path} is not a spurlab {outputs.what} file (use another --out, or --overwrite)")
    if outputs.check_schema:
        check_schema(path, marker)
    if marker.get(outputs.request_key) != request:
        how = f" ({difference(marker)})" if difference is not None else ""
        raise SpurlabError(f"--out {out_dir} holds the {outputs.what} of different inputs or options{how} "
                           "(use another --out, or --overwrite to replace it)")
    refuse_foreign(out_dir, present - set(outputs.owned))
    return "complete" if complete(out_dir, marker) else "fresh"


def refuse_foreign(out_dir: Path, foreign: set[str]) -> None:
    """One line when ``out_dir`` holds files spurlab did not write there (they would be replaced or deleted)."""
    if foreign:
        shown = ", ".join(sorted(foreign)[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise SpurlabError(f"--out {out_dir} holds files spurlab did not write ({shown}); use another --out, "
                           "or --overwrite to write there anyway")


def refuse_input_overwrite(out_dir: Path, owned: Iterable[str], inputs: Iterable[Path]) -> None:
    """One line when an input file is a file the command would write or delete in ``out_dir`` (even with
    ``--overwrite``: the input would be lost)."""
    try:
        targets = {(out_dir / name).resolve() for name in owned} | {out_dir.resolve()}
    except OSError:
        return
    for path in inputs:
        try:
            resolved = Path(path).resolve()
        except OSError:
            continue
        if resolved in targets:
            raise SpurlabError(f"--out {out_dir} would overwrite the input {path}; use another --out")


def already_complete(out_dir: Path, same: str = "same data and options") -> str:
    """The one message every command prints when ``--out`` already holds its finished result."""
    return f"{out_dir} is already complete ({same}); nothing to do (--overwrite redoes it)"


# -- transform outputs (data.<ext> + manifest.jsonl + summary.json, last): inject, sanitize, paraphrase -------

TRANSFORM = Outputs(marker="summary.json", what="output", owned=(*DATA_FILES, "manifest.jsonl", "summary.json"))


def transform_state(out_dir: Path, request: dict[str, Any], overwrite: bool, inputs: Iterable[Path] = ()) -> State:
    """:func:`out_state` for a dataset transform: complete when the data and manifest match the summary."""
    return out_state(out_dir, TRANSFORM, request, overwrite, _verified, inputs=inputs)


def _verified(out_dir: Path, summary: dict[str, Any]) -> bool:
    checks = ((summary.get("data_file"), summary.get("data_sha256")),
              ("manifest.jsonl", summary.get("manifest_sha256")))
    for name, sha in checks:
        if not isinstance(name, str) or not isinstance(sha, str) or "/" in name or name.startswith("."):
            return False
        path = out_dir / name
        if not path.is_file() or file_sha256(path) != sha:
            return False
    return True
