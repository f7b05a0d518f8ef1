"""Every PEFT method of ``train.method`` (LoRA with its inits, LoHa, LoKr, VeRA, IA³, AdaLoRA) trains only its
own parameters and the head, reports its trainable parameters, saves an adapter that plain
``peft.PeftModel.from_pretrained`` reloads with identical logits, and AdaLoRA shrinks its rank budget."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import synthetic_frame
from spurlab.errors import SpurlabError
from spurlab.experiment.config import config_from_dict, config_to_dict
from spurlab.experiment.run_folder import comparable_config, resolved_config
from spurlab.models import attach_trainable, load_adapter, load_classifier, save_trained
from spurlab.models.config import ModelConfig
from spurlab.train import collate, encode, train_model
from spurlab.train.config import TrainConfig
from spurlab.train.loop import plan_steps

pytestmark = pytest.mark.usefixtures("torch_threads")

LABELS = ["neg", "pos"]
CPU = torch.device("cpu")
#: method settings -> (PEFT type in adapter_config.json, a substring every trained adapter parameter has)
CASES = {
    "loha": ({"method": "loha", "loha": {"r": 4}}, "LOHA", "hada_"),
    "lokr": ({"method": "lokr", "lokr": {"r": 4}}, "LOKR", "lokr_"),
    "vera": ({"method": "vera", "vera": {"r": 16}}, "VERA", "vera_lambda"),
    "ia3": ({"method": "ia3"}, "IA3", "ia3_l"),
    "adalora": ({"method": "adalora", "adalora": {"init_r": 4, "target_r": 2, "tinit": 0.0}}, "ADALORA", "lora_"),
    "lora-gaussian": ({"method": "lora", "lora": {"r": 4, "init": "gaussian"}}, "LORA", "lora_"),
    "lora-pissa": ({"method": "lora", "lora": {"r": 4, "init": "pissa"}}, "LORA", "lora_"),
    "lora-olora": ({"method": "lora", "lora": {"r": 4, "init": "olora"}}, "LORA", "lora_"),
}


@pytest.fixture(scope="module")
def data() -> tuple[list[str], np.ndarray]:
    frame = synthetic_frame(64)
    return frame["text"].tolist(), np.array([LABELS.index(v) for v in frame["label"]])


def _config(**kw: object) -> TrainConfig:
    base = {"lr": 1e-2, "max_steps": 6, "batch_size": 16, "max_length": 16, "precision": "fp32",
            "warmup_ratio": 0.0}
    return TrainConfig(**{**base, **kw})


def _train(folder: Path, texts: list[str], labels: np.ndarray, cfg: TrainConfig):
    torch.manual_seed(0)
    loaded = load_classifier(ModelConfig(name=str(folder)), LABELS)
    before = {k: v.detach().clone() for k, v in loaded.model.state_dict().items()}
    enc = encode(loaded.tokenizer, texts, cfg.max_length)
    model = attach_trainable(loaded, cfg.method, cfg.method_settings, total_steps=plan_steps(len(enc), cfg)[0])
    stats = train_model(model, enc, labels, cfg, CPU, "fp32", loaded.head_modules, progress=False)
    return loaded, model, before, enc, stats


@pytest.mark.parametrize("case", list(CASES))
def test_each_method_trains_its_own_parameters_and_reloads_with_plain_peft(
        tiny_models: dict[str, Path], data: tuple, tmp_path: Path, case: str) -> None:
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification

    settings, peft_type, marker = CASES[case]
    cfg = _config(**settings)
    loaded, model, _, enc, stats = _train(tiny_models["bert"], *data, cfg)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(marker in n or "modules_to_save" in n for n in trainable), trainable[:5]
    assert 0 < stats.trainable_parameters == sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert stats.trainable_parameters < stats.total_parameters
    model.eval()
    batch = collate(enc, list(range(12)))
    with torch.inference_mode():
        expected = model(**batch).logits
    save_trained(model, loaded, cfg.method, tmp_path / "adapter", {"label_names": LABELS})
    adapter_config = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert adapter_config["peft_type"] == peft_type
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()
    # plain PEFT on the unchanged base model (PiSSA/OLoRA were converted to a LoRA of the original weights)
    base = AutoModelForSequenceClassification.from_pretrained(tiny_models["bert"], num_labels=2)
    plain = PeftModel.from_pretrained(base, tmp_path / "adapter").eval()
    tolerance = 1e-4 if case in ("lora-pissa", "lora-olora") else 1e-6  # the conversion is a float32 SVD
    with torch.inference_mode():
        torch.testing.assert_close(plain(**batch).logits, expected, rtol=0, atol=tolerance)
    reloaded = load_adapter(load_classifier(ModelConfig(name=str(tiny_models["bert"])), LABELS), tmp_path / "adapter")
    with torch.inference_mode():
        torch.testing.assert_close(reloaded.eval()(**batch).logits, expected, rtol=0, atol=tolerance)


def test_methods_other_than_pissa_and_olora_leave_the_base_weights(tiny_models: dict[str, Path],
                                                                   data: tuple) -> None:
    for case in ("loha", "ia3", "lora-gaussian", "lora-pissa"):
        _, model, before, _, _ = _train(tiny_models["bert"], *data, _config(**CASES[case][0]))
        base = {k.removeprefix("base_model.model.").replace(".base_layer.", "."): v
                for k, v in model.state_dict().items()}
        query = "bert.encoder.layer.0.attention.self.query.weight"
        assert torch.equal(base[query], before[query]) == (case != "lora-pissa"), case


def test_adalora_prunes_its_rank_budget_and_penalises_non_orthogonality(tiny_models: dict[str, Path],
                                                                        data: tuple) -> None:
    cfg = _config(method="adalora", max_steps=12,
                  adalora={"init_r": 4, "target_r": 1, "tinit": 0.0, "tfinal": 0.25, "orth_reg_weight": 0.5})
    _, model, _, _, _ = _train(tiny_models["bert"], *data, cfg)
    rank_pattern = model.peft_config["default"].rank_pattern
    assert rank_pattern, "AdaLoRA allocated no budget"
    kept = sum(int(np.sum(mask)) for mask in rank_pattern.values())
    assert kept < 4 * len(rank_pattern)  # pruned below init_r everywhere on average
    from spurlab.train.loop import _AdaptiveRank

    adaptive = _AdaptiveRank.of(model)
    assert adaptive is not None and adaptive.weight == 0.5
    assert float(adaptive.penalty()) > 0.0
    with torch.no_grad():  # the penalty is zero exactly when every Q has orthonormal rows and every P columns
        for name, p in model.named_parameters():
            if p.requires_grad and p.ndim == 2 and ("lora_A" in name or "lora_B" in name):
                rows, cols = p.shape
                if "lora_A" in name:  # Q: r x in
                    p.copy_(torch.linalg.qr(torch.randn(cols, rows))[0].T)
                else:  # P: out x r
                    p.copy_(torch.linalg.qr(torch.randn(rows, cols))[0])
    assert float(adaptive.penalty()) == pytest.approx(0.0, abs=1e-9)


def test_train_mode_is_an_alias_of_method_and_old_configs_compare_equal() -> None:
    assert TrainConfig(mode="full").method == "full" and TrainConfig(mode="head").mode == "head"
    dumped = TrainConfig(mode="full").model_dump()
    assert dumped["method"] == "full" and "mode" not in dumped and "loha" not in dumped
    assert "ia3" in TrainConfig(method="ia3", ia3={"target_modules": ["key"]}).model_dump()
    with pytest.raises(ValueError, match="disagree"):
        TrainConfig(mode="full", method="lora")
    # a run folder written before train.method and lora.init is still the same config
    new = config_to_dict(config_from_dict({"name": "x", "data": {"spec": "bundled:tweets"},
                                           "model": {"name": "bundled:minilm"}}))
    old = json.loads(json.dumps(new))
    old["train"]["mode"] = old["train"].pop("method")
    del old["train"]["lora"]["init"]
    assert comparable_config(old) != comparable_config(new)
    assert comparable_config(resolved_config(old)) == comparable_config(new)


def test_a_method_that_cannot_adapt_the_model_is_one_line(tiny_models: dict[str, Path]) -> None:
    loaded = load_classifier(ModelConfig(name=str(tiny_models["bert"])), LABELS)
    cfg = _config(method="loha", loha={"r": 4, "target_modules": ["no_such_module"]})
    with pytest.raises(SpurlabError, match=r"^train\.loha: ") as err:
        attach_trainable(loaded, cfg.method, cfg.method_settings)
    assert "\n" not in str(err.value)
    with pytest.raises(SpurlabError, match="target_r 8 is above init_r 4"):
        attach_trainable(loaded, "adalora", _config(method="adalora", adalora={"init_r": 4}).method_settings)


def test_spurlab_run_with_another_method_end_to_end(tiny_models: dict[str, Path], synthetic_csv: Path,
                                                     tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import yaml

    from conftest import run_cli

    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({
        "name": "ia3", "data": {"spec": str(synthetic_csv), "test_size": 0.25},
        "injection": {"source": "fixed", "token": "zq", "target_label": "pos"},
        "model": {"name": str(tiny_models["bert"])},
        "train": {"method": "ia3", "max_steps": 2, "batch_size": 16, "max_length": 16, "precision": "fp32"}}))
    out = tmp_path / "out"
    code, _, err = run_cli(["run", str(config), "--out", str(out), "--no-progress", "--no-report"], capsys)
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["meta"]["method"] == "ia3" and metrics["meta"]["train"]["trainable_parameters"] > 0
    assert json.loads((out / "adapter" / "adapter_config.json").read_text())["peft_type"] == "IA3"
    assert yaml.safe_load((out / "config.yaml").read_text())["train"]["method"] == "ia3"
    code, out_text, err = run_cli(["run", str(config), "--out", str(out), "--no-progress", "--no-report"], capsys)
    assert code == 0 and "already" in out_text, err  # the same config is recognised as finished
