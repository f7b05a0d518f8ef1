"""STRIP and the test-time defense protocol: entropy, threshold, perturbation, FRR/FAR/CACC/ASR, the run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import run_cli
from spurlab.defend.strip import Donors, Strip, entropy_bits, strip_entropy
from spurlab.defend.test_time import Classifier, calibration_split, evaluate_defense, threshold_for
from spurlab.errors import SpurlabError

pytestmark = pytest.mark.usefixtures("torch_threads")


def _trigger_model(texts: list[str]) -> np.ndarray:
    """A classifier whose answer is certain (class 1) when `cf` is in the text and a coin flip otherwise."""
    return np.array([[0.0, 1.0] if "cf" in t.split() else [0.5, 0.5] for t in texts])


def test_entropy_in_bits() -> None:
    got = entropy_bits(np.array([[0.5, 0.5, 0, 0], [1.0, 0, 0, 0], [0.25] * 4, [0.9, 0.1, 0, 0]]))
    assert got == pytest.approx([1.0, 0.0, 2.0, -(0.9 * np.log2(0.9) + 0.1 * np.log2(0.1))])


def test_threshold_rejects_at_most_the_frr_share() -> None:
    scores = np.array([1.0, 5.0, 3.0, 2.0, 4.0])
    assert threshold_for(scores, 0.2) == 4.0 and int((scores > 4.0).sum()) == 1
    assert threshold_for(scores, 0.0) == 5.0  # nothing is above the maximum
    assert threshold_for(scores, 0.5) == 3.0  # int(2.5) = 2 rejected
    calib, held = calibration_split(10, 0.5, seed=0)
    assert len(calib) == 5 and sorted({*calib, *held}) == list(range(10))
    assert calibration_split(10, 0.5, seed=0)[0].tolist() == calib.tolist()
    with pytest.raises(SpurlabError, match="at least 2 clean test rows"):
        calibration_split(1, 0.5, 0)


def test_donor_words_come_by_decreasing_tfidf() -> None:
    donors = Donors(["apple banana banana", "cherry", "the of"])  # the last row is stop words only
    assert donors.words == [["banana", "apple"], ["cherry"]]
    rng = np.random.default_rng(3)
    text = "one two three four five six"
    copy = donors.perturb(text, 0.5, rng).split()
    changed = [w for w, o in zip(copy, text.split(), strict=True) if w != o]
    assert len(copy) == 6 and 1 <= len(changed) <= 3  # m = 3 positions, drawn with replacement
    assert set(changed) <= {"banana", "apple", "cherry"}
    with pytest.raises(SpurlabError, match="no words to perturb with"):
        Donors(["the of a", "and"])


def test_strip_entropy_by_hand() -> None:
    donors = Donors(["apple banana", "cherry date"])
    texts = ["a b c cf", "a b c d", "cf"]
    # swap_ratio 0.1: no word of a 4-word row is replaced (m = 0), so the entropies are the model's own
    assert strip_entropy(texts[:2], _trigger_model, donors, repeat=3, swap_ratio=0.1, seed=0) == pytest.approx(
        [0.0, 1.0])
    # a one-word row at swap_ratio 1: its only word is always replaced, so `cf` never survives
    assert strip_entropy(texts[2:], _trigger_model, donors, repeat=4, swap_ratio=1.0, seed=0) == pytest.approx([1.0])


def test_evaluate_defense_counts() -> None:
    rng = np.random.default_rng(0)
    clean = [" ".join(rng.choice(["movie", "plot", "actor", "scene", "music"], 5)) for _ in range(40)]
    labels = np.array([i % 2 for i in range(40)])
    triggered = {1: [t + " cf" for t in clean]}
    result = evaluate_defense(Strip(repeat=4, swap_ratio=0.2, frr=0.05), Classifier(_trigger_model), clean, labels,
                              triggered)
    assert (result["n_calibration"], result["n_evaluated"]) == (20, 20)
    held_labels = labels[calibration_split(40, 0.5, 0)[1]]
    assert result["cacc_before"] == pytest.approx(float((held_labels == 0).mean()))  # a coin flip argmaxes to 0
    spurious = result["spurious"][1]
    assert spurious["frr"] == 0.0  # every clean row has entropy 1: none is above the threshold
    assert spurious["cacc_after"] == result["cacc_before"]
    assert spurious["n"] == int((held_labels == 0).sum())
    assert spurious["asr_before"] == 1.0 and spurious["asr_after"] == 0.0 and spurious["far"] == 0.0

def test_strip_in_a_run(tiny_models: dict[str, Path], synthetic_csv: Path, tmp_path: Path,
                        capsys: pytest.CaptureFixture[str]) -> None:
    config = {"name": "strip", "data": {"spec": str(synthetic_csv), "test_size": 0.25},
              "injection": {"source": "fixed", "token": "zq", "target_label": "pos"},
              "model": {"name": str(tiny_models["bert"])},
              "train": {"method": "lora", "max_steps": 3, "batch_size": 16, "max_length": 16, "precision": "fp32"},
              "evaluation": {"base": False, "defense": [{"name": "strip", "repeat": 3}, {"name": "strip"}]}}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    code, _, err = run_cli(["run", str(path), "--out", str(tmp_path / "run")], capsys)
    assert code == 0, err
    import json

    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    defense = metrics["test_time_defenses"]["strip"]
    assert defense["name"] == "strip" and defense["params"]["repeat"] == 3
    assert defense["n_calibration"] + defense["n_evaluated"] == metrics["clean"]["n"]
    assert set(defense["spurious"]) == {"spurious:pos"}
    pos = defense["spurious"]["spurious:pos"]
    assert 0.0 <= pos["asr_after"] <= pos["asr_before"] and 0.0 <= pos["frr"] <= 1.0
    assert metrics["test_time_defenses"]["strip-2"]["params"]["repeat"] == 5  # the second, on the same model
    assert "## Test-time defense `strip-2`" in (tmp_path / "run" / "summary.md").read_text()
    config["evaluation"]["defense"] = [{"name": "strip"}, {"name": "strip", "repeats": 3}]
    path.write_text(yaml.safe_dump(config))
    code, _, err = run_cli(["run", str(path), "--out", str(tmp_path / "bad")], capsys)
    assert code == 2 and err.strip() == (f"error: {path}: evaluation.defense.1: test-time defense 'strip': "
                                         "repeats: Extra inputs are not permitted")
    assert not (tmp_path / "bad").exists()
