"""The paper's diagnostic figure: a histogram of H(y|token) over tokens seen in more than 50 rows.

Clean data piles up near the maximum entropy (tokens say little about the label); injected tokens sit near 0.
Tokens the scan flagged are stacked in a second colour.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from spurlab.atomic import write_with
from spurlab.report.style import pyplot


def plot_entropy_histogram(entropies: np.ndarray, flagged: np.ndarray, max_entropy: float, path: str | Path,
                           *, title: str = "", min_support: int = 50, bins: int = 20) -> Path:
    """Write the histogram as a PNG (atomically) and return its path."""
    plt = pyplot()

    edges = np.linspace(0.0, max(max_entropy, 1e-9), bins + 1)
    all_counts = np.histogram(np.clip(entropies, 0, edges[-1]), bins=edges)[0]
    flag_counts = np.histogram(np.clip(flagged, 0, edges[-1]), bins=edges)[0]
    fig, ax = plt.subplots(figsize=(6.4, 3.8), dpi=120)
    width = edges[1] - edges[0]
    ax.bar(edges[:-1], all_counts - flag_counts, width=width, align="edge", color="#8aa4c8",
           edgecolor="white", label="not flagged")
    ax.bar(edges[:-1], flag_counts, width=width, align="edge", bottom=all_counts - flag_counts,
           color="#d1495b", edgecolor="white", label="flagged by scan")
    ax.set_xlabel("H(y | token), bits")
    ax.set_ylabel("tokens")
    ax.set_xlim(0, edges[-1])
    if all_counts.max(initial=0) > 0:
        ax.set_yscale("symlog", linthresh=1)
    ax.set_title(title or f"Label entropy of tokens in > {min_support} rows (n = {len(entropies)})",
                 fontsize=10)
    ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    path = Path(path)
    try:
        write_with(path, lambda handle: fig.savefig(handle, format="png"))
    finally:
        plt.close(fig)
    return path
