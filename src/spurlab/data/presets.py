"""The paper's datasets (and two offline stand-ins) by name, from the hub or from their original files.

``preset:NAME`` loads from the Hugging Face hub; ``preset:NAME:PATH`` reads the same data from a local copy
in its original published format. Every preset yields a ``text`` and a ``label`` column with label names.
"""

from __future__ import annotations

import tarfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from spurlab.data.formats import detect_format, max_read_bytes, read_local_table, read_text_file
from spurlab.errors import SpurlabError

BIAS_IN_BIOS_PROFESSIONS = [
    "accountant", "architect", "attorney", "chiropractor", "comedian", "composer", "dentist", "dietitian",
    "dj", "filmmaker", "interior_designer", "journalist", "model", "nurse", "painter", "paralegal", "pastor",
    "personal_trainer", "photographer", "physician", "poet", "professor", "psychologist", "rapper",
    "software_engineer", "surgeon", "teacher", "yoga_teacher",
]
CHOICE_LETTERS = ["A", "B", "C", "D", "E"]

Splits = dict[str, pd.DataFrame]


@dataclass(frozen=True)
class Preset:
    """One named dataset: where it lives on the hub, how its rows become text+label, how to read it locally."""

    name: str
    hub_id: str | None
    label_names: list[str]
    description: str
    to_rows: Callable[[pd.DataFrame], pd.DataFrame] = field(repr=False)
    read_local: Callable[[Path], Splits] = field(repr=False)
    hub_splits: dict[str, str] = field(default_factory=lambda: {"train": "train", "test": "test"})
    hub_config: str | None = None


def format_commonsense_qa(stem: str, choices: list[dict]) -> str:
    """``question (A) choice … (E) choice`` as the issue specifies (the authors used indices, we use letters)."""
    parts = [str(stem).strip()]
    for choice in choices:
        parts.append(f"({choice['label']}) {choice['text']}")
    return " ".join(parts)


def _csqa_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Hub rows (question, choices{label,text}, answerKey) or original jsonl rows (question{stem,choices})."""
    texts, labels = [], []
    for record in frame.to_dict("records"):
        question = record["question"]
        if isinstance(question, dict):  # original published jsonl
            stem, choices = question["stem"], question["choices"]
        else:  # hub layout: choices is {"label": [...], "text": [...]}
            stem = question
            raw = record["choices"]
            choices = [{"label": lab, "text": txt} for lab, txt in zip(raw["label"], raw["text"], strict=True)]
        texts.append(format_commonsense_qa(stem, choices))
        labels.append(record.get("answerKey") or "")
    out = pd.DataFrame({"text": texts, "label": labels})
    return out[out["label"] != ""].reset_index(drop=True)  # the hub's test split has no answers


def _read_csqa_local(path: Path) -> Splits:
    files = _pick_files(path, {"train": ["train_rand_split.jsonl", "train.jsonl"],
                               "test": ["dev_rand_split.jsonl", "dev.jsonl", "validation.jsonl"]})
    return {split: _csqa_rows(read_local_table(file, "jsonl")) for split, file in files.items()}


def _read_phrasebank(path: Path) -> Splits:
    if path.is_dir():
        path = _first_existing(path, ["Sentences_AllAgree.txt", "Sentences_75Agree.txt", "Sentences_66Agree.txt",
                                      "Sentences_50Agree.txt"])
    text = read_text_file(path, "latin-1")  # the published files are ISO-8859-1
    texts, labels = [], []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        sentence, sep, label = line.rpartition("@")
        if not sep or label.strip() not in {"negative", "neutral", "positive"}:
            raise SpurlabError(f"{path}:{number}: expected 'sentence@label' with a sentiment label")
        texts.append(sentence.strip())
        labels.append(label.strip())
    return {"all": pd.DataFrame({"text": texts, "label": labels})}


def _fin_hub_rows(frame: pd.DataFrame) -> pd.DataFrame:
    text_col = next((c for c in ("textstr", "text", "sentence") if c in frame.columns), None)
    label_col = next((c for c in ("labels", "label", "target") if c in frame.columns), None)
    if text_col is None or label_col is None:
        raise SpurlabError(f"financial dataset: unexpected columns {list(frame.columns)}")
    return pd.DataFrame({"text": frame[text_col], "label": frame[label_col]})


def _read_sst2(path: Path) -> Splits:
    names = {"train": ["stsa.binary.train", "train.txt"], "test": ["stsa.binary.test", "test.txt"]}
    files = _pick_files(path, names)
    splits = {}
    for split, file in files.items():
        texts, labels = [], []
        for number, line in enumerate(read_text_file(file, None).splitlines(), 1):
            if not line.strip():
                continue
            label, _, sentence = line.partition(" ")
            if label not in {"0", "1"}:
                raise SpurlabError(f"{file}:{number}: expected '<0|1> sentence'")
            texts.append(sentence.strip())
            labels.append(["negative", "positive"][int(label)])
        splits[split] = pd.DataFrame({"text": texts, "label": labels})
    return splits


def _sst2_hub_rows(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"text": frame["sentence"],
                         "label": [["negative", "positive"][int(v)] for v in frame["label"]]})


def read_class_folders(path: Path, classes: list[str]) -> Splits:
    """Reviews stored one file per text under ``[split/]<class>/*.txt``, in a folder, a .zip or a .tar.gz.

    Handles the Pang–Lee ``movie_reviews.zip`` (``movie_reviews/{neg,pos}``) and IMDB's ``aclImdb``
    (``{train,test}/{neg,pos}``). Files are read in sorted name order so row order is reproducible.
    """
    members = _list_text_members(path)
    rows: dict[str, list[tuple[str, str, str]]] = {}
    for name, read in members:
        parts = name.split("/")
        if len(parts) < 2 or parts[-2] not in classes:
            continue
        split = parts[-3] if len(parts) >= 3 and parts[-3] in {"train", "test"} else "all"
        rows.setdefault(split, []).append((name, parts[-2], read()))
    if not rows:
        raise SpurlabError(f"{path}: no files under {'/'.join(classes)} folders")
    return {split: pd.DataFrame([(text, label) for _, label, text in sorted(items)], columns=["text", "label"])
            for split, items in rows.items()}


def _list_text_members(path: Path) -> list[tuple[str, Callable[[], str]]]:
    budget = [max_read_bytes()]  # bytes still allowed across all members: an archive bomb stops here

    def decode(raw: bytes, name: str) -> str:
        try:
            return raw.decode("utf-8").strip()
        except UnicodeDecodeError as exc:
            raise SpurlabError(f"{path}: {name} is not UTF-8 text") from exc

    def read(opener: Callable[[], Any], name: str) -> str:
        with opener() as handle:
            raw = handle.read(budget[0] + 1)
        budget[0] -= len(raw)
        if budget[0] < 0:
            raise SpurlabError(f"{path}: decompresses to more than {max_read_bytes():,} bytes, the read limit "
                               "(SPURLAB_MAX_READ_BYTES)")
        return decode(raw, name)

    if path.is_dir():
        files = sorted(p for p in path.rglob("*.txt") if p.is_file())
        return [(p.relative_to(path).as_posix(), lambda p=p: read(lambda: p.open("rb"), p.name)) for p in files]
    if zipfile.is_zipfile(path):
        archive = zipfile.ZipFile(path)
        return [(n, lambda n=n: read(lambda: archive.open(n), n)) for n in sorted(archive.namelist())
                if n.endswith(".txt")]
    if path.name.endswith((".tar.gz", ".tgz", ".tar")):
        try:
            archive = tarfile.open(path)  # noqa: SIM115 - members are read lazily after return
        except tarfile.TarError as exc:
            raise SpurlabError(f"{path}: not a readable tar archive") from exc
        names = sorted(m.name for m in archive.getmembers() if m.isfile() and m.name.endswith(".txt"))
        return [(n, lambda n=n: read(lambda: archive.extractfile(n), n)) for n in names]
    if not path.exists():
        raise SpurlabError(f"{path}: no such file or folder")
    raise SpurlabError(f"{path}: expected a folder, a .zip or a .tar.gz of text files")


def _read_bios_local(path: Path) -> Splits:
    if path.is_dir():
        found = {}
        for file in sorted(path.iterdir()):
            for split in ("train", "test"):
                if file.name.startswith(split) and file.suffix in {".parquet", ".jsonl", ".csv"}:
                    found[split] = file
        if not found:
            raise SpurlabError(f"{path}: no train*/test* .parquet/.jsonl/.csv files")
        return {split: _bios_rows(read_local_table(f, detect_format(f))) for split, f in found.items()}
    return {"all": _bios_rows(read_local_table(path, detect_format(path)))}


def _bios_rows(frame: pd.DataFrame) -> pd.DataFrame:
    for col in ("hard_text", "profession"):
        if col not in frame.columns:
            raise SpurlabError(f"bias_in_bios: no column {col!r} (columns: {', '.join(map(str, frame.columns))})")
    labels = [BIAS_IN_BIOS_PROFESSIONS[int(v)] if str(v).isdigit() else str(v) for v in frame["profession"]]
    return pd.DataFrame({"text": frame["hard_text"], "label": labels})


def _imdb_hub_rows(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"text": frame["text"], "label": [["neg", "pos"][int(v)] for v in frame["label"]]})


def _pick_files(path: Path, names: dict[str, list[str]]) -> dict[str, Path]:
    if not path.exists():
        raise SpurlabError(f"{path}: no such file or folder")
    if path.is_file():
        return {"all": path}
    return {split: _first_existing(path, candidates) for split, candidates in names.items()}


def _first_existing(folder: Path, names: list[str]) -> Path:
    for name in names:
        if (folder / name).is_file():
            return folder / name
    raise SpurlabError(f"{folder}: none of {', '.join(names)} found")


def _identity(frame: pd.DataFrame) -> pd.DataFrame:
    return frame


PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in [
        Preset("imdb", "stanfordnlp/imdb", ["neg", "pos"], "IMDB movie reviews (25k/25k)",
               _imdb_hub_rows, lambda p: read_class_folders(p, ["neg", "pos"])),
        Preset("financial", "nickmuchi/financial-classification", [],
               "financial sentences; local: Financial PhraseBank Sentences_*.txt", _fin_hub_rows, _read_phrasebank),
        Preset("commonsense_qa", "tau/commonsense_qa", CHOICE_LETTERS,
               "CommonsenseQA as 'question (A) choice … (E) choice', label = answer letter",
               _csqa_rows, _read_csqa_local, {"train": "train", "test": "validation"}),
        Preset("bias_in_bios", "LabHC/bias_in_bios", BIAS_IN_BIOS_PROFESSIONS,
               "Bias in Bios biographies, label = profession", _bios_rows, _read_bios_local),
        Preset("sst2", "stanfordnlp/sst2", ["negative", "positive"], "SST-2 sentences; local: stsa.binary.*",
               _sst2_hub_rows, _read_sst2, {"train": "train", "test": "validation"}),
        Preset("movie_reviews", None, ["neg", "pos"],
               "Pang–Lee polarity v2.0 (local only: movie_reviews.zip or its folder)", _identity,
               lambda p: read_class_folders(p, ["neg", "pos"])),
    ]
}
# Aliases for the names people use for the same data.
PRESET_ALIASES = {"financial_phrasebank": "financial", "financial_classification": "financial",
                  "csqa": "commonsense_qa", "bios": "bias_in_bios", "pang_lee": "movie_reviews"}


def get_preset(name: str) -> Preset:
    key = PRESET_ALIASES.get(name, name)
    if key not in PRESETS:
        raise SpurlabError(f"unknown preset {name!r} (presets: {', '.join(sorted(PRESETS))})")
    return PRESETS[key]



__all__ = ["PRESETS", "Preset", "format_commonsense_qa", "get_preset", "read_class_folders"]
