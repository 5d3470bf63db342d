"""Features of a post for the linear models: tf-idf word and character n-grams, and hand-made cues."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

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
# VADER's word valences (word<TAB>mean rating), cut from vader_lexicon.txt of vaderSentiment 3.3.2 (MIT, C.J. Hutto;
# licence in data/VADER_LICENSE.txt): the only part of that package we used.
VADER_LEXICON = Path(__file__).resolve().parent / "data" / "vader_lexicon.tsv"
# vaderSentiment's NEGATE list (same licence).
VADER_NEGATE = frozenset(
    """aint arent cannot cant couldnt darent didnt doesnt ain't aren't can't couldn't daren't didn't doesn't dont hadnt
    hasnt havent isnt mightnt mustnt neither don't hadn't hasn't haven't isn't mightn't mustn't neednt needn't never
    none nope nor not nothing nowhere oughtnt shant shouldnt uhuh wasnt werent oughtn't shan't shouldn't uh-uh wasn't
    weren't without wont wouldnt won't wouldn't rarely seldom despite""".split()
)


@lru_cache(maxsize=1)
def vader_lexicon() -> dict[str, float]:
    """word -> valence (-4..4); a later line for the same word wins, as in vaderSentiment."""
    lexicon: dict[str, float] = {}
    with VADER_LEXICON.open(encoding="utf-8") as fh:
        for line in fh:
            word, _, valence = line.rstrip("\n").partition("\t")
            lexicon[word] = float(valence)
    return lexicon


def word_terms(tokens: Sequence[str], ngrams: int) -> list[str]:
    """Word 1..n-grams over already-lowercased tokens."""
    terms = list(tokens)
    for n in range(2, ngrams + 1):
        terms.extend(" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    return terms


def char_terms(token: str, lo: int, hi: int) -> list[str]:
    """Character lo..hi-grams of one token padded with spaces (scikit-learn's "char_wb" analyzer)."""
    w = f" {token} "
    out: list[str] = []
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
        """Turn a bag of ids into sorted (ids, tf-idf values) with unit norm (one row of tfidf_rows)."""
        _, indices, data = tfidf_rows([(self, [ids])])
        return indices, data


def tfidf_rows(blocks: Sequence[tuple[TfIdf, Sequence[np.ndarray]]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR rows (indptr, indices, float32 data) for a batch. Each block is a vocabulary and every row's term ids;
    a row gets each block's tf-idf vector, 1 + log(tf) times idf with unit norm per block, blocks side by side.

    One np.unique over the whole batch instead of one per row: the same numbers, several times faster."""
    n_rows = len(blocks[0][1]) if blocks else 0
    all_rows, all_cols, offsets = [], [], []
    offset = 0
    for vocab, ids in blocks:
        lengths = np.fromiter((len(i) for i in ids), dtype=np.int64, count=n_rows)
        all_rows.append(np.repeat(np.arange(n_rows, dtype=np.int64), lengths))
        all_cols.append(np.concatenate([np.asarray(i, dtype=np.int64) for i in ids]) + offset)
        offsets.append(offset)
        offset += len(vocab)
    width = max(offset, 1)
    uniq, counts = np.unique(np.concatenate(all_rows) * width + np.concatenate(all_cols), return_counts=True)
    rows, cols = uniq // width, uniq % width
    idf = np.concatenate([vocab.idf for vocab, _ in blocks])
    vals = (1.0 + np.log(counts)).astype(np.float32) * idf[cols]
    # Unit norm within each (row, block).
    group = rows * len(blocks) + np.searchsorted(np.asarray(offsets), cols, side="right") - 1
    norms = np.sqrt(np.bincount(group, weights=np.square(vals, dtype=np.float64), minlength=n_rows * len(blocks)))
    vals = vals / norms[group].astype(np.float32)
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
    return indptr, cols, vals


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


class LexiconSentiment:
    """VADER's word valences (its lexicon, vendored in data/vader_lexicon.tsv) summed the way VADER does, with its
    negation rule (a negation among the three words before flips and damps a valence), but without its other
    heuristics: a tenth of the cost, and the same four numbers: compound, pos, neg, neu."""

    _DAMP = -0.74  # vaderSentiment's N_SCALAR
    _ALPHA = 15.0  # vaderSentiment's normalize() constant

    def __init__(self) -> None:
        self._lexicon = vader_lexicon()
        self._negate = VADER_NEGATE | _NEGATION

    def __call__(self, words: Sequence[str]) -> tuple[float, float, float, float]:
        lexicon, negate = self._lexicon, self._negate
        pos = neg = neutral = total = 0.0
        for i, word in enumerate(words):
            v = lexicon.get(word)
            if v is None:
                neutral += 1
                continue
            if any(w in negate or w.endswith("n't") for w in words[max(0, i - 3) : i]):
                v *= self._DAMP
            total += v
            if v > 0:
                pos += v + 1
            elif v < 0:
                neg += v - 1
            else:
                neutral += 1
        compound = total / math.sqrt(total * total + self._ALPHA) if total else 0.0
        size = pos - neg + neutral
        if not size:
            return compound, 0.0, 0.0, 0.0
        return compound, pos / size, abs(neg) / size, neutral / size


class HandFeatures:
    """23 cues of complaining: questions, negation, persons, persistence, time, politeness, caps, VADER sentiment."""

    def __init__(self) -> None:
        self._sentiment = LexiconSentiment()

    def __call__(self, text: str, n_handles: int, n_hashtags: int) -> np.ndarray:
        """`text` has handles and URLs already replaced by placeholders."""
        low = text.lower()
        ws = _WORD_RE.findall(low)
        seen = set(ws)
        n = max(len(ws), 1)
        negs = sum(1 for w in ws if w in _NEGATION or w.endswith("n't"))
        caps = sum(1 for w in _CAPS_RE.findall(text) if w.isupper())
        compound, pos, neg, neu = self._sentiment(_WORD_RE.findall(low.replace(HANDLE, " ").replace(URL, " ")))
        feats = [
            "?" in text,
            min(text.count("?"), 3) / 3,
            min(text.count("!"), 3) / 3,
            negs / n,
            negs > 0,
            not _SECOND_PERSON.isdisjoint(seen),
            not _FIRST_PERSON.isdisjoint(seen),
            not _PERSISTENCE.isdisjoint(seen),
            not _TIME.isdisjoint(seen),
            _DURATION_RE.search(low) is not None,
            not _POLITE.isdisjoint(seen),
            bool(ws) and ws[0] in _WH,
            caps / n,
            min(len(ws), 60) / 60,
            URL in text,
            min(n_handles, 4) / 4,
            min(n_hashtags, 4) / 4,
            compound,
            pos,
            neg,
            neu,
            compound < -0.05,
            compound > 0.05,
        ]
        return np.asarray(feats, dtype=np.float32)
