"""ONION: suspicion scores computed by hand from given perplexities, the words removed at a threshold, the same
scores from a real (tiny) causal LM as from scoring each variant alone, and ``spurlab defend``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import run_cli
from spurlab.data.dataset import TextDataset
from spurlab.defend import get_defense
from spurlab.defend.onion import onion, suspicion_scores
from spurlab.errors import SpurlabError
from spurlab.models.causal_lm import load_causal_lm, perplexities

pytestmark = pytest.mark.usefixtures("torch_threads")


def test_suspicion_is_the_perplexity_drop_when_a_word_goes() -> None:
    table = {"a zq b": 100.0, "zq b": 90.0, "a b": 20.0, "a zq": 95.0, "solo": 7.0}
    got = suspicion_scores([["a", "zq", "b"], ["solo"]], lambda texts: [table[t] for t in texts])
    assert got[0].tolist() == [10.0, 80.0, 5.0] and got[1].tolist() == [0.0]


def _fake_ppl(texts: list[str]) -> list[float]:
    """Each 'zq' costs 50, each word 1: deleting 'zq' lowers the perplexity by 51, any other word by 1."""
    return [10.0 + 50.0 * t.split().count("zq") + len(t.split()) for t in texts]


def test_onion_removes_the_words_above_the_threshold() -> None:
    data = TextDataset(pd.DataFrame({"text": ["the zq film", "a fine  film", "zq"], "label": ["a", "b", "a"]}))
    res = onion(data, _fake_ppl, threshold=20.0, rows_per_chunk=2)
    assert res.dataset.texts == ["the film", "a fine  film", "zq"]  # a one-word row is never emptied
    assert res.manifest == [{"row": 0, "label": "a", "removed": ["zq"], "positions": [1], "scores": [51.0],
                             "original": "the zq film"}]
    assert res.summary["n_removed"] == 1 and res.summary["most_removed"] == {"zq": 1}
    everything = onion(data, _fake_ppl, threshold=0.5)
    assert everything.dataset.texts == ["", "", "zq"]  # every deletion lowers it by >= 1


def test_onion_with_a_real_lm_scores_each_variant_as_scored_alone(tiny_models: dict[str, Path]) -> None:
    import torch

    torch.manual_seed(0)  # the tiny model has no LM head on disk: the same seed gives the same random one
    model, tokenizer, device = load_causal_lm(str(tiny_models["llama"]), what="test model", padding_side="right")
    rows = ["the film was long", "a fun plot and cast"]

    def alone(texts: list[str]) -> list[float]:
        return [float(perplexities([t], model, tokenizer, device)[0]) for t in texts]

    batched = suspicion_scores([r.split() for r in rows],
                               lambda texts: perplexities(texts, model, tokenizer, device, batch_size=4))
    single = suspicion_scores([r.split() for r in rows], alone)
    for b, s in zip(batched, single, strict=True):
        np.testing.assert_allclose(b, s, rtol=1e-4, atol=1e-3)
    scores = np.concatenate(batched)
    ordered = np.sort(scores)
    gap = int(np.argmax(np.diff(ordered)))  # a threshold in the widest gap: batch-size rounding cannot cross it
    threshold = float(ordered[gap] + ordered[gap + 1]) / 2
    torch.manual_seed(0)
    res = get_defense("onion", model=str(tiny_models["llama"]), threshold=threshold
                      ).apply(TextDataset(pd.DataFrame({"text": rows, "label": ["a", "b"]})))
    assert 0 < res.summary["n_removed"] == int(np.sum(scores > threshold))  # the words above the threshold


def test_defend_command(tiny_models: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pd.DataFrame({"text": ["the <b>film</b> was long", "a fun plot"], "label": ["a", "b"]}).to_csv(
        tmp_path / "in.csv", index=False)
    code, out, err = run_cli(["defend", "onion", str(tmp_path / "in.csv"), f"model={tiny_models['llama']}",
                              "threshold=1e9", "--out", str(tmp_path / "o")], capsys)
    assert code == 0 and "onion: 0/2 rows changed" in out, err
    assert json.loads((tmp_path / "o" / "summary.json").read_text())["threshold"] == 1e9
    code, out, err = run_cli(["defend", "normalize", str(tmp_path / "in.csv"), "--out", str(tmp_path / "n")], capsys)
    assert code == 0 and "normalize: 1/2 rows changed" in out, err
    for args, words in ((["defend", "strip"], "unknown defense 'strip'"),
                        (["defend", "onion", "threshold"], "expected key=value"),
                        (["defend", "onion", "colour=1"], "colour")):
        code, _, err = run_cli([*args[:2], str(tmp_path / "in.csv"), *args[2:], "--out", str(tmp_path / "x")],
                               capsys)
        assert code == 2 and words in err and err.count("\n") == 1, err
        assert not (tmp_path / "x").exists()
    with pytest.raises(SpurlabError):
        get_defense("onion", batch_size=0)


def test_onion_at_test_time_scores_an_input_by_its_largest_drop(tiny_models: dict[str, Path]) -> None:
    import torch

    from spurlab.defend.onion import OnionTestTime

    texts = ["the film was long", "a fun plot and cast", "bad"]
    torch.manual_seed(0)  # the tiny model's random LM head: the same seed for both loads
    got = OnionTestTime(model=str(tiny_models["llama"]), precision="fp32").suspicion(texts, None, [], 0)
    torch.manual_seed(0)
    model, tokenizer, device = load_causal_lm(str(tiny_models["llama"]), what="test model", padding_side="right")
    per_word = suspicion_scores([t.split() for t in texts],
                                lambda variants: perplexities(variants, model, tokenizer, device, batch_size=32))
    np.testing.assert_allclose(got, [s.max() for s in per_word], rtol=1e-4, atol=1e-3)
    assert got[2] == 0.0  # a one-word input has nothing to compare
