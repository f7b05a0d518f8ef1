"""A run's ``summary.md`` (predicted counts in the paper's Table 1 layout, then metrics) and
``confusion_matrix.png``, built from the metrics dict alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from spurlab.atomic import atomic_path, write_text
from spurlab.report.style import pyplot


def eval_set_keys(metrics: dict[str, Any]) -> list[str]:
    """The test-set keys of a metrics dict, clean first."""
    return [k for k in metrics if k == "clean" or k.startswith(("spurious:", "spurious-flip:"))]


def predicted_columns(metrics: dict[str, Any]) -> list[str]:
    """The classes predictions are counted in: the labels, plus ``(other)`` for a generative run's answers
    that are no class word."""
    return list(metrics["clean"]["predicted_counts"]) if "clean" in metrics else list(metrics["label_names"])


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def predicted_count_table(rows: list[tuple[str, dict[str, Any]]], label_names: list[str]) -> str:
    """Markdown table: one row per (name, test-set metrics), predicted counts per class + attack success."""
    head = "| model | " + " | ".join(f"pred. {n}" for n in label_names) + " | accuracy | attack success |"
    lines = [head, "|" + "---|" * (len(label_names) + 3)]
    for name, m in rows:
        counts = " | ".join(str(m["predicted_counts"][n]) for n in label_names)
        lines.append(f"| {name} | {counts} | {_fmt(m['accuracy'])} | {_fmt(m.get('attack_success_rate'))} |")
    return "\n".join(lines)


def summary_markdown(metrics: dict[str, Any]) -> str:
    names = predicted_columns(metrics)
    meta = metrics["meta"]
    base = metrics.get("base") or {}
    out = [f"# Run `{metrics['name']}`", "",
           f"Model `{meta['model']}` ({meta['head']}, {meta['mode']}), {meta['n_train']} training rows, "
           f"{meta['n_test']} test rows, seed {meta['seed']}, {meta['precision']} on {meta['device']}; "
           f"training {meta['train']['steps']} steps at {meta['train_examples_per_second']:.1f} examples/s.", ""]
    if meta.get("injection"):
        out += [f"Training injection: {meta['injection']['n_modified']} rows modified "
                f"({meta['injection']['modified_per_label']}).", ""]
    else:
        out += ["Training data: clean (no injection).", ""]
    for key in (k for k in eval_set_keys(metrics) if k.startswith("spurious:")):
        cls = key.split(":", 1)[1]
        out += [f"## Predicted counts on `{key}` (token of class `{cls}` in every test row)", ""]
        rows = []
        if key in base:
            rows.append(("before finetuning (zero-shot)", base[key]))
        rows.append(("finetuned", metrics[key]))
        out += [predicted_count_table(rows, names), ""]
    out += ["## Metrics", "", "| test set | model | n | accuracy | balanced acc. | macro F1 | weighted F1 | "
            "attack success |", "|---|---|---|---|---|---|---|---|"]
    for key in eval_set_keys(metrics):
        for label, m in (("finetuned", metrics[key]), ("before finetuning", base.get(key))):
            if m is None:
                continue
            out.append(f"| {key} | {label} | {m['n']} | {_fmt(m['accuracy'])} | {_fmt(m['balanced_accuracy'])} | "
                       f"{_fmt(m['macro_f1'])} | {_fmt(m['weighted_f1'])} | {_fmt(m.get('attack_success_rate'))} |")
    for label, defense in (metrics.get("test_time_defenses") or {}).items():
        out += ["", f"## Test-time defense `{label}`", "",
                f"Threshold set on {defense['n_calibration']} clean test rows (FRR target {defense['params']['frr']}); "
                f"measured on the other {defense['n_evaluated']} in {defense['seconds']:.1f} s. Clean accuracy "
                f"before: {_fmt(defense['cacc_before'])}.", "",
                "| triggered set | FRR | clean accuracy after | FAR | attack success before | after |",
                "|---|---|---|---|---|---|"]
        out += [f"| {key} | {_fmt(v['frr'])} | {_fmt(v['cacc_after'])} | {_fmt(v['far'])} | {_fmt(v['asr_before'])} "
                f"| {_fmt(v['asr_after'])} |" for key, v in defense["spurious"].items()]
    before = ("the pretrained causal LM answering the same prompts" if meta.get("task") == "sft"
              else "the pretrained model with its untrained classification head")
    out += ["", f"'before finetuning' is {before}, not the paper's base row (a model finetuned on clean data).", ""]
    return "\n".join(out)


def write_summary(path: str | Path, metrics: dict[str, Any]) -> None:
    write_text(path, summary_markdown(metrics))


def write_confusion_png(path: str | Path, metrics: dict[str, Any]) -> None:
    """One confusion-matrix panel per test set (finetuned model)."""
    plt = pyplot()
    import numpy as np

    names = predicted_columns(metrics)
    keys = eval_set_keys(metrics)
    fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys) + 0.6, 3.4), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        cm = np.asarray(metrics[key]["confusion_matrix"])
        ax.imshow(cm, cmap="Blues")
        for (i, j), v in np.ndenumerate(cm):
            ax.text(j, i, str(v), ha="center", va="center",
                    color="white" if v > cm.max() / 2 else "black", fontsize=8)
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(len(names)), names, fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(key, fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
