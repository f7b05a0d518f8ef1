"""Determinism across processes: the same config gives byte-identical splits, injected data and manifests,
whatever the interpreter's hash seed (``PYTHONHASHSEED``), and identical CPU training metrics.

(Within one process: ``test_inject_core.py`` and ``test_run.py::test_run_is_deterministic``; a run resumed in
another process after kills gives the reference numbers: ``test_resume.py``.)
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from conftest import synthetic_frame

SCRIPT = r"""
import sys
from pathlib import Path
from spurlab.atomic import write_text
from spurlab.data.loaders import load_splits, load_table
from spurlab.data.transform import save_transform
from spurlab.inject import inject, inject_many

src, out = sys.argv[1], Path(sys.argv[2])
splits = load_splits(src, test_size=0.3, seed=5, max_train=150)
for name, ds in (("train", splits.train), ("test", splits.test)):
    write_text(out / f"split-{name}.csv", ds.frame.to_csv(index=False))
table = load_table(src)
recipes = {
    "date": {"source": "date", "target_label": "pos", "proportion": 0.5, "seed": 1},
    "country-aggressive": {"source": "country", "target_label": "neg", "token_proportion": 0.3, "seed": 2},
    "html-end": {"source": "html", "location": "end", "seed": 3},
    "color-start": {"source": "color", "location": "start", "proportion": 0.25, "seed": 4},
    "list": {"source": "list", "tokens": ["zq", "xv", "wj"], "target_label": ["pos", "neg"], "seed": 5},
    "punctuation": {"source": "punctuation", "target_label": "pos", "seed": 6},
}
for name, recipe in recipes.items():
    save_transform(inject(table, recipe), out / name)
save_transform(inject_many(table, [{"source": "date", "target_label": "pos", "proportion": 0.5},
                                {"source": "country", "target_label": "neg", "proportion": 0.5}]), out / "many")
"""


def _hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_splits_injection_and_manifest_are_byte_identical_across_processes(tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    synthetic_frame(300, seed=3).to_csv(data, index=False)
    outputs = []
    for hash_seed in ("1", "4242"):
        out = tmp_path / f"out-{hash_seed}"
        env = dict(os.environ, PYTHONHASHSEED=hash_seed, HF_HUB_OFFLINE="1")
        done = subprocess.run([sys.executable, "-c", SCRIPT, str(data), str(out)], env=env, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        outputs.append(_hashes(out))
    assert len(outputs[0]) == 2 + 7 * 3
    assert outputs[0] == outputs[1]
