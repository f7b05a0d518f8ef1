"""The run-folder contract: what ``spurlab run`` writes, how to tell a finished run, and what to do with an
existing folder (reuse, finish, refuse).

Layout (written in this order; ``metrics.json`` and ``DONE`` last, so a folder without them is an
interrupted run)::

    config.yaml            the resolved config (every default written out); identifies the run
    status.json            {"status": "running" | "failed" | "complete", "stage", "data_sha256", ...},
                           rewritten at each stage
    injection/             summary.json, manifest.jsonl, data.<ext> (the poisoned train split; absent when clean)
    defense/               the defense's summary.json, manifest.jsonl, data.<ext> (when a defense is configured)
    adapter/               what training changed (see spurlab.models.adapters)
    summary.md             predicted-count table in the paper's Table 1 layout + metrics
    confusion_matrix.png
    metrics.json           schema: docs/metrics.md
    DONE                   written after metrics.json
    report.html            the HTML report (after DONE; a finished run without it gets it when re-run)

Re-running the same config into the same folder finishes the work: a complete folder is reused as it is, an
incomplete one (killed, failed) is cleared and run again from the start.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from spurlab.errors import SpurlabError
from spurlab.outputs import State, check_schema, entries, read_json_object, refuse_foreign
from spurlab.report.html import REPORT_FILE

RUN_MARKERS = ("config.yaml", "status.json")
# everything a run (and a diagnosis into its default folder) writes; anything else in a run folder is the user's
RUN_OWNED = (*RUN_MARKERS, "injection", "defense", "adapter", "summary.md", "confusion_matrix.png", "metrics.json",
             "DONE", REPORT_FILE, "diagnose")
# config keys that change how fast a run goes, not what it computes
VOLATILE_KEYS = (("train", "threads"),)


def is_complete(run_dir: str | Path) -> bool:
    """True when a run folder finished (``DONE`` present and ``metrics.json`` says complete)."""
    run_dir = Path(run_dir)
    if not (run_dir / "DONE").is_file() or not (run_dir / "metrics.json").is_file():
        return False
    metrics = read_json_object(run_dir / "metrics.json")
    return metrics is not None and metrics.get("status") == "complete"


def read_metrics(run_dir: Path) -> dict[str, Any]:
    """``metrics.json`` of a finished run folder."""
    return json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))


def comparable_config(config: dict[str, Any]) -> dict[str, Any]:
    """The resolved config without keys that do not change results (``train.threads``)."""
    config = json.loads(json.dumps(config))
    for section, key in VOLATILE_KEYS:
        if isinstance(config.get(section), dict):
            config[section].pop(key, None)
    return config


def resolved_config(stored: dict[str, Any]) -> dict[str, Any]:
    """A run folder's stored config as this version resolves it: keys added since get their defaults and older
    names their new ones (``train.mode`` -> ``train.method``), so a finished run is still recognised. A config
    this version no longer accepts is compared as stored (and then differs)."""
    from spurlab.experiment.config import config_from_dict, config_to_dict

    try:
        return config_to_dict(config_from_dict(stored, source="stored config"))
    except (SpurlabError, ValueError, TypeError):
        return stored


def _first_difference(a: Any, b: Any, where: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            if a.get(key) != b.get(key):
                return _first_difference(a.get(key), b.get(key), f"{where}.{key}" if where else str(key))
    return f"{where or 'config'}: {json.dumps(a)} there, {json.dumps(b)} here"


def run_dir_state(out_dir: Path, config: dict[str, Any], data_sha256: str, overwrite: bool,
                  inputs: Iterable[Path] = ()) -> State:
    """Decide about an existing run folder; an incomplete run of the same config is cleared for a restart.

    ``fresh``: the folder is now empty (or absent) and the run must be done; ``complete``: the same config
    finished there already. A folder of another config, other data, an incompatible version, one that is
    not a run folder or that holds files a run does not write raises one line (``overwrite`` clears it
    instead); an input file inside the folder is refused even then.
    """
    if out_dir.exists() and not out_dir.is_dir():
        raise SpurlabError(f"--out {out_dir} exists and is not a directory")
    for path in inputs:
        if out_dir.exists() and Path(path).resolve().is_relative_to(out_dir.resolve()):
            raise SpurlabError(f"--out {out_dir} holds the input {path}, which a run there could delete; "
                               "use another --out")
    present = entries(out_dir)
    if not present:
        return "fresh"
    if overwrite:
        clear_run_dir(out_dir)
        return "fresh"
    if not any((out_dir / m).is_file() for m in RUN_MARKERS):
        raise SpurlabError(f"--out {out_dir} is not empty and is not a spurlab run folder "
                           "(use another --out, or --overwrite to replace it)")
    refuse_foreign(out_dir, {p.name for p in present} - set(RUN_OWNED))
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
    ours, theirs = comparable_config(config), comparable_config(resolved_config(previous))
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
