"""``spurlab sweep`` / ``results`` / ``figures``: grid expansion, the SQLite store, resume after failures and
SIGKILL, the spec-hash refusal. Tiny random BERT, 160 synthetic rows, 4 optimizer steps per grid point."""

from __future__ import annotations

import hashlib
import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import run_cli
from spurlab.errors import SpurlabError
from spurlab.experiment import is_complete
from spurlab.sweep.spec import load_spec, parse_spec, point_keys
from spurlab.sweep.store import SweepStore
from spurlab.sweep.table import results_frame

pytestmark = pytest.mark.usefixtures("torch_threads")
ROOT = Path(__file__).resolve().parents[1]


def base_config(model: Path, data: Path) -> dict:
    return {
        "name": "tiny-sweep",
        "data": {"spec": str(data), "test_size": 0.25},
        "injection": {"source": "date", "target_label": "pos", "proportion": 0.5},
        "model": {"name": str(model)},
        "train": {"mode": "lora", "lr": 5e-3, "max_steps": 4, "batch_size": 16, "max_length": 24,
                  "precision": "fp32", "threads": 1, "device": "cpu"},
        "evaluation": {"base": False},
    }


def write_spec(folder: Path, model: Path, data: Path, grid: dict, name: str = "tiny") -> Path:
    (folder / "base.yaml").write_text(yaml.safe_dump(base_config(model, data)), encoding="utf-8")
    spec = folder / f"{name}.yaml"
    spec.write_text(yaml.safe_dump({"base": "base.yaml", "grid": grid}, sort_keys=False), encoding="utf-8")
    return spec


def files(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file under ``folder`` with a hash of its bytes and its modification time."""
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def read_rows(out: Path) -> dict[str, object]:
    return {r.key: r for r in SweepStore(out, readonly=True).rows()}


# -- grid expansion ----------------------------------------------------------------------------------------------

def test_grid_expansion_keys_and_configs(tiny_models: dict[str, Path], synthetic_csv: Path) -> None:
    base = base_config(tiny_models["bert"], synthetic_csv)
    sweep = parse_spec({"name": "g", "base": base, "grid": {"train.lora.r": [1, 8, 64],
                                                           "injection.proportion": [0.5, 1.0]}}, "spec")
    assert [p.key for p in sweep.points] == [
        "lora.r=1,proportion=0.5", "lora.r=1,proportion=1.0", "lora.r=8,proportion=0.5",
        "lora.r=8,proportion=1.0", "lora.r=64,proportion=0.5", "lora.r=64,proportion=1.0"]
    for p in sweep.points:
        assert p.config.train.lora.r == p.overrides["train.lora.r"]
        assert p.config.injection.proportion == p.overrides["injection.proportion"]
        assert p.config.injection.target_label == "pos" and p.config.train.lr == 5e-3  # the rest is the base
    assert [p.index for p in sweep.points] == list(range(6))
    # the hash names what is computed: the same spec again gives the same hash, another base another one
    again = parse_spec({"name": "g", "base": base, "grid": {"train.lora.r": [1, 8, 64],
                                                           "injection.proportion": [0.5, 1.0]}}, "spec")
    assert again.spec_hash == sweep.spec_hash
    other = parse_spec({"name": "g", "base": {**base, "train": {**base["train"], "lr": 1e-3}},
                        "grid": {"train.lora.r": [1, 8, 64], "injection.proportion": [0.5, 1.0]}}, "spec")
    assert other.spec_hash != sweep.spec_hash
    threads = parse_spec({"name": "g", "base": {**base, "train": {**base["train"], "threads": 2}},
                          "grid": {"train.lora.r": [1, 8, 64], "injection.proportion": [0.5, 1.0]}}, "spec")
    assert threads.spec_hash == sweep.spec_hash  # threads change speed, not results


def test_point_keys_safe_unique_and_short() -> None:
    # equal short names (seed, seed) fall back to the full dotted keys
    assert point_keys([{"train.seed": 1, "data.seed": 2}]) == ["train.seed=1,data.seed=2"]
    # top-level keys, null, booleans
    assert point_keys([{"injection": None, "train.group_by_length": False}]) == [
        "injection=null,group_by_length=false"]
    # unsafe characters are replaced and a hash keeps the keys apart
    keys = point_keys([{"data.spec": "a/b.csv"}, {"data.spec": "a_b.csv"}, {"data.spec": "a:b.csv"}])
    assert keys[1] == "spec=a_b.csv"
    assert keys[0].startswith("spec=a_b.csv-") and keys[2].startswith("spec=a_b.csv-")
    assert len(set(keys)) == 3 and all("/" not in k and ":" not in k for k in keys)
    long = point_keys([{"injection.tokens": ["x" * 80, "y" * 80]}])[0]
    assert len(long) <= 120 and "/" not in long


def test_bundled_sweep_specs_expand() -> None:
    big = load_spec(ROOT / "configs" / "sweeps" / "rank-proportion-minilm.yaml")
    assert len(big.points) == 24
    assert {p.config.train.lora.r for p in big.points} == {1, 4, 16, 64}
    assert {p.config.injection.token_proportion for p in big.points} == {0.0, 0.1}
    assert all(p.config.model.name == "bundled:minilm" and p.config.data.spec == "bundled:tweets"
               for p in big.points)
    smoke = load_spec(ROOT / "configs" / "sweeps" / "tiny-smoke.yaml")
    assert 2 <= len(smoke.points) <= 4
    peft = load_spec(ROOT / "configs" / "sweeps" / "peft-methods-minilm.yaml")
    assert len(peft.points) == 120
    methods = {p.overrides["case"]: p.config.train for p in peft.points}
    assert sorted({t.method for t in methods.values()}) == ["adalora", "full", "head", "ia3", "loha", "lokr",
                                                            "lora", "vera"]
    assert methods["dora"].lora.use_dora and methods["pissa"].lora.init == "pissa"
    assert (methods["loha"].loha.r, methods["full"].lr, methods["lora"].lr) == (4, 5e-5, 1e-3)


# -- running, the store, resume ----------------------------------------------------------------------------------

def test_sweep_store_results_and_resume(tiny_models: dict[str, Path], synthetic_csv: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    spec = write_spec(tmp_path, tiny_models["bert"], synthetic_csv,
                      {"train.lora.r": [1, 4], "injection.proportion": [0.5, 1.0]})
    out = tmp_path / "sweep"
    code, stdout, err = run_cli(["sweep", str(spec), "--out", str(out), "--dry-run"], capsys)
    assert code == 0, err
    assert "4 grid points" in stdout and "lora.r=4,proportion=1.0" in stdout and not out.exists()
    code, stdout, err = run_cli(["sweep", str(spec), "--out", str(out)], capsys)
    assert code == 0, err
    assert "0 already complete, 4 to run" in stdout and "4 of 4 complete" in stdout
    rows = read_rows(out)
    assert list(rows) == ["lora.r=1,proportion=0.5", "lora.r=1,proportion=1.0", "lora.r=4,proportion=0.5",
                          "lora.r=4,proportion=1.0"]
    frame = results_frame(SweepStore(out, readonly=True))
    assert len(frame) == 4 and frame.attrs["grid_keys"] == ["train.lora.r", "injection.proportion"]
    for (key, row), (_, flat) in zip(rows.items(), frame.iterrows(), strict=True):
        run = out / "runs" / key
        assert is_complete(run) and row.run_dir == f"runs/{key}"
        metrics = json.loads((run / "metrics.json").read_text())
        assert row.status == "complete" and row.error is None and row.metrics == metrics
        assert row.config == yaml.safe_load((run / "config.yaml").read_text())
        assert row.config["train"]["lora"]["r"] == row.overrides["train.lora.r"]
        assert row.seconds > 0 and row.started <= row.finished
        spurious = metrics["spurious:pos"]
        assert flat["key"] == key and flat["status"] == "complete"
        assert flat["clean.accuracy"] == metrics["clean"]["accuracy"]
        assert flat["spurious:pos.attack_success_rate"] == spurious["attack_success_rate"]
        assert flat["spurious:pos.token_share"] == spurious["predicted_counts"]["pos"] / spurious["n"]
        clean_share = metrics["clean"]["predicted_counts"]["pos"] / metrics["clean"]["n"]
        assert flat["spurious:pos.lift"] == pytest.approx(flat["spurious:pos.token_share"] - clean_share)
        assert "spurious-flip:pos.lift" not in flat  # other rows than the clean set: no like-for-like lift
        assert flat["clean.predicted_counts.neg"] == metrics["clean"]["predicted_counts"]["neg"]
        assert flat["spurious-flip:pos.accuracy"] == metrics["spurious-flip:pos"]["accuracy"]
        assert flat["meta.n_train"] == 120
        assert flat["train.lora.r"] == row.overrides["train.lora.r"]
        assert flat["injection.proportion"] == row.overrides["injection.proportion"]
        assert flat["injection.token_proportion"] == 0.0  # the injection's default, filled in
        assert flat["train.lr"] == 5e-3
    assert rows["lora.r=1,proportion=1.0"].metrics["meta"]["injection"]["n_modified"] == 60
    assert rows["lora.r=1,proportion=0.5"].metrics["meta"]["injection"]["n_modified"] == 30
    # a second run skips every complete point and leaves the run folders alone
    before = files(out / "runs")
    code, stdout, err = run_cli(["sweep", str(spec), "--out", str(out)], capsys)
    assert code == 0, err
    assert "4 already complete, 0 to run" in stdout
    assert files(out / "runs") == before
    assert {k: r.finished for k, r in read_rows(out).items()} == {k: r.finished for k, r in rows.items()}
    # results: the table and its exports
    code, stdout, err = run_cli(["results", str(out), "--csv", str(tmp_path / "r.csv"),
                                 "--parquet", str(tmp_path / "r.parquet")], capsys)
    assert code == 0, err
    assert "4 complete, 0 failed, 0 not run yet (of 4)" in stdout
    for exported in (pd.read_csv(tmp_path / "r.csv"), pd.read_parquet(tmp_path / "r.parquet")):
        assert list(exported["key"]) == list(rows)
        assert exported["clean.accuracy"].tolist() == frame["clean.accuracy"].tolist()
        assert exported["spurious:pos.attack_success_rate"].tolist() == \
            frame["spurious:pos.attack_success_rate"].tolist()
    # figures from the store and from the exported table
    for source in (out, tmp_path / "r.csv"):
        figs = tmp_path / f"figs-{source.name}"
        code, stdout, err = run_cli(["figures", str(source), "--out", str(figs)], capsys)
        assert code == 0, err
        summary = json.loads((figs / "figures.json").read_text())
        assert [f["file"] for f in summary["figures"]] == ["attack_vs_rank.png", "clean_accuracy_vs_rank.png"]
        assert [f["n_rows"] for f in summary["figures"]] == [4, 4]
        assert all((figs / f["file"]).stat().st_size > 1000 for f in summary["figures"])
        attack = summary["figures"][0]["series"][0]
        assert attack["y"] == "attack_success" and attack["hue"] == 0.5 and attack["x"] == [1, 4]
        assert attack["mean"] == [rows[f"lora.r={r},proportion=0.5"].metrics["spurious:pos"]["attack_success_rate"]
                                  for r in (1, 4)]
    # another spec into the same folder is refused with one line and changes nothing
    other = write_spec(tmp_path, tiny_models["bert"], synthetic_csv,
                       {"train.lora.r": [1, 4, 8], "injection.proportion": [0.5, 1.0]}, name="other")
    before = files(out)
    code, _, err = run_cli(["sweep", str(other), "--out", str(out)], capsys)
    assert code == 2 and err.count("\n") == 1
    assert "different spec (2 grid point(s) not in it, 0 of its points gone)" in err and "--overwrite" in err
    assert files(out) == before
    # --overwrite starts it over with the new spec
    small = write_spec(tmp_path, tiny_models["bert"], synthetic_csv, {"train.lora.r": [2]}, name="small")
    code, stdout, err = run_cli(["sweep", str(small), "--out", str(out), "--overwrite"], capsys)
    assert code == 0, err
    assert list(read_rows(out)) == ["lora.r=2"]
    assert sorted(p.name for p in (out / "runs").iterdir()) == ["lora.r=2"]


def test_failed_point_is_recorded_and_retried(tiny_models: dict[str, Path], synthetic_csv: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import spurlab.sweep.executors as executors

    spec = write_spec(tmp_path, tiny_models["bert"], synthetic_csv, {"train.lora.r": [1, 2, 4]})
    out = tmp_path / "sweep"
    real = executors.run_experiment

    def flaky(cfg, out_dir, **kwargs):
        if cfg.train.lora.r == 2:
            raise RuntimeError("boom\nmore detail")
        return real(cfg, out_dir, **kwargs)

    monkeypatch.setattr(executors, "run_experiment", flaky)
    code, stdout, err = run_cli(["sweep", str(spec), "--out", str(out)], capsys)
    assert code == 1
    assert err.count("\n") == 1 and err.startswith("error: 1 of 3 grid points failed (first: lora.r=2)")
    assert "[2/3] lora.r=2: failed: RuntimeError: boom" in stdout and "[3/3] lora.r=4: clean acc" in stdout
    rows = read_rows(out)
    assert {k: r.status for k, r in rows.items()} == {"lora.r=1": "complete", "lora.r=2": "failed",
                                                      "lora.r=4": "complete"}
    assert rows["lora.r=2"].error == "RuntimeError: boom" and rows["lora.r=2"].metrics is None
    assert rows["lora.r=2"].config["train"]["lora"]["r"] == 2
    code, stdout, _ = run_cli(["results", str(out)], capsys)
    assert code == 0 and "2 complete, 1 failed" in stdout and "RuntimeError: boom" in stdout
    # a re-run retries only the failed point
    monkeypatch.undo()
    before = {k: files(out / "runs" / k) for k in ("lora.r=1", "lora.r=4")}
    code, stdout, err = run_cli(["sweep", str(spec), "--out", str(out)], capsys)
    assert code == 0, err
    assert "2 already complete, 1 to run (1 failed before)" in stdout and "[1/1] lora.r=2: clean acc" in stdout
    rows = read_rows(out)
    assert all(r.status == "complete" and r.error is None for r in rows.values())
    assert rows["lora.r=2"].metrics == json.loads((out / "runs" / "lora.r=2" / "metrics.json").read_text())
    assert {k: files(out / "runs" / k) for k in ("lora.r=1", "lora.r=4")} == before


def _count_rows(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True) as conn:
            return conn.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_sigkill_mid_sweep_then_rerun_finishes_the_rest(tiny_models: dict[str, Path], synthetic_csv: Path,
                                                        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from test_resume import child_env

    spec = write_spec(tmp_path, tiny_models["bert"], synthetic_csv,
                      {"train.lora.r": [1, 2, 4], "injection.proportion": [0.5, 1.0]})
    out = tmp_path / "sweep"
    proc = subprocess.Popen([sys.executable, "-m", "spurlab", "sweep", str(spec), "--out", str(out)],
                            cwd=tmp_path, env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while proc.poll() is None and _count_rows(out / "sweep.db") < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    done_before = {k: r for k, r in read_rows(out).items() if r.status == "complete"}
    assert 2 <= len(done_before) < 6, "the kill should land mid-sweep"
    kept = {k: files(out / "runs" / k) for k in done_before}
    code, stdout, err = run_cli(["sweep", str(spec), "--out", str(out)], capsys)
    assert code == 0, err
    n = len(done_before)
    assert f"{n} already complete, {6 - n} to run" in stdout
    ran = [line.split("] ", 1)[1].split(":", 1)[0] for line in stdout.splitlines() if line.startswith("[")]
    assert sorted(ran) == sorted(set(read_rows(out)) - set(done_before))  # exactly the missing points
    rows = read_rows(out)
    assert len(rows) == 6 and all(r.status == "complete" for r in rows.values())
    assert all(is_complete(out / "runs" / k) for k in rows)
    for key, row in done_before.items():
        assert rows[key].finished == row.finished and files(out / "runs" / key) == kept[key]


# -- bad input: one line, exit 2, nothing written ----------------------------------------------------------------

def _snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(root.rglob("*"))}


BAD_SPECS: dict[str, tuple[object, str]] = {
    "not a mapping": (["a", "b"], "expected a mapping with base: and grid:"),
    "unknown top-level key": ({"base": "base.yaml", "grid": {"train.lr": [1]}, "grids": {}}, "grids: unknown key"),
    "no grid": ({"base": "base.yaml"}, "grid: needs at least one key (or seeds:)"),
    "empty grid": ({"base": "base.yaml", "grid": {}}, "grid: needs at least one key"),
    "grid value not a list": ({"base": "base.yaml", "grid": {"train.lora.r": 4}}, "grid.train.lora.r"),
    "empty value list": ({"base": "base.yaml", "grid": {"train.lora.r": []}}, "train.lora.r: expected a non-empty"),
    "duplicate value": ({"base": "base.yaml", "grid": {"train.lora.r": [4, 4]}}, "value 4 is listed twice"),
    "not a dotted key": ({"base": "base.yaml", "grid": {"train..lr": [1]}}, "'train..lr' is not a dotted config key"),
    "unknown config key": ({"base": "base.yaml", "grid": {"train.lrr": [1]}},
                           "grid point lrr=1: train.lrr: unknown key"),
    "invalid value at one point": ({"base": "base.yaml", "grid": {"train.lora.r": [4, 0]}},
                                   "grid point lora.r=0: train.lora.r:"),
    "through a non-mapping": ({"base": "base.yaml", "grid": {"train.lr.x": [1]}},
                              "grid point lr.x=1: train.lr.x: train.lr is not a mapping"),
    "unknown target label": ({"base": "base.yaml", "grid": {"injection.target_label": ["pos", "zzz"]}},
                             "grid point target_label=zzz: config: injection.target_label: unknown class 'zzz'"),
    "missing base file": ({"base": "nope.yaml", "grid": {"train.lr": [1]}}, "cannot read base config"),
    "base not a mapping": ({"base": "list.yaml", "grid": {"train.lr": [1]}}, "expected a mapping at the top level"),
    "bad name": ({"name": "../up", "base": "base.yaml", "grid": {"train.lr": [1]}}, "name:"),
}


@pytest.mark.parametrize("case", list(BAD_SPECS))
def test_bad_spec_is_one_line(case: str, tiny_models: dict[str, Path], synthetic_csv: Path, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    content, expected = BAD_SPECS[case]
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(base_config(tiny_models["bert"], synthetic_csv)))
    (tmp_path / "list.yaml").write_text("- a\n")
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(content), encoding="utf-8")
    before = _snapshot(tmp_path)
    for extra in ([], ["--dry-run"]):
        code, _, err = run_cli(["sweep", str(spec), "--out", str(tmp_path / "out"), *extra], capsys)
        assert code == 2, (case, err)
        assert err.count("\n") == 1 and err.startswith("error: ") and expected in err, err
        assert "Traceback" not in err
    assert _snapshot(tmp_path) == before


def test_bad_command_lines_are_one_line(tiny_models: dict[str, Path], synthetic_csv: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import spurlab.sweep.executors as executors

    spec = write_spec(tmp_path, tiny_models["bert"], synthetic_csv, {"train.lora.r": [1]})
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    (tmp_path / "only-keys.csv").write_text("key,status\na,complete\n")
    (tmp_path / "invalid.yaml").write_text("base: [unclosed\n")
    out = str(tmp_path / "out")
    cases = [
        (["sweep", str(tmp_path / "absent.yaml"), "--out", out], "cannot read sweep spec"),
        (["sweep", str(tmp_path / "invalid.yaml"), "--out", out], "invalid YAML"),
        (["sweep", str(spec), "--out", str(tmp_path / "file.txt")], "exists and is not a directory"),
        (["sweep", str(spec), "--out", str(tmp_path / "busy")], "holds files spurlab did not write"),
        (["sweep", str(spec), "--out", out, "--address", "auto"], "--address is for --executor ray"),
        (["sweep", str(spec), "--out", out, "--executor", "spark"], "--executor"),
        (["results", str(tmp_path / "busy")], "no sweep.db here"),
        (["figures", str(tmp_path / "absent"), "--out", out], "expected a sweep folder or a .csv/.parquet"),
        (["figures", str(tmp_path / "only-keys.csv"), "--out", out], "no column 'train.lora.r'"),
        (["figures", str(tmp_path / "only-keys.csv"), "--out", out, "--x", "key"], "--x and --y go together"),
        (["figures", str(tmp_path / "only-keys.csv"), "--out", out, "--x", "key", "--y", "acc"], "no column 'acc'"),
    ]
    before = _snapshot(tmp_path)
    for args, expected in cases:
        code, _, err = run_cli(args, capsys)
        assert code == 2, (args, err)
        assert err.count("\n") == 1 and err.startswith("error: ") and expected in err, (args, err)
    monkeypatch.setattr(executors, "ray_available", lambda: False)
    code, _, err = run_cli(["sweep", str(spec), "--out", out, "--executor", "ray"], capsys)
    assert code == 2 and err == "error: --executor ray needs Ray: pip install 'spurlab[ray]'\n"
    assert _snapshot(tmp_path) == before


def test_store_rejects_a_foreign_file(tmp_path: Path) -> None:
    (tmp_path / "sweep.db").write_bytes(b"this is not sqlite at all" * 10)
    with pytest.raises(SpurlabError, match="not a spurlab results store"):
        SweepStore(tmp_path, readonly=True).rows()


@pytest.mark.parametrize("command", ["sweep", "results", "figures"])
def test_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, stdout, _ = run_cli([command, "--help"], capsys)
    assert code == 0 and "--" in stdout
