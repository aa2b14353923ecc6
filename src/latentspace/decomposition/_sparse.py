"""PCA of scipy.sparse data without densifying it, and the implicitly centred operator.

Centring a sparse X would fill it in, so no route forms Xc = X − 1μᵀ:

- the covariance route takes the sparse product XᵀX (a dense d×d result) and centres the
  matrix instead of the data, M₂ = XᵀX − n μμᵀ, with the diagonal (the column scatters)
  summed without cancellation over the stored entries (:func:`column_scatter`);
- ARPACK and the randomized range finder see Xc only through products,
  Xc v = X v − 1 (μᵀv) and Xcᵀ u = Xᵀ u − μ (1ᵀu) (:class:`CentredOperator`), so their
  memory is that of X plus a few n×k and d×k blocks.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

__all__ = ["CentredOperator", "column_scatter", "sparse_mean", "sparse_scatter"]


def sparse_mean(X: sp.spmatrix) -> np.ndarray:
    """Column means of ``X`` (n, d) in float64, shape (d,)."""
    return np.asarray(X.sum(axis=0, dtype=np.float64)).ravel() / X.shape[0]


def column_scatter(X: sp.spmatrix, mean: np.ndarray) -> np.ndarray:
    """Σᵢ (xᵢⱼ − μⱼ)² per column, shape (d,), float64, without the cancellation of Σx² − nμ².

    The stored entries contribute (x − μ)² each and the implicit zeros (n − nnzⱼ) μⱼ².
    """
    n, d = X.shape
    X = X.tocsr()
    cols = X.indices
    dev = X.data.astype(np.float64) - mean[cols]
    stored = np.bincount(cols, weights=dev * dev, minlength=d)
    count = np.bincount(cols, minlength=d)
    return stored + (n - count) * mean * mean


def sparse_scatter(X: sp.spmatrix, mean: np.ndarray) -> np.ndarray:
    """Σ (x − μ)(x − μ)ᵀ = XᵀX − n μμᵀ, shape (d, d), float64, from the sparse product.

    The product runs in float64 whatever X's precision (a float64 copy of the stored values
    only); the diagonal is replaced by :func:`column_scatter`, which has no cancellation.
    """
    X64 = X.astype(np.float64)
    S = np.asarray((X64.T @ X64).toarray())
    S -= X.shape[0] * np.outer(mean, mean)
    S = 0.5 * (S + S.T)
    np.fill_diagonal(S, column_scatter(X, mean))
    return S


class CentredOperator:
    """Products with Xc = X − 1μᵀ without forming it, as torch tensors on the CPU.

    Parameters
    ----------
    X : scipy.sparse matrix (n, d)
    mean : ndarray (d,)
        Column means (float64); the products run in X's dtype.
    """

    def __init__(self, X: sp.spmatrix, mean: np.ndarray):
        self.X, self.XT = X.tocsr(), X.T.tocsr()
        self.shape = X.shape
        self.dtype = X.dtype
        self.mean = mean.astype(X.dtype)
        self.torch_dtype = torch.float64 if X.dtype == np.float64 else torch.float32

    def matmat(self, M: np.ndarray) -> np.ndarray:
        """Xc M for M (d, m) -> (n, m)."""
        M = np.asarray(M, dtype=self.dtype)
        return np.asarray(self.X @ M) - (self.mean @ M)[None, :]

    def rmatmat(self, M: np.ndarray) -> np.ndarray:
        """Xcᵀ M for M (n, m) -> (d, m)."""
        M = np.asarray(M, dtype=self.dtype)
        return np.asarray(self.XT @ M) - np.outer(self.mean, M.sum(0))

    def mul(self, M: torch.Tensor) -> torch.Tensor:
        """Xc M on tensors (the randomized solver's interface)."""
        return torch.from_numpy(np.ascontiguousarray(self.matmat(M.numpy())))

    def rmul(self, M: torch.Tensor) -> torch.Tensor:
        """Xcᵀ M on tensors."""
        return torch.from_numpy(np.ascontiguousarray(self.rmatmat(M.numpy())))

    def linear_operator(self):
        """The same products as a :class:`scipy.sparse.linalg.LinearOperator` (for ARPACK)."""
        from scipy.sparse.linalg import LinearOperator

        def mv(v):
            return self.matmat(np.asarray(v).reshape(-1, 1)).ravel()

        def rmv(u):
            return self.rmatmat(np.asarray(u).reshape(-1, 1)).ravel()

        return LinearOperator(self.shape, matvec=mv, rmatvec=rmv, matmat=self.matmat,
                              rmatmat=self.rmatmat, dtype=self.dtype)
