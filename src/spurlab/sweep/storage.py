"""Where a sweep's run folders live when they are not under ``--out``: ``--storage URI``, a local path,
``file://``, any filesystem pyarrow knows (``s3://``, ``gs://``, ``hdfs://``, ``abfs://``) or, through fsspec,
any fsspec protocol. A multi-node Ray cluster then needs no shared filesystem: each worker runs its point in a
scratch folder of its own node and uploads the finished run folder, and the driver reads from storage.

Layout: ``<URI>/sweep.json`` (which sweep the storage holds) and ``<URI>/runs/<key>/``, a complete run folder
whose ``DONE`` marker is uploaded last, so a folder without it is an interrupted upload and is replaced.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spurlab.errors import SpurlabError

MARKER = "DONE"  # the run folder's completion marker (spurlab.experiment.run_folder)
SWEEP_FILE = "sweep.json"


@dataclass(frozen=True)
class RunStorage:
    """A storage root; only the URI travels to Ray workers, each side opens the filesystem itself."""

    uri: str

    def filesystem(self) -> tuple[Any, str]:
        """(pyarrow filesystem, root path in it)."""
        return _filesystem(self.uri)

    def run_uri(self, key: str) -> str:
        return f"{self.uri.rstrip('/')}/runs/{key}"

    def is_complete(self, key: str) -> bool:
        import pyarrow.fs as pafs

        fs, root = self.filesystem()
        return fs.get_file_info(f"{root}/runs/{key}/{MARKER}").type == pafs.FileType.File

    def download(self, key: str, local: Path) -> bool:
        """Copy the complete run folder ``key`` into ``local`` (emptied first); False when storage has none."""
        import pyarrow.fs as pafs

        if not self.is_complete(key):
            return False
        fs, root = self.filesystem()
        shutil.rmtree(local, ignore_errors=True)
        local.mkdir(parents=True)
        pafs.copy_files(f"{root}/runs/{key}", str(local.resolve()), source_filesystem=fs,
                        destination_filesystem=pafs.LocalFileSystem())
        return True

    def upload(self, local: Path, key: str) -> None:
        """Replace the run folder ``key`` in storage with ``local``, its ``DONE`` marker last."""
        fs, root = self.filesystem()
        dest = f"{root}/runs/{key}"
        fs.delete_dir_contents(dest, missing_dir_ok=True)
        fs.create_dir(dest, recursive=True)
        files = sorted(p for p in local.rglob("*") if p.is_file())
        for path in sorted(files, key=lambda p: p.name == MARKER):  # the marker after everything else
            target = f"{dest}/{path.relative_to(local).as_posix()}"
            fs.create_dir(target.rsplit("/", 1)[0], recursive=True)
            with path.open("rb") as src, fs.open_output_stream(target) as out:
                shutil.copyfileobj(src, out, 1 << 20)

    @contextlib.contextmanager
    def local_copy(self, key: str) -> Iterator[Path | None]:
        """A temporary local copy of the run folder ``key`` (None when storage has no complete one)."""
        with tempfile.TemporaryDirectory(prefix="spurlab-run-") as scratch:
            local = Path(scratch) / key
            yield local if self.download(key, local) else None

    def clear(self) -> None:
        """Remove every run folder and the sweep file (``--overwrite``)."""
        fs, root = self.filesystem()
        fs.delete_dir_contents(f"{root}/runs", missing_dir_ok=True)
        with contextlib.suppress(FileNotFoundError):
            fs.delete_file(f"{root}/{SWEEP_FILE}")

    def read_sweep(self) -> dict[str, Any] | None:
        fs, root = self.filesystem()
        try:
            with fs.open_input_stream(f"{root}/{SWEEP_FILE}") as stream:
                return json.loads(stream.read().decode("utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise SpurlabError(f"storage {self.uri}: cannot read {SWEEP_FILE}: {exc}") from None

    def write_sweep(self, info: dict[str, Any]) -> None:
        fs, root = self.filesystem()
        with fs.open_output_stream(f"{root}/{SWEEP_FILE}") as out:
            out.write(json.dumps(info, indent=2).encode("utf-8"))


def open_storage(uri: str) -> RunStorage:
    """A storage root that exists and can be written (checked by writing and removing a probe file); one line
    for an unknown scheme or storage that cannot be reached or written."""
    storage = RunStorage(_normalise(uri))
    fs, root = storage.filesystem()
    probe = f"{root}/.spurlab-probe-{uuid.uuid4().hex}"
    try:
        fs.create_dir(root, recursive=True)
        with fs.open_output_stream(probe) as out:
            out.write(b"probe")
        fs.delete_file(probe)
    except Exception as exc:
        raise SpurlabError(f"storage {uri} cannot be written: {_one_line(exc)}") from None
    return storage


def _normalise(uri: str) -> str:
    """A local path made absolute (Ray workers start in other folders); URIs as given, without a trailing /."""
    if "://" not in uri:
        return str(Path(uri).expanduser().resolve())
    return uri.rstrip("/") if not uri.endswith(":///") else uri


def _filesystem(uri: str) -> tuple[Any, str]:
    import pyarrow.fs as pafs
    from pyarrow.lib import ArrowInvalid

    if "://" not in uri:
        return pafs.LocalFileSystem(), uri
    try:
        fs, path = pafs.FileSystem.from_uri(uri)
        return fs, path.rstrip("/") or "/"
    except ArrowInvalid:
        pass  # not a filesystem pyarrow knows: try fsspec's
    except Exception as exc:
        raise SpurlabError(f"storage {uri} cannot be reached: {_one_line(exc)}") from None
    scheme = uri.split("://", 1)[0]
    try:
        import fsspec
        from pyarrow.fs import FSSpecHandler, PyFileSystem

        fs = fsspec.filesystem(scheme)
    except ImportError as exc:
        raise SpurlabError(f"storage {uri}: the {scheme!r} filesystem needs a package that is not installed "
                           f"({_one_line(exc)})") from None
    except (ValueError, KeyError):
        raise SpurlabError(f"storage {uri}: unknown scheme {scheme!r} (use a local path, file://, s3://, gs://, "
                           "hdfs://, abfs:// or an fsspec protocol)") from None
    except Exception as exc:
        raise SpurlabError(f"storage {uri} cannot be reached: {_one_line(exc)}") from None
    return PyFileSystem(FSSpecHandler(fs)), fs._strip_protocol(uri).rstrip("/")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


__all__ = ["RunStorage", "open_storage"]
