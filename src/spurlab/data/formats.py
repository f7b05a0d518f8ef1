"""Read and write local tables: CSV, TSV, JSON Lines, Parquet."""

from __future__ import annotations

import csv
import io
import json
import os
import stat
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
DEFAULT_MAX_READ_BYTES = 8 << 30


def max_read_bytes() -> int:
    """The most bytes spurlab reads from one file or decompresses from one archive (``SPURLAB_MAX_READ_BYTES``,
    default 8 GiB): a file that claims more is refused instead of exhausting memory."""
    try:
        return max(1, int(os.environ.get("SPURLAB_MAX_READ_BYTES", DEFAULT_MAX_READ_BYTES)))
    except ValueError:
        raise SpurlabError("SPURLAB_MAX_READ_BYTES must be a whole number of bytes") from None


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
    """Decode a whole file; a wrong encoding is one clear line naming the line and what to do."""
    raw = read_bytes(path)
    enc = encoding or "utf-8"
    try:
        text = raw.decode(enc)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        replaced = raw.decode(enc, errors="replace")
        bad = replaced.count("\ufffd")
        good_non_ascii = sum(ord(ch) > 127 for ch in replaced) - bad
        where = f"{path}: line {line} is not valid {enc} (byte {exc.start})"
        if bad <= max(3, len(raw) // 10_000) and good_non_ascii > bad:
            # mostly valid: another encoding would garble every other non-ASCII character
            raise SpurlabError(f"{where}; the rest of the file is {enc} (another --encoding would garble it): "
                               "fix that line") from exc
        if bad <= max(3, len(raw) // 10_000):
            raise SpurlabError(f"{where}: fix that line, or give the file's encoding (e.g. --encoding latin-1) "
                               f"if it is not {enc}") from exc
        raise SpurlabError(f"{path}: not {enc} ({bad} undecodable bytes, the first on line {line}); give its "
                           "encoding, e.g. --encoding latin-1 or cp1252") from exc
    except LookupError as exc:
        raise SpurlabError(f"unknown encoding {enc!r}") from exc
    return text.removeprefix("\ufeff")


def read_bytes(path: Path) -> bytes:
    """A regular file's bytes; a folder, a pipe or a device, or a file over :func:`max_read_bytes`, is one line."""
    try:
        info = path.stat()
    except FileNotFoundError as exc:
        raise SpurlabError(f"{path}: no such file") from exc
    except OSError as exc:
        raise SpurlabError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    if stat.S_ISDIR(info.st_mode):
        raise SpurlabError(f"{path}: is a folder, expected a file")
    if not stat.S_ISREG(info.st_mode):
        raise SpurlabError(f"{path}: not a regular file (a pipe, socket or device); give a file")
    if info.st_size > max_read_bytes():
        raise SpurlabError(f"{path}: {info.st_size:,} bytes, more than the read limit of {max_read_bytes():,} "
                           "(SPURLAB_MAX_READ_BYTES)")
    try:
        return path.read_bytes()
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
            frame = _read_jsonl(path, text) if fmt == "jsonl" else _read_delimited(path, text, fmt)
    except SpurlabError:
        raise
    except (ValueError, pd.errors.ParserError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SpurlabError(f"{path}: malformed {fmt} ({first})") from exc
    except Exception as exc:  # pyarrow raises its own error types for corrupt files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SpurlabError(f"{path}: malformed {fmt} ({first})") from exc
    return frame


def _read_delimited(path: Path, text: str, fmt: str) -> pd.DataFrame:
    """CSV/TSV with every cell kept as the string it is (no number or missing-value guessing)."""
    sep = "\t" if fmt == "tsv" else ","
    header = next(csv.reader(io.StringIO(text.split("\n", 1)[0]), delimiter=sep), [])
    twice = sorted({c for c in header if header.count(c) > 1})
    if twice:
        raise SpurlabError(f"{path}: column(s) named twice: {', '.join(map(repr, twice))}")
    other = "," if fmt == "tsv" else "\t"
    if len(header) == 1 and other in header[0]:
        name = "CSV (commas)" if fmt == "tsv" else "TSV (tabs)"
        raise SpurlabError(f"{path}: a .{fmt} file whose header has no {'tabs' if fmt == 'tsv' else 'commas'} "
                           f"but looks like {name}; give it the matching suffix")
    return pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False, na_filter=False)


def json_lines(text: str) -> list[str]:
    """The lines of a JSON Lines text: split at ``\n`` only (a ``\r`` before it dropped), not at the other line
    breaks ``str.splitlines`` knows (U+0085, U+2028, ...), which a JSON string may hold unescaped."""
    return [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]


def _read_jsonl(path: Path, text: str) -> pd.DataFrame:
    """JSON Lines: one object per line; a malformed line is one error naming its line number."""
    if text.lstrip().startswith("["):
        raise SpurlabError(f"{path}: expected JSON Lines (one object per line), found one JSON array; write one "
                           "object per line")
    records = []
    for number, line in enumerate(json_lines(text), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line, object_pairs_hook=_no_duplicate_keys)
        except json.JSONDecodeError as exc:
            raise SpurlabError(f"{path}: line {number} is not JSON ({exc.msg}, column {exc.colno})") from None
        except ValueError as exc:
            raise SpurlabError(f"{path}: line {number}: {exc}") from None
        if not isinstance(record, dict):
            raise SpurlabError(f"{path}: line {number} is a JSON {type(record).__name__}, expected an object")
        records.append(record)
    frame = pd.DataFrame.from_records(records)
    for column in frame.columns:
        kinds = {type(r[column]) for r in records if r.get(column) is not None}
        if len(kinds) > 1:  # e.g. 1 and 1.0: pandas would make both floats, hiding that they were written apart
            frame[column] = pd.Series([r.get(column) for r in records], dtype=object)
    return frame


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    keys = [k for k, _ in pairs]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise ValueError(f"key(s) given twice: {', '.join(map(repr, twice))}")
    return dict(pairs)


def write_table(frame: pd.DataFrame, path: str | Path, fmt: str) -> None:
    """Write a table atomically in a format, with deterministic bytes for equal input."""
    path = Path(path)

    def writer(handle) -> None:
        if fmt == "parquet":
            frame.to_parquet(handle, index=False, compression="zstd")
        elif fmt == "jsonl":
            handle.write(frame.to_json(orient="records", lines=True, force_ascii=False).encode("utf-8"))
        else:
            # Quote every field: minimal quoting leaves a bare "\r" unquoted, which readers take as a row end; and
            # CSV cells are read back as strings, so quoting numbers too keeps a rewrite byte-identical.
            handle.write(frame.to_csv(index=False, sep="\t" if fmt == "tsv" else ",", lineterminator="\n",
                                      quoting=csv.QUOTE_ALL).encode("utf-8"))

    write_with(path, writer)
