"""K-means on scipy.sparse rows: a source of CSR row blocks and the kernels that read them.

Distances come from the same expansion as on dense rows, ‖x − c‖² = ‖x‖² − 2 x·c + ‖c‖²,
with x·c one sparse × dense product per block (scipy), so the data are never densified; the
per-cluster sums are one sparse product of a (K, rows) one-hot weight matrix with the block.
Everything is computed in float64; blocks hold at most ``_BLOCK_ELEMS`` (rows × clusters)
products, so the memory of a pass is bounded whatever the number of rows. There is no
centring frame for sparse data (subtracting a mean would fill every entry): the rows are only
scaled, by the exact power of two of extreme data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from scipy import sparse

from ..data import Chunk

__all__ = ["SparseSource", "row_sq_norms", "sparse_block_rows", "sparse_labels", "sparse_stats",
           "sparse_sums", "sq_distances"]

_BLOCK_ELEMS = 1 << 20  # rows × clusters per block: the dense (rows, K) products


def sparse_block_rows(n_clusters: int) -> int:
    """Rows per block of a sparse pass, so that its (rows, K) products stay bounded."""
    return max(256, _BLOCK_ELEMS // max(n_clusters, 1))


class SparseSource:
    """A CSR matrix seen as a source (see :class:`latentspace.data.Source`): its chunks hold
    CSR row blocks in ``Chunk.X``, ``take`` returns dense rows as a float64 tensor.

    Parameters
    ----------
    X : scipy.sparse.csr_matrix of shape (n_samples, n_features)
    sample_weight : (n_samples,) float64 tensor or None
    chunk_rows : int
    """

    def __init__(self, X: sparse.csr_matrix, sample_weight: torch.Tensor | None, *,
                 chunk_rows: int):
        self.X = X
        self.w = sample_weight
        self.n_samples, self.n_features = X.shape
        self.dtype = torch.float64 if X.dtype == np.float64 else torch.float32
        self.device = torch.device("cpu")
        self.chunk_rows = max(1, int(chunk_rows))

    def chunks(self) -> Iterator[Chunk]:
        for start in range(0, self.n_samples, self.chunk_rows):
            stop = start + self.chunk_rows
            w = None if self.w is None else self.w[start:stop]
            yield Chunk(self.X[start:stop], w, start)

    def map_reduce(self, f: Callable[[Chunk], Any]) -> Any:
        total = None
        for c in self.chunks():
            v = f(c)
            total = v if total is None else total + v
        return total

    def map_chunks(self, f: Callable[[Chunk], Any]) -> list:
        return [f(c) for c in self.chunks()]

    def take(self, index) -> torch.Tensor:
        rows = self.X[np.asarray(index, dtype=np.int64)].toarray()
        return torch.from_numpy(np.asarray(rows, dtype=np.float64))

    def take_weights(self, index) -> torch.Tensor | None:
        if self.w is None:
            return None
        return self.w[torch.as_tensor(np.asarray(index, dtype=np.int64))]


def row_sq_norms(X: sparse.csr_matrix) -> np.ndarray:
    """‖x_n‖² of every row in float64: (n,)."""
    sq = X.multiply(X).sum(axis=1)
    return np.asarray(sq, dtype=np.float64).ravel()


def sq_distances(X: sparse.csr_matrix, C: np.ndarray, xsq: np.ndarray | None = None) -> np.ndarray:
    """‖x_n − c_k‖² of every pair, clipped at 0: (n, K) float64 from CSR rows X (n, d) and
    dense centres C (K, d)."""
    C = np.asarray(C, dtype=np.float64)
    xsq = row_sq_norms(X) if xsq is None else xsq
    d2 = np.asarray(X @ C.T, dtype=np.float64)  # (n, K) sparse @ dense -> dense
    d2 *= -2.0
    d2 += (C * C).sum(1)[None, :]
    d2 += xsq[:, None]
    return np.maximum(d2, 0.0, out=d2)


def _blocks(X: sparse.csr_matrix, K: int):
    rows = sparse_block_rows(K)
    for start in range(0, X.shape[0], rows):
        yield start, X[start : start + rows]


def sparse_labels(X: sparse.csr_matrix, C: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centre (n,) int64 and its squared distance (n,) float64 for CSR rows.

    The argmin is taken over ‖c_k‖² − 2 x·c_k (ties: lowest k, as on dense rows).
    """
    C = np.asarray(C, dtype=np.float64)
    K = C.shape[0]
    csq = (C * C).sum(1)
    labels = np.empty(X.shape[0], dtype=np.int64)
    d2 = np.empty(X.shape[0])
    for start, Xb in _blocks(X, K):
        part = np.asarray(Xb @ (-2.0 * C).T, dtype=np.float64)  # (nb, K)
        part += csq[None, :]
        lab = part.argmin(1)
        stop = start + Xb.shape[0]
        labels[start:stop] = lab
        d2[start:stop] = np.maximum(part[np.arange(lab.shape[0]), lab] + row_sq_norms(Xb), 0.0)
    return labels, d2


def sparse_sums(X: sparse.csr_matrix, labels: np.ndarray, w: np.ndarray | None,
                K: int) -> tuple[np.ndarray, np.ndarray]:
    """Weight (K,) and weighted sum (K, d) of the rows of each cluster, in float64."""
    n = X.shape[0]
    weights = np.ones(n) if w is None else np.asarray(w, dtype=np.float64)
    onehot = sparse.csr_matrix((weights, (labels, np.arange(n))), shape=(K, n))
    sums = np.asarray((onehot @ X.astype(np.float64)).toarray(), dtype=np.float64)
    counts = np.bincount(labels, weights=weights, minlength=K)
    return counts, sums


def sparse_stats(X: sparse.csr_matrix, C: np.ndarray, w: np.ndarray | None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Labels (n,), squared distances (n,), counts (K,) and sums (K, d) of one E-step."""
    labels, d2 = sparse_labels(X, C)
    counts, sums = sparse_sums(X, labels, w, C.shape[0])
    return labels, d2, counts, sums
