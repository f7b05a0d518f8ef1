"""The sweep figures from hand-made results tables: what is plotted (values, averages, rows) and the files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from spurlab.errors import SpurlabError
from spurlab.report.figures import add_token_class_columns, draw_figures, line_data

NAN = float("nan")


def table() -> pd.DataFrame:
    """Ranks 1/4 x proportions 0.5/1.0 (light), two seeds at (1, 0.5), one aggressive row, and rows that must
    not be plotted against rank (failed, full finetuning) or have no token class (clean training)."""
    rows = [
        # key, status, mode, r, proportion, token_proportion, target, asr(neg), share(neg), asr(pos), clean acc
        ("a", "complete", "lora", 1, 0.5, 0.0, "negative", 0.20, 0.50, 0.90, 0.80),
        ("a-seed1", "complete", "lora", 1, 0.5, 0.0, "negative", 0.40, 0.60, 0.90, 0.70),
        ("b", "complete", "lora", 4, 0.5, 0.0, "negative", 0.60, 0.70, 0.90, 0.85),
        ("c", "complete", "lora", 1, 1.0, 0.0, "negative", 0.95, 0.97, 0.90, 0.50),
        ("d", "complete", "lora", 4, 1.0, 0.0, "negative", 1.00, 1.00, 0.90, 0.40),
        ("e", "complete", "lora", 4, 0.5, 0.1, "negative", 0.30, 0.55, 0.90, 0.82),
        ("failed", "failed", "lora", 4, 0.5, 0.0, "negative", NAN, NAN, NAN, NAN),
        ("full", "complete", "full", 8, 0.5, 0.0, "negative", 0.99, 0.99, 0.90, 0.90),
        ("clean", "complete", "lora", 1, NAN, NAN, None, 0.10, 0.45, 0.20, 0.88),
    ]
    cols = ["key", "status", "train.mode", "train.lora.r", "injection.proportion", "injection.token_proportion",
            "injection.target_label", "spurious:negative.attack_success_rate", "spurious:negative.token_share",
            "spurious:positive.attack_success_rate", "clean.accuracy"]
    frame = pd.DataFrame(rows, columns=cols)
    frame["spurious:positive.token_share"] = 0.5
    return frame


def test_token_class_columns_follow_the_training_target() -> None:
    frame = add_token_class_columns(table())
    by_key = frame.set_index("key")
    assert by_key.loc["a", "attack_success"] == 0.20 and by_key.loc["a", "token_share"] == 0.50
    assert by_key.loc["d", "attack_success"] == 1.00
    assert math.isnan(by_key.loc["clean", "attack_success"])  # two spurious sets and no training token
    one_set = pd.DataFrame({"key": ["x"], "spurious:pos.attack_success_rate": [0.7],
                            "spurious:pos.token_share": [0.8]})
    assert add_token_class_columns(one_set)["attack_success"].tolist() == [0.7]


def test_line_data_averages_rows_sharing_a_point() -> None:
    frame = add_token_class_columns(table())
    frame = frame[(frame["status"] == "complete") & (frame["train.mode"] == "lora")]
    data = line_data(frame, "train.lora.r", "attack_success", "injection.proportion", "injection.token_proportion")
    light = data[data["panel"] == 0.0]
    assert light[["hue", "x", "n"]].to_numpy().tolist() == [[0.5, 1, 2], [0.5, 4, 1], [1.0, 1, 1], [1.0, 4, 1]]
    np.testing.assert_allclose(light["y"], [0.30, 0.60, 0.95, 1.00])
    np.testing.assert_allclose(light["y_min"], [0.20, 0.60, 0.95, 1.00])
    np.testing.assert_allclose(light["y_max"], [0.40, 0.60, 0.95, 1.00])
    assert light["keys"].tolist()[0] == ["a", "a-seed1"]
    # two seeds: a bootstrap interval of their mean inside their range; one seed: none
    assert 0.20 <= light["ci_low"].iloc[0] < 0.30 < light["ci_high"].iloc[0] <= 0.40
    assert light["ci_low"].iloc[1:].isna().all()
    aggressive = data[data["panel"] == 0.1]
    assert aggressive[["hue", "x", "y"]].to_numpy().tolist() == [[0.5, 4, 0.30]]
    assert "clean" not in {k for ks in data["keys"] for k in ks}  # no attack value: left out
    with pytest.raises(SpurlabError, match="no column 'nope'"):
        line_data(frame, "train.lora.r", "nope")


def test_paper_figures_files_and_manifest(tmp_path: Path) -> None:
    out = tmp_path / "figs"
    summary = draw_figures(table(), out, source="hand-made")
    assert json.loads((out / "figures.json").read_text()) == summary
    attack, clean = summary["figures"]
    assert attack["file"] == "attack_vs_rank.png" and clean["file"] == "clean_accuracy_vs_rank.png"
    for fig in (attack, clean):
        assert (out / fig["file"]).stat().st_size > 1000
        assert fig["x"] == "train.lora.r" and fig["hue"] == "injection.proportion"
        assert fig["panel"] == "injection.token_proportion"
    # failed and full-finetuning rows are never plotted; the clean run has no token class for the attack plot
    assert attack["n_rows"] == 6 and sorted(attack["rows"]) == ["a", "a-seed1", "b", "c", "d", "e"]
    assert clean["n_rows"] == 7 and "clean" in clean["rows"]
    series = {(s["y"], s["panel"], s["hue"]): s for s in attack["series"]}
    assert set(series) == {(y, p, h) for y in ("attack_success", "token_share")
                           for p, h in ((0.0, 0.5), (0.0, 1.0), (0.1, 0.5))}
    light = series[("attack_success", 0.0, 0.5)]
    assert light["x"] == [1, 4] and light["n"] == [2, 1]
    assert light["ci_low"][1] is None and 0.20 <= light["ci_low"][0] < light["ci_high"][0] <= 0.40
    np.testing.assert_allclose(light["mean"], [0.30, 0.60])
    np.testing.assert_allclose(series[("token_share", 0.0, 1.0)]["mean"], [0.97, 1.00])
    clean_series = {(s["panel"], s["hue"]): s for s in clean["series"]}
    assert clean_series[("none", "none")]["mean"] == [0.88]
    np.testing.assert_allclose(clean_series[(0.0, 0.5)]["mean"], [0.75, 0.85])
    # a custom plot replaces the folder's figure set
    summary = draw_figures(table(), out, x="train.lora.r", y="clean.accuracy", hue="injection.token_proportion")
    (fig,) = summary["figures"]
    assert fig["file"] == "clean.accuracy_vs_train.lora.r_by_injection.token_proportion.png"
    assert fig["n_rows"] == 8  # every complete row (this plot does not filter by mode)
    assert sorted(p.name for p in out.iterdir()) == [fig["file"], "figures.json"]


def test_figures_need_their_columns(tmp_path: Path) -> None:
    only_clean = table().drop(columns=[c for c in table().columns if c.startswith("spurious")])
    summary = draw_figures(only_clean, tmp_path / "a")
    assert [f["file"] for f in summary["figures"]] == ["clean_accuracy_vs_rank.png"]
    assert "attack_vs_rank.png" in summary["skipped"]
    cases = [
        (table().drop(columns=["train.lora.r"]), {}, "no column 'train.lora.r'"),
        (table().assign(status="failed"), {}, "no complete rows"),
        (only_clean.drop(columns=["clean.accuracy"]), {}, "neither spurious-set nor clean.accuracy"),
        (table(), {"x": "train.lora.r", "y": "injection.target_label"}, "no numeric values"),
        (table(), {"x": "train.lora.r"}, "--x and --y go together"),
        (table(), {"hue": "injection.proportion"}, "--hue needs --x and --y"),
    ]
    for frame, kwargs, message in cases:
        with pytest.raises(SpurlabError, match=message):
            draw_figures(frame, tmp_path / "never", **kwargs)
    assert not (tmp_path / "never").exists()
