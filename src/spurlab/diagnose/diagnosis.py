"""Model diagnostics after training: does a finetuned model rely on the spurious token, and where?

``diagnose_run(run_dir)`` compares the model before finetuning (``base``: the pretrained backbone with the
run's seeded random head) with the finetuned one, on a seeded sample of the run's clean test rows and on the
same rows with the token injected exactly as the run's spurious test set:

- per layer, the Shannon entropy (bits) of the attention distributions (mean over heads and real-token
  queries; padding masked), clean vs injected: the paper's proposed diagnostic;
- per layer, the attention mass that real-token queries put on the injected token's word pieces, against
  the mass a random span of the same number of word pieces gets in the clean text (the baseline);
- behaviour: the share of predictions that flip to the token's class when the token is inserted.

Outputs (``docs/diagnose.md``): ``diagnose.json``, ``attention_entropy.png``, ``attention_mass.png``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spurlab.diagnose.run_inputs import InjectedSet, RunInputs, default_token_class, injected_sets, load_model
from spurlab.diagnose.run_inputs import load_run as load_run
from spurlab.errors import SpurlabError
from spurlab.evaluate import attention as att
from spurlab.evaluate.attention import attention_stats, encode_with_offsets, use_eager_attention

FORMAT = "spurlab.diagnose"
SCHEMA_VERSION = 1
MODELS = ("base", "finetuned")
OUTPUTS = ("diagnose.json", "attention_entropy.png", "attention_mass.png")


@dataclass
class DiagnosisReport:
    """Per-layer attention statistics per (model, input), behaviour per token class, a summary.

    ``per_row[model][input][metric]`` is an ``(n_rows, n_layers)`` array (NaN where undefined: a row whose
    token was truncated away has no token mass); ``layers`` holds their per-layer means over rows.
    """

    run_dir: Path
    token_class: str
    label_names: list[str]
    rows: list[int]
    n_test: int
    seed: int
    n_layers: int
    n_heads: int
    causal: bool
    injection: dict[str, Any]
    per_row: dict[str, dict[str, dict[str, np.ndarray]]]
    behaviour: dict[str, dict[str, dict[str, Any]]]
    token_lengths: list[int]
    meta: dict[str, Any] = field(default_factory=dict)
    request: dict[str, Any] = field(default_factory=dict)

    @property
    def layers(self) -> dict[str, dict[str, dict[str, list[float]]]]:
        return {m: {i: {k: _nanmean_rows(v) for k, v in metrics.items()} for i, metrics in inputs.items()}
                for m, inputs in self.per_row.items()}

    def summary(self) -> dict[str, Any]:
        """Layer-averaged numbers: entropy per (model, input) and its shift, token mass vs baseline, flips."""
        layers = self.layers
        out: dict[str, Any] = {"entropy": {}, "entropy_shift": {}, "mass_token": {}, "mass_random_span": {},
                               "mass_ratio": {}, "flip_share": {}}
        for m in MODELS:
            ent = {i: _mean(layers[m][i]["entropy"]) for i in ("clean", "injected")}
            out["entropy"][m] = ent
            out["entropy_shift"][m] = _sub(ent["injected"], ent["clean"])
            token, rand = _mean(layers[m]["injected"]["mass_token"]), _mean(layers[m]["clean"]["mass_random_span"])
            out["mass_token"][m], out["mass_random_span"][m] = token, rand
            out["mass_ratio"][m] = None if token is None or not rand else token / rand
            out["flip_share"][m] = self.behaviour[m][f"spurious:{self.token_class}"]["flip_share"]
        out["entropy_shift_finetuning"] = _sub(out["entropy_shift"]["finetuned"], out["entropy_shift"]["base"])
        gain = np.asarray(layers["finetuned"]["injected"]["mass_token"], dtype=float) - np.asarray(
            layers["base"]["injected"]["mass_token"], dtype=float)
        if np.isfinite(gain).any():
            peak = int(np.nanargmax(gain))
            out["peak_mass_gain_layer"] = {"layer": peak + 1, "gain": float(gain[peak])}
        else:
            out["peak_mass_gain_layer"] = None
        return out

    def to_dict(self) -> dict[str, Any]:
        visible = int(np.isfinite(self.per_row["base"]["injected"]["mass_token"][:, 0]).sum()) if self.rows else 0
        return {
            "format": FORMAT,
            "schema_version": SCHEMA_VERSION,
            "status": "complete",
            "request": self.request,
            "run_dir": str(self.run_dir),
            "label_names": self.label_names,
            "token_class": self.token_class,
            "injection": self.injection,
            "seed": self.seed,
            "rows": {"n": len(self.rows), "n_test": self.n_test, "indices": self.rows,
                     "n_token_visible": visible,
                     "token_pieces": _describe(self.token_lengths)},
            "n_layers": self.n_layers,
            "n_heads": self.n_heads,
            "causal": self.causal,
            "layers": self.layers,
            "behaviour": self.behaviour,
            "summary": self.summary(),
            "meta": self.meta,
        }


def _nanmean_rows(values: np.ndarray) -> list[float | None]:
    out = []
    for col in values.T:
        finite = col[np.isfinite(col)]
        out.append(float(finite.mean()) if len(finite) else None)
    return out


def _mean(values: list[float | None]) -> float | None:
    finite = [v for v in values if v is not None]
    return float(np.mean(finite)) if finite else None


def _sub(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _describe(values: list[int]) -> dict[str, float | int]:
    arr = np.asarray(values, dtype=float)
    return {"mean": float(arr.mean()) if len(arr) else 0.0, "min": int(arr.min()) if len(arr) else 0,
            "max": int(arr.max()) if len(arr) else 0}


def select_rows(n: int, max_rows: int, seed: int) -> list[int]:
    """A seeded sample of ``max_rows`` test rows (all when ``max_rows`` is 0 or at least ``n``), sorted."""
    if max_rows <= 0 or max_rows >= n:
        return list(range(n))
    return sorted(int(i) for i in np.random.default_rng(seed).choice(n, size=max_rows, replace=False))


def token_positions(records: list[dict[str, Any] | None], offsets: list[list[tuple[int, int]]]) -> list[list[int]]:
    """Per row: the positions of the word pieces of the strings its manifest record says were inserted."""
    out = []
    for record, row_offsets in zip(records, offsets, strict=True):
        spans = record.get("offsets", []) if record else []
        out.append(att.token_positions(row_offsets, spans))
    return out


def random_spans(offsets: list[list[tuple[int, int]]], lengths: list[int], seed: int) -> list[list[int]]:
    """Per row: a seeded random run of ``lengths[i]`` consecutive non-special word pieces of the clean text."""
    rng = np.random.default_rng(seed)
    out = []
    for row_offsets, length in zip(offsets, lengths, strict=True):
        candidates = [i for i, (s, e) in enumerate(row_offsets) if e > s]
        out.append(att.random_span(candidates, length, rng))
    return out


def flip_stats(clean: np.ndarray, injected: np.ndarray, cls: int) -> dict[str, Any]:
    """How predictions move to class ``cls`` when the token is inserted (same rows, clean vs injected)."""
    eligible = clean != cls
    flipped = eligible & (injected == cls)
    n = len(clean)
    return {
        "n": int(n),
        "n_eligible": int(eligible.sum()),  # rows not already predicted as the token's class
        "n_flipped": int(flipped.sum()),
        "flip_share": float(flipped.sum() / eligible.sum()) if eligible.any() else None,
        "changed_share": float((clean != injected).mean()) if n else None,
        "token_share_clean": float((clean == cls).mean()) if n else None,
        "token_share_injected": float((injected == cls).mean()) if n else None,
    }


# -- the whole diagnosis --------------------------------------------------------------------------------------

@dataclass
class _Inputs:
    """The sampled rows, encoded clean and with the token, and where the token and the baseline spans are."""

    rows: list[int]
    clean_enc: Any
    inj_enc: Any
    token_pos: list[list[int]]
    baseline: list[list[int]]
    full_lengths: list[int]
    other_encs: dict[str, Any]


def _encode_inputs(run: RunInputs, sets: dict[str, InjectedSet], target: InjectedSet, rows: list[int],
                   seed: int) -> _Inputs:
    from spurlab.models.tokenizer import quiet_transformers
    from spurlab.train.batching import encode

    max_length = run.cfg.train.max_length
    tok = run.tokenizer
    test_texts = run.splits.test.texts
    clean_enc, clean_offsets = encode_with_offsets(tok, [test_texts[i] for i in rows], max_length)
    inj_texts = [target.texts[i] for i in rows]
    inj_enc, inj_offsets = encode_with_offsets(tok, inj_texts, max_length)
    records = [target.records.get(i) for i in rows]
    token_pos = token_positions(records, inj_offsets)
    # the baseline span has as many word pieces as the whole token has in that row (even where truncation cut it)
    with quiet_transformers():  # no "longer than the maximum" warning: these ids never reach the model
        untruncated = tok(inj_texts, return_offsets_mapping=True)["offset_mapping"] if rows else []
    full_lengths = [len(p) for p in token_positions(records, [[tuple(o) for o in r] for r in untruncated])]
    baseline = random_spans(clean_offsets, full_lengths, seed)
    other_encs = {c: encode(tok, [s.texts[i] for i in rows], max_length) for c, s in sets.items()}
    return _Inputs(rows, clean_enc, inj_enc, token_pos, baseline, full_lengths, other_encs)


def _diagnose_model(run: RunInputs, name: str, inputs: _Inputs, sets: dict[str, InjectedSet], dev: Any,
                    precision: str, batch_size: int, say: Callable[[str], None]
                    ) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, dict[str, Any]], bool, int]:
    """One model's flips per token class and attention statistics, clean and injected."""
    from spurlab.evaluate.predict import predict

    names = run.splits.label_names
    bs = run.cfg.evaluation.batch_size
    say(f"{name}: loading the model ({run.cfg.model.name}{', adapter/' if name == 'finetuned' else ''})")
    model, causal = load_model(run, name)
    say(f"{name}: predicting {len(inputs.rows)} clean and injected rows")
    clean_pred = predict(model, inputs.clean_enc, dev, precision, bs)  # default attention, as in the run
    cache: dict[int, np.ndarray] = {}
    behaviour: dict[str, dict[str, Any]] = {}
    for c, enc in inputs.other_encs.items():
        key = id(sets[c].texts)
        if key not in cache:
            cache[key] = predict(model, enc, dev, precision, bs)
        behaviour[f"spurious:{c}"] = flip_stats(clean_pred, cache[key], names.index(c))
    say(f"{name}: attention on clean and injected rows (eager attention)")
    use_eager_attention(model)
    clean_stats, n_heads = attention_stats(model, inputs.clean_enc, {"random_span": inputs.baseline}, causal, dev,
                                           precision, batch_size)
    inj_stats, _ = attention_stats(model, inputs.inj_enc, {"token": inputs.token_pos}, causal, dev, precision,
                                   batch_size)
    return {"clean": clean_stats, "injected": inj_stats}, behaviour, causal, n_heads


def diagnose_run(run_dir: str | Path, *, max_rows: int = 200, seed: int = 0, token_class: str | None = None,
                 batch_size: int = 16, device: str = "auto", run: RunInputs | None = None,
                 log: Callable[[str], None] | None = None) -> DiagnosisReport:
    """Diagnose a finished run folder (see the module docstring); nothing is written.

    ``max_rows`` test rows (0 = all) are drawn with ``seed``, which also places the random baseline spans.
    ``run`` is a :func:`load_run` result to reuse (the CLI checks the folder before deciding anything).
    """
    import transformers

    from spurlab import __version__
    from spurlab.precision import resolve_precision
    from spurlab.runtime import resolve_device

    say = log or (lambda _msg: None)
    t0 = time.perf_counter()
    run = run if run is not None else load_run(run_dir)
    cls = token_class if token_class is not None else default_token_class(run)
    if cls not in run.token_classes:
        raise SpurlabError(f"--token-class {cls!r}: the run has no spurious test set for it "
                           f"(it has: {', '.join(run.token_classes)})")
    if batch_size < 1:
        raise SpurlabError(f"--batch-size must be at least 1, got {batch_size}")
    rows = select_rows(len(run.splits.test), max_rows, seed)
    sets = injected_sets(run)
    target: InjectedSet = sets[cls]
    inputs = _encode_inputs(run, sets, target, rows, seed)
    dev = resolve_device(device)
    precision = resolve_precision(run.cfg.train.precision, dev)
    causal, n_heads = False, 0
    per_row: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    behaviour: dict[str, dict[str, dict[str, Any]]] = {}
    for name in MODELS:
        per_row[name], behaviour[name], causal, n_heads = _diagnose_model(run, name, inputs, sets, dev, precision,
                                                                          batch_size, say)
    n_layers = per_row["base"]["clean"]["entropy"].shape[1] if rows else 0
    meta = {"spurlab_version": __version__, "torch_version": torch.__version__,
            "transformers_version": transformers.__version__, "device": str(dev), "precision": precision,
            "attention": "eager", "threads": torch.get_num_threads(), "max_length": run.cfg.train.max_length,
            "model": run.cfg.model.name, "mode": run.cfg.train.mode, "name": run.cfg.name,
            "trained_injection": run.metrics.get("meta", {}).get("injection"),
            "seconds": round(time.perf_counter() - t0, 2)}
    return DiagnosisReport(
        run_dir=Path(run_dir), token_class=cls, label_names=run.splits.label_names, rows=rows,
        n_test=len(run.splits.test), seed=seed, n_layers=n_layers, n_heads=n_heads, causal=causal,
        injection=target.spec, per_row=per_row, behaviour=behaviour, token_lengths=inputs.full_lengths, meta=meta)
