"""Untrusted models, adapters and configs: no code of someone else runs unless the user asked for it, pickle
checkpoints are refused unless allowed, YAML is parsed safely, and offline mode never touches the network."""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import pytest
import torch
import yaml

from conftest import cli_code as cli
from conftest import synthetic_frame
from spurlab.errors import SpurlabError
from spurlab.experiment.config import load_experiment_config
from spurlab.models import attach_trainable, load_adapter, load_classifier, save_trained
from spurlab.models.config import ModelConfig

pytestmark = pytest.mark.usefixtures("torch_threads")
LABELS = ["neg", "pos"]


def test_remote_code_is_not_run_without_the_flag(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    """A model folder whose config points at its own Python code: loading it without trust_remote_code
    fails with one line and the code never runs."""
    folder = tmp_path / "custom"
    shutil.copytree(tiny_models["bert"], folder)
    marker = tmp_path / "code-ran"
    (folder / "evil_config.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).write_text('ran')\n"
        "from transformers import BertConfig\nclass EvilConfig(BertConfig):\n    model_type = 'evil'\n")
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "evil_config.EvilConfig"}
    config["model_type"] = "evil"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(SpurlabError) as info:
        load_classifier(ModelConfig(name=str(folder)), LABELS)
    assert "\n" not in str(info.value) and "custom code" in str(info.value)
    assert not marker.exists()


def test_trust_remote_code_is_printed_when_on(tiny_models: dict[str, Path], capsys: pytest.CaptureFixture[str]
                                              ) -> None:
    load_classifier(ModelConfig(name=str(tiny_models["bert"]), trust_remote_code=True), LABELS)
    assert "warning: trust_remote_code is on" in capsys.readouterr().out
    load_classifier(ModelConfig(name=str(tiny_models["bert"])), LABELS)
    assert "trust_remote_code" not in capsys.readouterr().out


@pytest.fixture()
def pickled_model(tiny_models: dict[str, Path], tmp_path: Path) -> Path:
    """The tiny BERT saved as ``pytorch_model.bin`` only (a pickle)."""
    from transformers import AutoModel

    folder = tmp_path / "pickled"
    model = AutoModel.from_pretrained(tiny_models["bert"])
    model.save_pretrained(folder, safe_serialization=False)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (tiny_models["bert"] / name).exists():
            shutil.copy(tiny_models["bert"] / name, folder / name)
    (folder / "model.safetensors").unlink(missing_ok=True)
    if not (folder / "pytorch_model.bin").exists():  # a transformers that always writes safetensors
        torch.save(model.state_dict(), folder / "pytorch_model.bin")
    return folder


def test_pickle_model_is_refused_unless_allowed(pickled_model: Path) -> None:
    with pytest.raises(SpurlabError, match=r"only pickle weights .*allow_pickle"):
        load_classifier(ModelConfig(name=str(pickled_model)), LABELS)
    loaded = load_classifier(ModelConfig(name=str(pickled_model), allow_pickle=True), LABELS)
    assert loaded.model_type == "bert"


def test_pickle_adapter_is_refused_unless_allowed(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    from safetensors.torch import load_file

    cfg = ModelConfig(name=str(tiny_models["bert"]))
    loaded = load_classifier(cfg, LABELS)
    model = attach_trainable(loaded, "lora")
    folder = tmp_path / "adapter"
    save_trained(model, loaded, "lora", folder, {"label_names": LABELS})
    with pytest.raises(SpurlabError, match="no such folder"):
        load_adapter(load_classifier(cfg, LABELS), tmp_path / "missing")
    weights = folder / "adapter_model.safetensors"
    torch.save(load_file(str(weights)), folder / "adapter_model.bin")
    weights.unlink()
    with pytest.raises(SpurlabError, match="only pickle weights"):
        load_adapter(load_classifier(cfg, LABELS), folder)
    assert load_adapter(load_classifier(cfg, LABELS), folder, allow_pickle=True) is not None
    (folder / "adapter_model.bin").unlink()
    with pytest.raises(SpurlabError, match=r"adapter_model\.safetensors is missing"):
        load_adapter(load_classifier(cfg, LABELS), folder)


def test_allow_pickle_cli_flag(pickled_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "d.csv"
    synthetic_frame(40).to_csv(data, index=False)
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({
        "name": "pickled", "data": {"spec": str(data)}, "model": {"name": str(pickled_model)},
        "train": {"mode": "head", "max_steps": 1, "batch_size": 8, "max_length": 16}, "evaluation": {"base": False}}))
    assert cli(["run", str(config), "--out", str(tmp_path / "a"), "--no-progress"]) == 2
    assert "allow_pickle" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()
    assert cli(["run", str(config), "--out", str(tmp_path / "b"), "--no-progress", "--allow-pickle"]) == 0
    assert yaml.safe_load((tmp_path / "b" / "config.yaml").read_text())["model"]["allow_pickle"] is True


def test_yaml_tags_are_not_constructed(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = tmp_path / "evil.yaml"
    path.write_text("name: !!python/object/apply:pathlib.Path.touch "
                    f"[!!python/object/apply:pathlib.Path [{str(marker)!r}]]\n")
    with pytest.raises(SpurlabError) as info:
        load_experiment_config(path)
    assert "invalid YAML" in str(info.value) and "\n" not in str(info.value)
    assert not marker.exists()


def test_offline_mode_never_opens_a_connection(tiny_models: dict[str, Path], tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """With HF_HUB_OFFLINE=1 a run, an injection (with a tokenizer report) and a scan never connect anywhere."""
    attempts: list[object] = []

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(args)
        raise OSError("network access attempted")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    data = tmp_path / "d.csv"
    synthetic_frame(60).to_csv(data, index=False)
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({
        "name": "offline", "data": {"spec": str(data)}, "injection": {"source": "date", "target_label": "pos"},
        "model": {"name": str(tiny_models["bert"])},
        "train": {"mode": "lora", "max_steps": 2, "batch_size": 8, "max_length": 16}}))
    assert cli(["run", str(config), "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    assert cli(["inject", str(data), "--out", str(tmp_path / "inj"), "--tokenizer", str(tiny_models["bert"])]) == 0
    assert cli(["scan", str(data), "--out", str(tmp_path / "scan"), "--tokenizer", str(tiny_models["bert"])]) == 0
    assert cli(["sanitize", str(data), "--auto", "--out", str(tmp_path / "san")]) == 0
    assert attempts == []
