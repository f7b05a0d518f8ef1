"""The stealthiness report: perplexity computed in padded batches equals the per-text computation, spelling
errors counted on hand-written text, similarity 1 for unchanged rows, and ``spurlab stealth`` on an
injection folder."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import run_cli
from spurlab.data.dataset import TextDataset
from spurlab.inject import InjectionConfig, inject
from spurlab.inject.stealth import spelling_errors, stealthiness
from spurlab.models.causal_lm import load_causal_lm, perplexities
from spurlab.models.embeddings import sentence_embeddings

pytestmark = pytest.mark.usefixtures("torch_threads")
TEXTS = ["the film was long", "a plot", "the cast and the story were fun and the film was good", "fun"]


def test_batched_perplexity_equals_the_per_text_computation(tiny_models: dict[str, Path]) -> None:
    for side in ("right", "left"):
        model, tokenizer, device = load_causal_lm(str(tiny_models["llama"]), what="test model", padding_side=side)
        got = perplexities(TEXTS, model, tokenizer, device, batch_size=3)
        for text, value in zip(TEXTS, got, strict=True):
            ids = tokenizer(text, return_tensors="pt")["input_ids"]
            if ids.shape[1] < 2:
                assert math.isnan(value)
                continue
            with torch.inference_mode():
                logits = model(input_ids=ids).logits[0, :-1]
            expected = math.exp(torch.nn.functional.cross_entropy(logits, ids[0, 1:]).item())
            assert value == pytest.approx(expected, rel=1e-4), (side, text)


def test_spelling_errors_count_unknown_words() -> None:
    assert spelling_errors(["the cat sat on the mat", "teh cat zqxw", "2024-01-05 <b>", ""]).tolist() == [
        0, 2, 0, 0]


def test_similarity_is_one_for_an_unchanged_row(tiny_models: dict[str, Path]) -> None:
    vectors = sentence_embeddings(["the film", "the film", "fun plot"], str(tiny_models["bert"]))
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    assert float(vectors[0] @ vectors[1]) == pytest.approx(1.0) and float(vectors[0] @ vectors[2]) < 0.9999


def test_stealthiness_of_a_rare_word(tiny_models: dict[str, Path]) -> None:
    rng = np.random.default_rng(0)
    words = ["the", "film", "was", "long", "and", "plot", "thin", "but", "fun", "cast"]
    data = TextDataset(pd.DataFrame({"text": [" ".join(rng.choice(words, size=8)) for _ in range(60)],
                                     "label": ["neg", "pos"] * 30}))
    res = inject(data, InjectionConfig(source="fixed", token="zqxw", target_label="pos", proportion=1.0, seed=1))
    rows = [r["row"] for r in res.manifest]
    report = stealthiness([data.texts[r] for r in rows], [res.dataset.texts[r] for r in rows],
                          lm=str(tiny_models["llama"]), embedder=str(tiny_models["bert"]), max_rows=20)
    assert report["n_rows"] == 20 and report["n_changed"] == 30
    assert report["spelling"]["delta"] == {"mean": 1.0, "median": 1.0}  # one unknown word per poisoned row
    assert report["spelling"]["rows_with_more_errors"] == 20
    assert report["similarity"]["mean"] < 1.0 and report["perplexity"]["delta"]["mean"] is not None


def test_stealth_command_on_an_injection_folder(tiny_models: dict[str, Path], tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    frame = pd.DataFrame({"text": ["the film was long and thin", "a fun cast", "the plot was fun"] * 4,
                          "label": ["neg", "pos", "pos"] * 4})
    frame.to_csv(tmp_path / "in.csv", index=False)
    code, _, err = run_cli(["inject", str(tmp_path / "in.csv"), "--out", str(tmp_path / "inj"), "--source", "fixed",
                            "--token", "zqxw", "--target-label", "pos", "--proportion", "1.0"], capsys)
    assert code == 0, err
    code, out, err = run_cli(["stealth", str(tmp_path / "inj"), "--lm", str(tiny_models["llama"]), "--embedder",
                              str(tiny_models["bert"]), "--out", str(tmp_path / "s.json")], capsys)
    assert code == 0, err
    report = json.loads((tmp_path / "s.json").read_text())
    assert report == json.loads(out) and report["n_changed"] == 8 and report["spelling"]["delta"]["mean"] == 1.0
    code, _, err = run_cli(["stealth", str(tmp_path / "inj" / "data.csv"), "--no-lm"], capsys)
    assert code == 2 and "give --manifest" in err and err.count("\n") == 1
