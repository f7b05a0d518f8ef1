"""Seeds in sweeps: ``seeds:`` in a spec, results aggregated over seeds with bootstrap intervals, the lift."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import run_cli
from spurlab.errors import SpurlabError
from spurlab.report.intervals import bootstrap_interval
from spurlab.sweep.aggregate import aggregate_over_seeds, separated
from spurlab.sweep.spec import parse_spec

pytestmark = pytest.mark.usefixtures("torch_threads")


def _base(model: Path, data: Path) -> dict:
    return {"name": "tiny", "data": {"spec": str(data), "test_size": 0.25},
            "injection": {"source": "fixed", "token": "zq", "target_label": "pos"},
            "model": {"name": str(model)},
            "train": {"mode": "lora", "max_steps": 2, "batch_size": 16, "max_length": 16, "precision": "fp32"}}


def test_seeds_become_the_last_grid_key(tiny_models: dict[str, Path], synthetic_csv: Path) -> None:
    base = _base(tiny_models["bert"], synthetic_csv)
    sweep = parse_spec({"base": base, "grid": {"train.lora.r": [1, 2]}, "seeds": [3, 4, 5]}, "spec")
    assert list(sweep.grid) == ["train.lora.r", "train.seed"]
    assert [p.config.train.seed for p in sweep.points] == [3, 4, 5, 3, 4, 5]
    only = parse_spec({"base": base, "seeds": [0, 1]}, "spec")
    assert [p.key for p in only.points] == ["seed=0", "seed=1"]
    for bad, words in (({"grid": {"train.seed": [1]}, "seeds": [2]}, "say the same thing"),
                       ({"seeds": [1, 1]}, "distinct"), ({"seeds": [-1]}, "distinct integers >= 0"),
                       ({}, "needs at least one key")):
        with pytest.raises(SpurlabError, match=words):
            parse_spec({"base": base, **bad}, "spec")


def test_cases_are_named_override_sets_crossed_with_the_grid(tiny_models: dict[str, Path],
                                                              synthetic_csv: Path) -> None:
    base = _base(tiny_models["bert"], synthetic_csv)
    base["train"]["method"] = base["train"].pop("mode")
    cases = {"lora": {"train.method": "lora", "train.lora.r": 4},
             "loha": {"train.method": "loha", "train.loha.r": 2, "train.lr": 0.01}}
    sweep = parse_spec({"base": base, "cases": cases, "grid": {"injection.proportion": [0.5, 1.0]},
                        "seeds": [0, 1]}, "spec")
    assert list(sweep.grid) == ["case", "injection.proportion", "train.seed"]
    assert len(sweep.points) == 8 and sweep.points[0].key == "case=lora,proportion=0.5,seed=0"
    lora, loha = sweep.points[0].config.train, sweep.points[-1].config.train
    assert (lora.method, lora.lora.r, lora.lr) == ("lora", 4, base["train"].get("lr", lora.lr))
    assert (loha.method, loha.loha.r, loha.lr) == ("loha", 2, 0.01)
    assert sweep.points[-1].overrides == {"case": "loha", "injection.proportion": 1.0, "train.seed": 1}
    for bad, words in (({"cases": {}}, "at least one named case"),
                       ({"cases": {"a b": {"train.lr": 1}}}, "not a case name"),
                       ({"cases": {"a": {"train lr": 1}}}, "not a dotted config key"),
                       ({"cases": {"a": {"train.lr": 0.1}}, "grid": {"train.lr": [0.2]}}, "train.lr is set by both"),
                       ({"cases": {"a": {}}, "grid": {"case": [1]}}, "taken by cases"),
                       ({"cases": {"a": {"train.loha.rank": 1}}}, "grid point case=a")):
        with pytest.raises(SpurlabError, match=words):
            parse_spec({"base": base, **bad}, "spec")


def test_bootstrap_interval() -> None:
    values = np.array([0.52, 0.61, 0.58, 0.70, 0.55])
    low, high = bootstrap_interval(values)
    assert values.min() <= low < values.mean() < high <= values.max()
    assert bootstrap_interval(values) == (low, high)  # seeded
    wide = bootstrap_interval(np.array([0.0, 1.0, 0.0, 1.0, 0.5]))
    assert wide[1] - wide[0] > high - low
    assert bootstrap_interval(np.array([0.4])) is None
    assert bootstrap_interval(np.array([0.4, 0.4, 0.4])) == (0.4, 0.4)
    assert separated((0.1, 0.2), (0.3, 0.4)) is True and separated((0.1, 0.35), (0.3, 0.4)) is False
    assert separated((None, None), (0.3, 0.4)) is None


def test_aggregate_groups_by_the_other_grid_keys() -> None:
    rows = []
    for r, seed, acc in ((1, 0, 0.6), (1, 1, 0.7), (1, 2, 0.8), (4, 0, 0.9), (4, 1, 0.95), (4, 2, None)):
        rows.append({"key": f"r{r}s{seed}", "status": "complete" if acc is not None else "failed",
                     "train.lora.r": r, "train.seed": seed, "clean.accuracy": acc,
                     "injection.target_label": "pos", "spurious:pos.attack_success_rate": 0.5,
                     "spurious:pos.token_share": 0.75, "spurious:pos.lift": 0.25})
    frame = pd.DataFrame(rows)
    agg = aggregate_over_seeds(frame, ["train.lora.r", "train.seed"])
    assert agg["train.lora.r"].tolist() == [1, 4] and agg["n"].tolist() == [3, 2]
    assert agg["clean.accuracy.mean"].tolist() == pytest.approx([0.7, 0.925])
    assert agg.loc[0, "clean.accuracy.ci_low"] < 0.7 < agg.loc[0, "clean.accuracy.ci_high"]
    assert agg["lift.mean"].tolist() == [0.25, 0.25] and agg["attack_success.ci_low"].tolist() == [0.5, 0.5]


def test_sweep_with_seeds_end_to_end(tiny_models: dict[str, Path], synthetic_csv: Path, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(_base(tiny_models["bert"], synthetic_csv)))
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"base": "base.yaml", "grid": {"train.lora.r": [1]}, "seeds": [0, 1, 2]}))
    out = tmp_path / "sw"
    code, _, err = run_cli(["sweep", str(spec), "--out", str(out)], capsys)
    assert code == 0, err
    code, stdout, err = run_cli(["results", str(out), "--aggregate", "--csv", str(tmp_path / "agg.csv")], capsys)
    assert code == 0, err
    agg = pd.read_csv(tmp_path / "agg.csv")
    assert len(agg) == 1 and agg.loc[0, "n"] == 3 and "over seeds" in stdout
    code, _, _ = run_cli(["results", str(out), "--csv", str(tmp_path / "all.csv")], capsys)
    rows = pd.read_csv(tmp_path / "all.csv")
    assert agg.loc[0, "clean.accuracy.mean"] == pytest.approx(rows["clean.accuracy"].mean())
    html = (out / "report.html").read_text(encoding="utf-8")
    assert 'id="seeds"' in html and "bootstrap" in html
