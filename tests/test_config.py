"""Experiment config: YAML round trip, dotted overrides, one-line errors naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from spurlab.config_io import apply_overrides
from spurlab.errors import SpurlabError
from spurlab.experiment.config import config_from_dict, dump_config, load_experiment_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
MINIMAL = {"data": {"spec": "x.csv"}, "model": {"name": "bundled:minilm"}}


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _error(data: dict) -> str:
    with pytest.raises(SpurlabError) as info:
        config_from_dict(data)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_defaults_and_round_trip(tmp_path: Path) -> None:
    cfg = config_from_dict(MINIMAL)
    assert cfg.train.mode == "lora" and cfg.train.lora.r == 8 and cfg.train.warmup_ratio == 0.05
    assert cfg.injection is None and cfg.injections == []
    again = load_experiment_config(_write(tmp_path, dump_config(cfg)))
    assert again == cfg


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_example_configs_validate(path: Path) -> None:
    cfg = load_experiment_config(path)
    assert cfg.model.name and cfg.data.spec


def test_overrides(tmp_path: Path) -> None:
    path = _write(tmp_path, "data: {spec: x.csv}\nmodel: {name: m}\ninjection: {source: date, target_label: a}\n")
    cfg = load_experiment_config(path, ["train.lr=2e-3", "train.lora.r=4", "train.lora.target_modules=[q, v]",
                                        "injection.proportion=0.5", "name=hello"])
    assert cfg.train.lr == pytest.approx(2e-3) and cfg.train.lora.r == 4
    assert cfg.train.lora.target_modules == ["q", "v"]
    assert cfg.injection.proportion == 0.5 and cfg.name == "hello"
    assert load_experiment_config(path, ["injection=null"]).injection is None
    assert apply_overrides({"a": {"b": 1}}, ["a.c.d=x"]) == {"a": {"b": 1, "c": {"d": "x"}}}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({**MINIMAL, "trian": {}}, "trian: unknown key"),
        ({**MINIMAL, "train": {"lrr": 1}}, "train.lrr: unknown key"),
        ({**MINIMAL, "train": {"lr": -1}}, "train.lr: "),
        ({**MINIMAL, "train": {"method": "qlora"}}, "train.method: "),
        ({**MINIMAL, "train": {"lora": {"r": 0}}}, "train.lora.r: "),
        ({**MINIMAL, "train": {"device": "tpu"}}, "train.device: unknown device"),
        ({"model": {"name": "m"}}, "data: required key is missing"),
        ({**MINIMAL, "injection": {"source": "nope"}}, "injection.source: "),
        ({**MINIMAL, "injection": {"source": "date", "colour": 1}}, "injection.colour"),
        ({**MINIMAL, "injection": [{"source": "date"}, {"proportion": 2}]}, "injection.1.proportion"),
        ({**MINIMAL, "evaluation": {"injection": {"location": "middle"}}}, "evaluation.injection.location"),
    ],
)
def test_validation_errors_name_the_key(data: dict, expected: str) -> None:
    assert expected in _error(data)


def test_bad_yaml_and_bad_override(tmp_path: Path) -> None:
    with pytest.raises(SpurlabError, match="invalid YAML"):
        load_experiment_config(_write(tmp_path, "data: [unclosed\n"))
    with pytest.raises(SpurlabError, match=r"expected dotted\.key=value"):
        load_experiment_config(_write(tmp_path, "data: {spec: x}\nmodel: {name: m}\n"), ["train.lr"])
    with pytest.raises(SpurlabError, match="cannot read config"):
        load_experiment_config(tmp_path / "missing.yaml")
