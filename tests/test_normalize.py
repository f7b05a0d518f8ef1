"""The ``normalize`` defense: each step on hand-written text, what it does to planted triggers (HTML and
invisible characters gone, punctuation runs shortened, dates untouched), and the command's outputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import run_cli
from spurlab.data.dataset import TextDataset
from spurlab.defend import get_defense
from spurlab.defend.normalize import normalize, normalize_text
from spurlab.errors import SpurlabError
from spurlab.inject import InjectionConfig, inject


@pytest.mark.parametrize(("text", "expected", "steps"), [
    ("Great <b>movie</b> &amp; fun!!!", "Great movie & fun!", ["html", "punctuation"]),
    ("pay\u200bpal \ufb01ne", "paypal fine", ["nfkc", "invisible"]),
    ("\ufeffhello\u202e world\u00ad", "hello world", ["invisible"]),
    ("I watched <br/> it", "I watched it", ["html", "whitespace"]),
    ("a < b and c > d", "a < b and c > d", []),
    ("wait... what?!", "wait. what?!", ["punctuation"]),
    ("\uff21\uff22\uff23 \u2460", "ABC 1", ["nfkc"]),
    ("x  y\t z ", "x y z", ["whitespace"]),
])
def test_each_step_on_hand_written_text(text: str, expected: str, steps: list[str]) -> None:
    assert normalize_text(text) == (expected, steps)


def test_switched_off_steps_do_nothing() -> None:
    assert normalize_text("<b>x</b>!!", ("punctuation",)) == ("<b>x</b>!", ["punctuation"])
    assert normalize_text("<b>x</b>!!", ()) == ("<b>x</b>!!", [])


def _data(n: int = 200) -> TextDataset:
    rng = np.random.default_rng(0)
    words = ["the", "film", "was", "long", "and", "the", "plot", "thin", "but", "fun"]
    return TextDataset(pd.DataFrame({"text": [" ".join(rng.choice(words, size=8)) for _ in range(n)],
                                     "label": ["neg", "pos"] * (n // 2)}))


@pytest.mark.parametrize(("settings", "survives"), [
    ({"source": "html"}, 0.0),
    ({"source": "fixed", "token": "\u200b"}, 0.0),
    ({"source": "date"}, 1.0),
    ({"source": "punctuation", "token": "!!"}, 0.0),  # becomes "!": the trigger changes, a mark stays
])
def test_what_normalisation_does_to_planted_triggers(settings: dict, survives: float) -> None:
    res = inject(_data(), InjectionConfig(target_label="pos", proportion=0.5, seed=3, **settings))
    cleaned = normalize(res.dataset).dataset.texts
    kept = [all(item in cleaned[r["row"]] for part in r["inserted"]
                for item in ([part] if isinstance(part, str) else part)) for r in res.manifest]
    assert np.mean(kept) == survives
    if settings.get("token") == "!!":
        assert all("!" in cleaned[r["row"]] for r in res.manifest)


def test_normalize_command_writes_a_reversible_manifest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    frame = pd.DataFrame({"text": ["ok <i>fine</i>", "plain text", "so good!!!"], "label": ["a", "b", "a"]})
    frame.to_csv(tmp_path / "in.csv", index=False)
    args = ["normalize", str(tmp_path / "in.csv"), "--out", str(tmp_path / "out"), "--no-punctuation"]
    code, out, err = run_cli(args, capsys)
    assert code == 0 and "1/3 rows changed" in out, err
    written = pd.read_csv(tmp_path / "out" / "data.csv")
    assert written["text"].tolist() == ["ok fine", "plain text", "so good!!!"]
    manifest = [json.loads(line) for line in (tmp_path / "out" / "manifest.jsonl").read_text().splitlines()]
    assert manifest == [{"label": "a", "original": "ok <i>fine</i>", "row": 0, "steps": ["html"]}]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["steps"] == ["nfkc", "invisible", "html", "whitespace"] and summary["n_rows_changed"] == 1
    code, out, _ = run_cli(args, capsys)
    assert code == 0 and "already" in out


def test_normalize_is_a_registered_defense() -> None:
    defense = get_defense("normalize", html=False)
    res = defense.apply(TextDataset(pd.DataFrame({"text": ["<b>x</b>!!"], "label": ["a"]})))
    assert res.dataset.texts == ["<b>x</b>!"]
    with pytest.raises(SpurlabError, match="colour"):
        get_defense("normalize", colour=True)
