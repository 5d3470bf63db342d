"""The complaint classifier: a spaCy pipeline behind a small, spaCy-free result type."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import spacy

from fairdesk.nlp import cascade  # noqa: F401  (importing registers the encoder cascade's factory)
from fairdesk.nlp.components import COMPLAINT, NOT_COMPLAINT, SEVERITY_LABELS  # importing registers the factory
from fairdesk.nlp.text import clean, prepare, triage_reason

logger = logging.getLogger(__name__)

MODEL_DIR = Path(__file__).resolve().parent / "model"
DEFAULT_THRESHOLD = 0.35
# Set on nlp.meta by load_pipeline(): a digest of the model files, so the version names the exact trained weights.
META_HASH_KEY = "fairdesk_model_hash"


@dataclass(frozen=True, slots=True)
class Classification:
    """What the classifier says about one post; holds no spaCy objects."""

    label: str  # "complaint" | "not_complaint"
    score: float  # probability of complaint, 0..1
    severity: int | None  # 1..4 for judged complaints (1 = no explicit reproach .. 4 = blame), else None
    triage_reason: str | None  # "not_english" | "empty" | "emoji_only" | None: the model cannot judge this post
    model_version: str

    @property
    def files_ticket(self) -> bool:
        """A complaint becomes a ticket, and so does a post the model cannot judge (marked for human triage)."""
        return self.label == COMPLAINT or self.triage_reason is not None


class Classifier:
    """Classify posts as complaints with a loaded spaCy pipeline (built once, passed in)."""

    def __init__(self, nlp: spacy.Language, threshold: float = DEFAULT_THRESHOLD) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be within 0..1, got {threshold}")
        self.nlp = nlp
        self.threshold = threshold
        self.version = model_version(nlp)

    def classify(self, text: str) -> Classification:
        """Classify one post; never raises on odd input (empty, huge, binary junk, other languages)."""
        return self.classify_many([text])[0]

    def classify_many(self, texts: Iterable[str], batch_size: int = 256) -> list[Classification]:
        """Classify many posts in order with `nlp.pipe` (much faster than calling classify() in a loop)."""
        cleaned = [clean(t if isinstance(t, str) else str(t)) for t in texts]
        prepared = (prepare(c) for c in cleaned)
        docs = self.nlp.pipe(prepared, batch_size=batch_size)
        return [self._result(doc.cats, triage_reason(c)) for doc, c in zip(docs, cleaned, strict=True)]

    def _result(self, cats: dict[str, float], reason: str | None) -> Classification:
        score = min(1.0, max(0.0, float(cats.get(COMPLAINT, 0.5))))
        if score < self.threshold:
            return Classification(NOT_COMPLAINT, score, None, reason, self.version)
        # A triaged post keeps the model's best guess as its label, but no severity: a person judges it.
        return Classification(COMPLAINT, score, None if reason else severity_level(cats), reason, self.version)


def severity_level(cats: dict[str, float]) -> int | None:
    """The most probable severity level 1..4 in a doc's cats, or None if the pipeline has no severity model."""
    scores = [(cats[label], level) for level, label in enumerate(SEVERITY_LABELS, start=1) if label in cats]
    return max(scores)[1] if scores else None


def model_version(nlp: spacy.Language) -> str:
    """Name the trained weights: pipeline name and version plus a digest of its files (or of its bytes)."""
    digest = nlp.meta.get(META_HASH_KEY)
    if not digest:
        try:
            digest = hashlib.sha256(nlp.to_bytes(exclude=["vocab"])).hexdigest()[:12]
        except Exception:  # an uninitialised pipeline cannot serialise; it still gets a stable name
            digest = "untrained"
    return f"{nlp.meta.get('name', 'pipeline')}-{nlp.meta.get('version', '0.0.0')}+{digest}"


def _files_digest(path: Path) -> str:
    h = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(file.relative_to(path).as_posix().encode())
        h.update(file.read_bytes())
    return h.hexdigest()[:12]


def load_pipeline(path: Path | None = None) -> spacy.Language:
    """Load a trained pipeline from `path` (default: the model shipped in nlp/model/); never downloads."""
    path = Path(path) if path is not None else MODEL_DIR
    if not (path / "config.cfg").is_file():
        raise FileNotFoundError(f"no trained spaCy pipeline at {path} (expected {path / 'config.cfg'})")
    nlp = spacy.load(path)
    nlp.meta[META_HASH_KEY] = _files_digest(path)
    logger.info("loaded complaint pipeline %s from %s", nlp.meta[META_HASH_KEY], path)
    return nlp


def load_classifier(path: Path | None = None, threshold: float = DEFAULT_THRESHOLD) -> Classifier:
    """Load the pipeline and wrap it in a Classifier."""
    return Classifier(load_pipeline(path), threshold=threshold)
