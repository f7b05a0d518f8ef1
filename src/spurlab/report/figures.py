"""The paper's sweep figures, drawn from a results table (``spurlab.sweep.table``; one row per grid point).

- ``attack_vs_rank.png``: attack success rate and token share on the spurious test set of the training
  token's class vs LoRA rank (log2 axis); one line per poison proportion, one panel column per token
  proportion (0 = light SSTI, one token per row; > 0 = aggressive SSTI).
- ``clean_accuracy_vs_rank.png``: clean accuracy vs LoRA rank, same lines and panels.
- a generic line plot (``x``, ``y``, optional ``hue``).

Rows sharing a point (e.g. several seeds or target labels) are averaged; a band shows their min–max.
``figures.json`` (written last) lists every figure, the plotted values and the rows they came from.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from spurlab.atomic import finite_json, staged_outputs
from spurlab.errors import SpurlabError
from spurlab.report.intervals import bootstrap_interval
from spurlab.report.style import pyplot

RANK = "train.lora.r"
PROPORTION = "injection.proportion"
TOKEN_PROPORTION = "injection.token_proportion"
TARGET = "injection.target_label"
METHOD_COLUMNS = ("train.method", "train.mode")  # the training method (train.mode in older stores)
ATTACK = "attack_success"
SHARE = "token_share"
LIFT = "lift"  # token share with the token minus without it, on the same rows
PAPER_FILES = ("attack_vs_rank.png", "clean_accuracy_vs_rank.png")
LABELS = {RANK: "LoRA rank r", PROPORTION: "poisoned share of the target class",
          TOKEN_PROPORTION: "token proportion", ATTACK: "attack success rate",
          SHARE: "share of predictions = token's class", "clean.accuracy": "clean accuracy"}


def add_token_class_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """``attack_success``, ``token_share`` and ``lift`` of each row's spurious test set for its training token's class
    (``injection.target_label``); a row with one spurious set and no target label uses that set."""
    frame = frame.copy()
    sets = sorted({c.split(".", 1)[0] for c in frame.columns
                   if c.startswith("spurious:") and c.endswith(".attack_success_rate")})
    attack, share, lift = [], [], []
    for _, row in frame.iterrows():
        target = row.get(TARGET)
        name = f"spurious:{target}" if isinstance(target, str) and f"spurious:{target}" in sets else None
        if name is None and len(sets) == 1 and not isinstance(target, str):
            name = sets[0]
        attack.append(row.get(f"{name}.attack_success_rate", np.nan) if name else np.nan)
        share.append(row.get(f"{name}.token_share", np.nan) if name else np.nan)
        lift.append(row.get(f"{name}.lift", np.nan) if name else np.nan)
    frame[ATTACK] = pd.to_numeric(pd.Series(attack, index=frame.index), errors="coerce")
    frame[SHARE] = pd.to_numeric(pd.Series(share, index=frame.index), errors="coerce")
    frame[LIFT] = pd.to_numeric(pd.Series(lift, index=frame.index), errors="coerce")
    return frame


def line_data(frame: pd.DataFrame, x: str, y: str, hue: str | None = None, panel: str | None = None) -> pd.DataFrame:
    """What a line plot draws: one row per (panel, hue, x) with the mean, min and max of ``y``, a 95% bootstrap
    interval of the mean (rows that differ only in their seed), the number of table rows behind it and their
    keys. Rows where ``x`` or ``y`` is missing are left out."""
    missing = [c for c in (x, y, hue, panel) if c is not None and c not in frame.columns]
    if missing:
        raise SpurlabError(f"the results table has no column {missing[0]!r}")
    data = pd.DataFrame({"x": frame[x], "y": pd.to_numeric(frame[y], errors="coerce"),
                         "hue": frame[hue] if hue else "", "panel": frame[panel] if panel else "",
                         "key": frame["key"] if "key" in frame.columns else frame.index.astype(str)})
    data = data[data["x"].notna() & data["y"].notna()]
    for col in ("hue", "panel"):
        data[col] = data[col].where(data[col].notna(), "none")
    groups = data.groupby(["panel", "hue", "x"], sort=False, dropna=False)
    out = groups["y"].agg(y="mean", y_min="min", y_max="max", n="count").reset_index()
    out["keys"] = groups["key"].agg(list).to_numpy() if len(out) else []
    intervals = [bootstrap_interval(np.asarray(v, dtype=float)) for v in groups["y"].agg(list)] if len(out) else []
    out["ci_low"] = [np.nan if ci is None else ci[0] for ci in intervals]
    out["ci_high"] = [np.nan if ci is None else ci[1] for ci in intervals]
    order = sorted(range(len(out)), key=lambda i: tuple(_sort_key(out.at[i, c]) for c in ("panel", "hue", "x")))
    return out.iloc[order].reset_index(drop=True)


@dataclass
class Figure:
    file: str
    x: str
    ys: list[str]
    hue: str | None
    panel: str | None
    rows: pd.DataFrame
    title: str


def _panel_title(column: str | None, value: Any) -> str:
    if value == "none":
        return f"no {column}"
    if column == TOKEN_PROPORTION:
        return "light SSTI (1 token per row)" if float(value) == 0 else f"aggressive SSTI (token proportion {value:g})"
    return f"{column} = {value}" if column else ""


def _hue_label(column: str | None, value: Any) -> str:
    if column == PROPORTION and value != "none":
        return f"{float(value):.0%} poisoned"
    return f"{column} = {value}" if column else str(value)


def _draw(fig_spec: Figure, path: Path) -> list[dict[str, Any]]:
    plt = pyplot()
    from matplotlib.ticker import NullLocator

    per_y = {y: line_data(fig_spec.rows, fig_spec.x, y, fig_spec.hue, fig_spec.panel) for y in fig_spec.ys}
    panels = sorted({p for d in per_y.values() for p in d["panel"]}, key=_sort_key) or [""]
    hues = sorted({h for d in per_y.values() for h in d["hue"]}, key=_sort_key)
    numeric_x = pd.api.types.is_numeric_dtype(fig_spec.rows[fig_spec.x])
    categories = sorted({v for d in per_y.values() for v in d["x"]}, key=_sort_key)
    colors = plt.get_cmap("viridis")(np.linspace(0.0, 0.85, max(len(hues), 1)))
    fig, axes = plt.subplots(len(fig_spec.ys), len(panels), figsize=(4.2 * len(panels), 3.2 * len(fig_spec.ys)),
                             dpi=120, squeeze=False, sharex=True, sharey="row")
    series: list[dict[str, Any]] = []
    for i, y in enumerate(fig_spec.ys):
        for j, panel in enumerate(panels):
            ax = axes[i][j]
            for k, hue in enumerate(hues):
                d = per_y[y][(per_y[y]["panel"] == panel) & (per_y[y]["hue"] == hue)]
                if d.empty:
                    continue
                xs = d["x"].to_numpy(float) if numeric_x else np.array([categories.index(v) for v in d["x"]])
                label = _hue_label(fig_spec.hue, hue) if fig_spec.hue else None
                ax.plot(xs, d["y"], marker="o", color=colors[k], label=label)
                if (d["n"] > 1).any():  # seeds: the 95% bootstrap interval of the mean as a band
                    ax.fill_between(xs, d["ci_low"].fillna(d["y"]), d["ci_high"].fillna(d["y"]), color=colors[k],
                                    alpha=0.2, linewidth=0)
                series.append({"y": y, "panel": _plain(panel) if fig_spec.panel else None,
                               "hue": _plain(hue) if fig_spec.hue else None, "x": [_plain(v) for v in d["x"]],
                               "mean": [float(v) for v in d["y"]], "min": [float(v) for v in d["y_min"]],
                               "max": [float(v) for v in d["y_max"]], "n": [int(v) for v in d["n"]],
                               "ci_low": [None if pd.isna(v) else float(v) for v in d["ci_low"]],
                               "ci_high": [None if pd.isna(v) else float(v) for v in d["ci_high"]],
                               "keys": [list(map(str, ks)) for ks in d["keys"]]})
            if fig_spec.x == RANK and numeric_x:
                ax.set_xscale("log", base=2)
                ax.set_xticks([float(v) for v in categories], [f"{float(v):g}" for v in categories])
                ax.xaxis.set_minor_locator(NullLocator())
            if per_y[y]["y_min"].min() >= 0 and per_y[y]["y_max"].max() <= 1:
                ax.set_ylim(-0.03, 1.03)  # rates and accuracies: the whole scale, comparable across panels
            if not numeric_x:
                ax.set_xticks(range(len(categories)), [str(c) for c in categories])
            if i == 0 and fig_spec.panel:
                ax.set_title(_panel_title(fig_spec.panel, panel), fontsize=9)
            if i == len(fig_spec.ys) - 1:
                ax.set_xlabel(LABELS.get(fig_spec.x, fig_spec.x))
            if j == 0:
                ax.set_ylabel(LABELS.get(y, y), fontsize=9)
            ax.grid(alpha=0.3)
    if fig_spec.hue and hues:
        axes[0][-1].legend(frameon=False, fontsize=8)
    fig.suptitle(fig_spec.title, fontsize=10)
    fig.tight_layout()
    try:
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)
    return series


def _sort_key(value: Any) -> tuple[int, Any]:
    try:
        return (0, float(value))
    except (TypeError, ValueError):
        return (1, str(value))


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _complete(frame: pd.DataFrame) -> pd.DataFrame:
    if "status" in frame.columns:
        frame = frame[frame["status"] == "complete"]
    if frame.empty:
        raise SpurlabError("the results table has no complete rows to plot")
    return frame


def paper_figures(frame: pd.DataFrame) -> tuple[list[Figure], dict[str, str]]:
    """The rank figures that the table's columns allow, and why the others were skipped."""
    frame = _complete(frame)
    if RANK not in frame.columns:
        raise SpurlabError(f"the results table has no column {RANK!r} (LoRA rank): nothing to plot against; "
                           "use --x/--y for another plot")
    for column in METHOD_COLUMNS:  # train.lora.r means something for LoRA only
        if column in frame.columns:
            frame = frame[frame[column].fillna("lora") == "lora"]
        if frame.empty:
            raise SpurlabError("the results table has no LoRA rows (train.method = lora) to plot against rank")
    frame = add_token_class_columns(frame)
    hue = PROPORTION if PROPORTION in frame.columns and frame[PROPORTION].notna().any() else None
    panel = TOKEN_PROPORTION if TOKEN_PROPORTION in frame.columns and frame[TOKEN_PROPORTION].notna().any() else None
    figures, skipped = [], {}
    attack_rows = frame[frame[ATTACK].notna()]
    if attack_rows.empty:
        skipped[PAPER_FILES[0]] = "no row has a spurious test set of its training token's class"
    else:
        figures.append(Figure(PAPER_FILES[0], RANK, [ATTACK, SHARE], hue, panel, attack_rows,
                              "Spurious test set (token of the training class in every row) vs LoRA rank"))
    if "clean.accuracy" not in frame.columns or frame["clean.accuracy"].isna().all():
        skipped[PAPER_FILES[1]] = "no clean.accuracy column"
    else:
        figures.append(Figure(PAPER_FILES[1], RANK, ["clean.accuracy"], hue, panel, frame,
                              "Clean test set vs LoRA rank"))
    if not figures:
        raise SpurlabError("the results table has neither spurious-set nor clean.accuracy columns to plot")
    return figures, skipped


def custom_figure(frame: pd.DataFrame, x: str, y: str, hue: str | None = None) -> Figure:
    frame = _complete(frame)
    if y in (ATTACK, SHARE):
        frame = add_token_class_columns(frame)
    line_data(frame, x, y, hue)  # checks the columns
    if not pd.to_numeric(frame[y], errors="coerce").notna().any():
        raise SpurlabError(f"column {y!r} has no numeric values to plot")
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{y}_vs_{x}" + (f"_by_{hue}" if hue else ""))
    return Figure(f"{name}.png", x, [y], hue, None, frame, f"{y} vs {x}")


def draw_figures(frame: pd.DataFrame, out_dir: str | Path, *, x: str | None = None, y: str | None = None,
                 hue: str | None = None, source: str = "") -> dict[str, Any]:
    """Draw the paper's rank figures (or, with ``x`` and ``y``, one line plot) into ``out_dir``.

    Everything is staged and moved into place together, ``figures.json`` last; returns its content.
    """
    if (x is None) != (y is None):
        raise SpurlabError("--x and --y go together")
    if hue is not None and x is None:
        raise SpurlabError("--hue needs --x and --y")
    if x is not None and y is not None:
        figures, skipped = [custom_figure(frame, x, y, hue)], {}
    else:
        figures, skipped = paper_figures(frame)
    out_dir = Path(out_dir)
    stale = set(PAPER_FILES) | _previous_files(out_dir)
    entries = []
    with staged_outputs(out_dir, last="figures.json", stale=tuple(sorted(stale))) as staging:
        for f in figures:
            series = _draw(f, staging / f.file)
            entries.append({"file": f.file, "x": f.x, "y": f.ys, "hue": f.hue, "panel": f.panel,
                            "n_rows": len(f.rows), "rows": [str(k) for k in f.rows.get("key", f.rows.index)],
                            "series": series})
        summary = {"format": "spurlab.figures", "source": source, "figures": entries, "skipped": skipped}
        (staging / "figures.json").write_text(json.dumps(finite_json(summary), indent=2, sort_keys=True) + "\n",
                                              encoding="utf-8")
    return summary


def _previous_files(out_dir: Path) -> set[str]:
    try:
        previous = json.loads((out_dir / "figures.json").read_text(encoding="utf-8"))
        return {f["file"] for f in previous.get("figures", []) if "/" not in f["file"]}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return set()
