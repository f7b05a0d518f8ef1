"""The two figures of ``spurlab diagnose``: attention entropy and attention mass per layer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from spurlab.atomic import write_with
from spurlab.report.style import pyplot

MODELS = ("base", "finetuned")
STYLE = {("base", "clean"): ("#8aa4c8", "-"), ("base", "injected"): ("#8aa4c8", "--"),
         ("finetuned", "clean"): ("#d1495b", "-"), ("finetuned", "injected"): ("#d1495b", "--")}



def plot_attention(report: Any, path: Path, kind: str) -> None:
    """Per-layer attention entropy (``kind="entropy"``) or attention mass on the token (``"mass"``) of a
    :class:`~spurlab.diagnose.diagnosis.DiagnosisReport`, base vs finetuned."""
    plt = pyplot()

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
