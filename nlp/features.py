"""Features of a post for the linear models: tf-idf word and character n-grams, and hand-made cues."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

HANDLE = "@user"
URL = "http://url"
# Punctuation kept as word features: it carries tone (questions, exasperation).
KEEP_PUNCT = frozenset({"!", "?", "...", "!!", "??"})
# Per-token caches are bounded so a long-running daemon does not grow without limit.
_CACHE_LIMIT = 200_000

_WORD_RE = re.compile(r"[a-z']+")
_CAPS_RE = re.compile(r"[A-Za-z]{3,}")
_DURATION_RE = re.compile(r"\d+\s*(?:hours?|hrs?|days?|weeks?|wks?|months?|mins?|minutes?|years?|yrs?)\b")
_NEGATION = frozenset("not no never cannot nothing nobody none nor neither without".split())
_SECOND_PERSON = frozenset("you your you're u ur yours youre y'all yall".split())
_FIRST_PERSON = frozenset("i my me i'm im mine we our us i've i'd".split())
_PERSISTENCE = frozenset("still again yet anymore already always constantly keeps keep repeatedly".split())
_TIME = frozenset(
    "hours hour days day weeks week months month minutes mins yesterday today ago since waiting wait waited "
    "tomorrow tonight morning now".split()
)
_POLITE = frozenset("thanks thank please pls plz appreciate love great awesome amazing".split())
_WH = frozenset("why how what when where who".split())
N_HAND = 23


def word_terms(tokens: Sequence[str], ngrams: int) -> list[str]:
    """Word 1..n-grams over already-lowercased tokens."""
    terms = list(tokens)
    for n in range(2, ngrams + 1):
        terms.extend(" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    return terms


def char_terms(token: str, lo: int, hi: int) -> list[str]:
    """Character lo..hi-grams of one token padded with spaces (scikit-learn's "char_wb" analyzer)."""
    w = f" {token} "
    out = []
    for n in range(lo, hi + 1):
        if len(w) < n:
            break
        out.extend(w[i : i + n] for i in range(len(w) - n + 1))
    return out


class TfIdf:
    """A fitted term vocabulary with smoothed idf; vectors use 1 + log(tf) and unit L2 norm."""

    def __init__(self, index: dict[str, int], idf: np.ndarray) -> None:
        self.index = index
        self.idf = idf.astype(np.float32)

    def __len__(self) -> int:
        return len(self.index)

    @classmethod
    def fit(cls, docs: Iterable[Iterable[str]], min_df: int = 1) -> TfIdf:
        """Learn the vocabulary (terms in at least `min_df` docs) and idf from term lists."""
        df: Counter[str] = Counter()
        n_docs = 0
        for terms in docs:
            n_docs += 1
            df.update(set(terms))
        kept = sorted(t for t, c in df.items() if c >= min_df)
        idf = np.array([math.log((1 + n_docs) / (1 + df[t])) + 1.0 for t in kept], dtype=np.float32)
        return cls({t: i for i, t in enumerate(kept)}, idf)

    def ids(self, terms: Iterable[str]) -> np.ndarray:
        """Vocabulary ids of the known terms (unknown terms are dropped)."""
        get = self.index.get
        return np.fromiter((i for i in map(get, terms) if i is not None), dtype=np.int64)

    def vector(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Turn a bag of ids into sorted (ids, tf-idf values) with unit norm."""
        if not len(ids):
            return ids, np.zeros(0, dtype=np.float32)
        uniq, counts = np.unique(ids, return_counts=True)
        vals = (1.0 + np.log(counts)).astype(np.float32) * self.idf[uniq]
        vals /= np.linalg.norm(vals)
        return uniq, vals


class CharCache:
    """Memoises each token's character n-gram ids for one TfIdf vocabulary."""

    def __init__(self, vocab: TfIdf, lo: int, hi: int) -> None:
        self.vocab, self.lo, self.hi = vocab, lo, hi
        self._memo: dict[str, np.ndarray] = {}

    def ids(self, tokens: Sequence[str]) -> np.ndarray:
        memo = self._memo
        parts = []
        for tok in tokens:
            got = memo.get(tok)
            if got is None:
                if len(memo) >= _CACHE_LIMIT:
                    memo.clear()
                got = memo[tok] = self.vocab.ids(char_terms(tok, self.lo, self.hi))
            parts.append(got)
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


class HandFeatures:
    """23 cues of complaining: questions, negation, persons, persistence, time, politeness, caps, VADER sentiment."""

    def __init__(self) -> None:
        self._vader = SentimentIntensityAnalyzer()

    def __call__(self, text: str, n_handles: int, n_hashtags: int) -> np.ndarray:
        """`text` has handles and URLs already replaced by placeholders."""
        low = text.lower()
        ws = _WORD_RE.findall(low)
        n = max(len(ws), 1)
        negs = sum(1 for w in ws if w in _NEGATION or w.endswith("n't"))
        caps = sum(1 for w in _CAPS_RE.findall(text) if w.isupper())
        v = self._vader.polarity_scores(text.replace(HANDLE, " ").replace(URL, " "))
        feats = [
            "?" in text,
            min(text.count("?"), 3) / 3,
            min(text.count("!"), 3) / 3,
            negs / n,
            negs > 0,
            any(w in _SECOND_PERSON for w in ws),
            any(w in _FIRST_PERSON for w in ws),
            any(w in _PERSISTENCE for w in ws),
            any(w in _TIME for w in ws),
            _DURATION_RE.search(low) is not None,
            any(w in _POLITE for w in ws),
            bool(ws) and ws[0] in _WH,
            caps / n,
            min(len(ws), 60) / 60,
            URL in text,
            min(n_handles, 4) / 4,
            min(n_hashtags, 4) / 4,
            v["compound"],
            v["pos"],
            v["neg"],
            v["neu"],
            v["compound"] < -0.05,
            v["compound"] > 0.05,
        ]
        return np.asarray(feats, dtype=np.float32)
