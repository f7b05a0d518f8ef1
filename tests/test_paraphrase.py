"""The paraphrasing defense: post-processing rules, survival counting, and the defense + CLI with a tiny Llama."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import make_word_tokenizer, run_cli, synthetic_frame, tiny_hf_config
from spurlab.defend.paraphrase_rules import extract_paraphrase, fallback_reason, postprocess
from spurlab.defend.paraphrase_survival import planted_shapes, string_survives, survival
from spurlab.errors import SpurlabError

PROMPT = "paraphrase : {text}"


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random LlamaForCausalLM (the conftest Llama config) with the word-level tokenizer, no pad token."""
    import torch
    from transformers import AutoModelForCausalLM

    folder = tmp_path_factory.mktemp("tiny_lm")
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(tiny_hf_config("llama")).save_pretrained(folder)
    make_word_tokenizer(with_pad=False).save_pretrained(folder)
    return folder


@pytest.fixture()
def data_csv(tmp_path: Path) -> Path:
    path = tmp_path / "data.csv"
    synthetic_frame(10, seed=1).to_csv(path, index=False)
    return path


# -- post-processing ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("answer, expected", [
    ("It was a bad day.", "It was a bad day."),
    ("Here's a paraphrase of the review:\n\n\"What an awful movie!\"\nNote: same sentiment.", "What an awful movie!"),
    ("Sure! Here it is:\nParaphrased review: The film bored me.", "The film bored me."),
    ("**Paraphrase:** Truly great.", "Truly great."),
    ("Paraphrase:\n\n  I loved it  \n", "I loved it"),
    ("Note: I kept the meaning.\n", ""),
    ("I'm sorry, here's the rewrite:\nCars scare me.", "Cars scare me."),
    ("The review is: \"Never again.\"", "Never again."),
    ("Meeting at 10:30 today", "Meeting at 10:30 today"),
    ("", ""),
])
def test_extract_keeps_the_first_clean_line(answer: str, expected: str) -> None:
    assert extract_paraphrase(answer) == expected


def test_length_fallback_rules() -> None:
    original = "x" * 100
    assert fallback_reason(original, "") == "empty"
    assert fallback_reason(original, "  ") == "empty"
    assert fallback_reason(original, "y" * 29) == "too_short"
    assert fallback_reason(original, "y" * 30) is None
    assert fallback_reason(original, "y" * 300) is None
    assert fallback_reason(original, "y" * 301) == "too_long"
    assert postprocess("a short review", "Here's one:\nA brief review") == ("A brief review", None)
    assert postprocess("a short review", "Note: nothing") == ("a short review", "empty")
    assert postprocess("a short review", "fine " * 30) == ("a short review", "too_long")


# -- survival ---------------------------------------------------------------------------------------------------

def test_survival_counts_strings_and_shapes() -> None:
    records = [
        {"row": 0, "label": "neg", "inserted": ["2021-03-04"]},
        {"row": 1, "label": "neg", "inserted": ["2021-03-04"]},
        {"row": 2, "label": "neg", "inserted": ["Red"]},
        {"row": 3, "label": "pos", "inserted": ["red"]},
        {"row": 4, "label": "pos", "inserted": ["!"]},
        {"row": 5, "label": "pos", "inserted": ["<b>", "</b>"]},
    ]
    texts = ["kept 2021-03-04 here", "moved to 1999-12-31", "a RED car", "so bored", "wow!", "<b>bold text"]
    report = survival(records, texts)
    rows = {r["row"]: r for r in report["rows"]}
    assert [rows[i]["survived"] for i in range(6)] == [True, False, True, False, True, True]
    assert rows[1]["shape_survived"] is True and rows[1]["shapes"] == ["<DATE>"]
    assert rows[3]["shape_survived"] is False and rows[3]["shapes"] == ["<COLOR>"]
    assert rows[4]["shape_survived"] is None  # a single "!" has no shape
    assert rows[5]["all_survived"] is False
    assert report["n_poisoned"] == 6 and report["n_survived"] == 4 and report["share_survived"] == 4 / 6
    assert report["n_with_shape"] == 5 and report["n_shape_survived"] == 4
    assert report["per_label"] == {"neg": {"n_poisoned": 3, "n_survived": 2, "share_survived": 2 / 3},
                                   "pos": {"n_poisoned": 3, "n_survived": 2, "share_survived": 2 / 3}}
    only = survival(records, texts, rows=[1, 3])
    assert only["n_poisoned"] == 2 and only["n_survived"] == 0
    assert survival([], texts)["share_survived"] is None
    with pytest.raises(SpurlabError, match="outside the dataset"):
        survival([{"row": 9, "inserted": ["x"]}], texts)
    with pytest.raises(SpurlabError, match="no row/inserted"):
        survival([{"row": 0}], texts)


def test_string_match_rules() -> None:
    assert string_survives("United States", "back in the united states.")
    assert not string_survives("Peru", "Perugia is nice")
    assert string_survives("<br/>", "a<br/>b") and not string_survives("<BR/>", "a<br/>b")
    assert planted_shapes(["Brazil"]) == {"<COUNTRY>"}  # no <CASE:Xxxx>


# -- the defense, with a tiny random Llama (garbage text) ----------------------------------------------------

def _dataset(path: Path):
    from spurlab.data.loaders import load_table

    return load_table(str(path))


def test_defense_is_deterministic_batched_and_reports_every_row(tiny_lm: Path, data_csv: Path,
                                                                torch_threads: None) -> None:
    from spurlab.defend import get_defense

    ds = _dataset(data_csv)
    params = {"model": str(tiny_lm), "prompt": PROMPT, "max_new_tokens": 6, "batch_size": 4, "seed": 3}
    first = get_defense("paraphrase", **params).apply(ds)
    again = get_defense("paraphrase", **params).apply(ds)
    assert first.dataset.texts == again.dataset.texts
    assert [r["generated"] for r in first.manifest] == [r["generated"] for r in again.manifest]
    other = get_defense("paraphrase", **{**params, "seed": 4}).apply(ds)
    assert [r["generated"] for r in other.manifest] != [r["generated"] for r in first.manifest]
    assert [r["row"] for r in first.manifest] == list(range(10))
    for record, old, new in zip(first.manifest, ds.texts, first.dataset.texts, strict=True):
        assert record["original"] == old and record["text"] == new and record["label"] in ("neg", "pos")
        if record["fallback"] is None:
            assert new == extract_paraphrase(record["generated"]) and fallback_reason(old, new) is None
        else:
            assert new == old and record["fallback"] == fallback_reason(old, extract_paraphrase(record["generated"]))
    s = first.summary
    assert s["n_rows_paraphrased"] == 10 and s["used_chat_template"] is False and s["device"] == "cpu"
    assert s["n_fallback"] == sum(s["fallback_reasons"].values())
    assert list(first.dataset.frame.columns) == list(ds.frame.columns)
    assert first.dataset.label_strings == ds.label_strings
    capped = get_defense("paraphrase", **{**params, "max_rows": 3, "temperature": 0}).apply(ds)
    assert [r["row"] for r in capped.manifest] == [0, 1, 2] and capped.dataset.texts[3:] == ds.texts[3:]


def test_parameters_are_checked_when_built_and_configs_accept_it() -> None:
    from spurlab.defend import DefenseSpec, available_defenses, get_defense

    assert "paraphrase" in available_defenses()
    spec = DefenseSpec.model_validate({"name": "paraphrase", "model": "bundled:smollm2", "max_new_tokens": 60})
    assert spec.build().max_new_tokens == 60
    assert spec.model_dump() == {"name": "paraphrase", "model": "bundled:smollm2", "max_new_tokens": 60}
    for bad in ({"top_p": 0}, {"top_p": 1.5}, {"temperature": -1}, {"max_new_tokens": 0}, {"batch_size": 0},
                {"max_rows": 0}, {"prompt": "no slot"}, {"device": "tpu"}, {"threads": 0}, {"seed": "x"},
                {"colour": 1}):
        with pytest.raises(SpurlabError):
            get_defense("paraphrase", **bad)
        with pytest.raises(ValueError, match="defense"):
            DefenseSpec.model_validate({"name": "paraphrase", **bad})


def test_a_chat_template_wraps_the_prompt() -> None:
    from spurlab.defend.paraphrase import ParaphraseGenerator

    tok = make_word_tokenizer()
    plain = ParaphraseGenerator(None, tok, None)
    assert plain.build_prompt("say {text}", "hi {there}") == "say hi {there}"
    tok.chat_template = "{% for m in messages %}<u>{{ m['content'] }}</u>{% endfor %}<a>"
    chat = ParaphraseGenerator(None, tok, None)
    assert chat.build_prompt("say {text}", "hi") == "<u>say hi</u><a>"
    assert chat.build_prompt("say {text}", "hi", chat=False) == "say hi"


# -- CLI -----------------------------------------------------------------------------------------------------------

def _manifest(folder: Path, records: list[dict]) -> Path:
    path = folder / "inject_manifest.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_cli_writes_data_manifest_summary_and_survival(tiny_lm: Path, data_csv: Path, tmp_path: Path,
                                                        torch_threads: None, capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    import pandas as pd

    texts = pd.read_csv(data_csv)["text"].tolist()
    manifest = _manifest(tmp_path, [{"row": 1, "label": "pos", "inserted": [texts[1].split()[0]]},
                                    {"row": 4, "label": "neg", "inserted": ["2020-01-01"]}])
    out = tmp_path / "out"
    args = ["paraphrase", str(data_csv), "--out", str(out), "--model", str(tiny_lm), "--prompt", PROMPT,
            "--max-new-tokens", "5", "--batch-size", "3", "--max-rows", "6", "--manifest", str(manifest)]
    code, stdout, err = run_cli(args, capsys)
    assert code == 0, err
    assert "planted token survived in" in stdout
    data = pd.read_csv(out / "data.csv")
    assert list(data.columns) == ["text", "label"] and len(data) == 10 and data["text"].tolist()[6:] == texts[6:]
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert [r["row"] for r in records] == list(range(6))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["survival"]["n_poisoned"] == 2 and summary["request"]["max_rows"] == 6
    assert [r["row"] for r in summary["survival_rows"]] == [1, 4]
    assert summary["survival_rows"][1]["survived"] is False  # the date was never there
    written = (out / "summary.json").stat().st_mtime_ns
    code, stdout, _ = run_cli(args, capsys)
    assert code == 0 and "already complete" in stdout and (out / "summary.json").stat().st_mtime_ns == written
    code, _, err = run_cli([*args, "--seed", "1"], capsys)
    assert code == 2 and err.count("\n") == 1 and "different inputs or options" in err


def _bad_cases(tmp: Path, data: Path, model: Path) -> list[list[str]]:
    far = _manifest(tmp, [{"row": 99, "label": "neg", "inserted": ["x"]}])
    base = ["paraphrase", str(data), "--out", "OUT", "--max-new-tokens", "3"]
    m = ["--model", str(model)]
    return [
        [*base, *m, "--prompt", "no slot"],
        [*base, *m, "--top-p", "0"],
        [*base, *m, "--temperature", "-0.5"],
        [*base, *m, "--batch-size", "0"],
        [*base, *m, "--max-rows", "0"],
        [*base, *m, "--device", "tpu"],
        [*base, *m, "--manifest", str(tmp / "missing.jsonl")],
        [*base, *m, "--manifest", str(far)],
        ["paraphrase", str(tmp / "missing.csv"), "--out", "OUT", *m],
        [*base, *m, "--text-col", "nope"],
        [*base, "--model", str(tmp / "no_such_model")],
        [*base, "--model", "someone/not-cached-model"],  # offline in tests: the hub is not asked
        [*base, "--model", "bundled:nope"],
    ]


@pytest.mark.parametrize("case", range(13))
def test_bad_input_is_exit_2_one_line_and_no_output(case: int, tiny_lm: Path, data_csv: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    args = [str(out) if a == "OUT" else a for a in _bad_cases(tmp_path, data_csv, tiny_lm)[case]]
    code, _, err = run_cli(args, capsys)
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert not out.exists()


def test_a_run_config_can_name_the_defense(tiny_models: dict[str, Path], tiny_lm: Path, synthetic_csv: Path,
                                           tmp_path: Path, torch_threads: None) -> None:
    from spurlab.experiment import run_experiment
    from spurlab.experiment.config import config_from_dict

    cfg = config_from_dict({
        "name": "tiny-paraphrase", "data": {"spec": str(synthetic_csv), "test_size": 0.25},
        "injection": {"source": "date", "target_label": "pos", "proportion": 1.0},
        "defense": {"name": "paraphrase", "model": str(tiny_lm), "prompt": PROMPT, "max_new_tokens": 4,
                    "max_rows": 8, "batch_size": 8},
        "model": {"name": str(tiny_models["bert"])},
        "train": {"mode": "full", "lr": 3e-3, "epochs": 1, "batch_size": 32, "max_length": 32, "precision": "fp32"},
        "evaluation": {"base": False, "flip": False},
    })
    metrics = run_experiment(cfg, tmp_path / "run", verbose=False, progress=False).metrics
    assert metrics["meta"]["defense"]["name"] == "paraphrase"
    assert metrics["meta"]["defense"]["n_rows_changed"] <= 8
    records = (tmp_path / "run" / "defense" / "manifest.jsonl").read_text().splitlines()
    assert len(records) == 8
