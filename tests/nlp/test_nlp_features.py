"""Tests for n-gram extraction, tf-idf vectors and hand cues."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fairdesk.nlp.features import HandFeatures, LexiconSentiment, TfIdf, char_terms, tfidf_rows, word_terms


def test_word_terms() -> None:
    assert word_terms(["still", "not", "fixed"], 2) == ["still", "not", "fixed", "still not", "not fixed"]


def test_char_terms_pad_word_like_char_wb() -> None:
    assert char_terms("ab", 2, 3) == [" a", "ab", "b ", " ab", "ab "]
    assert char_terms("a", 4, 5) == []


def test_tfidf_by_hand() -> None:
    vocab = TfIdf.fit([["a", "b"], ["a"], ["a", "c"]], min_df=2)
    assert list(vocab.index) == ["a"]  # b and c occur in one doc only
    assert vocab.idf[0] == pytest.approx(math.log(4 / 4) + 1.0)
    vocab = TfIdf.fit([["a", "b"], ["a"]])
    ids, vals = vocab.vector(vocab.ids(["a", "a", "b", "zzz"]))
    # tf: a -> 1 + ln 2, idf(a) = 1; b -> 1, idf(b) = ln(3/2) + 1; then unit length
    raw = np.array([1 + math.log(2), math.log(1.5) + 1])
    assert ids.tolist() == [0, 1]
    assert vals.tolist() == pytest.approx((raw / np.linalg.norm(raw)).tolist(), rel=1e-6)


def test_empty_vector() -> None:
    vocab = TfIdf.fit([["a"]])
    ids, vals = vocab.vector(vocab.ids(["unknown"]))
    assert len(ids) == 0 and len(vals) == 0


def test_hand_features_flag_cues() -> None:
    hand = HandFeatures()
    angry = hand("@user why is my order STILL not here?? 3 days waiting, terrible", 1, 0)
    happy = hand("@user thanks, lovely service", 1, 0)
    assert angry.shape == happy.shape == (23,)
    assert angry[0] == 1.0 and happy[0] == 0.0  # has a question mark
    assert angry[4] == 1.0 and happy[4] == 0.0  # negation
    assert angry[7] == 1.0  # persistence ("still")
    assert angry[9] == 1.0  # a duration ("3 days")
    assert happy[17] > 0 > angry[17]  # compound sentiment from VADER's lexicon


def test_lexicon_sentiment_negation_and_shares() -> None:
    score = LexiconSentiment()
    compound, pos, neg, neu = score("i am happy".split())
    assert compound > 0 and pos > 0 and neg == 0 and pos + neg + neu == pytest.approx(1.0)
    assert score("i am not happy".split())[0] < 0  # a negation in the three words before flips the valence
    assert score("i didn't like it".split())[0] < 0
    assert score([]) == (0.0, 0.0, 0.0, 0.0)
    assert score(["zzzz"]) == (0.0, 0.0, 0.0, 1.0)


def test_tfidf_rows_match_per_row_vectors() -> None:
    words = TfIdf.fit([["a", "b"], ["b", "c"], ["c", "d", "d"]])
    chars = TfIdf.fit([["x", "y"], ["y"], ["z"]])
    word_ids = [words.ids(["a", "b", "b"]), words.ids([]), words.ids(["d", "d", "c", "zz"])]
    char_ids = [chars.ids(["x"]), chars.ids(["y", "z"]), chars.ids([])]
    indptr, indices, data = tfidf_rows([(words, word_ids), (chars, char_ids)])
    for r in range(3):
        wi, wv = words.vector(word_ids[r])
        ci, cv = chars.vector(char_ids[r])
        lo, hi = indptr[r], indptr[r + 1]
        assert indices[lo:hi].tolist() == [*wi.tolist(), *(ci + len(words)).tolist()]
        assert data[lo:hi] == pytest.approx(np.concatenate([wv, cv]), abs=1e-6)
