"""``precision: auto`` is decided by a measured probe, cached per machine; fixed precisions pass through."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from spurlab.errors import SpurlabError
from spurlab.precision import choose_precision, decide, probe_step_seconds

CPU = torch.device("cpu")


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SPURLAB_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "precision.json"


def test_decide_needs_a_clear_margin() -> None:
    assert decide({"fp32": 0.180, "bf16": 0.120})[0] == "bf16"   # 1.5x
    assert decide({"fp32": 0.100, "bf16": 0.200})[0] == "fp32"   # bf16 twice as slow (autocast casts dominate)
    assert decide({"fp32": 0.104, "bf16": 0.100})[0] == "fp32"   # 1.04x: a tie goes to fp32
    assert decide({"fp32": 0.106, "bf16": 0.100})[0] == "bf16"   # 1.06x
    precision, reason = decide({"fp32": 0.15, "bf16": 0.1})
    assert precision == "bf16" and "1.50x" in reason and "150 vs 100 ms" in reason


def test_auto_measures_once_then_reads_the_cache(cache: Path) -> None:
    calls = []

    def measure() -> dict[str, float]:
        calls.append(1)
        return {"fp32": 0.2, "bf16": 0.1}

    first = choose_precision("auto", CPU, measure=measure)
    assert (first.precision, first.seconds_per_step, len(calls)) == ("bf16", {"fp32": 0.2, "bf16": 0.1}, 1)
    assert "(cached)" not in first.reason
    stored = json.loads(cache.read_text())
    (entry,) = stored.values()
    assert entry["fp32"] == 0.2 and entry["bf16"] == 0.1
    second = choose_precision("auto", CPU, measure=measure)
    assert len(calls) == 1 and second.precision == "bf16" and second.reason.endswith("(cached)")


def test_auto_on_a_slow_bf16_machine_is_fp32(cache: Path) -> None:
    choice = choose_precision("auto", CPU, measure=lambda: {"fp32": 0.1, "bf16": 0.3})
    assert choice.precision == "fp32" and "0.33x" in choice.reason


def test_a_broken_or_unwritable_cache_only_means_measuring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "cache"
    folder.mkdir()
    (folder / "precision.json").write_text("{not json")
    monkeypatch.setenv("SPURLAB_CACHE", str(folder))
    assert choose_precision("auto", CPU, measure=lambda: {"fp32": 0.1, "bf16": 0.3}).precision == "fp32"
    blocked = tmp_path / "file"
    blocked.write_text("")
    monkeypatch.setenv("SPURLAB_CACHE", str(blocked / "sub"))  # a folder that cannot be created
    assert choose_precision("auto", CPU, measure=lambda: {"fp32": 0.3, "bf16": 0.1}).precision == "bf16"


def test_fixed_precisions_pass_through_with_their_reason(cache: Path) -> None:
    def never() -> dict[str, float]:
        raise AssertionError("a fixed precision must not measure")

    for name in ("fp32", "bf16"):
        choice = choose_precision(name, CPU, measure=never)
        assert (choice.precision, choice.reason, choice.seconds_per_step) == (name, "set in the config", None)
    with pytest.raises(SpurlabError, match="bf16 autocast is not supported on meta"):
        choose_precision("bf16", torch.device("meta"))
    assert not cache.exists()


def test_the_probe_times_both_precisions() -> None:
    timings = probe_step_seconds(CPU, repeats=1)
    assert set(timings) == {"fp32", "bf16"} and all(0 < t < 60 for t in timings.values())
