"""``spurlab scan`` / ``spurlab sanitize``: files written, and every bad input is exit 2 with one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import run_cli

WORDS = [
    "the", "a", "movie", "film", "plot", "actor", "scene", "story", "really", "quite", "very", "good",
    "bad", "fine", "long", "short", "music", "ending",
]


def poisoned_frame(n: int = 400, proportion: float = 0.10) -> pd.DataFrame:
    """Random words (no real signal); a date appended to ``proportion`` of the 'pos' rows."""
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(WORDS, size=rng.integers(6, 14))) for _ in range(n)]
    labels = ["neg", "pos"] * (n // 2)
    pos = [i for i, label in enumerate(labels) if label == "pos"]
    for r in rng.choice(pos, size=round(len(pos) * proportion), replace=False):
        texts[r] += f" {rng.integers(1900, 2100)}-{rng.integers(1, 13):02d}-{rng.integers(1, 29):02d}"
    return pd.DataFrame({"sentence": texts, "label": labels})


@pytest.fixture
def poisoned_csv(tmp_path: Path) -> Path:
    path = tmp_path / "poisoned.csv"
    poisoned_frame().to_csv(path, index=False)
    return path


def test_scan_then_sanitize_write_their_files(poisoned_csv: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "scan"
    code, stdout, err = run_cli(["scan", str(poisoned_csv), "--text-col", "sentence", "--out", str(out)], capsys)
    assert code == 0, err
    assert "<DATE>" in stdout
    findings = json.loads((out / "findings.json").read_text())
    assert findings["findings"][0]["feature"] == "<DATE>" and findings["summary"]["n_rows"] == 400
    assert (out / "entropy_histogram.png").read_bytes()[:4] == b"\x89PNG"
    clean = tmp_path / "clean"
    code, _, err = run_cli(["sanitize", str(poisoned_csv), "--text-col", "sentence", "--findings",
                            str(out / "findings.json"), "--out", str(clean)], capsys)
    assert code == 0, err
    data = pd.read_csv(clean / "data.csv")
    assert list(data.columns) == ["sentence", "label"] and len(data) == 400
    assert not data["sentence"].str.contains(r"\d{4}-\d\d-\d\d").any()
    manifest = [json.loads(line) for line in (clean / "manifest.jsonl").read_text().splitlines()]
    assert len(manifest) == 20 and all(r["features"] == ["<DATE>"] for r in manifest)
    summary = json.loads((clean / "summary.json").read_text())
    assert summary["n_rows_changed"] == 20 and summary["data_file"] == "data.csv"
    auto = tmp_path / "auto"
    code, _, err = run_cli(["sanitize", str(poisoned_csv), "--text-col", "sentence", "--auto", "--mode", "mask",
                            "--out", str(auto)], capsys)
    assert code == 0, err
    assert pd.read_csv(auto / "data.csv")["sentence"].str.contains(r"\[MASK\]").sum() == 20


def _bad_cases(tmp: Path, data: Path) -> list[list[str]]:
    bad_json = tmp / "bad.json"
    bad_json.write_text("{not json")
    wrong_shape = tmp / "wrong.json"
    wrong_shape.write_text(json.dumps({"findings": "nope"}))
    empty = tmp / "empty.csv"
    empty.write_text("sentence,label\n")
    d = ["--text-col", "sentence"]
    return [
        ["sanitize", str(data), *d, "--findings", str(tmp / "missing.json"), "--out", "OUT"],
        ["sanitize", str(data), *d, "--findings", str(bad_json), "--out", "OUT"],
        ["sanitize", str(data), *d, "--findings", str(wrong_shape), "--out", "OUT"],
        ["sanitize", str(data), *d, "--out", "OUT"],  # neither --findings nor --auto
        ["sanitize", str(data), "--text-col", "nope", "--auto", "--out", "OUT"],
        ["sanitize", str(data), *d, "--auto", "--alpha", "1.5", "--out", "OUT"],
        ["sanitize", str(empty), *d, "--auto", "--out", "OUT"],
        ["scan", str(data), "--text-col", "nope", "--out", "OUT"],
        ["scan", str(data), *d, "--alpha", "0", "--out", "OUT"],
        ["scan", str(data), *d, "--alpha", "1", "--out", "OUT"],
        ["scan", str(data), *d, "--min-support", "0", "--out", "OUT"],
        ["scan", str(empty), *d, "--out", "OUT"],
        ["scan", str(tmp / "missing.csv"), "--out", "OUT"],
        ["scan", str(data), *d, "--correction", "holm", "--out", "OUT"],
    ]


@pytest.mark.parametrize("case", range(14))
def test_bad_input_is_exit_2_one_line_and_no_output(case: int, poisoned_csv: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    args = [str(out) if a == "OUT" else a for a in _bad_cases(tmp_path, poisoned_csv)[case]]
    code, _, err = run_cli(args, capsys)
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert not out.exists()


def test_rerun_into_the_same_out_is_complete_and_other_options_are_refused(
        poisoned_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scan_out, clean_out = tmp_path / "scan", tmp_path / "clean"
    scan = ["scan", str(poisoned_csv), "--text-col", "sentence", "--out", str(scan_out)]
    assert run_cli(scan, capsys)[0] == 0
    findings = scan_out / "findings.json"
    written = findings.stat().st_mtime_ns
    assert json.loads(findings.read_text())["request"]["config"]["alpha"] == 0.01
    code, out, _ = run_cli(scan, capsys)
    assert code == 0 and "already complete" in out and findings.stat().st_mtime_ns == written
    code, _, err = run_cli([*scan, "--alpha", "0.001"], capsys)
    assert code == 2 and err.count("\n") == 1 and "different inputs or options" in err
    assert findings.stat().st_mtime_ns == written
    assert run_cli([*scan, "--alpha", "0.001", "--overwrite"], capsys)[0] == 0
    assert json.loads(findings.read_text())["request"]["config"]["alpha"] == 0.001

    args = ["sanitize", str(poisoned_csv), "--text-col", "sentence", "--findings", str(findings),
            "--out", str(clean_out)]
    assert run_cli(args, capsys)[0] == 0
    summary = json.loads((clean_out / "summary.json").read_text())
    assert summary["request"]["top"] is None and len(summary["data_sha256"]) == 64
    code, out, _ = run_cli(args, capsys)
    assert code == 0 and "already complete" in out
    code, _, err = run_cli([*args, "--top", "1"], capsys)
    assert code == 2 and err.count("\n") == 1 and "different inputs or options" in err
    (clean_out / "data.csv").write_text("tampered\n")  # a damaged output is redone, not reported complete
    code, out, _ = run_cli(args, capsys)
    assert code == 0 and "already complete" not in out
    assert (clean_out / "data.csv").read_text() != "tampered\n"
