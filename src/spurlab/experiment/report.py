"""A run folder as a :class:`~spurlab.report.document.Report`: provenance, the paper's Table 1 layout (predicted
counts with and without the token), every metric with a 95% Wilson interval, the figures, the injection."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from spurlab.errors import SpurlabError
from spurlab.experiment.run_folder import is_complete, read_metrics
from spurlab.outputs import read_json_object
from spurlab.report.document import Figure, Report, Section, Table
from spurlab.report.intervals import accuracy_interval, attack_interval, fmt_interval
from spurlab.report.run_summary import eval_set_keys, predicted_columns


def headline_table(metrics: dict[str, Any]) -> Table:
    """Predicted counts per class on every spurious test set, before and after finetuning, with accuracy and
    attack success (the paper's Table 1 layout)."""
    names = predicted_columns(metrics)
    base = metrics.get("base") or {}
    rows = []
    for key in eval_set_keys(metrics):
        for model, m in (("before finetuning", base.get(key)), ("finetuned", metrics.get(key))):
            if not m:
                continue
            asr = m.get("attack_success_rate")
            rows.append([key, model, *[m["predicted_counts"][n] for n in names], m["n"], m["accuracy"],
                         fmt_interval(accuracy_interval(m)), asr, fmt_interval(attack_interval(m, names))])
    return Table(["test set", "model", *[f"pred. {n}" for n in names], "n", "accuracy", "95% CI",
                  "attack success", "95% CI"], rows, key="headline",
                 caption="Rows predicted as each class; 'spurious:<class>' puts that class's token into every "
                         "test row. Intervals: Wilson, 95%.")


def headline_numbers(metrics: dict[str, Any]) -> dict[str, float]:
    """The numbers the headline shows, by name (``finetuned/clean/accuracy``, ...)."""
    out: dict[str, float] = {}
    for model, section in (("finetuned", metrics), ("base", metrics.get("base") or {})):
        for key in eval_set_keys(metrics):
            m = section.get(key)
            if not m:
                continue
            out[f"{model}/{key}/accuracy"] = m["accuracy"]
            if m.get("attack_success_rate") is not None:
                out[f"{model}/{key}/attack_success_rate"] = m["attack_success_rate"]
    return out


def _metrics_table(metrics: dict[str, Any]) -> Table:
    base = metrics.get("base") or {}
    rows = []
    for key in eval_set_keys(metrics):
        for model, m in (("finetuned", metrics.get(key)), ("before finetuning", base.get(key))):
            if m:
                rows.append([key, model, m["n"], m["accuracy"], m["balanced_accuracy"], m["macro_f1"],
                             m["weighted_f1"], m.get("attack_success_rate")])
    return Table(["test set", "model", "n", "accuracy", "balanced acc.", "macro F1", "weighted F1",
                  "attack success"], rows, key="metrics")


def _per_class_table(metrics: dict[str, Any]) -> Table:
    rows = []
    for key in eval_set_keys(metrics):
        for cls, m in metrics[key]["per_class"].items():
            rows.append([key, cls, m["support"], m["precision"], m["recall"], m["f1"]])
    return Table(["test set", "class", "support", "precision", "recall", "F1"], rows, key="per-class",
                 caption="Finetuned model.")


def _machine_line(machine: dict[str, Any]) -> str:
    """CPU, cores, OS name and Python (the full platform string stays in metrics.json)."""
    if not machine:
        return "not recorded"
    os_name = str(machine.get("platform", "")).split("-", 1)[0]
    return f"{machine.get('cpu')}, {machine.get('cores')} cores, {os_name}, Python {machine.get('python')}"


def run_report(run_dir: str | Path) -> Report:
    """The report of a finished run folder (one line when it is not one)."""
    run_dir = Path(run_dir)
    if not is_complete(run_dir):
        raise SpurlabError(f"{run_dir}: not a finished spurlab run folder (no DONE and complete metrics.json)")
    metrics = read_metrics(run_dir)
    meta = metrics.get("meta", {})
    status = read_json_object(run_dir / "status.json") or {}
    config_text = (run_dir / "config.yaml").read_text(encoding="utf-8") if (run_dir / "config.yaml").is_file() else ""
    config = yaml.safe_load(config_text) if config_text else {}
    machine = meta.get("machine") or {}
    provenance = {
        "run": str(metrics.get("name")),
        "spurlab": str(meta.get("spurlab_version")), "torch": str(meta.get("torch_version")),
        "model": f"{meta.get('model')} ({meta.get('model_type')}, {meta.get('head')})",
        "training": f"{meta.get('mode')}, {meta.get('precision')} on {meta.get('device')}, seed {meta.get('seed')}",
        "data": str((config.get("data") or {}).get("spec")),
        "data sha256": str(status.get("data_sha256")),
        "rows": f"{meta.get('n_train')} train, {meta.get('n_test')} test",
        "machine": _machine_line(machine),
        "started / finished": f"{meta.get('started')} / {meta.get('finished')}",
    }
    sections = [Section("Metrics", "metrics", tables=[_metrics_table(metrics), _per_class_table(metrics)])]
    figures = [Figure.from_file(run_dir / name, title)
               for name, title in (("confusion_matrix.png", "Confusion matrices (finetuned)"),)
               if (run_dir / name).is_file()]
    if figures:
        sections.append(Section("Figures", "figures", figures=figures))
    injection = read_json_object(run_dir / "injection" / "summary.json")
    if injection:
        cfg = injection.get("config", {})
        sections.append(Section("Injection", "injection", paragraphs=[
            f"{injection.get('n_modified')} of {injection.get('n_rows')} training rows modified "
            f"({injection.get('modified_per_label')}); source {cfg.get('source')!r}, proportion "
            f"{cfg.get('proportion')}, location {cfg.get('location')}, seed {cfg.get('seed')}."],
            links=[("manifest of every change (injection/manifest.jsonl)", "injection/manifest.jsonl"),
                   ("injection summary (injection/summary.json)", "injection/summary.json")]))
    else:
        sections.append(Section("Injection", "injection", paragraphs=["Clean training data (no injection)."]))
    defense = read_json_object(run_dir / "defense" / "summary.json")
    if defense:
        sections.append(Section("Defense", "defense", paragraphs=[
            f"Defense {defense.get('defense') or defense.get('name')!s}: {defense.get('n_modified')} rows changed."],
            links=[("defense manifest (defense/manifest.jsonl)", "defense/manifest.jsonl")]))
    sections.append(Section("Config", "config", code=config_text or "(no config.yaml)",
                            links=[("config.yaml", "config.yaml"), ("metrics.json", "metrics.json"),
                                   ("summary.md", "summary.md")]))
    return Report(f"Run {metrics.get('name')}", "run", provenance, headline_table(metrics), sections,
                  headline_numbers(metrics))


__all__ = ["headline_numbers", "headline_table", "run_report"]
