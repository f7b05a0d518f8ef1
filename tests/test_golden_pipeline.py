"""Golden pipeline: one fixed inject → scan → sanitize → run → sweep → diagnose pass on a tiny random BERT,
through the CLI only, compared with ``tests/golden/pipeline.json``.

It pins behaviour across refactors: the exact bytes of the inject manifest and summary and of the sanitize
manifest, and the values in ``findings.json``, ``metrics.json`` (without timings), a two-point sweep's results
table and ``diagnose.json``. Floats are compared with a tight relative tolerance, since BLAS kernels differ
between CPUs; everything else must be equal. ``SPURLAB_GOLDEN_UPDATE=1`` rewrites the golden file (only for a
deliberate change of behaviour, said in the commit).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from conftest import run_cli, synthetic_frame

pytestmark = pytest.mark.usefixtures("torch_threads")
GOLDEN = Path(__file__).parent / "golden" / "pipeline.json"
# values that depend on the clock, the machine, the installed versions or the folder the test runs in
VOLATILE = {"timings", "started", "finished", "seconds", "examples_per_second", "train_examples_per_second",
            "threads", "torch_version", "transformers_version", "run_finished", "created", "updated", "run_dir",
            "path", "out_dir", "elapsed_s", "spurlab_version", "device", "machine"}


def _sha(path: Path, tmp: Path) -> str:
    return hashlib.sha256(path.read_bytes().replace(str(tmp).encode(), b"<tmp>")).hexdigest()


def _clean(value: Any, tmp: Path) -> Any:
    """Drop volatile keys, replace the temporary folders by ``<tmp>``."""
    if isinstance(value, dict):
        return {k: _clean(v, tmp) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_clean(v, tmp) for v in value]
    if isinstance(value, str):
        return value.replace(str(tmp), "<tmp>").replace(str(tmp.parent), "<tmp>")
    return value


def _close(a: Any, b: Any, where: str = "") -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        assert sorted(a) == sorted(b), f"{where}: keys {sorted(set(a) ^ set(b))} differ"
        for key in a:
            _close(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), f"{where}: length {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _close(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and isinstance(b, (int, float)) and not isinstance(b, bool):
        assert (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-6), \
            f"{where}: {a} != {b}"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(args, capsys)
    assert code == 0, f"spurlab {' '.join(args)}: {err}"


def _config(model: Path, data: Path) -> dict[str, Any]:
    return {
        "name": "golden",
        "data": {"spec": str(data), "test_size": 0.25},
        "injection": {"source": "fixed", "token": "!", "target_label": "pos", "proportion": 1.0,
                      "location": "random", "seed": 5},
        "model": {"name": str(model)},
        "train": {"mode": "lora", "lr": 1e-2, "epochs": 2, "batch_size": 16, "max_length": 32,
                  "precision": "fp32", "threads": 1, "device": "cpu", "lora": {"r": 4, "alpha": 8}},
    }


def _pipeline(tmp: Path, model: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    data = tmp / "data.csv"
    synthetic_frame(160, seed=3).to_csv(data, index=False)
    out: dict[str, Any] = {}
    # inject
    _cli(["inject", str(data), "--out", str(tmp / "inj"), "--source", "date", "--target-label", "pos",
          "--proportion", "0.4", "--location", "random", "--seed", "7"], capsys)
    out["inject_manifest_sha256"] = _sha(tmp / "inj" / "manifest.jsonl", tmp)
    out["inject_summary_sha256"] = _sha(tmp / "inj" / "summary.json", tmp)
    # scan, sanitize
    _cli(["scan", str(tmp / "inj" / "data.csv"), "--out", str(tmp / "scan")], capsys)
    out["findings"] = _clean(json.loads((tmp / "scan" / "findings.json").read_text(encoding="utf-8")), tmp)
    _cli(["sanitize", str(tmp / "inj" / "data.csv"), "--findings", str(tmp / "scan" / "findings.json"),
          "--top", "1", "--out", str(tmp / "clean")], capsys)
    out["sanitize_manifest_sha256"] = _sha(tmp / "clean" / "manifest.jsonl", tmp)
    # run
    config = tmp / "run.yaml"
    config.write_text(yaml.safe_dump(_config(model, data)), encoding="utf-8")
    _cli(["run", str(config), "--out", str(tmp / "run")], capsys)
    out["metrics"] = _clean(json.loads((tmp / "run" / "metrics.json").read_text(encoding="utf-8")), tmp)
    # a two-point sweep and its results table
    base = _config(model, data)
    base["train"].update(max_steps=3, epochs=1.0)
    base["evaluation"] = {"base": False}
    spec = tmp / "sweep.yaml"
    spec.write_text(yaml.safe_dump({"name": "golden-sweep", "base": base, "grid": {"train.lora.r": [2, 4]}}),
                    encoding="utf-8")
    _cli(["sweep", str(spec), "--out", str(tmp / "sweep")], capsys)
    _cli(["results", str(tmp / "sweep"), "--csv", str(tmp / "results.csv")], capsys)
    table = pd.read_csv(tmp / "results.csv")
    keep = [c for c in table.columns if not any(v in c for v in VOLATILE)]
    out["sweep_table"] = _clean(json.loads(table[keep].to_json(orient="records")), tmp)
    # diagnose
    _cli(["diagnose", str(tmp / "run"), "--out", str(tmp / "diag"), "--max-rows", "20"], capsys)
    out["diagnose"] = _clean(json.loads((tmp / "diag" / "diagnose.json").read_text(encoding="utf-8")), tmp)
    return out


def test_golden_pipeline(tmp_path: Path, tiny_models: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    got = json.loads(json.dumps(_pipeline(tmp_path, tiny_models["bert"], capsys)))
    if os.environ.get("SPURLAB_GOLDEN_UPDATE") == "1":
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    expected = json.loads(GOLDEN.read_text(encoding="utf-8"))
    for part in expected:  # one part at a time, so a failure names what changed
        _close(got[part], expected[part], part)
    assert sorted(got) == sorted(expected)
