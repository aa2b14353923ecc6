"""K-means on scipy.sparse rows: a source of CSR row blocks and the kernels that read them.

Distances come from the same expansion as on dense rows, ‖x − c‖² = ‖x‖² − 2 x·c + ‖c‖²,
with x·c one sparse × dense product per block (scipy), so the data are never densified; the
per-cluster sums are one sparse product of a (K, rows) one-hot weight matrix with the block.
Where numba is available, the E-step statistics of a fit come instead from one compiled pass
over the nonzeros (x·c_k, the argmin and the sums, row by row, split across threads).
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
from . import _lloyd

__all__ = ["SparseSource", "compiled_sparse_stats", "row_sq_norms", "sparse_block_rows", "sparse_labels", "sparse_stats",
           "sparse_sums", "sq_distances"]

_BLOCK_ELEMS = 1 << 20  # rows × clusters per block: the dense (rows, K) products


def sparse_block_rows(n_clusters: int) -> int:
    """Rows per block of a sparse pass, so that its (rows, K) products stay bounded."""
    return max(256, _BLOCK_ELEMS // max(n_clusters, 1))


def _row_view(X: sparse.csr_matrix, start: int, stop: int) -> sparse.csr_matrix:
    """Rows [start, stop) of a CSR matrix whose data and indices are views of X's (slicing
    would copy them on every pass)."""
    stop = min(stop, X.shape[0])
    lo, hi = int(X.indptr[start]), int(X.indptr[stop])
    indptr = X.indptr[start:stop + 1] - lo
    return sparse.csr_matrix((X.data[lo:hi], X.indices[lo:hi], indptr),
                             shape=(stop - start, X.shape[1]), copy=False)


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
            yield Chunk(_row_view(self.X, start, stop), w, start)

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


if _lloyd.available:
    numba = _lloyd.numba

    @numba.njit(parallel=True, cache=True, nogil=True)
    def _csr_stats_kernel(data, indices, indptr, CT, csq, w, use_w, n_parts,
                          counts, sums):  # pragma: no cover
        n = indptr.shape[0] - 1
        K = CT.shape[1]
        step = (n + n_parts - 1) // n_parts
        for t in numba.prange(n_parts):
            lo = t * step
            hi = min(n, lo + step)
            dot = np.empty(K)
            for i in range(lo, hi):
                dot[:] = 0.0
                for p in range(indptr[i], indptr[i + 1]):
                    j = indices[p]
                    v = np.float64(data[p])
                    for k in range(K):
                        dot[k] += v * CT[j, k]
                # argmin of ‖c_k‖² − 2 x·c_k, ties to the lowest k
                best = 0
                low = csq[0] - 2.0 * dot[0]
                for k in range(1, K):
                    val = csq[k] - 2.0 * dot[k]
                    if val < low:
                        low = val
                        best = k
                wi = w[i] if use_w else 1.0
                counts[t, best] += wi
                for p in range(indptr[i], indptr[i + 1]):
                    sums[t, best, indices[p]] += wi * np.float64(data[p])


def compiled_sparse_stats(X: sparse.csr_matrix, C: np.ndarray, w: np.ndarray | None,
                          n_threads: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Counts (K,) and weighted sums (K, d), float64, of CSR rows under the float64 centres
    ``C`` (K, d), in one compiled pass over the nonzeros (no row blocks are copied); None
    where the compiled kernels are unavailable."""
    if not _lloyd.available:
        return None
    C = np.asarray(C, dtype=np.float64)
    K, d = C.shape
    n = X.shape[0]
    parts = max(1, min(int(n_threads), n // 1024 + 1))
    counts = np.zeros((parts, K))
    sums = np.zeros((parts, K, d))
    weights = np.ones(1) if w is None else np.ascontiguousarray(w, dtype=np.float64)
    try:
        _csr_stats_kernel(np.ascontiguousarray(X.data), np.ascontiguousarray(X.indices),
                          np.ascontiguousarray(X.indptr), np.ascontiguousarray(C.T),
                          (C * C).sum(1), weights, w is not None, parts, counts, sums)
    except _lloyd.CompileError as exc:  # e.g. a numba that cannot target this machine
        _lloyd.disable(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        return None
    return counts.sum(0), sums.sum(0)


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
