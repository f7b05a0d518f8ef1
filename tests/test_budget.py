"""Trainable-parameter budgets: measured counts equal the analytic ones, methods are matched to a target
(LoHa at rank r/2 trains exactly what LoRA at rank r does), the loaded model is left untouched, and
``spurlab budget`` prints the overrides."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from torch import nn

from conftest import run_cli
from spurlab.models import load_classifier
from spurlab.models.budget import match_budget, trainable_parameters
from spurlab.models.config import LoraSettings, ModelConfig

pytestmark = pytest.mark.usefixtures("torch_threads")
TARGETS = ("query", "key", "value", "dense")


def _loaded(folder: Path):
    return load_classifier(ModelConfig(name=str(folder)), ["neg", "pos"])


def test_lora_count_is_r_times_in_plus_out_over_its_targets_plus_the_head(tiny_models: dict[str, Path]) -> None:
    loaded = _loaded(tiny_models["bert"])
    linears = [m for name, m in loaded.model.named_modules()
               if isinstance(m, nn.Linear) and name.split(".")[-1] in TARGETS and not name.startswith("classifier")]
    head = sum(p.numel() for p in loaded.model.classifier.parameters())
    for r in (1, 4, 8):
        expected = r * sum(m.in_features + m.out_features for m in linears) + head
        assert trainable_parameters(loaded, "lora", LoraSettings(r=r)) == expected
    assert trainable_parameters(loaded, "head") == head
    assert trainable_parameters(loaded, "full") == sum(p.numel() for p in loaded.model.parameters())
    assert not any("lora_" in name for name in loaded.model.state_dict())  # counting left the model as it was


def test_match_budget_finds_the_size_closest_to_the_target(tiny_models: dict[str, Path]) -> None:
    loaded = _loaded(tiny_models["bert"])
    target = trainable_parameters(loaded, "lora", LoraSettings(r=8))
    loha = match_budget(loaded, "loha", target)
    assert (loha.size, loha.trainable) == (4, target)  # two low-rank pairs per layer: rank 4 is LoRA's rank 8
    lora = match_budget(loaded, "lora", target + 5)
    assert lora.size == 8 and lora.settings.r == 8
    adalora = match_budget(loaded, "adalora", target)
    assert adalora.settings.target_r <= adalora.settings.init_r == adalora.size
    ia3 = match_budget(loaded, "ia3", target)
    assert ia3.size is None and 0 < ia3.trainable < target


def test_budget_command(tiny_models: dict[str, Path], synthetic_csv: Path, tmp_path: Path,
                        capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({"name": "b", "data": {"spec": str(synthetic_csv)},
                                      "model": {"name": str(tiny_models["bert"])},
                                      "train": {"method": "lora", "lora": {"r": 8}}}))
    code, out, err = run_cli(["budget", str(config), "--methods", "lora,loha,head"], capsys)
    assert code == 0, err
    assert "train.method=loha train.loha.r=4" in out and "train.method=lora train.lora.r=8" in out
    code, _, err = run_cli(["budget", str(config), "--methods", "lora,boft"], capsys)
    assert code == 2 and "unknown method(s) boft" in err and err.count("\n") == 1
