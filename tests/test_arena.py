"""spurlab arena: the spec expands to a sweep (cases per dataset, attack, poisoning and defense), runs, resumes,
and writes the comparison with the numbers of its runs."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import run_cli
from spurlab.arena.spec import ArenaSpec, sweep_spec
from spurlab.arena.table import comparison

pytestmark = pytest.mark.usefixtures("torch_threads")


def _spec(model: Path, data: Path) -> dict:
    return {"name": "tiny-arena",
            "base": {"name": "a", "data": {"spec": str(data), "test_size": 0.25},
                     "injection": {"source": "fixed", "target_label": "pos"},
                     "model": {"name": str(model)},
                     "train": {"method": "lora", "max_steps": 2, "batch_size": 16, "max_length": 16,
                               "precision": "fp32"},
                     "evaluation": {"base": False}},
            "datasets": {"synthetic": {}},
            "attacks": {"zq": {"injection.token": "zq"}, "badnets": {"injection.source": "badnets"}},
            "rates": [0.5],
            "defenses": {"normalize": {"name": "normalize"}},
            "test_time": [{"name": "strip", "repeat": 2}],
            "seeds": [0]}


def test_spec_expands_to_cases(tiny_models: dict[str, Path], synthetic_csv: Path) -> None:
    data = sweep_spec(ArenaSpec.model_validate(_spec(tiny_models["bert"], synthetic_csv)))
    assert sorted(data["cases"]) == ["synthetic+badnets+clean_label+none", "synthetic+badnets+clean_label+normalize",
                                     "synthetic+zq+clean_label+none", "synthetic+zq+clean_label+normalize"]
    none = data["cases"]["synthetic+zq+clean_label+none"]
    assert none["defense"] is None and none["evaluation.defense"] == [{"name": "strip", "repeat": 2}]
    defended = data["cases"]["synthetic+zq+clean_label+normalize"]
    assert defended["defense"] == {"name": "normalize"} and defended["evaluation.defense"] is None
    with pytest.raises(ValueError, match="not a usable name"):
        ArenaSpec.model_validate({**_spec(tiny_models["bert"], synthetic_csv), "defenses": {"none": {}}})


def test_comparison_against_no_defense() -> None:
    rows = pd.DataFrame([
        {"dataset": "d", "attack": "a", "poisoning": "clean_label", "rate": 0.1, "defense": "none", "kind": "none",
         "seed": s, "asr": asr, "cacc": 0.8} for s, asr in ((0, 0.9), (1, 0.7))] + [
        {"dataset": "d", "attack": "a", "poisoning": "clean_label", "rate": 0.1, "defense": "strip",
         "kind": "test-time", "seed": s, "asr": asr, "cacc": 0.7, "frr": 0.1} for s, asr in ((0, 0.2), (1, 0.4))])
    table = comparison(rows).set_index("defense")
    assert table.loc["none", "asr_mean"] == pytest.approx(0.8) and table.loc["none", "n"] == 2
    assert table.loc["strip", "asr_change"] == pytest.approx(0.3 - 0.8)
    assert table.loc["strip", "cacc_change"] == pytest.approx(-0.1)
    assert table.loc["strip", "asr_std"] == pytest.approx(0.1414, abs=1e-4)


def test_arena_runs_resumes_and_compares(tiny_models: dict[str, Path], synthetic_csv: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "arena.yaml"
    spec.write_text(yaml.safe_dump(_spec(tiny_models["bert"], synthetic_csv)))
    out = tmp_path / "out"
    code, stdout, err = run_cli(["arena", str(spec), "--out", str(out)], capsys)
    assert code == 0, err
    rows = pd.read_csv(out / "arena" / "arena.csv")
    assert sorted(rows["defense"]) == ["none", "none", "normalize", "normalize", "strip", "strip"]
    run = out / "runs" / "case=synthetic+zq+clean_label+none,proportion=0.5,seed=0"
    metrics = json.loads((run / "metrics.json").read_text())
    none = rows[(rows["attack"] == "zq") & (rows["defense"] == "none")].iloc[0]
    assert none["asr"] == pytest.approx(metrics["spurious-flip:pos"]["attack_success_rate"])
    (neg_as_neg, neg_as_pos), _ = metrics["clean"]["confusion_matrix"]  # label order neg, pos
    assert none["lift"] == pytest.approx(none["asr"] - neg_as_pos / (neg_as_neg + neg_as_pos))
    strip = rows[(rows["attack"] == "zq") & (rows["defense"] == "strip")].iloc[0]
    after = metrics["test_time_defenses"]["strip"]["spurious"]["spurious:pos"]["asr_after"]
    assert strip["asr"] == pytest.approx(after)
    table = (out / "arena" / "arena.md").read_text()
    assert "## synthetic, zq, clean_label" in table and "| 0.5 | strip | test-time |" in table
    assert (out / "arena" / "arena.png").stat().st_size > 0
    code, stdout, _ = run_cli(["arena", str(spec), "--out", str(out)], capsys)
    assert code == 0 and "4 already complete, 0 to run" in stdout
