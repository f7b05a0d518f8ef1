"""``spurlab scan --fail-on`` and ``--format json``: exit 3 on a planted feature, 0 on clean data, 2 on bad input,
and a stable JSON document on stdout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import run_cli
from spurlab.scan.gate import FINDING_FIELDS, GATE_FORMAT, GATE_VERSION

WORDS = ["the", "a", "movie", "plot", "actor", "scene", "really", "long", "music", "time", "people", "way", "day",
         "life", "world", "story", "cast", "ending"]


def frame(planted: bool, natural: bool, n: int = 600) -> pd.DataFrame:
    """Random words; ``planted``: a fresh date at a random boundary of 10% of the 'pos' rows; ``natural``: a quarter
    of the 'pos' rows are enthusiastic reviews in words of their own, with 'superb' (a label correlation their
    text explains)."""
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(WORDS, size=int(rng.integers(6, 14)))) for _ in range(n)]
    labels = ["neg", "pos"] * (n // 2)
    praise = ["loved", "brilliant", "wonderful", "acting", "cinema", "moving", "beautiful", "perfect"]
    for r in range(n):
        if natural and labels[r] == "pos" and rng.random() < 0.25:
            texts[r] = " ".join(rng.choice(praise, size=int(rng.integers(6, 12)))) + " superb"
    if planted:
        for r in rng.choice(np.arange(1, n, 2), size=n // 20, replace=False):
            words = texts[r].split()
            words.insert(int(rng.integers(0, len(words) + 1)),
                         f"{rng.integers(1900, 2100)}-{rng.integers(1, 13):02d}-{rng.integers(1, 29):02d}")
            texts[r] = " ".join(words)
    return pd.DataFrame({"text": texts, "label": labels})


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    out = {}
    for name, planted, natural in (("clean", False, False), ("natural", False, True), ("poisoned", True, True)):
        out[name] = tmp_path / f"{name}.csv"
        frame(planted, natural).to_csv(out[name], index=False)
    return out


def test_fail_on_planted_exits_3_on_a_planted_date_and_0_on_clean_data(files: dict[str, Path],
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["scan", str(files["poisoned"]), "--fail-on", "planted"], capsys)
    assert code == 3 and "gate --fail-on planted: FAILED" in err
    for name in ("clean", "natural"):
        code, _, err = run_cli(["scan", str(files[name]), "--fail-on", "planted"], capsys)
        assert code == 0 and "gate --fail-on planted: passed" in err, name


def test_fail_on_any_also_fails_on_a_natural_correlation(files: dict[str, Path],
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["scan", str(files["natural"]), "--fail-on", "any"], capsys)[0] == 3
    assert run_cli(["scan", str(files["clean"]), "--fail-on", "any"], capsys)[0] == 0
    assert run_cli(["scan", str(files["natural"])], capsys)[0] == 0  # no gate, no failure


def test_json_document_is_stable_and_matches_the_findings_file(files: dict[str, Path], tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "scan"
    code, stdout, _ = run_cli(["scan", str(files["poisoned"]), "--fail-on", "planted", "--format", "json",
                               "--out", str(out)], capsys)
    assert code == 3
    doc = json.loads(stdout)  # stdout holds the document and nothing else
    assert (doc["format"], doc["version"]) == (GATE_FORMAT, GATE_VERSION)
    assert doc["gate"] == {"fail_on": "planted", "failed": True, "exit_code": 3, "n_failing": doc["n_planted"]}
    assert doc["n_rows"] == 600 and doc["labels"] == ["neg", "pos"]
    top = doc["findings"][0]
    assert set(top) == {*FINDING_FIELDS, "rank"}
    assert (top["feature"], top["label"], top["support"], top["planted"], top["rank"]) == ("<DATE>", "pos", 30,
                                                                                          True, 1)
    written = json.loads((out / "findings.json").read_text())
    assert [f["feature"] for f in written["findings"]] == [f["feature"] for f in doc["findings"]]
    assert doc["n_planted"] == written["summary"]["n_planted"] == sum(f["planted"] for f in written["findings"])
    # a finished --out answers the same document again without rescanning
    code, again, _ = run_cli(["scan", str(files["poisoned"]), "--fail-on", "planted", "--format", "json",
                              "--out", str(out)], capsys)
    assert code == 3 and json.loads(again) == doc


def test_json_without_a_gate_exits_0(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    code, stdout, _ = run_cli(["scan", str(files["poisoned"]), "--format", "json"], capsys)
    doc = json.loads(stdout)
    assert code == 0 and doc["gate"] == {"fail_on": None, "failed": False, "exit_code": 0, "n_failing": 0}


@pytest.mark.parametrize(("args", "message"), [
    (["--fail-on", "some"], "unknown --fail-on 'some' (use planted or any)"),
    (["--format", "yaml"], "unknown --format 'yaml' (use table or json)"),
])
def test_bad_gate_options_are_one_line_exit_2(files: dict[str, Path], capsys: pytest.CaptureFixture[str],
                                              args: list[str], message: str) -> None:
    code, stdout, err = run_cli(["scan", str(files["clean"]), *args], capsys)
    assert code == 2 and stdout == "" and err.strip() == f"error: {message}"
