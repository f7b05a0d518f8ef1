"""Bad input, end to end: every malformed input to every command is one ``error:`` line and exit 2 (or 1 for
an internal failure such as a full disk), with no traceback and no partial output.

Each case is one row of ``CASES``: a name, the expected exit code, and a builder that makes the input files
and returns the command line. A snapshot of the whole temporary folder before and after the command proves
that nothing was written (inputs untouched, no output, no temporary file left behind).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import synthetic_frame
from spurlab.cli.app import main


@dataclass
class Ctx:
    """Where a case builds its inputs (``tmp/in``) and which output it names (``tmp/out``)."""

    tmp: Path
    model: Path
    monkeypatch: pytest.MonkeyPatch

    @property
    def inp(self) -> Path:
        return self.tmp / "in"

    @property
    def out(self) -> str:
        return str(self.tmp / "out")

    def file(self, name: str, content: str | bytes) -> str:
        path = self.inp / name
        if isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        else:
            path.write_bytes(content)
        return str(path)

    @property
    def csv(self) -> str:
        path = self.inp / "good.csv"
        if not path.exists():
            synthetic_frame(60).to_csv(path, index=False)
        return str(path)

    def parquet(self) -> bytes:
        path = self.inp / "good.parquet"
        synthetic_frame(60).to_parquet(path, index=False)
        data = path.read_bytes()
        path.unlink()
        return data

    def config(self, *, data: str | None = None, **top: object) -> str:
        cfg: dict = {
            "name": "tiny",
            "data": {"spec": data or self.csv, "test_size": 0.25},
            "injection": {"source": "date", "target_label": "pos"},
            "model": {"name": str(self.model)},
            "train": {"mode": "lora", "epochs": 1, "batch_size": 16, "max_length": 16, "precision": "fp32"},
        }
        cfg.update(top)
        return self.file("run.yaml", yaml.safe_dump(cfg))

    def run(self, *overrides: str, data: str | None = None) -> list[str]:
        return ["run", self.config(data=data), *overrides, "--out", self.out, "--no-progress"]

    def run_folder(self, files: dict[str, str]) -> list[str]:
        """A pre-existing ``out`` folder with these files, and a run into it."""
        out = Path(self.out)
        out.mkdir()
        for name, text in files.items():
            (out / name).write_text(text, encoding="utf-8")
        return self.run()

    def disk_full(self, fail_at: int) -> None:
        """Every spurlab write goes through ``spurlab.atomic._open``: the ``fail_at``-th one runs out of space
        after writing a few bytes."""
        import spurlab.atomic as atomic

        real = atomic._open
        calls = {"n": 0}

        class Full:
            def __init__(self, handle):
                self.handle = handle

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self.handle.close()

            def write(self, data):
                self.handle.write(bytes(data)[:3])
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

            def __getattr__(self, name):
                return getattr(self.handle, name)

        def fake(path):
            calls["n"] += 1
            handle = real(path)
            return Full(handle) if calls["n"] >= fail_at else handle

        self.monkeypatch.setattr(atomic, "_open", fake)

    def under_file(self) -> str:
        """An output path below a regular file: unwritable even for root."""
        blocker = self.inp / "blocker"
        blocker.write_text("x")
        return str(blocker / "out")


def _rows(texts: list[str], labels: list[str]) -> str:
    return pd.DataFrame({"text": texts, "label": labels}).to_csv(index=False)


Build = Callable[[Ctx], list[str]]
# name -> (exit code, builder)
CASES: dict[str, tuple[int, Build]] = {
    # -- malformed and truncated files
    "csv unterminated quote": (2, lambda c: ["data", c.file("q.csv", 'text,label\n"never closed,pos\nb,neg\n')]),
    "csv ragged rows": (2, lambda c: ["inject", c.file("r.csv", "text,label\na,pos\nb,neg,extra,more\n"),
                                      "--out", c.out]),
    "csv header only": (2, lambda c: ["scan", c.file("h.csv", "text,label\n"), "--out", c.out]),
    "csv empty file": (2, lambda c: ["sanitize", c.file("e.csv", ""), "--auto", "--out", c.out]),
    "jsonl truncated line": (2, lambda c: ["data", c.file("t.jsonl", '{"text": "a", "label": "pos"}\n{"text": "b')]),
    "jsonl not objects": (2, lambda c: ["inject", c.file("n.jsonl", "[1, 2]\n[3, 4]\n"), "--out", c.out]),
    "parquet truncated": (2, lambda c: ["scan", c.file("t.parquet", c.parquet()[:300]), "--out", c.out]),
    "parquet garbage": (2, lambda c: ["sanitize", c.file("g.parquet", b"PAR1" + b"\x00" * 64), "--auto",
                                      "--out", c.out]),
    "unknown file type": (2, lambda c: ["data", c.file("d.xlsx", "text,label\n")]),
    "missing data file": (2, lambda c: ["inject", str(c.inp / "absent.csv"), "--out", c.out]),
    # -- encodings
    "latin-1 read as utf-8": (2, lambda c: ["sanitize", c.file("l.csv", "text,label\ncaf\u00e9,a\nb,c\n".encode(
        "latin-1")), "--auto", "--out", c.out]),
    "utf-16 file": (2, lambda c: ["data", c.file("u.csv", "text,label\na,pos\nb,neg\n".encode("utf-16"))]),
    "unknown encoding name": (2, lambda c: ["inject", c.csv, "--encoding", "no-such-codec", "--out", c.out]),
    # -- columns and labels
    "missing text column": (2, lambda c: ["scan", c.csv, "--text-col", "body", "--out", c.out]),
    "misspelled label column": (2, lambda c: ["sanitize", c.csv, "--label-col", "lable", "--auto", "--out", c.out]),
    "rows without a label": (2, lambda c: ["data", c.file("nl.csv", "text,label\na,pos\nb,\nc,neg\n")]),
    "one-class dataset": (2, lambda c: c.run(data=c.file("one.csv", _rows(["good day"] * 20, ["pos"] * 20)))),
    "all texts whitespace": (2, lambda c: ["scan", c.file("ws.csv", _rows(["  ", "\t", " "] * 10,
                                                                          ["a", "b", "a"] * 10)), "--out", c.out]),
    "--labels not in label map": (2, lambda c: ["data", c.csv, "--labels", "pos,zzz"]),
    "--target-label not in label map": (2, lambda c: ["inject", c.csv, "--target-label", "zzz", "--out", c.out]),
    "config target_label not in label map": (2, lambda c: c.run("injection.target_label=zzz")),
    "unknown split": (2, lambda c: ["scan", c.csv, "--split", "middle", "--out", c.out]),
    # -- numbers, sources, contradictory settings
    "non-numeric proportion (cli)": (2, lambda c: ["inject", c.csv, "--proportion", "half", "--out", c.out]),
    "non-numeric proportion (config)": (2, lambda c: c.run("injection.proportion=half")),
    "proportion above 1": (2, lambda c: c.run("injection.proportion=1.5")),
    "unknown token source (cli)": (2, lambda c: ["inject", c.csv, "--source", "emoji", "--out", c.out]),
    "unknown token source (config)": (2, lambda c: c.run("injection.source=emoji")),
    "aggressive with no tokens": (2, lambda c: ["inject", c.csv, "--token-proportion", "0.5", "--tokens", " , ",
                                                "--out", c.out]),
    "negative token proportion": (2, lambda c: c.run("injection.token_proportion=-0.1")),
    "lora rank 0": (2, lambda c: c.run("train.lora.r=0")),
    "test_size outside (0, 1)": (2, lambda c: c.run("data.test_size=1.5")),
    "missing tokens file": (2, lambda c: ["inject", c.csv, "--tokens-file", str(c.inp / "none.txt"), "--out", c.out]),
    "scan alpha out of range": (2, lambda c: ["scan", c.csv, "--alpha", "2", "--out", c.out]),
    "scan negative inserted boost": (2, lambda c: ["scan", c.csv, "--inserted-boost", "-1", "--out", c.out]),
    "malformed findings file": (2, lambda c: ["sanitize", c.csv, "--findings", c.file("f.json", "{not json"),
                                              "--out", c.out]),
    # -- configs
    "yaml python tag": (2, lambda c: ["run", c.file("evil.yaml", "name: !!python/object/apply:os.system ['true']\n"),
                                      "--out", c.out]),
    "invalid yaml": (2, lambda c: ["run", c.file("bad.yaml", "name: [unclosed\n"), "--out", c.out]),
    "config is a list": (2, lambda c: ["run", c.file("list.yaml", "- a\n- b\n"), "--out", c.out]),
    "unknown config key": (2, lambda c: c.run("train.learning_rate=0.1")),
    "name escapes the runs folder": (2, lambda c: ["run", c.config(name="../../escaped"), "--no-progress"]),
    # -- models and adapters
    "unknown model id offline": (2, lambda c: c.run("model.name=no-such-org/no-such-model-xyz")),
    "missing model folder": (2, lambda c: c.run(f"model.name={c.inp / 'no-model'}")),
    "pickle-only model": (2, lambda c: c.run(f"model.name={_pickle_model(c)}")),
    "hub dataset offline": (2, lambda c: ["data", "hf:no-such-org/no-such-dataset-xyz"]),
    # -- existing output folders
    "run folder of another schema (metrics)": (2, lambda c: c.run_folder(
        {"config.yaml": "name: tiny\n", "metrics.json": json.dumps({"schema_version": 99, "status": "complete"}),
         "DONE": "x\n"})),
    "run folder of another schema (status)": (2, lambda c: c.run_folder(
        {"status.json": json.dumps({"schema_version": 2, "status": "running"})})),
    "out is not a run folder": (2, lambda c: c.run_folder({"notes.txt": "mine"})),
    "inject out of another schema": (2, lambda c: [*_inject_out(c, {"schema_version": 7})]),
    "out is a file": (2, lambda c: ["sanitize", c.csv, "--auto", "--out", c.file("out.txt", "x")]),
    # -- unwritable output and full disk
    "inject out under a file": (2, lambda c: ["inject", c.csv, "--out", c.under_file()]),
    "scan out under a file": (2, lambda c: ["scan", c.csv, "--out", c.under_file()]),
    "run out under a file": (2, lambda c: ["run", c.config(), "--out", c.under_file(), "--no-progress"]),
    "disk full during inject": (1, lambda c: (c.disk_full(2), ["inject", c.csv, "--out", c.out])[1]),
    "disk full during sanitize": (1, lambda c: (c.disk_full(1), ["sanitize", c.csv, "--auto", "--out", c.out])[1]),
    "disk full during scan": (1, lambda c: (c.disk_full(1), ["scan", c.csv, "--out", c.out])[1]),
    "disk full when a run starts": (1, lambda c: (c.disk_full(1), c.run())[1]),
}


def _pickle_model(c: Ctx) -> Path:
    folder = c.inp / "pickled"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "bert"}))
    (folder / "pytorch_model.bin").write_bytes(b"not really a pickle")
    return folder


def _inject_out(c: Ctx, summary: dict) -> list[str]:
    out = Path(c.out)
    out.mkdir()
    (out / "summary.json").write_text(json.dumps(summary))
    return ["inject", c.csv, "--out", c.out]


def snapshot(root: Path) -> dict[str, str]:
    """Every file and folder under ``root`` with a hash of its bytes."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(root.rglob("*"))}


@pytest.fixture()
def ctx(tmp_path: Path, tiny_models: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> Ctx:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (tmp_path / "in").mkdir()
    return Ctx(tmp_path, tiny_models["bert"], monkeypatch)


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 30


@pytest.mark.usefixtures("torch_threads")
@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(name: str, ctx: Ctx, capsys: pytest.CaptureFixture[str]) -> None:
    expected_code, build = CASES[name]
    args = build(ctx)
    capsys.readouterr()
    before = snapshot(ctx.tmp)
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    assert code == expected_code, (name, captured.out[-500:], captured.err)
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert "Traceback" not in captured.out + captured.err
    assert snapshot(ctx.tmp) == before, "the command left files behind"
