"""A diagnosis as a :class:`~spurlab.report.document.Report`: attention entropy and mass on the token, before
and after finetuning, what inserting the token does to predictions, and the two figures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from spurlab.report.document import Figure, Report, Section, Table

FIGURES = (("attention_entropy.png", "Attention entropy per layer"),
           ("attention_mass.png", "Attention mass on the token per layer"))


def diagnose_report(doc: dict[str, Any], folder: Path | None = None) -> Report:
    """The report of one diagnosis (``doc`` is the content of ``diagnose.json``; figures are read from
    ``folder`` when given)."""
    s = doc.get("summary", {})
    rows = []
    for model in ("base", "finetuned"):
        rows.append([model, s.get("entropy", {}).get(model, {}).get("clean"),
                     s.get("entropy", {}).get(model, {}).get("injected"), s.get("entropy_shift", {}).get(model),
                     s.get("mass_token", {}).get(model), s.get("mass_random_span", {}).get(model),
                     s.get("mass_ratio", {}).get(model), s.get("flip_share", {}).get(model)])
    headline = Table(["model", "entropy clean", "entropy injected", "entropy shift", "mass on token",
                      "mass on random span", "mass ratio", "flip share"], rows, key="headline", sortable=False,
                     caption="Attention entropy (bits) on clean and token-injected rows, attention mass on the "
                             "token against a random span of the same length, and the share of eligible rows whose "
                             "prediction flips to the token's class.")
    behaviour = [[model, key, b.get("n"), b.get("n_eligible"), b.get("n_flipped"), b.get("flip_share"),
                  b.get("token_share_clean"), b.get("token_share_injected")]
                 for model, sets in (doc.get("behaviour") or {}).items() for key, b in sets.items()]
    sections = [Section("Behaviour", "behaviour", tables=[Table(
        ["model", "test set", "rows", "eligible", "flipped", "flip share", "token share (clean)",
         "token share (injected)"], behaviour, key="behaviour")])]
    peak = s.get("peak_mass_gain_layer") or {}
    if peak:
        sections[0].paragraphs.append(f"Finetuning raised the attention mass on the token most in layer "
                                      f"{peak.get('layer')} (by {peak.get('gain', 0):.3g}).")
    if folder is not None:
        figures = [Figure.from_file(folder / name, title) for name, title in FIGURES if (folder / name).is_file()]
        if figures:
            sections.append(Section("Figures", "figures", figures=figures))
    provenance = {"token class": str(doc.get("token_class")), "rows": str((doc.get("request") or {}).get("max_rows",
                                                                                                         doc.get("rows"))),
                  "layers / heads": f"{doc.get('n_layers')} / {doc.get('n_heads')}", "seed": str(doc.get("seed")),
                  "run": str((doc.get("request") or {}).get("run_name"))}
    numbers = {f"{model}/{name}": float(v) for model in ("base", "finetuned")
               for name, v in (("entropy_shift", s.get("entropy_shift", {}).get(model)),
                               ("flip_share", s.get("flip_share", {}).get(model))) if v is not None}
    return Report(f"Diagnosis of {provenance['run']}", "diagnose", provenance, headline, sections, numbers)


__all__ = ["diagnose_report"]
