"""Option parsing shared by subcommands."""

from __future__ import annotations


def split_list(value: str | None) -> list[str] | None:
    """``"a,b, c"`` → ``["a", "b", "c"]``; ``None``/empty → ``None``."""
    if value is None or not value.strip():
        return None
    return [part.strip() for part in value.split(",") if part.strip()]


DATA_HELP = ("Dataset: a .csv/.tsv/.jsonl/.parquet path, hf:<owner/name>, preset:<name>[:<local path>] "
             "or bundled:tweets.")
