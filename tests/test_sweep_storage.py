"""``spurlab sweep --storage URI``: run folders live in storage, not under ``--out``; a resume reads them
from there; a two-node Ray cluster (``ray.cluster_utils.Cluster``) writes every point to storage; bad storage
is one line and nothing is written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_cli
from spurlab.sweep import LocalExecutor, RayExecutor, SweepStore, load_spec, run_sweep
from spurlab.sweep.storage import open_storage
from test_sweep import write_spec

pytestmark = pytest.mark.usefixtures("torch_threads")


def _scores(out: Path) -> dict[str, tuple[str, dict]]:
    return {r.key: (r.status, {k: v for k, v in (r.metrics or {}).items() if k != "meta"})
            for r in SweepStore(out, readonly=True).rows()}


def test_run_folders_go_to_storage_and_a_resume_reads_them_back(
        tiny_models: dict[str, Path], synthetic_csv: Path, tmp_path: Path) -> None:
    spec = write_spec(tmp_path, tiny_models["bert"], synthetic_csv, {"injection.proportion": [0.5, 1.0]})
    sweep = load_spec(spec)
    run_sweep(sweep, tmp_path / "plain", LocalExecutor(), echo=lambda _: None)
    storage = open_storage(f"file://{tmp_path / 'bucket'}")
    run_sweep(sweep, tmp_path / "out", LocalExecutor(), echo=lambda _: None, storage=storage)
    assert _scores(tmp_path / "out") == _scores(tmp_path / "plain")  # the same numbers as without storage
    assert not (tmp_path / "out" / "runs").exists()
    rows = SweepStore(tmp_path / "out", readonly=True).rows()
    assert [r.run_dir for r in rows] == [f"file://{tmp_path}/bucket/runs/{k}" for k in ("proportion=0.5",
                                                                                       "proportion=1.0")]
    for key in ("proportion=0.5", "proportion=1.0"):
        folder = tmp_path / "bucket" / "runs" / key
        assert {"DONE", "metrics.json", "config.yaml", "report.html"} <= {p.name for p in folder.iterdir()}
        assert any((folder / "adapter").glob("*.safetensors"))
    assert json.loads((tmp_path / "bucket" / "sweep.json").read_text())["spec_hash"] == sweep.spec_hash
    # a driver that lost its store (a new --out) finds every point complete in storage and recomputes nothing
    lines: list[str] = []
    report = run_sweep(sweep, tmp_path / "again", LocalExecutor(), echo=lines.append, storage=storage)
    assert sorted(report.complete) == ["proportion=0.5", "proportion=1.0"]
    assert sum("already complete in its run folder" in line for line in lines) == 2
    assert _scores(tmp_path / "again") == _scores(tmp_path / "plain")
    # an upload cut short (no DONE marker) is not taken as complete: that point runs again
    (tmp_path / "bucket" / "runs" / "proportion=1.0" / "DONE").unlink()
    lines = []
    run_sweep(sweep, tmp_path / "third", LocalExecutor(), echo=lines.append, storage=storage)
    assert sum("already complete in its run folder" in line for line in lines) == 1
    assert (tmp_path / "bucket" / "runs" / "proportion=1.0" / "DONE").is_file()


def test_two_node_ray_cluster_writes_every_run_folder_to_storage(
        tiny_models: dict[str, Path], synthetic_csv: Path, tmp_path: Path) -> None:
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'spurlab[ray]')")
    from ray.cluster_utils import Cluster

    spec = write_spec(tmp_path, tiny_models["bert"], synthetic_csv, {"injection.proportion": [0.5, 1.0]})
    sweep = load_spec(spec)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    try:
        ray.init(address=cluster.address, include_dashboard=False)
        assert len([n for n in ray.nodes() if n["Alive"]]) == 2
        report = run_sweep(sweep, tmp_path / "out", RayExecutor(cpus_per_run=1), echo=lambda _: None,
                           storage=open_storage(str(tmp_path / "bucket")))
    finally:
        ray.shutdown()
        cluster.shutdown()
    keys = [p.key for p in sweep.points]
    assert sorted(report.complete) == sorted(keys) and not report.failed
    store = {r.key: r for r in SweepStore(tmp_path / "out", readonly=True).rows()}
    assert sorted(store) == sorted(keys) and all(r.status == "complete" for r in store.values())
    for key in keys:
        folder = tmp_path / "bucket" / "runs" / key
        metrics = json.loads((folder / "metrics.json").read_text())
        assert (folder / "DONE").is_file() and store[key].run_dir == str(folder)
        assert metrics["clean"] == store[key].metrics["clean"]
    assert not (tmp_path / "out" / "runs").exists()


def test_bad_storage_is_one_line_and_nothing_is_written(
        tiny_models: dict[str, Path], synthetic_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = write_spec(tmp_path, tiny_models["bert"], synthetic_csv, {"injection.proportion": [0.5]})
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    for uri, words in (("nosuch://bucket/x", "unknown scheme 'nosuch'"),
                       (str(blocker / "runs"), "cannot be written")):
        code, _, err = run_cli(["sweep", str(spec), "--out", str(tmp_path / "out"), "--storage", uri], capsys)
        assert code == 2 and words in err and err.count("\n") == 1, err
        assert not (tmp_path / "out").exists()
    other = write_spec(tmp_path, tiny_models["bert"], synthetic_csv, {"injection.proportion": [1.0]}, name="other")
    bucket = str(tmp_path / "bucket")
    code, _, err = run_cli(["sweep", str(spec), "--out", str(tmp_path / "a"), "--storage", bucket], capsys)
    assert code == 0, err
    code, _, err = run_cli(["sweep", str(other), "--out", str(tmp_path / "b"), "--storage", bucket], capsys)
    assert code == 2 and "holds sweep 'tiny' of a different spec" in err and err.count("\n") == 1, err
    assert not (tmp_path / "b").exists()
