"""Feature rows (sparse n-grams beside dense columns) and logistic regressions on them, fitted by scikit-learn."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import scipy.sparse as sp

logger = logging.getLogger(__name__)


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

    def to_csr(self) -> sp.csr_matrix:
        """All columns as one scipy CSR matrix (sparse block, then dense block), for fitting."""
        import scipy.sparse as sp  # training only (see fit)

        sparse = sp.csr_matrix((self.data, self.indices, self.indptr), shape=(self.n_rows, self.n_sparse))
        return sp.hstack([sparse, sp.csr_matrix(self.dense)], format="csr")


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
    """Minimise c * sum(weighted log loss) + ||w||^2 / 2 (intercept unpenalised) with scikit-learn's L-BFGS
    logistic regression; binary for two classes, multinomial otherwise. Deterministic: same rows, same weights."""
    # Imported here: scikit-learn (with scipy) costs ~80 MB resident, and a daemon only predicts.
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    y = np.asarray(y, dtype=np.int64)
    model = LogisticRegression(
        C=c, class_weight="balanced" if balanced else None, max_iter=max_iter, tol=tol, solver="lbfgs"
    )
    with warnings.catch_warnings():
        # A capped iteration count is a choice here (as it was with our own L-BFGS), not an error.
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x.to_csr(), y)
    coef = np.asarray(model.coef_, dtype=np.float64)  # (1, n_features) binary, (n_classes, n_features) otherwise
    weights = np.vstack([coef.T, np.asarray(model.intercept_, dtype=np.float64)[None, :]])
    if n_classes > 2 and weights.shape[1] != n_classes:
        raise ValueError(f"expected {n_classes} classes in y, found {weights.shape[1]}")
    logger.debug("logistic regression: %d rows, %d features, %d classes", x.n_rows, x.n_features, n_classes)
    return LinearModel(weights.astype(np.float32))
