"""Writing a diagnosis: the output folder decision (fresh / already complete / refused), the two figures, and
``diagnose.json`` moved into place last."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from spurlab.atomic import staged_outputs, write_json, write_with
from spurlab.detect.diagnose import FORMAT, MODELS, OUTPUTS, SCHEMA_VERSION, DiagnosisReport
from spurlab.detect.diagnose_run import RunInputs
from spurlab.errors import SpurlabError

STYLE = {("base", "clean"): ("#8aa4c8", "-"), ("base", "injected"): ("#8aa4c8", "--"),
         ("finetuned", "clean"): ("#d1495b", "-"), ("finetuned", "injected"): ("#d1495b", "--")}


def request_of(run: RunInputs, *, max_rows: int, seed: int, token_class: str) -> dict[str, Any]:
    """What a diagnosis depends on: the run (by its finish time and config name) and the options."""
    return {"run_name": run.cfg.name, "run_finished": run.metrics.get("meta", {}).get("finished"),
            "max_rows": max_rows, "seed": seed, "token_class": token_class}


def out_state(out_dir: Path, request: dict[str, Any], overwrite: bool) -> Literal["fresh", "complete"]:
    """``complete`` when ``out_dir`` holds the finished diagnosis of the same request; another request's
    diagnosis (or a foreign ``diagnose.json``) is refused unless ``overwrite``."""
    if out_dir.exists() and not out_dir.is_dir():
        raise SpurlabError(f"--out {out_dir} exists and is not a directory")
    path = out_dir / "diagnose.json"
    if overwrite or not path.exists():
        return "fresh"
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        found = None
    if not isinstance(found, dict) or found.get("format") != FORMAT:
        raise SpurlabError(f"{path} is not a spurlab diagnosis (use another --out, or --overwrite)")
    if found.get("schema_version") != SCHEMA_VERSION:
        raise SpurlabError(f"{path} has schema_version {found.get('schema_version')!r}, this spurlab writes "
                           f"{SCHEMA_VERSION} (use another --out, or --overwrite)")
    if found.get("request") != request:
        raise SpurlabError(f"--out {out_dir} holds the diagnosis of another run or other options "
                           "(use another --out, or --overwrite to replace it)")
    return "complete" if all((out_dir / name).is_file() for name in OUTPUTS) else "fresh"


def _plot(report: DiagnosisReport, path: Path, kind: str) -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    layers = report.layers
    x = list(range(1, report.n_layers + 1))
    fig, ax = plt.subplots(figsize=(6.4, 3.8), dpi=120)
    for model in MODELS:
        if kind == "entropy":
            for inp in ("clean", "injected"):
                color, style = STYLE[(model, inp)]
                ax.plot(x, _nan(layers[model][inp]["entropy"]), style, color=color, marker="o", ms=3,
                        label=f"{model}, {inp}")
        else:
            color, _ = STYLE[(model, "clean")]
            ax.plot(x, _nan(layers[model]["injected"]["mass_token"]), "-", color=color, marker="o", ms=3,
                    label=f"{model}: injected token")
            ax.plot(x, _nan(layers[model]["clean"]["mass_random_span"]), ":", color=color, marker="x", ms=3,
                    label=f"{model}: random span (clean)")
    ax.set_xlabel("layer")
    ax.set_xticks(x)
    if kind == "entropy":
        ax.set_ylabel("attention entropy, bits")
        title = "Attention entropy (mean over heads and real-token queries)"
    else:
        ax.set_ylabel("share of attention")
        ax.set_ylim(bottom=0)
        title = "Attention mass on the injected token vs a random span of the same length"
    ax.set_title(f"{title}\n{report.meta.get('name', '')}: token of class {report.token_class!r}, "
                 f"{len(report.rows)} test rows", fontsize=9)
    ax.legend(frameon=False, fontsize=7)
    fig.tight_layout()
    try:
        write_with(path, lambda handle: fig.savefig(handle, format="png"))
    finally:
        plt.close(fig)


def _nan(values: list[float | None]) -> list[float]:
    return [float("nan") if v is None else v for v in values]


def write_outputs(report: DiagnosisReport, out_dir: Path) -> list[Path]:
    """The figures and ``diagnose.json`` (last), staged and moved into ``out_dir`` together."""
    with staged_outputs(out_dir, last="diagnose.json") as staging:
        _plot(report, staging / "attention_entropy.png", "entropy")
        _plot(report, staging / "attention_mass.png", "mass")
        write_json(staging / "diagnose.json", report.to_dict())
    return [out_dir / name for name in OUTPUTS]
