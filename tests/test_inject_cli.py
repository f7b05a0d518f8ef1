"""``spurlab inject`` end to end on small files: outputs, determinism, undo from files, bad input."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest

from spurlab.cli.app import main
from spurlab.data.loaders import load_table
from spurlab.data.transform import read_manifest
from spurlab.inject import undo

OUTPUTS = {"data.csv", "manifest.jsonl", "summary.json"}


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``spurlab inject ARGS`` in-process: exit code, stdout, stderr."""
    try:
        main(["inject", *args])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def csv_path(tmp_path: Path) -> Path:
    frame = pd.DataFrame({
        "id": range(20),
        "text": [f"review number {i}, with words" if i % 3 else f'said "ok"\nline {i}' for i in range(20)],
        "label": ["pos" if i % 2 else "neg" for i in range(20)],
        "stars": [i % 5 + 1 for i in range(20)],
    })
    path = tmp_path / "in" / "reviews.csv"
    path.parent.mkdir()
    frame.to_csv(path, index=False)
    return path


def test_inject_writes_data_manifest_and_summary(tmp_path: Path, csv_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code, stdout, err = run([str(csv_path), "--out", str(out), "--source", "date", "--target-label", "pos",
                             "--proportion", "0.3", "--location", "random", "--seed", "7"], capsys)
    assert (code, err) == (0, "")
    assert "modified" in stdout and "pos" in stdout
    assert {p.name for p in out.iterdir()} == OUTPUTS
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out"]  # no staging directory left over
    original = pd.read_csv(csv_path)
    written = pd.read_csv(out / "data.csv")
    assert list(written.columns) == list(original.columns) and len(written) == 20
    pd.testing.assert_frame_equal(written.drop(columns="text"), original.drop(columns="text"))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["data_sha256"] == hashlib.sha256((out / "data.csv").read_bytes()).hexdigest()
    assert summary["manifest_sha256"] == hashlib.sha256((out / "manifest.jsonl").read_bytes()).hexdigest()
    assert summary["modified_per_label"] == {"neg": 0, "pos": 3}  # round(10 * 0.3) = 3
    assert summary["config"]["seed"] == 7 and summary["config"]["source"] == "date"
    lines = (out / "manifest.jsonl").read_text().splitlines()
    assert len(lines) == 3
    for line in lines:
        record = json.loads(line)
        assert list(record) == sorted(record)
        assert written["text"][record["row"]] != original["text"][record["row"]]
        assert written["label"][record["row"]] == "pos"
    # the written files alone are enough to restore the original texts exactly
    restored = undo(load_table(str(out / "data.csv")), read_manifest(out / "manifest.jsonl"))
    assert restored.texts == load_table(str(csv_path)).texts


def test_same_seed_gives_identical_bytes(tmp_path: Path, csv_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    args = [str(csv_path), "--source", "country", "--proportion", "0.5", "--seed", "3",
            "--token-proportion", "0.5"]
    for name in ("a", "b"):
        assert run([*args, "--out", str(tmp_path / name)], capsys)[0] == 0
    for name in OUTPUTS:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert run([*args[:-4], "--seed", "4", "--out", str(tmp_path / "c")], capsys)[0] == 0
    rows = [{json.loads(x)["row"] for x in (tmp_path / d / "manifest.jsonl").read_text().splitlines()}
            for d in ("a", "c")]
    assert rows[0] != rows[1]


def test_jsonl_input_keeps_its_format_and_token_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps({"body": f"t {i}", "y": i % 2}) + "\n" for i in range(6)))
    out = tmp_path / "o"
    code, _, err = run([str(path), "--out", str(out), "--text-col", "body", "--label-col", "y",
                        "--tokens", "zz, yy", "--location", "beginning", "--target-label", "1"], capsys)
    assert (code, err) == (0, "")
    assert {p.name for p in out.iterdir()} == {"data.jsonl", "manifest.jsonl", "summary.json"}
    rows = [json.loads(x) for x in (out / "data.jsonl").read_text().splitlines()]
    assert [r["body"].split()[0] in {"zz", "yy"} for r in rows] == [False, True] * 3
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["source"] == "list" and summary["config"]["location"] == "start"


def test_tokens_file_and_fixed_token(tmp_path: Path, csv_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tokens = tmp_path / "tok.txt"
    tokens.write_text("alpha\n\nbeta\n", encoding="utf-8")
    code, _, _ = run([str(csv_path), "--out", str(tmp_path / "f"), "--tokens-file", str(tokens)], capsys)
    assert code == 0
    inserted = {s for r in read_manifest(tmp_path / "f" / "manifest.jsonl") for s in r["inserted"]}
    assert inserted == {"alpha", "beta"}
    code, _, _ = run([str(csv_path), "--out", str(tmp_path / "g"), "--token", "cf", "--location", "end"], capsys)
    assert code == 0
    assert all(t.endswith(" cf") for t in pd.read_csv(tmp_path / "g" / "data.csv")["text"])


def test_help_documents_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    _, stdout, _ = run(["--help"], capsys)
    for option in ("--out", "--source", "--target-label", "--proportion", "--location", "--seed",
                   "--token-proportion", "--text-col", "--label-col", "--tokenizer", "--token", "--tokens",
                   "--tokens-file", "--year-min", "--year-max", "--split", "--labels", "--encoding"):
        assert option in stdout


def _bad_inputs(tmp_path: Path, csv_path: Path) -> dict[str, list[str]]:
    empty = tmp_path / "in" / "empty.csv"
    empty.write_text("text,label\n")
    latin = tmp_path / "in" / "latin.csv"
    latin.write_bytes("text,label\ncaf\u00e9,a\n".encode("latin-1"))
    bad_tokens = tmp_path / "in" / "bad.txt"
    bad_tokens.write_bytes(b"\xff\xfe\x00")
    data = str(csv_path)
    return {
        "missing column": [data, "--text-col", "body"],
        "unknown label": [data, "--target-label", "zzz"],
        "proportion above 1": [data, "--proportion", "1.5"],
        "negative proportion": [data, "--proportion", "-0.5"],
        "empty dataset": [str(empty)],
        "empty token list": [data, "--tokens", " , "],
        "undecodable data": [str(latin)],
        "undecodable tokens file": [data, "--tokens-file", str(bad_tokens)],
        "unknown preset": ["preset:nope"],
        "unknown source": [data, "--source", "nope"],
        "unknown location": [data, "--location", "middle"],
        "source does not take tokens": [data, "--source", "date", "--tokens", "a,b"],
        "missing data file": [str(tmp_path / "in" / "absent.csv")],
    }


@pytest.mark.parametrize("case", [
    "missing column", "unknown label", "proportion above 1", "negative proportion", "empty dataset",
    "empty token list", "undecodable data", "undecodable tokens file", "unknown preset", "unknown source",
    "unknown location", "source does not take tokens", "missing data file",
])
def test_bad_input_is_one_error_line_and_no_output(case: str, tmp_path: Path, csv_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    args = _bad_inputs(tmp_path, csv_path)[case]
    out = tmp_path / "out"
    code, stdout, err = run([*args, "--out", str(out)], capsys)
    assert code == 2, (case, stdout, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]
