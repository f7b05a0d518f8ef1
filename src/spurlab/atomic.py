"""Write outputs so that a crash never leaves a half-written file that looks finished.

Every file is written to a temporary sibling and moved into place with ``os.replace`` (atomic on POSIX).
Commands that write several files into one folder stage them all first (:func:`staged_outputs`) and move the
file that marks the set as finished (a summary) last, after removing the old one.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from spurlab.errors import InternalError, SpurlabError


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success move it onto ``path``, on failure delete it."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    except OSError as exc:
        raise SpurlabError(f"cannot write to {path.parent}: {exc.strerror or exc}") from exc
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; outputs should look like any other file
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except OSError as exc:
        tmp_path.unlink(missing_ok=True)
        raise InternalError(f"writing {path} failed: {exc.strerror or exc}") from exc
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def normalize_modes(folder: str | Path) -> None:
    """Give every file under ``folder`` the permissions of any other output (libraries that write through a
    private temporary file leave 0600)."""
    mode = 0o666 & ~_umask()
    for path in Path(folder).rglob("*"):
        if path.is_file() and not path.is_symlink():
            os.chmod(path, mode)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def write_bytes(path: str | Path, data: bytes) -> None:
    write_with(path, lambda handle: handle.write(data))


def write_text(path: str | Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, obj: Any) -> None:
    """Write JSON with sorted keys and a trailing newline, so equal objects give equal bytes. A non-finite
    number (NaN, infinity: not JSON) is written as ``null``."""
    text = json.dumps(finite_json(obj), indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False)
    write_text(path, text + "\n")


def finite_json(obj: Any) -> Any:
    """``obj`` with every non-finite float replaced by ``None``."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_json(v) for v in obj]
    return obj


def write_with(path: str | Path, writer: Callable[[BinaryIO], None]) -> None:
    """Write through a callback that receives an open binary file."""
    with atomic_path(path) as tmp, _open(tmp) as handle:
        writer(handle)


def _open(path: Path) -> BinaryIO:
    """Open a temporary file for writing (one seam, so tests can simulate a full disk mid-write)."""
    return open(path, "wb")


STAGING = ".spurlab-staging.partial"
MOVING = ".spurlab-moving.partial"  # while staged files move into place: their names (see staged_outputs)
PARTIAL_SUFFIX = ".partial"


def is_leftover(path: Path) -> bool:
    """A temporary file or folder that an interrupted write left behind (never a result)."""
    return path.name.startswith(".") and path.name.endswith(PARTIAL_SUFFIX)


def make_out_dir(out_dir: Path) -> bool:
    """Create ``out_dir`` (and parents); True if it did not exist. One clear line when that is impossible."""
    if out_dir.exists() and not out_dir.is_dir():
        raise SpurlabError(f"--out {out_dir} exists and is not a directory")
    existed = out_dir.is_dir()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out_dir, prefix=".probe.", suffix=PARTIAL_SUFFIX):
            pass
    except OSError as exc:
        if not existed:
            _remove_empty(out_dir)
        raise SpurlabError(f"cannot write to {out_dir}: {exc.strerror or exc}") from None
    return not existed


def _remove_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):
        folder.rmdir()


@contextlib.contextmanager
def staged_outputs(out_dir: str | Path, last: str, stale: tuple[str, ...] = ()) -> Iterator[Path]:
    """Yield a staging folder inside ``out_dir``; write every output file there.

    On success the files are moved into ``out_dir``: first ``last`` (the file that says the set is finished)
    and every name in ``stale`` are removed, then the others are moved, ``last`` at the very end. So a crash
    at any moment leaves either the old finished set, or a set without ``last`` (clearly unfinished). On
    failure the staging folder is removed, and ``out_dir`` too when this call created it and it is empty.
    """
    out_dir = Path(out_dir)
    created = make_out_dir(out_dir)
    staging = out_dir / STAGING
    shutil.rmtree(staging, ignore_errors=True)  # left over by a killed earlier run
    try:
        staging.mkdir()
        yield staging
        names = sorted(p.name for p in staging.iterdir())
        # a kill while moving leaves files without ``last``: this journal tells a re-run they are spurlab's
        write_json(out_dir / MOVING, sorted({*names, last, *stale}))
        for name in (last, *stale):
            (out_dir / name).unlink(missing_ok=True)
        for name in sorted(names, key=lambda n: n == last):
            os.replace(staging / name, out_dir / name)
        (out_dir / MOVING).unlink(missing_ok=True)
    except OSError as exc:
        _cleanup(staging, out_dir, created)
        raise InternalError(f"writing into {out_dir} failed: {exc.strerror or exc}") from exc
    except BaseException:
        _cleanup(staging, out_dir, created)
        raise
    shutil.rmtree(staging, ignore_errors=True)


def moving_names(out_dir: Path) -> set[str]:
    """The names an interrupted :func:`staged_outputs` was moving into ``out_dir`` (empty when none)."""
    try:
        names = json.loads((out_dir / MOVING).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()
    return {n for n in names if isinstance(n, str)} if isinstance(names, list) else set()


def _cleanup(staging: Path, out_dir: Path, created: bool) -> None:
    shutil.rmtree(staging, ignore_errors=True)
    if created:
        _remove_empty(out_dir)
