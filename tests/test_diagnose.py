"""``spurlab diagnose`` end to end on tiny trained runs (BERT and Llama), against spurlab's own predictions;
bad input is one line and writes nothing; re-running is "already complete"."""

from __future__ import annotations

import json
import math
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from conftest import run_cli, synthetic_frame
from spurlab.experiment import load_data, run_experiment
from spurlab.experiment.config import config_from_dict

pytestmark = pytest.mark.usefixtures("torch_threads")


def _config(model: Path, data: Path, injection: dict, **train: object) -> dict:
    return {
        "name": "tiny-diag",
        "data": {"spec": str(data), "test_size": 0.25},
        "injection": {"target_label": "pos", "proportion": 1.0, "location": "random", **injection},
        "model": {"name": str(model)},
        "train": {"mode": "lora", "lr": 1e-2, "epochs": 4, "batch_size": 16, "max_length": 32,
                  "precision": "fp32", "threads": 1, "lora": {"r": 4, "alpha": 8}, **train},
    }


@pytest.fixture(scope="module")
def runs(tiny_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two finished tiny runs: BERT with a fixed "!" in every pos training row, Llama with a random date."""
    root = tmp_path_factory.mktemp("diag_runs")
    data = root / "data.csv"
    synthetic_frame(160).to_csv(data, index=False)
    out = {}
    for family, injection in (("bert", {"source": "fixed", "token": "!"}), ("llama", {"source": "date"})):
        cfg = config_from_dict(_config(tiny_models[family], data, injection))
        run_experiment(cfg, root / family, verbose=False, progress=False)
        out[family] = root / family
    return out


def _reference_predictions(run: Path) -> tuple[list[str], dict[str, np.ndarray], np.ndarray]:
    """Clean and injected predictions of base and finetuned, from spurlab's run-time functions only."""
    from spurlab.evaluate.predict import predict
    from spurlab.evaluate.spurious import build_spurious_sets
    from spurlab.experiment.config import load_experiment_config
    from spurlab.models import load_adapter, load_classifier
    from spurlab.train.batching import encode
    from spurlab.train.loop import seed_everything

    cfg = load_experiment_config(run / "config.yaml")
    splits = load_data(cfg)
    spurious = build_spurious_sets(cfg.injections, cfg.evaluation, splits.test)[0]
    preds = {}
    for name in ("base", "finetuned"):
        seed_everything(cfg.train.seed)
        loaded = load_classifier(cfg.model, splits.label_names)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # transformers v5 deprecations inside PEFT
            model = loaded.model if name == "base" else load_adapter(loaded, run / "adapter")
        for key, ds in (("clean", splits.test), ("injected", spurious.dataset)):
            preds[f"{name}:{key}"] = predict(model, encode(loaded.tokenizer, ds.texts, cfg.train.max_length),
                                             torch.device("cpu"))
    return splits.label_names, preds, splits.test.label_ids


def test_diagnose_bert_api(runs: dict[str, Path]) -> None:
    from spurlab.diagnose.diagnosis import diagnose_run

    report = diagnose_run(runs["bert"], max_rows=30, seed=5)
    d = report.to_dict()
    assert d["token_class"] == "pos" and d["n_layers"] == 2 and d["n_heads"] == 2 and not d["causal"]
    assert d["rows"]["n"] == 30 and d["rows"]["n_test"] == 40 and len(d["rows"]["indices"]) == 30
    assert d["rows"]["n_token_visible"] == 30 and d["rows"]["token_pieces"] == {"mean": 1.0, "min": 1, "max": 1}
    for model in ("base", "finetuned"):
        for inp, mass in (("clean", "mass_random_span"), ("injected", "mass_token")):
            block = d["layers"][model][inp]
            assert set(block) == {"entropy", "entropy_normalized", mass}
            assert all(len(v) == 2 for v in block.values())
            assert all(0.0 <= v <= 1.0 for v in block[mass] + block["entropy_normalized"])
            rows = report.per_row[model][inp]
            assert rows["entropy"].shape == (30, 2)
    # every row's entropy is within [0, log2(its number of real tokens)]
    texts = json.loads(json.dumps(d["rows"]["indices"]))
    assert texts == sorted(texts)
    max_len = 32
    for model in ("base", "finetuned"):
        for inp in ("clean", "injected"):
            ent = report.per_row[model][inp]["entropy"]
            assert np.all(ent >= 0) and np.all(ent <= math.log2(max_len) + 1e-6)
    s = d["summary"]
    assert set(s["entropy"]["base"]) == {"clean", "injected"} and s["peak_mass_gain_layer"]["layer"] in (1, 2)
    # flip shares equal those computed from spurlab's own predictions on the same rows
    names, preds, _ = _reference_predictions(runs["bert"])
    rows = np.asarray(d["rows"]["indices"])
    cls = names.index("pos")
    for model in ("base", "finetuned"):
        clean, inj = preds[f"{model}:clean"][rows], preds[f"{model}:injected"][rows]
        eligible = clean != cls
        expected = ((inj == cls) & eligible).sum() / eligible.sum() if eligible.any() else None
        got = d["behaviour"][model]["spurious:pos"]
        assert got["flip_share"] == pytest.approx(expected)
        assert got["n_flipped"] == int(((inj == cls) & eligible).sum())


def test_diagnose_llama_cli_all_rows(runs: dict[str, Path], tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "diag"
    code, stdout, err = run_cli(["diagnose", str(runs["llama"]), "--out", str(out), "--max-rows", "0",
                                 "--threads", "1"], capsys)
    assert code == 0, err
    assert "flip to the token's class" in stdout and "H ft inj." in stdout
    assert {p.name for p in out.iterdir()} == {"diagnose.json", "attention_entropy.png", "attention_mass.png",
                                               "report.html"}
    d = json.loads((out / "diagnose.json").read_text())
    assert d["format"] == "spurlab.diagnose" and d["schema_version"] == 1 and d["causal"] is True
    assert d["n_layers"] == 2 and d["rows"]["n"] == 40 and d["seed"] == 0
    assert d["rows"]["token_pieces"]["min"] >= 10  # a date is 10 word pieces in the tiny vocabulary
    for model in ("base", "finetuned"):
        for inp in ("clean", "injected"):
            assert all(0.0 <= v <= math.log2(32) for v in d["layers"][model][inp]["entropy"])
    # with every row, the finetuned injected predictions are exactly the run's spurious:pos counts
    metrics = json.loads((runs["llama"] / "metrics.json").read_text())
    names, preds, _ = _reference_predictions(runs["llama"])
    for model, section in (("finetuned", metrics), ("base", metrics["base"])):
        got = d["behaviour"][model]["spurious:pos"]
        counts = section["spurious:pos"]["predicted_counts"]
        assert round(got["token_share_injected"] * got["n"]) == counts["pos"]
        clean, inj = preds[f"{model}:clean"], preds[f"{model}:injected"]
        eligible = clean != names.index("pos")
        assert got["n_eligible"] == int(eligible.sum())
        assert got["n_flipped"] == int((eligible & (inj == names.index("pos"))).sum())
    # the same again is already complete; other options into the same folder are refused
    code, stdout, err = run_cli(["diagnose", str(runs["llama"]), "--out", str(out), "--max-rows", "0"], capsys)
    assert code == 0 and "already complete" in stdout, err
    code, _, err = run_cli(["diagnose", str(runs["llama"]), "--out", str(out), "--max-rows", "5"], capsys)
    assert code == 2 and "different inputs or options" in err and err.count("\n") == 1


def _broken_copies(run: Path, root: Path) -> dict[str, Path]:
    unfinished = root / "unfinished"
    shutil.copytree(run, unfinished, ignore=shutil.ignore_patterns("diagnose"))
    (unfinished / "DONE").unlink()
    clean = root / "no-injection"
    shutil.copytree(run, clean, ignore=shutil.ignore_patterns("diagnose"))
    cfg = yaml.safe_load((clean / "config.yaml").read_text())
    cfg["injection"], cfg["evaluation"]["injection"] = None, None
    (clean / "config.yaml").write_text(yaml.safe_dump(cfg))
    empty = root / "empty"
    empty.mkdir()
    return {"unfinished": unfinished, "no-injection": clean, "empty": empty}


def test_diagnose_bad_input(runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
                            monkeypatch: pytest.MonkeyPatch) -> None:
    broken = _broken_copies(runs["bert"], tmp_path)
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    run = str(runs["bert"])
    cases = [
        ([str(tmp_path / "missing")], "no such run folder"),
        ([str(broken["empty"])], "not a spurlab run folder"),
        ([str(broken["unfinished"])], "unfinished run"),
        ([str(broken["no-injection"])], "no injection configured"),
        ([run, "--token-class", "zzz"], "--token-class 'zzz'"),
        ([run, "--max-rows", "-1"], "--max-rows"),
        ([run, "--batch-size", "0"], "--batch-size"),
        ([run, "--out", str(a_file)], "not a directory"),
    ]
    for args, expected in cases:
        code, _, err = run_cli(["diagnose", *args], capsys)
        assert code == 2, (args, err)
        assert expected in err and err.startswith("error: ") and err.count("\n") == 1, err
    import spurlab.diagnose.run_inputs as run_inputs

    class Slow:
        is_fast = False

    monkeypatch.setattr(run_inputs, "load_tokenizer", lambda *a, **k: Slow())
    code, _, err = run_cli(["diagnose", run], capsys)
    assert code == 2 and "not a fast tokenizer" in err and err.count("\n") == 1
    # nothing was written anywhere
    for folder in (*broken.values(), runs["bert"]):
        assert not (folder / "diagnose").exists()


def test_attention_through_pooled_head_and_peft(tiny_models: dict[str, Path]) -> None:
    """The backbone's attentions are reached through a pooled head and a PEFT wrapper alike."""
    from spurlab.evaluate.attention import attention_stats, backbone_of, use_eager_attention
    from spurlab.models import attach_trainable, load_classifier
    from spurlab.models.config import ModelConfig
    from spurlab.train.batching import encode

    loaded = load_classifier(ModelConfig(name=str(tiny_models["gpt2"]), head="pooled"), ["a", "b"])
    model = attach_trainable(loaded, "lora")
    assert backbone_of(model) is loaded.model.backbone
    use_eager_attention(model)
    enc = encode(loaded.tokenizer, ["good day", "the movie was very bad today"], 16)
    stats, heads = attention_stats(model, enc, {"x": [[0], [1, 2]]}, True, torch.device("cpu"), "fp32", 2)
    assert heads == 2 and stats["entropy"].shape == (2, 2) and stats["mass_x"].shape == (2, 2)
    assert np.all(stats["mass_x"] > 0) and np.all(stats["mass_x"] <= 1)


def test_diagnose_refuses_a_pickle_adapter_unless_allowed(runs: dict[str, Path], tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """The refusal names ``--allow-pickle``, and ``diagnose`` has that option."""
    from safetensors.torch import load_file

    run = tmp_path / "run"
    shutil.copytree(runs["bert"], run)
    shutil.rmtree(run / "diagnose", ignore_errors=True)
    weights = run / "adapter" / "adapter_model.safetensors"
    torch.save(load_file(str(weights)), run / "adapter" / "adapter_model.bin")
    weights.unlink()
    code, _, err = run_cli(["diagnose", str(run), "--max-rows", "8"], capsys)
    assert code == 2 and "only pickle weights" in err and "--allow-pickle" in err, err
    assert not (run / "diagnose").exists()
    code, _, err = run_cli(["diagnose", str(run), "--max-rows", "8", "--allow-pickle"], capsys)
    assert code == 0, err
    assert (run / "diagnose" / "diagnose.json").is_file()
