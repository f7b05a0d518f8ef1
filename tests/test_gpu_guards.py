"""GPU-only paths (bitsandbytes quantization, bf16 on CUDA) are configured here and refused in one line where
they cannot run; nothing in these tests needs a GPU."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
import yaml

from conftest import run_cli
from spurlab.errors import SpurlabError
from spurlab.experiment.config import config_from_dict
from spurlab.models.config import ModelConfig
from spurlab.models.loading import _quantization_kwargs, check_quantization, is_quantized, place
from spurlab.precision import choose_precision

CUDA = torch.device("cuda")


def _config(model: Path, data: Path, **model_extra: object) -> dict:
    return {"name": "q", "data": {"spec": str(data), "test_size": 0.25},
            "model": {"name": str(model), **model_extra},
            "train": {"method": "lora", "max_steps": 1, "batch_size": 8, "max_length": 16, "precision": "fp32"}}


def test_quantized_weights_cannot_be_finetuned_in_full(tiny_models: dict[str, Path], synthetic_csv: Path) -> None:
    data = _config(tiny_models["bert"], synthetic_csv, quantization="4bit")
    assert config_from_dict(data).model.quantization == "4bit"
    data["train"]["method"] = "full"
    with pytest.raises(SpurlabError, match="4bit weights cannot be finetuned in full; use a PEFT method"):
        config_from_dict(data)
    with pytest.raises(SpurlabError, match=r"model\.quantization"):
        config_from_dict(_config(tiny_models["bert"], synthetic_csv, quantization="2bit"))


def test_quantization_on_a_cpu_is_one_line_and_writes_nothing(tiny_models: dict[str, Path], synthetic_csv: Path,
                                                             tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                             ) -> None:
    config = tmp_path / "q.yaml"
    config.write_text(yaml.safe_dump(_config(tiny_models["bert"], synthetic_csv, quantization="4bit")))
    code, _, err = run_cli(["run", str(config), "--out", str(tmp_path / "run"), "train.device=cpu"], capsys)
    assert code != 0
    assert err.strip().splitlines() == ["error: model.quantization: 4bit (bitsandbytes, as in QLoRA) runs on CUDA "
                                        "only and this run's device is cpu; use quantization: none here"]
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(importlib.util.find_spec("bitsandbytes") is not None, reason="bitsandbytes is installed")
def test_quantization_without_bitsandbytes_names_the_extra() -> None:
    with pytest.raises(SpurlabError, match=r"8bit needs bitsandbytes \(pip install 'spurlab\[gpu\]'\)"):
        check_quantization(ModelConfig(name="m", quantization="8bit"), CUDA)
    check_quantization(ModelConfig(name="m"), torch.device("cpu"))  # none: nothing to check


def test_quantization_arguments_are_qlora_s() -> None:
    assert _quantization_kwargs(ModelConfig(name="m"), CUDA) == {}
    four = _quantization_kwargs(ModelConfig(name="m", quantization="4bit"), torch.device("cuda:1"))
    quant = four["quantization_config"]
    assert (quant.load_in_4bit, quant.bnb_4bit_quant_type, quant.bnb_4bit_use_double_quant,
            quant.bnb_4bit_compute_dtype) == (True, "nf4", True, torch.bfloat16)
    assert four["device_map"] == {"": 1}
    eight = _quantization_kwargs(ModelConfig(name="m", quantization="8bit"), None)
    assert eight["quantization_config"].load_in_8bit and eight["device_map"] == {"": 0}


def test_place_leaves_quantized_weights_where_they_were_loaded() -> None:
    plain = torch.nn.Linear(2, 2)
    assert not is_quantized(plain) and place(plain, torch.device("cpu")) is plain
    plain.is_loaded_in_4bit = True  # what transformers sets on a bitsandbytes model
    assert is_quantized(plain)
    assert place(plain, torch.device("meta")) is plain and plain.weight.device.type == "cpu"


def test_bf16_on_a_cuda_device_without_it_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    with pytest.raises(SpurlabError, match="bf16 needs a CUDA device with bf16 support"):
        choose_precision("bf16", CUDA)
    auto = choose_precision("auto", CUDA)
    assert (auto.precision, auto.reason) == ("fp32", "this CUDA device does not support bf16")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert choose_precision("auto", CUDA).precision == "bf16"
