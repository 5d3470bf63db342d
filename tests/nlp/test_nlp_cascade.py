"""Tests for the encoder cascade: which posts it re-judges, how it picks C and the band, and what it refuses."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import spacy
import srsly

from fairdesk.nlp import Classifier
from fairdesk.nlp.cascade import FACTORY, EncoderCascade, choose, logit
from fairdesk.nlp.encoder import DIM, load_encoder


def _cascade(band: float, intercept: float) -> EncoderCascade:
    """An EncoderCascade with hand-set weights: the embedding and fast score ignored, P = sigmoid(intercept)."""
    nlp = spacy.blank("en")
    comp = nlp.add_pipe(FACTORY, name="encoder")
    assert isinstance(comp, EncoderCascade)
    comp.weights = np.zeros(load_encoder().dim + 2)
    comp.weights[-1] = intercept
    comp.band = band
    return comp


def test_only_posts_in_the_band_are_rescored() -> None:
    comp = _cascade(band=1.0, intercept=5.0)
    nlp = comp_nlp = spacy.blank("en")
    docs = [nlp.make_doc(t) for t in ("sure complaint", "unsure", "sure not")]
    for doc, p in zip(docs, (0.99, 0.4, 0.01), strict=True):
        doc.cats = {"complaint": p, "not_complaint": 1 - p}
    out = list(comp.pipe(docs))
    assert out[0].cats["complaint"] == 0.99 and out[2].cats["complaint"] == 0.01
    assert out[1].cats["complaint"] == pytest.approx(1 / (1 + np.exp(-5.0)))
    assert out[1].cats["not_complaint"] == pytest.approx(1 - out[1].cats["complaint"])
    assert comp_nlp is nlp
    # logit(0.35) = -0.62: a band of 1 logit is 0.165..0.59
    assert comp.in_band(np.array([0.35, 0.2, 0.55, 0.1, 0.7])).tolist() == [True, True, True, False, False]


def test_choose_widens_the_band_only_when_the_encoder_helps() -> None:
    rng = np.random.default_rng(0)
    n = 600
    y = rng.integers(0, 2, n)
    company = np.ones(n, dtype=bool)
    # The fast model is confident and right far from 0.35 and a coin toss near it; the embedding knows the label.
    far = rng.random(n) < 0.7
    fast = np.where(far, np.where(y == 1, 0.95, 0.05), rng.uniform(0.25, 0.45, n))
    informative = np.zeros((n, DIM))
    informative[:, 0] = y + rng.normal(0, 0.3, n)
    kw = {
        "anchor": 0.35,
        "block_grid": [[0]],
        "c_grid": [1.0],
        "band_grid": [0.0, 0.5, 1.0],
        "weight_grid": [1.0],
        "folds": 3,
        "max_iter": 1000,
    }
    got = choose(fast, informative, y, company, **kw)
    assert got.band >= 0.5 and 0.2 < got.share < 0.4
    assert got == choose(fast, informative, y, company, **kw)  # deterministic
    noise = rng.normal(0, 1, (n, DIM))
    assert choose(fast, noise, y, company, **kw).score < got.score


def test_choose_reads_the_layer_that_knows_the_label() -> None:
    rng = np.random.default_rng(1)
    n = 600
    y = rng.integers(0, 2, n)
    company = np.ones(n, dtype=bool)
    fast = rng.uniform(0.25, 0.45, n)  # all in the band, none of them informative
    emb = rng.normal(0, 1, (n, 2 * DIM))
    emb[:, DIM + 7] = y + rng.normal(0, 0.3, n)  # block 1 carries the label, block 0 is noise
    kw = {"anchor": 0.35, "c_grid": [1.0], "band_grid": [1.0], "weight_grid": [1.0], "folds": 3, "max_iter": 1000}
    got = choose(fast, emb, y, company, block_grid=[[0], [1], [0, 1]], **kw)
    assert got.blocks == (1,)
    assert choose(fast, emb, y, company, block_grid=[[0]], **kw).score < got.score - 0.2


def test_a_block_grid_beyond_the_encoder_is_one_clear_error() -> None:
    nlp = spacy.blank("en")
    with pytest.raises(ValueError, match=r"block_grid \[\[0\], \[2\]\] must list .* blocks 0 to 1"):
        nlp.add_pipe(FACTORY, name="encoder", config={"block_grid": [[0], [2]]})
    assert isinstance(nlp.add_pipe(FACTORY, name="encoder", config={"block_grid": [[1], [0, 1]]}), EncoderCascade)


def test_weights_fitted_against_another_encoder_are_refused() -> None:
    comp = _cascade(band=1.0, intercept=0.0)
    state = srsly.msgpack_loads(comp.to_bytes())
    assert comp.from_bytes(srsly.msgpack_dumps(state)).band == 1.0
    state["encoder"] = "0" * 16
    with pytest.raises(ValueError, match="fitted against encoder 0000000000000000"):
        comp.from_bytes(srsly.msgpack_dumps(state))


def test_too_little_data_passes_fast_scores_through(tiny: Classifier) -> None:
    comp = tiny.nlp.get_pipe("encoder")
    assert isinstance(comp, EncoderCascade) and comp.band == 0.0
    fast = [d.cats["complaint"] for d in tiny.nlp.pipe(["my order never came", "nice day"], disable=["encoder"])]
    assert [r.score for r in tiny.classify_many(["my order never came", "nice day"])] == pytest.approx(fast)


def test_logit_is_finite_at_the_ends() -> None:
    assert np.isfinite(logit(np.array([0.0, 1.0]))).all()


def test_a_posts_score_does_not_depend_on_the_posts_beside_it(shipped: Classifier) -> None:
    data = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "complaints" / "train.csv"
    with data.open(encoding="utf-8") as fh:
        texts = [row["text"] for row in csv.DictReader(fh)][:600]
    together = shipped.classify_many(texts)
    assert sum(shipped.threshold / 2 < r.score < 0.6 for r in together) >= 10  # posts the encoder re-judged
    # Equal up to float summation order in the fast model (the encoder's batch effect was up to 0.07).
    assert [shipped.classify(t).score for t in texts] == pytest.approx([r.score for r in together], abs=1e-9)
