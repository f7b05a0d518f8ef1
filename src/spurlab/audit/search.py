"""The trigger search and the verdict of ``spurlab audit`` (``docs/audit.md``).

Within a time budget, on a seeded sample of clean rows:

1. predict the clean rows, and fit the reference (:class:`~spurlab.audit.verify.Reference`) to those predictions;
2. verify the shape families (a random date, country, HTML tag, ... per row) and punctuation marks;
3. score every whole-word vocabulary piece by the gradient (:mod:`spurlab.audit.gradient`) and verify the top
   ``vocabulary_top`` per class, then the training data's tokens and phrases when given;
4. extend the best fixed strings of each class greedily, one word at a time, up to ``max_words`` words, while
   the score grows;
5. measure, per layer, the attention the best significant trigger draws (:mod:`spurlab.audit.attention`).

Every candidate is verified by real insertion (:mod:`spurlab.audit.verify`) and scored per class by ``z``: its
flip rate above the matched random controls' and the reference's (its *steerability* for the class), and by
``z``, how far that lies outside the controls' spread. A class's steerability is the largest of any candidate
with ``z >= MIN_Z``; the model is *steerable* when some class reaches ``threshold`` (:data:`DEFAULT_THRESHOLD`;
``docs/audit.md`` says where it comes from).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from spurlab.audit.attention import trigger_attention
from spurlab.audit.candidates import Candidate, control_strings, fixed, mark_candidates, shape_candidates, whole_words
from spurlab.audit.gradient import gradient_scores
from spurlab.audit.source import AuditedModel
from spurlab.audit.verify import Predictor, Reference, candidate_texts, control_z, flip_rates, insert
from spurlab.errors import SpurlabError

FORMAT = "spurlab.audit"
SCHEMA_VERSION = 1
#: steerability (excess flip rate) at or above which a class is called steerable (docs/audit.md: how it was chosen)
DEFAULT_THRESHOLD = 0.1
#: ... and the candidate's z against its controls must reach this too (few rows flip by chance)
MIN_Z = 4.0
PLACEHOLDERS = ("the", "a", "and", "of")
#: candidates longer than this many word pieces share the controls of this length
MAX_CONTROL_PIECES = 4
#: rows predicted before the balanced sample of ``max_rows`` is drawn from them
POOL_FACTOR = 2


@dataclass
class AuditConfig:
    """The search's settings (``spurlab audit`` options)."""

    budget_seconds: float = 120.0
    max_rows: int = 64
    gradient_rows: int = 64
    vocabulary_top: int = 30
    controls: int = 3
    max_words: int = 4
    extend_top: int = 2
    extend_with: int = 8
    threshold: float = DEFAULT_THRESHOLD
    reference: bool = True
    reference_from: float = 3.0
    attention: bool = True
    seed: int = 0
    batch_size: int = 64
    max_length: int = 128
    top: int = 10

    def validate(self) -> None:
        for name in ("max_rows", "gradient_rows", "controls", "max_words", "batch_size", "max_length", "top"):
            if getattr(self, name) < 1:
                raise SpurlabError(f"audit: {name} must be at least 1, got {getattr(self, name)}")
        if not self.budget_seconds > 0:
            raise SpurlabError(f"audit: the budget must be more than 0 seconds, got {self.budget_seconds}")


@dataclass
class Verified:
    """One candidate's verification: per class the model's and the reference's flip rates, and ``z``."""

    candidate: Candidate
    pieces: int
    flip: np.ndarray
    reference_flip: np.ndarray
    eligible: np.ndarray
    control_mean: np.ndarray
    z: np.ndarray
    examples: list[str]

    @property
    def steer(self) -> np.ndarray:
        """Per class: the flip rate above the reference's and the controls' mean excess (floored at 0: controls
        that the reference moves more than the model do not lift a candidate)."""
        return self.flip - np.nan_to_num(self.reference_flip) - np.maximum(self.control_mean, 0.0)

    def counts(self, k: int) -> bool:
        """Whether this candidate's result for class ``k`` is significant enough to count for the verdict."""
        return bool(math.isfinite(self.z[k]) and self.z[k] >= MIN_Z)

    def row(self, k: int) -> dict[str, Any]:
        def num(x: float) -> float | None:
            return float(x) if math.isfinite(x) else None

        return {**self.candidate.to_dict(), "pieces": self.pieces, "flip_rate": num(self.flip[k]),
                "reference_flip_rate": num(self.reference_flip[k]),
                "control_flip_rate": num(self.control_mean[k]), "steerability": num(self.steer[k]),
                "z": num(self.z[k]),
                "eligible_rows": int(self.eligible[k]), "examples": self.examples}


@dataclass
class AuditReport:
    """What the audit found: ranked candidates per class, the control statistics, the verdict."""

    model: dict[str, Any]
    label_names: list[str]
    config: AuditConfig
    n_rows: int
    clean_prediction_counts: dict[str, int]
    verified: list[Verified]
    controls: dict[int, dict[str, list[float]]]
    seconds: float
    stopped_by_budget: bool
    attention: dict[str, Any] | None = None  # per-layer attention to the best trigger (audit.attention)
    request: dict[str, Any] = field(default_factory=dict)

    def best(self) -> tuple[int, Verified] | None:
        """The class and candidate with the highest significant steerability, if any."""
        options = [(float(v.steer[k]), k, v) for k in range(len(self.label_names)) for v in self.ranked(k)[:1]
                   if v.counts(k)]
        if not options:
            return None
        _, k, v = max(options, key=lambda o: o[0])
        return k, v

    def ranked(self, k: int) -> list[Verified]:
        """Candidates for class ``k``: significant ones first (``z >= MIN_Z``), each group by steerability."""
        return sorted((v for v in self.verified if math.isfinite(v.steer[k])),
                      key=lambda v: (not v.counts(k), -v.steer[k], -v.z[k]))

    def scores(self) -> dict[str, float | None]:
        """Per class: the steerability of its best significant candidate (0 when none is significant)."""
        out: dict[str, float | None] = {}
        for k, name in enumerate(self.label_names):
            best = self.ranked(k)
            out[name] = None if not best else float(best[0].steer[k]) if best[0].counts(k) else 0.0
        return out

    @property
    def steerable_classes(self) -> list[str]:
        return [name for name, s in self.scores().items() if s is not None and s >= self.config.threshold]

    @property
    def steerable(self) -> bool:
        return bool(self.steerable_classes)

    def verdict(self) -> str:
        scores = self.scores()
        if not self.steerable:
            worst = max((s for s in scores.values() if s is not None), default=None)
            shown = "-" if worst is None else f"{worst:.2f}"
            return (f"not steerable: no candidate reaches steerability {self.config.threshold:g} "
                    f"(highest {shown}; {len(self.verified)} candidates verified)")
        parts = []
        for name in self.steerable_classes:
            k = self.label_names.index(name)
            best = self.ranked(k)[0]
            ref = np.nan_to_num(best.reference_flip[k])
            parts.append(f"to {name!r} by {best.candidate.name!r} (flips {best.flip[k]:.0%} of rows; random "
                         f"strings {best.control_mean[k]:.0%}, reference {ref:.0%}; z {best.z[k]:.1f})")
        return "STEERABLE " + "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        verified = len(self.verified)
        return {
            "format": FORMAT,
            "schema_version": SCHEMA_VERSION,
            "status": "complete",
            "request": self.request,
            "model": self.model,
            "labels": self.label_names,
            "config": asdict(self.config),
            "rows": {"n": self.n_rows, "clean_predictions": self.clean_prediction_counts},
            "verdict": {"steerable": self.steerable, "classes": self.steerable_classes,
                        "threshold": self.config.threshold, "line": self.verdict()},
            "scores": self.scores(),
            "classes": {name: [v.row(k) for v in self.ranked(k)[:self.config.top]]
                        for k, name in enumerate(self.label_names)},
            "controls": {str(length): value for length, value in sorted(self.controls.items())},
            "attention": self.attention,
            "timing": {"seconds": self.seconds, "candidates_verified": verified,
                       "candidates_per_second": verified / self.seconds if self.seconds > 0 else None,
                       "stopped_by_budget": self.stopped_by_budget},
        }


class _Search:
    """The state of one audit: rows, predictions, reference, control cache, the clock."""

    def __init__(self, audited: AuditedModel, pool: list[str], config: AuditConfig, device: torch.device,
                 precision: str, embed: Callable[[Sequence[str]], np.ndarray] | None,
                 log: Callable[[str], None]) -> None:
        self.audited, self.config, self.log = audited, config, log
        self.n_classes = len(audited.label_names)
        self.predict = Predictor(audited.model, audited.tokenizer, device, precision, config.batch_size,
                                 config.max_length)
        self.start = time.perf_counter()
        predicted = self.predict(pool)
        self.pass_seconds = (time.perf_counter() - self.start) * config.max_rows / max(len(pool), 1)
        keep = balanced(predicted, config.max_rows, self.n_classes)
        self.rows = [pool[i] for i in keep]
        self.clean = predicted[keep]
        rows = self.rows
        self.reference = Reference(embed, rows, self.clean, config.seed) if embed is not None else None
        self.reference_clean = self.reference(rows) if self.reference is not None else None
        self.words, self.word_ids = whole_words(audited.tokenizer)
        if not self.words:
            raise SpurlabError("audit: the tokenizer has no whole-word vocabulary pieces to build controls from")
        self.controls: dict[int, dict[str, list[float]]] = {}
        self.verified: list[Verified] = []
        self.seen: set[str] = set()
        self.stopped = False

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def has_time(self) -> bool:
        # a candidate costs about one pass over the rows (plus the reference's); stop before overrunning
        if self.elapsed() + 1.5 * self.pass_seconds > self.config.budget_seconds:
            self.stopped = True
        return not self.stopped

    def pieces(self, text: str) -> int:
        return max(1, len(self.audited.tokenizer(" " + text, add_special_tokens=False)["input_ids"]))

    def _rates(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        return flip_rates(self.clean, self.predict(texts), self.n_classes)

    def _reference_rates(self, texts: list[str]) -> np.ndarray:
        assert self.reference is not None and self.reference_clean is not None
        return np.nan_to_num(flip_rates(self.reference_clean, self.reference(texts), self.n_classes)[0])

    def control(self, pieces: int) -> dict[str, list[float]]:
        """Per class, the excess flip rates (model minus reference, where there is one) of the matched random
        strings of ``pieces`` word pieces: random words move a model by their meaning too."""
        if pieces not in self.controls:
            values = []
            for j, text in enumerate(control_strings(self.words, pieces, self.config.controls, self.config.seed)):
                texts = insert(self.rows, [text] * len(self.rows), self.config.seed + 1 + j)
                flip = self._rates(texts)[0]
                values.append(flip - self._reference_rates(texts) if self.reference is not None else flip)
            array = np.asarray(values, dtype=float)
            self.controls[pieces] = {name: array[:, k].tolist() for k, name in enumerate(self.audited.label_names)}
        return self.controls[pieces]

    def verify(self, candidate: Candidate) -> Verified | None:
        """Insert ``candidate``, score it per class; the reference reads the texts only where the model's flips
        alone reach ``reference_from`` (below it the score cannot reach the threshold anyway)."""
        if candidate.name in self.seen or not self.has_time():
            return None
        self.seen.add(candidate.name)
        texts = candidate_texts(self.rows, candidate, self.config.seed)
        pieces = min(self.pieces(candidate.example()), MAX_CONTROL_PIECES)
        flip, eligible = self._rates(texts)
        ctrl = self.control(pieces)
        names = self.audited.label_names

        def scores(ref: np.ndarray) -> np.ndarray:
            return np.asarray([control_z(float(flip[k] - ref[k]), ctrl[name], int(eligible[k]))
                               for k, name in enumerate(names)])

        ref = np.full(self.n_classes, np.nan)
        z = scores(np.zeros(self.n_classes))
        if self.reference is not None and np.nanmax(z, initial=-np.inf) >= self.config.reference_from:
            ref = self._reference_rates(texts)
            z = scores(ref)
        mean = np.asarray([np.nanmean(ctrl[name]) if np.isfinite(ctrl[name]).any() else np.nan for name in names])
        after = self.predict(texts[:8])
        examples = [texts[i] for i in range(len(after)) if after[i] != self.clean[i]][:3]
        result = Verified(candidate, pieces, flip, ref, eligible, mean, z, examples)
        self.verified.append(result)
        return result


def balanced(predicted: np.ndarray, size: int, n_classes: int) -> np.ndarray:
    """Indices of at most ``size`` rows, as even over the predicted classes as the rows allow (every class then
    has rows of other classes to flip), in their original order: each class in turn gives its next row."""
    queues = [list(np.flatnonzero(predicted == k)) for k in range(n_classes)]
    chosen: list[int] = []
    while len(chosen) < size and any(queues):
        for queue in queues:
            if queue and len(chosen) < size:
                chosen.append(int(queue.pop(0)))
    return np.asarray(sorted(chosen), dtype=np.int64)


def _vocabulary_candidates(search: _Search, config: AuditConfig, device: torch.device) -> list[list[Candidate]]:
    """Per class, the ``vocabulary_top`` whole words with the largest first-order gain."""
    placeholder = next((w for w in PLACEHOLDERS if w in search.words), search.words[0])
    rows = search.rows[:config.gradient_rows]
    scores = gradient_scores(search.audited.model, search.audited.tokenizer, rows, search.word_ids,
                             search.n_classes, placeholder, device, max_length=config.max_length,
                             seed=config.seed)
    out = []
    for k in range(search.n_classes):
        top = np.argsort(-scores[k], kind="stable")[:config.vocabulary_top]
        out.append([fixed(search.words[int(i)], "vocabulary") for i in top])
    return out


def _interleave(lists: list[list[Candidate]]) -> list[Candidate]:
    out = []
    for i in range(max((len(x) for x in lists), default=0)):
        out += [x[i] for x in lists if i < len(x)]
    return out


def _extend(search: _Search, per_class: list[list[Candidate]], config: AuditConfig) -> None:
    """Greedy multi-word triggers: append the class's best gradient words to its best fixed strings."""
    for k in range(search.n_classes):
        words = [c.text for c in per_class[k][:config.extend_with] if c.text]
        seeds = sorted((v for v in search.verified if v.candidate.text is not None and math.isfinite(v.steer[k])),
                       key=lambda v: -v.steer[k])[:config.extend_top]
        for best in seeds:
            current = best
            while len(str(current.candidate.text).split()) < config.max_words and search.has_time():
                tried = [search.verify(fixed(f"{current.candidate.text} {w}", "extended")) for w in words
                         if w not in str(current.candidate.text).split()]
                better = [v for v in tried if v is not None and v.steer[k] > current.steer[k]]
                if not better:
                    break
                current = max(better, key=lambda v: v.steer[k])


def audit(audited: AuditedModel, texts: Sequence[str], config: AuditConfig | None = None, *,
          train_candidates: Sequence[Candidate] = (), device: torch.device | None = None, precision: str = "fp32",
          embed: Callable[[Sequence[str]], np.ndarray] | None = None,
          log: Callable[[str], None] = lambda _msg: None) -> AuditReport:
    """Search ``audited`` for inserted strings that steer its predictions (see the module docstring).

    ``texts`` are clean rows (a seeded sample of ``max_rows`` is used); ``embed`` is the reference's sentence
    encoder (None: no reference, flip rates are compared with the controls only)."""
    config = config or AuditConfig()
    config.validate()
    device = device or torch.device("cpu")
    pool = [t for t in texts if isinstance(t, str) and t.strip()]
    if not pool:
        raise SpurlabError("audit: the clean data has no non-empty rows")
    rng = np.random.default_rng(config.seed)
    sample = [pool[int(i)] for i in sorted(rng.choice(len(pool), size=min(POOL_FACTOR * config.max_rows, len(pool)),
                                                      replace=False))]
    search = _Search(audited, sample, config, device, precision, embed if config.reference else None, log)
    if search.pass_seconds * 3 > config.budget_seconds:
        raise SpurlabError(f"audit: a budget of {config.budget_seconds:g} s is too small: one pass over "
                           f"{len(search.rows)} rows takes {search.pass_seconds:.1f} s, and a candidate needs at least "
                           "that plus its controls; raise --budget-seconds or lower --max-rows")
    log(f"{len(search.rows)} clean rows, one pass {search.pass_seconds:.2f} s, {len(search.words)} whole-word pieces")
    for candidate in shape_candidates() + mark_candidates():
        search.verify(candidate)
    per_class = _vocabulary_candidates(search, config, device) if search.has_time() else [[]] * search.n_classes
    for candidate in _interleave(per_class) + list(train_candidates):
        search.verify(candidate)
    _extend(search, per_class, config)
    counts = np.bincount(search.clean, minlength=search.n_classes)
    log(f"{len(search.verified)} candidates verified in {search.elapsed():.1f} s")
    report = AuditReport(audited.describe(), list(audited.label_names), config, len(search.rows),
                         {name: int(counts[k]) for k, name in enumerate(audited.label_names)}, search.verified,
                         search.controls, search.elapsed(), search.stopped)
    best = report.best()
    if best is not None and config.attention:
        report.attention = trigger_attention(audited, search.rows, best[1].candidate, seed=config.seed,
                                             device=device, precision=precision, max_length=config.max_length)
        report.seconds = search.elapsed()
    return report


__all__ = ["DEFAULT_THRESHOLD", "FORMAT", "AuditConfig", "AuditReport", "Verified", "audit"]
