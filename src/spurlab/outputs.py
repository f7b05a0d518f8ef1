"""What to do with an output folder that already exists: start, reuse a finished result, redo, or refuse.

A command re-run with the same inputs into the same ``--out`` finishes the work: a finished folder is reported
as complete and left alone (``overwrite`` redoes it), an unfinished one (a crash, a kill) is redone from a
clean state, and a folder made from other inputs is refused with one line so nothing is mixed up.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from spurlab.atomic import is_leftover
from spurlab.errors import SpurlabError

SCHEMA_VERSION = 1  # of status.json / metrics.json (run folders) and summary.json (inject outputs)
DATA_FILES = tuple(f"data{ext}" for ext in (".csv", ".tsv", ".jsonl", ".parquet"))
RUN_MARKERS = ("config.yaml", "status.json")
# config keys that change how fast a run goes, not what it computes
VOLATILE_KEYS = (("train", "threads"),)

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


def _entries(folder: Path) -> list[Path]:
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


# -- inject / sanitize outputs (data.<ext> + manifest.jsonl + summary.json, last) and scan outputs -----------

def inject_out_state(out_dir: Path, request: dict[str, Any], overwrite: bool) -> State:
    """``complete`` when ``out_dir`` holds the verified outputs of the same ``request``, else ``fresh``.

    A ``summary.json`` from a different request is refused unless ``overwrite``; outputs without a summary
    (an interrupted write) are simply redone.
    """
    if out_dir.exists() and not out_dir.is_dir():
        raise SpurlabError(f"--out {out_dir} exists and is not a directory")
    summary_path = out_dir / "summary.json"
    if overwrite or not summary_path.exists():
        return "fresh"
    summary = read_json_object(summary_path)
    if summary is None:
        raise SpurlabError(f"{summary_path} is not a spurlab summary (use another --out, or --overwrite)")
    check_schema(summary_path, summary)
    if summary.get("request") != request:
        raise SpurlabError(f"--out {out_dir} holds the output of different inputs or options "
                           "(use another --out, or --overwrite to replace it)")
    return "complete" if _verified(out_dir, summary) else "fresh"


def scan_out_state(out_dir: Path, request: dict[str, Any], overwrite: bool) -> State:
    """The same decision for ``spurlab scan --out``: ``findings.json`` (written last) carries the request."""
    if out_dir.exists() and not out_dir.is_dir():
        raise SpurlabError(f"--out {out_dir} exists and is not a directory")
    findings_path = out_dir / "findings.json"
    if overwrite or not findings_path.exists():
        return "fresh"
    findings = read_json_object(findings_path)
    if findings is None or findings.get("format") != "spurlab.scan":
        raise SpurlabError(f"{findings_path} is not a spurlab findings file (use another --out, or --overwrite)")
    if findings.get("request") != request:
        raise SpurlabError(f"--out {out_dir} holds the findings of different inputs or options "
                           "(use another --out, or --overwrite to replace them)")
    return "complete" if (out_dir / "entropy_histogram.png").is_file() else "fresh"


def _verified(out_dir: Path, summary: dict[str, Any]) -> bool:
    from spurlab.inject.manifest import file_sha256

    checks = ((summary.get("data_file"), summary.get("data_sha256")),
              ("manifest.jsonl", summary.get("manifest_sha256")))
    for name, sha in checks:
        if not isinstance(name, str) or not isinstance(sha, str) or "/" in name or name.startswith("."):
            return False
        path = out_dir / name
        if not path.is_file() or file_sha256(path) != sha:
            return False
    return True


# -- run folders ----------------------------------------------------------------------------------------------

def comparable_config(config: dict[str, Any]) -> dict[str, Any]:
    """The resolved config without keys that do not change results (``train.threads``)."""
    config = json.loads(json.dumps(config))
    for section, key in VOLATILE_KEYS:
        if isinstance(config.get(section), dict):
            config[section].pop(key, None)
    return config


def _first_difference(a: Any, b: Any, where: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            if a.get(key) != b.get(key):
                return _first_difference(a.get(key), b.get(key), f"{where}.{key}" if where else str(key))
    return f"{where or 'config'}: {json.dumps(a)} there, {json.dumps(b)} here"


def run_dir_state(out_dir: Path, config: dict[str, Any], data_sha256: str, overwrite: bool) -> State:
    """Decide about an existing run folder; an incomplete run of the same config is cleared for a restart.

    ``fresh``: the folder is now empty (or absent) and the run must be done; ``complete``: the same config
    finished there already. A folder of another config, other data, an incompatible version, or one that is
    not a run folder raises one line (``overwrite`` clears it instead).
    """
    from spurlab.experiment import is_complete

    if out_dir.exists() and not out_dir.is_dir():
        raise SpurlabError(f"--out {out_dir} exists and is not a directory")
    if not _entries(out_dir):
        return "fresh"
    if overwrite:
        clear_run_dir(out_dir)
        return "fresh"
    if not any((out_dir / m).is_file() for m in RUN_MARKERS):
        raise SpurlabError(f"--out {out_dir} is not empty and is not a spurlab run folder "
                           "(use another --out, or --overwrite to replace it)")
    status = read_json_object(out_dir / "status.json")
    check_schema(out_dir / "status.json", status)
    check_schema(out_dir / "metrics.json", read_json_object(out_dir / "metrics.json"))
    if (out_dir / "config.yaml").is_file():
        _same_config(out_dir, config)
    done = is_complete(out_dir)
    if done and status is not None and status.get("data_sha256") not in (None, data_sha256):
        raise SpurlabError(f"--out {out_dir} holds a run of the same config on different data "
                           "(the data file changed; use another --out, or --overwrite)")
    if done and (out_dir / "config.yaml").is_file():
        return "complete"
    clear_run_dir(out_dir)
    return "fresh"


def _same_config(out_dir: Path, config: dict[str, Any]) -> None:
    import yaml

    path = out_dir / "config.yaml"
    try:
        previous = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        raise SpurlabError(f"{path} is unreadable (use another --out, or --overwrite)") from None
    if not isinstance(previous, dict):
        raise SpurlabError(f"{path} is not a spurlab config (use another --out, or --overwrite)")
    ours, theirs = comparable_config(config), comparable_config(previous)
    if ours != theirs:
        raise SpurlabError(f"--out {out_dir} holds a run of a different config ({_first_difference(theirs, ours)}); "
                           "use another --out, or --overwrite to replace it")


def clear_run_dir(out_dir: Path) -> None:
    """Empty a run folder so that a kill part-way still leaves a recognisable, incomplete run folder.

    The completion markers go first, the files that identify the run (status.json, config.yaml) last.
    """
    for name in ("DONE", "metrics.json"):
        (out_dir / name).unlink(missing_ok=True)
    for entry in sorted(out_dir.iterdir()):
        if entry.name in RUN_MARKERS:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    for name in RUN_MARKERS:
        (out_dir / name).unlink(missing_ok=True)
