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
from spurlab.cli.app import MAX_MESSAGE, main


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
    "utf-8 with one bad byte": (2, lambda c: ["data", c.file(
        "m.csv", "text,label\ncaf\u00e9,pos\n".encode() + b"na\xffve,neg\n" + "na\u00efve,pos\n".encode())]),
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
    "unknown token source (cli)": (2, lambda c: ["inject", c.csv, "--source", "sparkle", "--out", c.out]),
    "unknown token source (config)": (2, lambda c: c.run("injection.source=sparkle")),
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
    # -- non-finite numbers (issue: inf/nan accepted)
    "learning rate inf": (2, lambda c: c.run("train.lr=inf")),
    "learning rate nan (yaml)": (2, lambda c: c.run("train.lr=.nan")),
    "scan inserted boost inf": (2, lambda c: ["scan", c.csv, "--inserted-boost", "inf", "--out", c.out]),
    "inject proportion nan": (2, lambda c: ["inject", c.csv, "--proportion", "nan", "--out", c.out]),
    "demo proportion nan": (2, lambda c: ["demo", "--proportion", "nan", "--out", c.out]),
    # -- labels and texts read the same in every format
    "labels 01 and 1": (2, lambda c: ["inject", c.file("z.csv", _rows(["a", "b", "c", "d"], ["01", "1", "01", "1"])),
                                      "--out", c.out]),
    "labels 1 and 1.0 (csv)": (2, lambda c: ["data", c.file("f.csv", _rows(["a", "b", "c", "d"],
                                                                           ["1", "1.0", "0", "0"]))]),
    "labels 1 and 1.0 (jsonl)": (2, lambda c: ["data", c.file(
        "f.jsonl", '{"text": "a", "label": 1}\n{"text": "b", "label": 1.0}\n{"text": "c", "label": 0}\n')]),
    "NA label in csv": (2, lambda c: ["data", c.file("na.csv", _rows(["a", "b", "c"], ["pos", "NA", "neg"]))]),
    "null label in jsonl": (2, lambda c: ["data", c.file(
        "nl.jsonl", '{"text": "a", "label": "pos"}\n{"text": "b", "label": null}\n{"text": "c", "label": "neg"}\n')]),
    "labels differ in a zero-width space": (2, lambda c: ["data", c.file("zw.csv", _rows(
        ["a", "b", "c"], ["pos", "pos\u200b", "neg"]))]),
    "labels differ in trailing space": (2, lambda c: ["data", c.file(
        "ws2.csv", 'text,label\na,pos\nb,"pos "\nc,neg\n')]),
    "object text in jsonl": (2, lambda c: ["inject", c.file("o.jsonl", '{"text": {"a": 1}, "label": "pos"}\n'
                                                            '{"text": "b", "label": "neg"}\n'), "--out", c.out]),
    "struct text in parquet": (2, lambda c: ["scan", _struct_parquet(c), "--out", c.out]),
    "duplicate csv columns": (2, lambda c: ["inject", c.file("dup.csv", "text,label,text\na,pos,x\nb,neg,y\n"),
                                            "--out", c.out]),
    "duplicate yaml key": (2, lambda c: ["run", c.file("dupkey.yaml", f"name: x\ndata: {{spec: {c.csv}}}\n"
                                                       f"model: {{name: {c.model}}}\ntrain: {{lr: 0.1}}\n"
                                                       "train: {epochs: 1}\n"), "--out", c.out]),
    "csv named .tsv": (2, lambda c: ["data", c.file("comma.tsv", "text,label\na,pos\nb,neg\n")]),
    "json array file": (2, lambda c: ["data", c.file("arr.jsonl", '[{"text": "a", "label": "pos"}]\n')]),
    "swapped text and label columns": (2, lambda c: ["data", c.csv, "--text-col", "label", "--label-col", "text"]),
    # -- small silent cases, ranges and bounds
    "demo max-train 0": (2, lambda c: ["demo", "--max-train", "0", "--out", c.out]),
    "max_train leaves one class": (2, lambda c: c.run("data.max_train=1")),
    "negative seed (inject)": (2, lambda c: ["inject", c.csv, "--seed", "-1", "--out", c.out]),
    "negative seed (data)": (2, lambda c: ["data", c.csv, "--seed", "-3"]),
    "negative seed (train)": (2, lambda c: c.run("train.seed=-1")),
    "negative seed (data split)": (2, lambda c: c.run("data.seed=-5")),
    "token proportion 1e9": (2, lambda c: ["inject", c.csv, "--token-proportion", "1e9", "--out", c.out]),
    "a fifo as data": (2, lambda c: ["scan", _fifo(c), "--out", c.out]),
    "/dev/zero as data": (2, lambda c: ["data", _dev_zero(c)]),
    "file over the read limit": (2, lambda c: (c.monkeypatch.setenv("SPURLAB_MAX_READ_BYTES", "100"),
                                               ["inject", c.csv, "--out", c.out])[1]),
    "zip bomb preset": (2, lambda c: (c.monkeypatch.setenv("SPURLAB_MAX_READ_BYTES", str(1 << 20)),
                                      ["data", f"preset:movie_reviews:{_zip_bomb(c)}"])[1]),
    # -- defense parameters at config load
    "defense params out of range (dry run)": (2, lambda c: c.run("defense={name: sanitize, alpha: 5, top: -3, "
                                                                 "mode: bogus}", "--dry-run")),
    "defense findings not a findings file": (2, lambda c: c.run("defense={name: sanitize, findings: /etc/passwd}")),
    "yaml alias bomb in a defense parameter": (2, lambda c: ["run", _alias_bomb_config(c), "--out", c.out]),
    # -- models: pickles, corrupt files, code, devices, shapes
    "paraphrase a pickle-only model": (2, lambda c: ["paraphrase", c.csv, "--model", str(_pickle_model(c)),
                                                     "--out", c.out]),
    "corrupt model.safetensors": (2, lambda c: c.run(f"model.name={_corrupt_safetensors(c)}")),
    "non-utf-8 config": (2, lambda c: ["run", c.file("latin.yaml", "name: caf\xe9\n".encode("latin-1")),
                                       "--out", c.out]),
    "auto_map under a stock model_type": (2, lambda c: c.run(f"model.name={_auto_map_model(c)}")),
    "cuda:99 on this machine": (2, lambda c: c.run("train.device=cuda:99")),
    "a model config of impossible shape": (2, lambda c: c.run(f"model.name={_bad_shape_model(c)}")),
    "empty sweep.db": (2, lambda c: ["results", _empty_sweep_db(c)]),
}


def _struct_parquet(c: Ctx) -> str:
    path = c.inp / "struct.parquet"
    pd.DataFrame({"text": [{"a": 1}, {"a": 2}], "label": ["pos", "neg"]}).to_parquet(path)
    return str(path)


# What the one line must say where the old line was one line but misleading (or where the case is about meaning).
EXPECT: dict[str, str] = {
    "learning rate inf": "finite number",
    "scan inserted boost inf": "finite number",
    "inject proportion nan": "finite number",
    "demo proportion nan": "finite number",
    "labels 01 and 1": "one number written differently",
    "labels 1 and 1.0 (csv)": "one number written differently",
    "labels 1 and 1.0 (jsonl)": "one number written differently",
    "NA label in csv": "have no label",
    "null label in jsonl": "have no label",
    "labels differ in a zero-width space": "'pos\\u200b'",
    "labels differ in trailing space": "'pos '",
    "object text in jsonl": "row 0: the text in column 'text' is a dict",
    "struct text in parquet": "row 0: the text in column 'text' is a dict",
    "duplicate csv columns": "named twice: 'text'",
    "duplicate yaml key": "duplicate key 'train'",
    "csv named .tsv": "looks like CSV",
    "json array file": "expected JSON Lines",
    "jsonl truncated line": "line 2 is not JSON",
    "latin-1 read as utf-8": "line 2 is not valid utf-8",
    "utf-8 with one bad byte": "line 3 is not valid utf-8 (byte 23); the rest of the file is utf-8",
    "swapped text and label columns": "is it the text?",
    "max_train leaves one class": "after max_train=1",
    "token proportion 1e9": "must be <= 1",
    "a fifo as data": "not a regular file",
    "/dev/zero as data": "not a regular file",
    "file over the read limit": "SPURLAB_MAX_READ_BYTES",
    "zip bomb preset": "decompresses to more than",
    "defense params out of range (dry run)": "top: Input should be greater than or equal to 1",
    "defense findings not a findings file": "findings: /etc/passwd",
    "yaml alias bomb in a defense parameter": "aliases expand",
    "paraphrase a pickle-only model": "pass --allow-pickle",
    "corrupt model.safetensors": "not a valid safetensors file",
    "non-utf-8 config": "not UTF-8",
    "auto_map under a stock model_type": "auto_map",
    "cuda:99 on this machine": "cuda:99",
    "a model config of impossible shape": "can be built",
    "empty sweep.db": "no results table",
}


def _fifo(c: Ctx) -> str:
    path = c.inp / "pipe.csv"
    os.mkfifo(path)
    return str(path)


def _dev_zero(c: Ctx) -> str:
    link = c.inp / "zero.csv"
    link.symlink_to("/dev/zero")
    return str(link)


def _zip_bomb(c: Ctx) -> str:
    import zipfile

    path = c.inp / "movie_reviews.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for label in ("neg", "pos"):
            archive.writestr(f"movie_reviews/{label}/cv000_1.txt", "a" * (4 << 20))
    return str(path)


def _alias_bomb_config(c: Ctx) -> str:
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    body = Path(c.config()).read_text(encoding="utf-8")  # a valid config, plus a paraphrase prompt of 9^9 items
    return c.file("bomb.yaml", "\n".join(lines) + "\n" + body + "defense: {name: paraphrase, prompt: *i}\n")


def _model_copy(c: Ctx, name: str) -> Path:
    import shutil

    folder = c.inp / name
    shutil.copytree(c.model, folder)
    return folder


def _corrupt_safetensors(c: Ctx) -> Path:
    folder = _model_copy(c, "corrupt")
    (folder / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not a header")
    return folder


def _auto_map_model(c: Ctx) -> Path:
    folder = _model_copy(c, "automap")
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModel": "modeling_evil.EvilModel"}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "modeling_evil.py").write_text("raise SystemExit('ran')\n")
    return folder


def _bad_shape_model(c: Ctx) -> Path:
    folder = _model_copy(c, "badshape")
    config = json.loads((folder / "config.json").read_text())
    config.update(hidden_size=30, num_attention_heads=4)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def _empty_sweep_db(c: Ctx) -> str:
    folder = c.inp / "sweep"
    folder.mkdir()
    (folder / "sweep.db").write_bytes(b"")
    return str(folder)


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
    assert len(CASES) >= 90
    assert set(EXPECT) <= set(CASES)


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
    assert len(lines[0]) <= len("error: ") + MAX_MESSAGE, lines[0]
    assert EXPECT.get(name, "") in lines[0], (EXPECT[name], lines[0])
    assert "Traceback" not in captured.out + captured.err
    assert snapshot(ctx.tmp) == before, "the command left files behind"
