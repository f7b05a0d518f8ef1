"""Registries are the extension points: a third-party token source with its own typed parameters works from a
YAML config; duplicate names are refused; bad parameters are one line naming the key, before anything runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import BaseModel, ConfigDict, Field

from conftest import synthetic_frame
from spurlab.data.dataset import TextDataset
from spurlab.defend import DEFENSES, DefenseParams, register_defense
from spurlab.errors import SpurlabError
from spurlab.experiment.config import config_from_dict, dump_config, load_experiment_config
from spurlab.inject import SOURCES, TokenSource, inject, register_source
from spurlab.registry import Registry


class RepeatParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    word: str = Field(min_length=1)
    times: int = Field(2, ge=1, le=5)


@register_source("test-repeat", params=RepeatParams)
class RepeatSource(TokenSource):
    """The same word, ``times`` times."""

    def __init__(self, word: str, times: int) -> None:
        self.text = " ".join([word] * times)

    def draw(self, rng: np.random.Generator) -> str:
        return self.text


def _yaml(tmp_path: Path, injection: str) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(f"data: {{spec: x.csv}}\nmodel: {{name: m}}\ninjection: {injection}\n", encoding="utf-8")
    return path


def test_third_party_source_with_parameters_from_a_yaml_config(tmp_path: Path) -> None:
    cfg = load_experiment_config(_yaml(tmp_path, "{source: test-repeat, params: {word: zq, times: 3}, "
                                                  "target_label: pos, proportion: 1.0, location: end}"))
    assert cfg.injection.source_params == RepeatParams(word="zq", times=3)
    frame = synthetic_frame(40)
    result = inject(TextDataset(frame, "text", "label"), cfg.injection)
    for text, old, label in zip(result.dataset.texts, frame["text"], frame["label"], strict=True):
        assert text == (f"{old} zq zq zq" if label == "pos" else old)
    assert result.summary["config"]["params"] == {"word": "zq", "times": 3}
    # the config writes back what was given and reads back the same
    again = config_from_dict(__import__("yaml").safe_load(dump_config(cfg)))
    assert again.injection.spec() == cfg.injection.spec()


@pytest.mark.parametrize(("injection", "message"), [
    ("{source: test-repeat, params: {word: zq, times: 9}}", "times"),
    ("{source: test-repeat, params: {times: 2}}", "word"),
    ("{source: test-repeat, params: {word: zq, colour: red}}", "colour"),
    ("{source: test-repeat, token: '!', params: {word: zq}}", "does not use token"),
    ("{source: date, params: {year_min: 2000, year_max: 1990}}", "year_min 2000 is after year_max 1990"),
])
def test_bad_source_parameters_are_one_line_naming_the_key(tmp_path: Path, injection: str, message: str) -> None:
    with pytest.raises(SpurlabError) as info:
        load_experiment_config(_yaml(tmp_path, injection))
    assert message in str(info.value) and "injection" in str(info.value) and "\n" not in str(info.value)


def test_builtin_shorthand_and_params_are_the_same_source() -> None:
    from spurlab.inject import InjectionConfig, build_source

    short = build_source(InjectionConfig(source="date", year_min=2001, year_max=2001))
    typed = build_source(InjectionConfig(source="date", params={"year_min": 2001, "year_max": 2001}))
    rng_a, rng_b = np.random.default_rng(3), np.random.default_rng(3)
    draws = [short.draw(rng_a) for _ in range(20)]
    assert draws == [typed.draw(rng_b) for _ in range(20)] and all(d.startswith("2001-") for d in draws)


def test_duplicate_names_are_refused() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_source("date")(type("Other", (TokenSource,), {}))
    with pytest.raises(ValueError, match="already registered"):
        register_defense("sanitize")(type("Other", (DefenseParams,), {}))
    assert "date" in SOURCES and "sanitize" in DEFENSES


def test_registry_basics() -> None:
    reg: Registry[str] = Registry("widget")

    class Size(BaseModel):
        model_config = ConfigDict(extra="forbid")
        n: int = Field(1, ge=1)

    reg.add("box", lambda p: f"box of {p.n}", Size, "a box")
    assert reg.build("box", {"n": 3}) == "box of 3" and reg.names() == ["box"]
    with pytest.raises(SpurlabError, match=r"unknown widget 'tin' \(known: box\)"):
        reg.get("tin")
    with pytest.raises(SpurlabError, match=r"widget 'box': n: "):
        reg.build("box", {"n": 0})
    with pytest.raises(TypeError):
        reg.add("bag", lambda p: "bag", dict)  # type: ignore[arg-type]


def test_third_party_defense_from_a_config(tmp_path: Path) -> None:
    @register_defense("test-lowercase")
    class Lowercase(DefenseParams):
        """Lowercase the first ``rows`` rows."""

        rows: int = Field(1, ge=1)

        def apply(self, dataset: TextDataset):
            from spurlab.data.transform import TransformResult

            frame = dataset.frame.copy()
            frame.loc[: self.rows - 1, dataset.text_col] = frame[dataset.text_col][: self.rows].str.upper()
            return TransformResult(dataset.with_frame(frame), [{"row": i} for i in range(self.rows)])

    base = {"data": {"spec": "x.csv"}, "model": {"name": "m"}}
    cfg = config_from_dict({**base, "defense": {"name": "test-lowercase", "rows": 2}})
    assert cfg.defense is not None and cfg.defense.model_dump() == {"name": "test-lowercase", "rows": 2}
    ds = TextDataset(synthetic_frame(6), "text", "label")
    out = cfg.defense.build().apply(ds)
    assert out.dataset.texts[:2] == [t.upper() for t in ds.texts[:2]] and out.dataset.texts[2:] == ds.texts[2:]
    with pytest.raises(SpurlabError, match=r"defense: defense 'test-lowercase': rows: "):
        config_from_dict({**base, "defense": {"name": "test-lowercase", "rows": 0}})
