"""Tests for the feature rows (sparse + dense) and the logistic regressions fitted on them."""

from __future__ import annotations

import numpy as np
import pytest

from fairdesk.nlp.linear import Rows, fit, shared_sparse_parts


def _rows() -> Rows:
    # row 1 has no sparse entries: scores() must not borrow a neighbour's value for it.
    pieces = [
        (np.array([0, 2]), np.array([1.0, 0.5])),
        (np.array([], dtype=np.int64), np.array([])),
        (np.array([1]), np.array([2.0])),
    ]
    return Rows.stack(pieces, n_sparse=3, dense=np.array([[1.0], [2.0], [0.0]]))


def test_scores_by_hand() -> None:
    w = np.array([[1.0], [10.0], [100.0], [1000.0], [0.5]])  # 3 sparse, 1 dense, intercept
    got = _rows().scores(w)[:, 0]
    assert got.tolist() == pytest.approx([1.0 + 50.0 + 1000.0 + 0.5, 2000.0 + 0.5, 20.0 + 0.5])


def test_take_and_append_dense() -> None:
    rows = _rows()
    sub = rows.take(np.array([2, 0]))
    w = np.arange(5, dtype=float).reshape(5, 1)
    assert sub.scores(w)[:, 0].tolist() == pytest.approx(rows.scores(w)[[2, 0], 0].tolist())
    wide = rows.append_dense(np.array([[1.0], [1.0], [1.0]]))
    assert wide.n_features == 5
    w2 = np.vstack([w[:4], [[3.0]], w[4:]])
    assert (wide.scores(w2) - rows.scores(w))[:, 0].tolist() == pytest.approx([3.0, 3.0, 3.0])


def test_to_csr_holds_sparse_then_dense_columns() -> None:
    rows = _rows()
    w = np.array([[1.0], [10.0], [100.0], [1000.0], [0.5]])
    dense = rows.to_csr().toarray()
    assert dense.tolist() == [[1.0, 0.0, 0.5, 1.0], [0.0, 0.0, 0.0, 2.0], [0.0, 2.0, 0.0, 0.0]]
    assert (dense @ w[:-1, 0] + w[-1, 0]).tolist() == pytest.approx(rows.scores(w)[:, 0].tolist())


def _toy(n: int = 200) -> tuple[Rows, np.ndarray]:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, n)
    dense = np.c_[y + rng.normal(scale=0.5, size=n), rng.normal(size=n)]
    pieces = [(np.array([int(v)]), np.array([1.0])) for v in y]  # a perfectly informative sparse feature
    return Rows.stack(pieces, n_sparse=2, dense=dense), y


def test_binary_fit_learns_and_is_deterministic() -> None:
    rows, y = _toy()
    a = fit(rows, y, c=1.0)
    b = fit(rows, y, c=1.0)
    p = a.predict(rows)
    assert p.shape == (len(y),)
    assert ((p >= 0.5) == y).mean() == 1.0
    assert np.array_equal(a.weights, b.weights)


def test_stronger_regularisation_shrinks_weights() -> None:
    rows, y = _toy()
    assert np.abs(fit(rows, y, c=0.01).weights[:-1]).sum() < np.abs(fit(rows, y, c=10.0).weights[:-1]).sum()


def test_multinomial_probabilities_sum_to_one() -> None:
    rows, y = _toy()
    y3 = np.where(rows.dense[:, 1] > 0.5, 2, y)
    model = fit(rows, y3, n_classes=3, c=1.0, balanced=True)
    p = model.predict(rows)
    assert p.shape == (len(y3), 3)
    assert p.sum(axis=1) == pytest.approx(np.ones(len(y3)))
    assert (p.argmax(axis=1) == y3).mean() > 0.8


def test_shared_sparse_parts_give_each_models_predictions() -> None:
    x = _rows()
    y = np.array([1, 0, 1])
    binary = fit(x, y, c=1.0)
    multi = fit(x, np.array([0, 1, 2]), n_classes=3, c=1.0)
    wider = x.append_dense(np.array([[0.5], [0.0], [1.0]]))  # same sparse block, one more dense column
    stacked = fit(wider, y, c=1.0)
    parts = shared_sparse_parts(x, [binary, multi, stacked])
    assert binary.predict_with(x, parts[0]) == pytest.approx(binary.predict(x))
    assert multi.predict_with(x, parts[1]) == pytest.approx(multi.predict(x))
    assert stacked.predict_with(wider, parts[2]) == pytest.approx(stacked.predict(wider))
