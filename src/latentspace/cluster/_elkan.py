"""Elkan's K-means step: Lloyd's assignment with distance bounds (Elkan 2003, ICML).

Every row keeps an upper bound u ≥ ‖x − c_a‖ on the distance to its assigned centre a and a
lower bound l_k ≤ ‖x − c_k‖ for every centre. When the centres move by δ_k, the triangle
inequality keeps them valid as u + δ_a and max(l_k − δ_k, 0) (Elkan's Lemma 1 and 2, read the
other way), whatever the move, so the bounds carry over between iterations and also across
an empty-cluster relocation. A distance is computed only when the bounds cannot exclude a
centre: k is skipped when u ≤ l_k or u ≤ ½‖c_a − c_k‖, and the whole row when
u ≤ ½ min_{k≠a} ‖c_a − c_k‖. On well separated clusters most rows skip every centre after a
few iterations. The labels are those of Lloyd's step up to exact ties and rounding: the
distances here are taken from the differences in float64, Lloyd's from the expansion.

The bounds cost n × K float64 (as in scikit-learn's Elkan). Compiled by numba; without it
``available`` is False and the estimator uses Lloyd's step.
"""

from __future__ import annotations

import numpy as np
import torch

from . import _lloyd

__all__ = ["ElkanState", "available"]

available = _lloyd.numba is not None

if available:
    numba = _lloyd.numba

    @numba.njit(parallel=True, cache=True, nogil=True)
    def _elkan_kernel(X, C, shift, half, s, w, use_w, fresh, n_parts,
                      labels, upper, lower, counts, sums):  # pragma: no cover
        n, d = X.shape
        K = C.shape[0]
        step = (n + n_parts - 1) // n_parts
        for t in numba.prange(n_parts):
            lo = t * step
            hi = min(n, lo + step)
            for i in range(lo, hi):
                if fresh:
                    a = 0
                    u = np.inf
                    for k in range(K):
                        acc = 0.0
                        for j in range(d):
                            diff = X[i, j] - C[k, j]
                            acc += diff * diff
                        dk = np.sqrt(acc)
                        lower[i, k] = dk
                        if dk < u:
                            u = dk
                            a = k
                else:
                    a = labels[i]
                    u = upper[i] + shift[a]
                    for k in range(K):
                        v = lower[i, k] - shift[k]
                        lower[i, k] = v if v > 0.0 else 0.0
                    if u > s[a]:
                        tight = False
                        for k in range(K):
                            if k == a or u <= lower[i, k] or u <= half[a, k]:
                                continue
                            if not tight:  # make u exact before computing other distances
                                acc = 0.0
                                for j in range(d):
                                    diff = X[i, j] - C[a, j]
                                    acc += diff * diff
                                u = np.sqrt(acc)
                                lower[i, a] = u
                                tight = True
                                if u <= lower[i, k] or u <= half[a, k]:
                                    continue
                            acc = 0.0
                            for j in range(d):
                                diff = X[i, j] - C[k, j]
                                acc += diff * diff
                            dk = np.sqrt(acc)
                            lower[i, k] = dk
                            if dk < u or (dk == u and k < a):  # ties: lowest k, as Lloyd
                                u = dk
                                a = k
                labels[i] = a
                upper[i] = u
                wi = w[i] if use_w else 1.0
                counts[t, a] += wi
                for j in range(d):
                    sums[t, a, j] += wi * X[i, j]


class ElkanState:
    """The bounds of one fit's rows, per chunk of its source (keyed by the chunk's offset),
    with the centres they were last valid for. One state per fit: the estimator creates it
    and the engine model carries it."""

    def __init__(self) -> None:
        self._chunks: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}

    def stats(self, X: torch.Tensor, C: torch.Tensor, w: torch.Tensor | None, offset: int,
              n_threads: int) -> tuple[np.ndarray, np.ndarray]:
        """Counts (K,) and weighted sums (K, d), float64, of one chunk under the float64
        centres ``C`` (K, d), updating the chunk's bounds."""
        Xn = np.ascontiguousarray(X.numpy())
        Cn = np.ascontiguousarray(C.numpy(), dtype=np.float64)
        n, d = Xn.shape
        K = Cn.shape[0]
        state = self._chunks.get(offset)
        fresh = state is None or state[0].shape != (n,) or state[2].shape != (n, K)
        if state is None or fresh:
            labels = np.zeros(n, dtype=np.int64)
            upper = np.zeros(n)
            lower = np.zeros((n, K))
            shift = np.zeros(K)
        else:
            labels, upper, lower, old = state
            shift = np.sqrt(((Cn - old) ** 2).sum(1))
        cc = np.sqrt(np.maximum(((Cn[:, None, :] - Cn[None, :, :]) ** 2).sum(2), 0.0))
        half = 0.5 * cc  # (K, K)
        masked = half + np.diag(np.full(K, np.inf))
        s = masked.min(1) if K > 1 else np.full(1, np.inf)
        parts = max(1, min(int(n_threads), n // 1024 + 1))
        counts = np.zeros((parts, K))
        sums = np.zeros((parts, K, d))
        weights = np.ones(1) if w is None else np.ascontiguousarray(w.numpy(), dtype=np.float64)
        _elkan_kernel(Xn, Cn, shift, half, s, weights, w is not None, fresh, parts,
                      labels, upper, lower, counts, sums)
        self._chunks[offset] = (labels, upper, lower, Cn.copy())
        return counts.sum(0), sums.sum(0)
