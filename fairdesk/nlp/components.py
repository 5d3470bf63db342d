"""The `fairdesk_complaint` spaCy component: linear models over n-grams and hand cues (the fast model)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np
import srsly
from spacy.attrs import IS_PUNCT, IS_SPACE, LIKE_URL, LOWER, ORTH, SPACY
from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import minibatch

from fairdesk.nlp.features import (
    HANDLE,
    KEEP_PUNCT,
    URL,
    CharCache,
    HandFeatures,
    TfIdf,
    char_terms,
    tfidf_rows,
    word_terms,
)
from fairdesk.nlp.linear import LinearModel, Rows, fit, shared_sparse_parts
from fairdesk.nlp.severity import cap_praise, severity_cues

logger = logging.getLogger(__name__)

FACTORY = "fairdesk_complaint"
COMPLAINT, NOT_COMPLAINT = "complaint", "not_complaint"
SEVERITY_LABELS = ("sev1", "sev2", "sev3", "sev4")
# Examples carry these in reference.user_data (set by nlp/train.py from the CSV columns).
DOMAIN_KEY, SEVERITY_KEY, EMOTION_KEY, SENTIMENT_KEY = "domain", "severity", "emotion", "sentiment"
# True for the self-written rows (nlp/data/): trained on, but never used to choose hyper-parameters.
EXTRA_KEY = "extra"
RANDOM_DOMAIN_PREFIX = "random"
# Auxiliary tasks: the emotion and sentiment columns of train.csv, folded onto a few classes.
EMOTIONS = {"anger": 0, "disgust": 0, "sadness": 1, "fear": 1, "joy": 2, "surprise": 3, "other": 3}
N_EMOTIONS = 4
SENTIMENTS = {"negative": 0, "neutral": 1, "positive": 2}
N_SENTIMENTS = 3
_FILE = "model.msgpack"


@dataclass(frozen=True, slots=True)
class _Views:
    raw: list[str]  # lowercased tokens, handles kept (says who a post is addressed to)
    plain: list[str]  # lowercased tokens, handles replaced by one placeholder
    text: str  # the post with handles replaced, for the hand cues
    n_handles: int
    n_hashtags: int


_TOKEN_ATTRS = [ORTH, LOWER, SPACY, IS_SPACE, IS_PUNCT, LIKE_URL]


def _views(doc: Doc) -> _Views:
    raw: list[str] = []
    plain: list[str] = []
    parts: list[str] = []
    handles = 0
    strings = doc.vocab.strings
    # Token attributes as one array: much cheaper than a Token object per token.
    for orth, lower, space_after, is_space, is_punct, like_url in doc.to_array(_TOKEN_ATTRS).tolist():
        low = strings[lower]
        is_handle = low.startswith("@") and len(low) > 1
        handles += is_handle
        parts.append((HANDLE if is_handle else strings[orth]) + (" " if space_after else ""))
        if is_space or (is_punct and low not in KEEP_PUNCT):
            continue
        if like_url:
            low = URL
        raw.append(low)
        plain.append(HANDLE if is_handle else low)
    return _Views(raw, plain, "".join(parts), handles, doc.text.count("#"))


class SavedAsOneFile:
    """spaCy's to_disk/from_disk for a component that serialises itself with to_bytes/from_bytes: one msgpack file
    in the component's folder."""

    def to_bytes(self, *, exclude: Iterable[str] = ()) -> bytes:
        raise NotImplementedError

    def from_bytes(self, data: bytes, *, exclude: Iterable[str] = ()) -> Self:
        raise NotImplementedError

    def to_disk(self, path: Path, *, exclude: Iterable[str] = ()) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        (path / _FILE).write_bytes(self.to_bytes())

    def from_disk(self, path: Path, *, exclude: Iterable[str] = ()) -> Self:
        return self.from_bytes((Path(path) / _FILE).read_bytes())


class ComplaintScorer(SavedAsOneFile):
    """Sets doc.cats: complaint / not_complaint (probabilities) and sev1..sev4 (severity of a complaint).

    P(complaint) = P(complaint | post is addressed to a company) * (1 - P(post is off-topic chatter)): one logistic
    regression judges complaints and is trained on company-addressed posts only (random chatter blurs that line),
    another spots chatter that is addressed to no company (trained on all posts, handles kept), as in the training
    data's random_* domains. Two auxiliary regressions predict the post's emotion and sentiment (train.csv labels);
    their probabilities are extra features of the complaint and severity models (stacked: out-of-fold at training
    time). Everything is fitted in closed form at nlp.initialize(); there is no update().
    """

    def __init__(self, nlp: Language, name: str, cfg: dict[str, Any]) -> None:
        """`cfg` holds the factory's settings (see make_complaint_scorer); it is saved with the weights."""
        self.name = name
        self.cfg: dict[str, Any] = {**cfg, "char_ngrams": [int(cfg["char_ngrams"][0]), int(cfg["char_ngrams"][1])]}
        self._hand = HandFeatures()
        self.words: TfIdf | None = None
        self.chars: TfIdf | None = None
        self.complaint: LinearModel | None = None
        self.random: LinearModel | None = None
        self.severity: LinearModel | None = None
        self.emotion: LinearModel | None = None
        self.sentiment: LinearModel | None = None
        self._char_cache: CharCache | None = None

    # -- features -------------------------------------------------------------------------------------------

    def _set_vocab(self, words: TfIdf, chars: TfIdf) -> None:
        self.words, self.chars = words, chars
        lo, hi = self.cfg["char_ngrams"]
        self._char_cache = CharCache(chars, lo, hi)

    def _rows(self, views: Sequence[_Views]) -> tuple[Rows, Rows]:
        """Feature rows for the chatter model (handles kept) and the complaint/severity models (handles replaced;
        hand cues as dense columns). Sparse block: word n-grams, then character n-grams."""
        assert self.words is not None and self.chars is not None and self._char_cache is not None
        sparse = len(self.words) + len(self.chars)
        hand = np.stack([self._hand(v.text, v.n_handles, v.n_hashtags) for v in views]) * self.cfg["hand_weight"]
        n, words, chars = self.cfg["word_ngrams"], self.words, self._char_cache
        char_vocab = self.chars  # a local keeps the assert's narrowing inside rows() below
        plain_ids = [(words.ids(word_terms(v.plain, n)), chars.ids(v.plain)) for v in views]
        # Without handles the two views are the same tokens.
        raw_ids = [
            (words.ids(word_terms(v.raw, n)), chars.ids(v.raw)) if v.n_handles else plain_ids[i]
            for i, v in enumerate(views)
        ]

        def rows(ids: list[tuple[np.ndarray, np.ndarray]], dense: np.ndarray) -> Rows:
            indptr, indices, data = tfidf_rows([(words, [w for w, _ in ids]), (char_vocab, [c for _, c in ids])])
            return Rows(indptr, indices, data.astype(np.float64), sparse, dense.astype(np.float64))

        return rows(raw_ids, np.zeros((len(views), 0))), rows(plain_ids, hand)

    # -- spaCy component protocol ----------------------------------------------------------------------------

    def __call__(self, doc: Doc) -> Doc:
        return next(self.pipe([doc]))

    def pipe(self, docs: Iterable[Doc], batch_size: int = 256) -> Iterator[Doc]:
        for batch in minibatch(docs, size=batch_size):
            yield from self._score(list(batch))

    def _score(self, docs: list[Doc]) -> list[Doc]:
        if self.complaint is None:
            raise ValueError(f"component '{self.name}' is not initialised: train it with nlp.initialize()")
        views = [_views(d) for d in docs]
        raw, plain = self._rows(views)
        # The aux, complaint and severity models read the same sparse block (they differ in stacked dense
        # columns), so its product with all their weights is taken once.
        aux_models = [self.emotion, self.sentiment] if self.emotion is not None and self.sentiment is not None else []
        n_aux = len(aux_models)
        models = [*aux_models, self.complaint, *([self.severity] if self.severity is not None else [])]
        parts = shared_sparse_parts(plain, models)
        aux = self._aux(plain, parts[:n_aux])
        if aux is not None:
            plain = plain.append_dense(aux)
        p = self.complaint.predict_with(plain, parts[n_aux])
        if self.random is not None:
            p = p * (1.0 - self.random.predict(raw))
        sev = None
        if self.severity is not None:
            texts = [v.text for v in views]
            sev = self.severity.predict_with(self._with_severity_cues(plain, texts), parts[-1])
            sev = cap_praise(texts, sev, p)
        for i, doc in enumerate(docs):
            doc.cats[COMPLAINT] = float(p[i])
            doc.cats[NOT_COMPLAINT] = 1.0 - float(p[i])
            if sev is not None:
                for j, label in enumerate(SEVERITY_LABELS):
                    doc.cats[label] = float(sev[i, j])
        return docs

    def _with_severity_cues(self, plain: Rows, texts: Sequence[str]) -> Rows:
        """The severity model's rows: the complaint model's, plus word-list cues of the four levels."""
        return plain.append_dense(severity_cues(texts) * self.cfg["severity_cue_weight"])

    def _aux(self, rows: Rows, parts: Sequence[np.ndarray] = ()) -> np.ndarray | None:
        """The weighted emotion and sentiment probabilities; `parts`, if given, are their sparse products."""
        if self.emotion is None or self.sentiment is None:
            return None
        models = (self.emotion, self.sentiment)
        parts = parts or shared_sparse_parts(rows, models)
        probs = [m.predict_with(rows, part) for m, part in zip(models, parts, strict=True)]
        return np.hstack(probs) * self.cfg["aux_weight"]

    def _fit_aux(self, plain: Rows, emotion: np.ndarray, sentiment: np.ndarray) -> Rows:
        """Fit the emotion and sentiment models; return `plain` with out-of-fold aux features appended."""
        self.emotion = self.sentiment = None
        known = np.flatnonzero((emotion >= 0) & (sentiment >= 0))
        if len(known) < 50 or len(set(emotion[known].tolist())) < N_EMOTIONS:
            return plain
        c, it, k = self.cfg["aux_c"], self.cfg["max_iter"], self.cfg["aux_folds"]

        def pair(idx: np.ndarray) -> tuple[LinearModel, LinearModel]:
            sub = plain.take(idx)
            return (
                fit(sub, emotion[idx], n_classes=N_EMOTIONS, c=c, max_iter=it),
                fit(sub, sentiment[idx], n_classes=N_SENTIMENTS, c=c, max_iter=it),
            )

        self.emotion, self.sentiment = pair(known)
        aux = self._aux(plain)
        assert aux is not None
        # Posts the aux models were trained on get predictions from models that did not see them (stacking).
        fold = np.random.default_rng(0).permutation(len(known)) % k
        full = (self.emotion, self.sentiment)
        for f in range(k):
            held = known[fold == f]
            self.emotion, self.sentiment = pair(known[fold != f])
            aux[held] = self._aux(plain.take(held))
        self.emotion, self.sentiment = full
        return plain.append_dense(aux)

    def initialize(self, get_examples: Callable[[], Iterable[Example]], *, nlp: Language | None = None) -> None:
        """Fit vocabularies and all three models on the examples (cats + domain/severity in reference.user_data)."""
        examples = list(get_examples())
        views = [_views(eg.reference) for eg in examples]
        labels = np.array([eg.reference.cats.get(COMPLAINT, 0.0) >= 0.5 for eg in examples], dtype=np.int64)
        domains = [str(eg.reference.user_data.get(DOMAIN_KEY, "") or "") for eg in examples]
        severity = np.array([int(eg.reference.user_data.get(SEVERITY_KEY, 0) or 0) for eg in examples])
        is_random = np.array([d.startswith(RANDOM_DOMAIN_PREFIX) for d in domains], dtype=np.int64)
        emotion = np.array([EMOTIONS.get(str(eg.reference.user_data.get(EMOTION_KEY, "")), -1) for eg in examples])
        sentiment = np.array(
            [SENTIMENTS.get(str(eg.reference.user_data.get(SENTIMENT_KEY, "")), -1) for eg in examples]
        )
        if len(set(labels[is_random == 0].tolist())) < 2:
            raise ValueError("training needs both complaints and non-complaints among company-addressed posts")
        n = self.cfg["word_ngrams"]
        lo, hi = self.cfg["char_ngrams"]
        words = TfIdf.fit((word_terms(v.raw, n) + word_terms(v.plain, n) for v in views), self.cfg["min_df"])
        chars = TfIdf.fit(
            ([g for t in {*v.raw, *v.plain} for g in char_terms(t, lo, hi)] for v in views), self.cfg["min_df"]
        )
        self._set_vocab(words, chars)
        raw, plain = self._rows(views)
        plain = self._fit_aux(plain, emotion, sentiment)
        it = self.cfg["max_iter"]
        company = np.flatnonzero(is_random == 0)
        self.complaint = fit(plain.take(company), labels[company], c=self.cfg["complaint_c"], max_iter=it)
        self.random = None
        if 0 < is_random.sum() < len(is_random):
            self.random = fit(raw, is_random, c=self.cfg["random_c"], max_iter=it)
        self.severity = None
        rated = np.flatnonzero(severity > 0)
        if len(set(severity[rated].tolist())) == len(SEVERITY_LABELS):
            self.severity = fit(
                self._with_severity_cues(plain.take(rated), [views[i].text for i in rated]),
                severity[rated] - 1,
                n_classes=4,
                c=self.cfg["severity_c"],
                balanced=True,
                max_iter=it,
            )
        logger.info(
            "fitted %s on %d posts: %d word and %d char n-grams, chatter %s, severity %s, aux %s",
            self.name,
            len(examples),
            len(words),
            len(chars),
            self.random is not None,
            self.severity is not None,
            self.emotion is not None,
        )

    # -- serialisation ---------------------------------------------------------------------------------------

    def _state(self) -> dict[str, Any]:
        if self.words is None or self.chars is None or self.complaint is None:
            raise ValueError(f"component '{self.name}' is not initialised")
        return {
            "cfg": self.cfg,
            "word_terms": list(self.words.index),
            "word_idf": self.words.idf,
            "char_terms": list(self.chars.index),
            "char_idf": self.chars.idf,
            "complaint": self.complaint.weights,
            "random": None if self.random is None else self.random.weights,
            "severity": None if self.severity is None else self.severity.weights,
            "emotion": None if self.emotion is None else self.emotion.weights,
            "sentiment": None if self.sentiment is None else self.sentiment.weights,
        }

    def _load_state(self, state: dict[str, Any]) -> None:
        self.cfg = dict(state["cfg"])
        words = TfIdf({t: i for i, t in enumerate(state["word_terms"])}, np.asarray(state["word_idf"]))
        chars = TfIdf({t: i for i, t in enumerate(state["char_terms"])}, np.asarray(state["char_idf"]))
        self._set_vocab(words, chars)
        self.complaint = LinearModel(np.asarray(state["complaint"]))
        self.random = _model(state["random"])
        self.severity = _model(state["severity"])
        self.emotion = _model(state.get("emotion"))
        self.sentiment = _model(state.get("sentiment"))

    def to_bytes(self, *, exclude: Iterable[str] = ()) -> bytes:
        return srsly.msgpack_dumps(self._state())

    def from_bytes(self, data: bytes, *, exclude: Iterable[str] = ()) -> ComplaintScorer:
        self._load_state(srsly.msgpack_loads(data))
        return self


def _model(weights: Any) -> LinearModel | None:
    return None if weights is None else LinearModel(np.asarray(weights))


@Language.factory(
    FACTORY,
    default_config={
        "word_ngrams": 2,
        "char_ngrams": [2, 5],
        "min_df": 2,
        "hand_weight": 0.3,
        "complaint_c": 10.0,
        "random_c": 10.0,
        "severity_c": 0.3,
        "severity_cue_weight": 0.5,
        "aux_weight": 1.0,
        "aux_c": 3.0,
        "aux_folds": 5,
        "max_iter": 500,
    },
)
def make_complaint_scorer(
    nlp: Language,
    name: str,
    word_ngrams: int,
    char_ngrams: list[int],
    min_df: int,
    hand_weight: float,
    complaint_c: float,
    random_c: float,
    severity_c: float,
    severity_cue_weight: float,
    aux_weight: float,
    aux_c: float,
    aux_folds: int,
    max_iter: int,
) -> ComplaintScorer:
    """Build an untrained ComplaintScorer (see its docstring)."""
    cfg = {key: value for key, value in locals().items() if key not in ("nlp", "name")}
    return ComplaintScorer(nlp, name, cfg)
