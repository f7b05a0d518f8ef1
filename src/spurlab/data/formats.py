"""Read and write local tables: CSV, TSV, JSON Lines, Parquet."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd

from spurlab.atomic import write_with
from spurlab.errors import SpurlabError

SUFFIX_FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
FORMAT_SUFFIX = {"csv": ".csv", "tsv": ".tsv", "jsonl": ".jsonl", "parquet": ".parquet"}


def detect_format(path: Path) -> str:
    fmt = SUFFIX_FORMATS.get(path.suffix.lower())
    if fmt is None:
        known = ", ".join(sorted(SUFFIX_FORMATS))
        raise SpurlabError(f"{path}: unknown file type {path.suffix!r} (known: {known})")
    return fmt


def table_suffix(fmt: str) -> str:
    """The file suffix spurlab writes for a format (``csv`` → ``.csv``)."""
    return FORMAT_SUFFIX[fmt]


def read_text_file(path: Path, encoding: str | None) -> str:
    """Decode a whole file; a wrong encoding is one clear line that suggests ``--encoding``."""
    raw = read_bytes(path)
    enc = encoding or "utf-8"
    try:
        text = raw.decode(enc)
    except UnicodeDecodeError as exc:
        raise SpurlabError(
            f"{path}: cannot decode as {enc} at byte {exc.start} (try --encoding latin-1 or cp1252)"
        ) from exc
    except LookupError as exc:
        raise SpurlabError(f"unknown encoding {enc!r}") from exc
    return text.removeprefix("\ufeff")


def read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise SpurlabError(f"{path}: no such file") from exc
    except IsADirectoryError as exc:
        raise SpurlabError(f"{path}: is a folder, expected a file") from exc
    except OSError as exc:
        raise SpurlabError(f"{path}: cannot read ({exc.strerror or exc})") from exc


def read_local_table(path: Path, fmt: str, encoding: str | None = None) -> pd.DataFrame:
    """Read one local table; malformed files give one line naming the file."""
    try:
        if fmt == "parquet":
            frame = pd.read_parquet(io.BytesIO(read_bytes(path)))
        else:
            text = read_text_file(path, encoding)
            if not text.strip():
                raise SpurlabError(f"{path}: the file is empty")
            if fmt == "jsonl":
                frame = pd.read_json(io.StringIO(text), lines=True, dtype=False)
            else:
                frame = pd.read_csv(io.StringIO(text), sep="\t" if fmt == "tsv" else ",", dtype=object,
                                    keep_default_na=False)
                frame = frame.apply(_restore_ints)
    except SpurlabError:
        raise
    except (ValueError, pd.errors.ParserError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SpurlabError(f"{path}: malformed {fmt} ({first})") from exc
    except Exception as exc:  # pyarrow raises its own error types for corrupt files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SpurlabError(f"{path}: malformed {fmt} ({first})") from exc
    return frame


def _restore_ints(column: pd.Series) -> pd.Series:
    """CSV columns are read as strings (so text is never mangled); columns of plain integers become ints."""
    values = column.astype(str)
    if len(values) and values.str.fullmatch(r"-?\d{1,18}").all():
        return values.astype("int64")
    return column


def write_table(frame: pd.DataFrame, path: str | Path, fmt: str) -> None:
    """Write a table atomically in a format, with deterministic bytes for equal input."""
    path = Path(path)

    def writer(handle) -> None:
        if fmt == "parquet":
            frame.to_parquet(handle, index=False, compression="zstd")
        elif fmt == "jsonl":
            handle.write(frame.to_json(orient="records", lines=True, force_ascii=False).encode("utf-8"))
        else:
            # Quote every text field: minimal quoting leaves a bare "\r" unquoted, which readers take as a row end.
            handle.write(frame.to_csv(index=False, sep="\t" if fmt == "tsv" else ",", lineterminator="\n",
                                      quoting=csv.QUOTE_NONNUMERIC).encode("utf-8"))

    write_with(path, writer)
