"""The Ray executor gives the same store as the local one (a 2-point grid on a local 2-CPU Ray)."""

from __future__ import annotations

from pathlib import Path

import pytest

from spurlab.sweep import LocalExecutor, RayExecutor, SweepStore, load_spec, run_sweep
from test_sweep import write_spec

pytestmark = pytest.mark.usefixtures("torch_threads")


def comparable(out: Path) -> list[tuple]:
    return [(r.key, r.index, r.status, r.error, r.overrides, r.config, r.run_dir,
             {k: v for k, v in (r.metrics or {}).items() if k != "meta"})
            for r in SweepStore(out, readonly=True).rows()]


def test_ray_executor_matches_local(tiny_models: dict[str, Path], synthetic_csv: Path, tmp_path: Path) -> None:
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'spurlab[ray]')")
    spec = write_spec(tmp_path, tiny_models["bert"], synthetic_csv, {"injection.proportion": [0.5, 1.0]})
    sweep = load_spec(spec)
    run_sweep(sweep, tmp_path / "local", LocalExecutor(), echo=lambda _: None)
    ray.init(num_cpus=2, include_dashboard=False)
    try:
        lines: list[str] = []
        report = run_sweep(sweep, tmp_path / "ray", RayExecutor(cpus_per_run=1), echo=lines.append)
        assert sorted(report.complete) == ["proportion=0.5", "proportion=1.0"] and not report.failed
        assert "(ray executor)" in lines[0]
        assert ray.is_initialized()  # a Ray the caller started is left running
    finally:
        ray.shutdown()
    local, remote = comparable(tmp_path / "local"), comparable(tmp_path / "ray")
    assert [r[0] for r in remote] == ["proportion=0.5", "proportion=1.0"]
    assert remote == local
    assert all(r[2] == "complete" and r[7]["spurious:pos"]["n"] == 40 for r in remote)
