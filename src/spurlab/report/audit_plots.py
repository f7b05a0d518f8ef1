"""The figure of ``spurlab audit``: per class, the top candidates' flip rates against random strings' and the
reference's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from spurlab.atomic import write_with
from spurlab.report.style import pyplot


def plot_audit(doc: dict[str, Any], path: Path, top: int = 8) -> None:
    """Horizontal bars from an ``audit.json`` document: for each class, its ``top`` candidates' flip rate (model),
    with the matched random strings' and the reference's flip rates marked."""
    plt = pyplot()
    classes = list(doc["classes"])
    fig, axes = plt.subplots(1, len(classes), figsize=(4.2 * len(classes), 0.45 * top + 1.6), dpi=120,
                             squeeze=False)
    for ax, name in zip(axes[0], classes, strict=True):
        rows = doc["classes"][name][:top][::-1]
        labels = [f"{r['name']} ({r['family']})" for r in rows]
        y = list(range(len(rows)))
        ax.barh(y, [r["flip_rate"] or 0 for r in rows], color="#d1495b", label="model")
        ax.scatter([r["control_flip_rate"] or 0 for r in rows], y, marker="|", s=160, color="#333333",
                   label="random strings", zorder=3)
        ax.scatter([r["reference_flip_rate"] or 0 for r in rows], y, marker="x", color="#8aa4c8",
                   label="reference", zorder=3)
        ax.set_yticks(y)
        ax.set_yticklabels(labels, fontsize=8)
        ax.set_xlim(0, 1)
        ax.set_xlabel(f"share of other rows moved to {name!r}")
        ax.axvline(0, color="#999999", lw=0.5)
    axes[0][0].legend(loc="lower right", fontsize=7)
    fig.suptitle(doc["verdict"]["line"][:110], fontsize=9)
    fig.tight_layout()
    write_with(path, lambda handle: fig.savefig(handle, format="png"))
    plt.close(fig)
