"""L2-regularised logistic regression (binary or multinomial) on sparse rows, fitted by L-BFGS in numpy."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)
_HISTORY = 10
_ARMIJO = 1e-4


@dataclass(frozen=True, slots=True)
class Rows:
    """Feature rows: a sparse CSR block (columns 0..n_sparse-1) followed by a dense block."""

    indptr: np.ndarray  # int64, len n_rows + 1
    indices: np.ndarray  # int64
    data: np.ndarray  # float64
    n_sparse: int
    dense: np.ndarray  # float64, (n_rows, n_dense)

    @property
    def n_rows(self) -> int:
        return len(self.indptr) - 1

    @property
    def n_features(self) -> int:
        return self.n_sparse + self.dense.shape[1]

    @classmethod
    def stack(cls, pieces: list[tuple[np.ndarray, np.ndarray]], n_sparse: int, dense: np.ndarray) -> Rows:
        """Build from per-row sparse (indices, values) pairs and a dense block with one row per piece."""
        lengths = np.array([len(i) for i, _ in pieces], dtype=np.int64)
        indptr = np.zeros(len(pieces) + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        indices = np.concatenate([i for i, _ in pieces]) if pieces else np.zeros(0, np.int64)
        data = np.concatenate([v for _, v in pieces]) if pieces else np.zeros(0)
        dense = np.asarray(dense, dtype=np.float64).reshape(len(pieces), -1)
        return cls(indptr, indices.astype(np.int64), data.astype(np.float64), n_sparse, dense)

    def append_dense(self, block: np.ndarray) -> Rows:
        """Add dense columns after the existing ones."""
        return Rows(self.indptr, self.indices, self.data, self.n_sparse, np.hstack([self.dense, block]))

    def take(self, idx: np.ndarray) -> Rows:
        """The rows at `idx`, in that order."""
        idx = np.asarray(idx, dtype=np.int64)
        starts = self.indptr[idx]
        lengths = self.indptr[idx + 1] - starts
        indptr = np.zeros(len(idx) + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        pos = np.arange(indptr[-1], dtype=np.int64) + np.repeat(starts - indptr[:-1], lengths)
        return Rows(indptr, self.indices[pos], self.data[pos], self.n_sparse, self.dense[idx])

    def scores(self, w: np.ndarray) -> np.ndarray:
        """X @ w[:-1] + w[-1] for weights with one extra (intercept) row."""
        return self.sparse_dot(w[: self.n_sparse]) + self.dense_scores(w)

    def dense_scores(self, w: np.ndarray) -> np.ndarray:
        """The dense columns' part of scores(w), intercept included."""
        n_dense = self.dense.shape[1]
        return self.dense @ w[self.n_sparse : self.n_sparse + n_dense] + w[-1]

    def sparse_dot(self, w: np.ndarray) -> np.ndarray:
        """The sparse block times `w` (n_sparse rows, k columns)."""
        out = np.zeros((self.n_rows, w.shape[1]), dtype=np.result_type(w.dtype, self.data.dtype))
        lengths = np.diff(self.indptr)
        nonempty = lengths > 0
        if nonempty.any():
            # reduceat over the starts of non-empty rows only: an empty row would otherwise borrow a value.
            prod = self.data[:, None] * w[self.indices]
            out[nonempty] = np.add.reduceat(prod, self.indptr[:-1][nonempty], axis=0)
        return out

    def gradient(self, resid: np.ndarray) -> np.ndarray:
        """X^T @ resid with an intercept row, shaped like the weights."""
        lengths = np.diff(self.indptr)
        sparse = np.stack(
            [
                np.bincount(self.indices, weights=self.data * np.repeat(resid[:, j], lengths), minlength=self.n_sparse)
                for j in range(resid.shape[1])
            ],
            axis=1,
        )
        return np.vstack([sparse, self.dense.T @ resid, resid.sum(axis=0, keepdims=True)])


def _minimise(
    fun: Callable[[np.ndarray], tuple[float, np.ndarray]], x0: np.ndarray, max_iter: int, tol: float
) -> tuple[np.ndarray, int]:
    x = x0
    f, g = fun(x)
    s_hist: list[np.ndarray] = []
    y_hist: list[np.ndarray] = []
    n_iter = 0
    for n_iter in range(1, max_iter + 1):  # noqa: B007  (n_iter is reported)
        if float(np.abs(g).max()) <= tol:
            break
        q = g.copy()
        alphas = []
        for s, yv in zip(reversed(s_hist), reversed(y_hist), strict=True):
            rho = 1.0 / float(yv @ s)
            a = rho * float(s @ q)
            q -= a * yv
            alphas.append((rho, a, s, yv))
        if s_hist:
            q *= float(s_hist[-1] @ y_hist[-1]) / float(y_hist[-1] @ y_hist[-1])
        else:
            q /= max(1.0, float(np.linalg.norm(g)))
        for rho, a, s, yv in reversed(alphas):
            q += s * (a - rho * float(yv @ q))
        d = -q
        slope = float(g @ d)
        if slope >= 0:  # not a descent direction: restart from steepest descent
            s_hist.clear()
            y_hist.clear()
            d, slope = -g, -float(g @ g)
        step = 1.0
        while True:
            x_new = x + step * d
            f_new, g_new = fun(x_new)
            if f_new <= f + _ARMIJO * step * slope or step < 1e-12:
                break
            step *= 0.5
        s, yv = x_new - x, g_new - g
        if float(s @ yv) > 1e-12:
            s_hist.append(s)
            y_hist.append(yv)
            if len(s_hist) > _HISTORY:
                s_hist.pop(0)
                y_hist.pop(0)
        converged = abs(f - f_new) <= 1e-10 * max(1.0, abs(f))
        x, f, g = x_new, f_new, g_new
        if converged:
            break
    return x, n_iter


@dataclass(frozen=True, slots=True)
class LinearModel:
    """Weights (n_features + 1 intercept row, n_outputs); one output = sigmoid, several = softmax."""

    weights: np.ndarray

    def predict(self, x: Rows) -> np.ndarray:
        """Class probabilities: shape (n_rows,) for a binary model, (n_rows, n_classes) otherwise."""
        return self._probabilities(x.scores(self.weights.astype(np.float64)))

    def predict_with(self, x: Rows, sparse_part: np.ndarray) -> np.ndarray:
        """predict(x), given x's sparse block times this model's sparse weights (see predict_many)."""
        return self._probabilities(sparse_part + x.dense_scores(self.weights.astype(np.float64)))

    @staticmethod
    def _probabilities(z: np.ndarray) -> np.ndarray:
        if z.shape[1] == 1:
            return 1.0 / (1.0 + np.exp(-np.clip(z[:, 0], -50, 50)))
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)


def shared_sparse_parts(x: Rows, models: Sequence[LinearModel]) -> list[np.ndarray]:
    """Each model's sparse part of the scores on rows that share x's sparse block, in one pass over it.

    Models whose rows differ only in dense columns (stacked features) share the expensive sparse product."""
    widths = [m.weights.shape[1] for m in models]
    stacked = np.hstack([m.weights[: x.n_sparse].astype(np.float64) for m in models])
    parts = x.sparse_dot(stacked)
    return np.split(parts, np.cumsum(widths)[:-1], axis=1)


def fit(
    x: Rows,
    y: np.ndarray,
    *,
    n_classes: int = 2,
    c: float = 1.0,
    balanced: bool = False,
    max_iter: int = 500,
    tol: float = 1e-4,
) -> LinearModel:
    """Minimise c * sum(weighted log loss) + ||w||^2 / 2 (intercept unpenalised); deterministic, like sklearn's.

    Internally the objective is divided by c * n (as scikit-learn does), so `tol` bounds the largest gradient
    entry of the mean loss.
    """
    y = np.asarray(y, dtype=np.int64)
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    weights = np.ones(len(y))
    if balanced:
        weights = (len(y) / (n_classes * np.maximum(counts, 1.0)))[y]
    k = 1 if n_classes == 2 else n_classes
    n_feat = x.n_features + 1
    n_rows = max(len(y), 1)
    penal = np.ones((n_feat, k))
    penal[-1] = 0.0
    onehot = np.zeros((len(y), n_classes))
    onehot[np.arange(len(y)), y] = 1.0

    def fun(flat: np.ndarray) -> tuple[float, np.ndarray]:
        w = flat.reshape(n_feat, k)
        z = x.scores(w)
        if k == 1:
            z1 = z[:, 0]
            loss = np.logaddexp(0.0, z1) - y * z1
            resid = (1.0 / (1.0 + np.exp(-z1)) - y)[:, None]
        else:
            z = z - z.max(axis=1, keepdims=True)
            logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
            loss = -(onehot * logp).sum(axis=1)
            resid = np.exp(logp) - onehot
        resid *= (weights / n_rows)[:, None]
        grad = x.gradient(resid) + penal * w / (c * n_rows)
        value = float(weights @ loss) / n_rows + 0.5 * float(((penal * w) * w).sum()) / (c * n_rows)
        return value, grad.ravel()

    flat, n_iter = _minimise(fun, np.zeros(n_feat * k), max_iter, tol)
    logger.debug("logistic regression: %d rows, %d features, %d classes, %d iterations", n_rows, n_feat, k, n_iter)
    return LinearModel(flat.reshape(n_feat, k).astype(np.float32))
