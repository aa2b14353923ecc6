"""Compiled E-steps of the Gaussian mixture for dense rows on the CPU.

One pass over a block of rows gives its log-likelihood and every statistic of
:class:`~latentspace.mixture._gaussian.GaussStats`, without the (rows × K) log-probabilities
and, for full covariances, the (rows × K × D) products the array route writes and reads back.
Each row is visited once: its centred copy x̃ = x − s, the K quadratic forms, the
log-sum-exp and responsibilities, then its contributions r_k, r_k x̃ and r_k x̃x̃ᵀ (or r_k x̃²).

The quadratic forms are taken from the differences, Σ_d prec_kd (x̃_d − m_kd)² for diagonal
and spherical covariances and ‖L_kᵀx̃ − L_kᵀm_k‖² for full ones (m_k = μ_k − s), so they never
cancel or overflow the way the expanded form can. The rows are cut into sub-blocks of
:data:`_SUB_ROWS` whose partial sums are added in order, so the result does not depend on
the number of threads. Full covariances only go this way up to :data:`FULL_MAX_FEATURES`
features: beyond, the array route's matrix products are faster than a row at a time.
"""

from __future__ import annotations

import math

import numpy as np
import torch

try:  # without numba the array route of the E-step does the same work
    import numba
    from numba.core.errors import NumbaError as _CompileError
except ImportError:  # pragma: no cover - exercised where numba is absent
    numba = None  # type: ignore[assignment]
    _CompileError = RuntimeError  # type: ignore[assignment,misc]

__all__ = ["FULL_MAX_FEATURES", "GaussKernel"]

_SUB_ROWS = 1024  # rows per partial sum
_TILE = 64  # rows whose responsibilities are formed together
FULL_MAX_FEATURES = 4  # full covariances up to this many features take the compiled pass
_LOG_2PI = math.log(2 * math.pi)
_broken = False  # set when numba cannot compile for this machine: the array route then runs

if numba is not None:

    @numba.njit(inline="always", fastmath=True, error_model="numpy")
    def _softmax_tile(q, mx, ti, h, K, hard):  # pragma: no cover - compiled
        """Rows 0..h of the tile q (R, K) of log-weighted densities → responsibilities in
        place; returns the sum of the rows' log p(x) (hard: the largest terms, one-hot
        responsibilities). exp is evaluated as 2^n · p(r), r = x − n log 2 in [−½ log 2,
        ½ log 2] with a degree-13 Taylor polynomial (truncation below 1e-17, rounding a few
        units in the last place), which the compiler vectorises where the library call
        would not. ``mx`` (R,) gets each row's log p(x)."""
        for i in range(h):
            m = q[i, 0]
            best = 0
            for k in range(1, K):
                if q[i, k] > m:
                    m = q[i, k]
                    best = k
            mx[i] = m
            if hard:
                for k in range(K):
                    q[i, k] = 0.0
                q[i, best] = 1.0
        if hard:
            acc = 0.0
            for i in range(h):
                acc += mx[i]
            return acc
        tf = ti.view(np.float64)
        for i in range(h):
            m = mx[i]
            for k in range(K):
                x = max(q[i, k] - m, -700.0)
                nf = math.floor(x * 1.4426950408889634 + 0.5)
                r = (x - nf * 0.6931471803691238) - nf * 1.9082149292705877e-10
                p = 1.0 + r * (1.0 + r * (0.5 + r * (1 / 6 + r * (1 / 24 + r * (
                    1 / 120 + r * (1 / 720 + r * (1 / 5040 + r * (1 / 40320 + r * (
                        1 / 362880 + r * (1 / 3628800 + r * (1 / 39916800 + r * (
                            1 / 479001600 + r / 6227020800))))))))))))
                ti[i, k] = (np.int64(nf) + 1023) << 52
                q[i, k] = p
        acc = 0.0
        for i in range(h):
            total = 0.0
            for k in range(K):
                q[i, k] *= tf[i, k]
                total += q[i, k]
            inv = 1.0 / total
            for k in range(K):
                q[i, k] *= inv
            mx[i] += math.log(total)
            acc += mx[i]
        return acc

    @numba.njit(inline="always", error_model="numpy")
    def _weighted(q, mx, ti, h, K, hard, w, t0):  # pragma: no cover - compiled
        """:func:`_softmax_tile` with each row's log p(x) weighted by w[t0 + i]."""
        _softmax_tile(q, mx, ti, h, K, hard)
        acc = 0.0
        for i in range(h):
            acc += w[t0 + i] * mx[i]
        return acc

    @numba.njit(parallel=True, cache=True, nogil=True, error_model="numpy")
    def _diag_kernel(X, w, use_w, shift, mcT, precT, const, hard,
                     nk, sums, second, ll):  # pragma: no cover - compiled
        """Diagonal (and spherical) covariances: mcT, precT (D, K) are the centred means and
        the precisions, ``const`` (K,) holds log π_k + Σ_d log L_kd − D/2 log 2π."""
        n, D = X.shape
        K = const.shape[0]
        for b in numba.prange(ll.shape[0]):
            lo = b * _SUB_ROWS
            hi = min(n, lo + _SUB_ROWS)
            xc = np.empty((_TILE, D))
            q = np.empty((_TILE, K))
            mx = np.empty(_TILE)
            ti = np.empty((_TILE, K), np.int64)
            nkb = nk[b]
            sb = sums[b]
            mb = second[b]
            nkb[:] = 0.0
            sb[:, :] = 0.0
            mb[:, :] = 0.0
            acc = 0.0
            for t0 in range(lo, hi, _TILE):
                h = min(_TILE, hi - t0)
                for i in range(h):
                    for j in range(D):
                        xc[i, j] = X[t0 + i, j] - shift[j]
                    for k in range(K):
                        q[i, k] = 0.0
                    for j in range(D):
                        xj = xc[i, j]
                        for k in range(K):
                            t = xj - mcT[j, k]
                            q[i, k] += precT[j, k] * t * t
                    for k in range(K):
                        q[i, k] = const[k] - 0.5 * q[i, k]
                if use_w:
                    acc += _weighted(q, mx, ti, h, K, hard, w, t0)
                else:
                    acc += _softmax_tile(q, mx, ti, h, K, hard)
                for i in range(h):
                    wi = w[t0 + i] if use_w else 1.0
                    for k in range(K):
                        r = wi * q[i, k]
                        if r != 0.0:
                            nkb[k] += r
                            for j in range(D):
                                v = r * xc[i, j]
                                sb[k, j] += v
                                mb[k, j] += v * xc[i, j]
            ll[b] = acc

    @numba.njit(parallel=True, cache=True, nogil=True, error_model="numpy")
    def _full_kernel(X, w, use_w, shift, L, Lm, const, hard,
                     nk, sums, second, ll):  # pragma: no cover - compiled
        """Full covariances: L (K, D, D) the upper precision factors, Lm (K, D) = L_kᵀ m_k;
        ``second`` gets the upper triangle of Σ r x̃x̃ᵀ only (mirrored by the caller)."""
        n, D = X.shape
        K = const.shape[0]
        for b in numba.prange(ll.shape[0]):
            lo = b * _SUB_ROWS
            hi = min(n, lo + _SUB_ROWS)
            xc = np.empty((_TILE, D))
            y = np.empty(D)
            q = np.empty((_TILE, K))
            mx = np.empty(_TILE)
            ti = np.empty((_TILE, K), np.int64)
            nkb = nk[b]
            sb = sums[b]
            mb = second[b]
            nkb[:] = 0.0
            sb[:, :] = 0.0
            mb[:, :, :] = 0.0
            acc = 0.0
            for t0 in range(lo, hi, _TILE):
                h = min(_TILE, hi - t0)
                for i in range(h):
                    for j in range(D):
                        xc[i, j] = X[t0 + i, j] - shift[j]
                    for k in range(K):
                        for e in range(D):
                            y[e] = -Lm[k, e]
                        for j in range(D):  # L_k is upper triangular: row j reaches e >= j
                            xj = xc[i, j]
                            for e in range(j, D):
                                y[e] += xj * L[k, j, e]
                        s = 0.0
                        for e in range(D):
                            s += y[e] * y[e]
                        q[i, k] = const[k] - 0.5 * s
                if use_w:
                    acc += _weighted(q, mx, ti, h, K, hard, w, t0)
                else:
                    acc += _softmax_tile(q, mx, ti, h, K, hard)
                for i in range(h):
                    wi = w[t0 + i] if use_w else 1.0
                    for k in range(K):
                        r = wi * q[i, k]
                        if r != 0.0:
                            nkb[k] += r
                            for j in range(D):
                                v = r * xc[i, j]
                                sb[k, j] += v
                                for e in range(j, D):
                                    mb[k, j, e] += v * xc[i, e]
            ll[b] = acc


class GaussKernel:
    """The compiled E-step of one fit's covariance type; the kernel's arrays are derived
    once per parameter set (the same parameters serve every block of a pass)."""

    def __init__(self, cov_type: str):
        self.cov_type = cov_type
        self._cache: tuple = (None, ())  # (parameters, their arrays): one attribute, so that
        # threads sharing the family never pair one parameter set with another's arrays

    @staticmethod
    def applies(cov_type: str, n_features: int) -> bool:
        """Whether this covariance type on ``n_features`` features has a compiled pass."""
        if numba is None or _broken or cov_type == "tied":
            return False
        return cov_type != "full" or n_features <= FULL_MAX_FEATURES

    def _prepare(self, P, D: int) -> tuple:
        cached, arrays = self._cache
        if cached is P:
            return arrays
        mc = (P.means - P.shift).numpy()
        const = (P.log_det + torch.log(P.weights)).numpy() - 0.5 * D * _LOG_2PI
        L = np.ascontiguousarray(P.prec_chol.numpy())
        if self.cov_type == "full":
            arrays = (L, np.einsum("kd,kde->ke", mc, L))
        else:
            prec = L * L  # (K, D) diagonal, (K,) spherical
            precT = np.broadcast_to(prec.T if prec.ndim == 2 else prec[None, :],
                                    (D, mc.shape[0]))
            arrays = (np.ascontiguousarray(mc.T), np.ascontiguousarray(precT))
        arrays = (P.shift.numpy(), *arrays, const)
        self._cache = (P, arrays)
        return arrays

    def __call__(self, X: torch.Tensor, w, P, hard: bool):
        """``(nk, sums, second, loglik)`` of the block X (n, D) float64 under the parameters P
        (:class:`~latentspace.mixture._gaussian.GaussParams`), as float64 tensors and a
        float; None where the compiled pass does not apply (another device or layout, or
        numba cannot compile for this machine)."""
        global _broken
        if _broken or X.device.type != "cpu" or X.layout != torch.strided \
                or X.dtype != torch.float64 or X.shape[0] == 0:
            return None
        n, D = X.shape
        if not self.applies(self.cov_type, D):
            return None
        shift, first, second_arr, const = self._prepare(P, D)
        K = const.shape[0]
        A = np.ascontiguousarray(X.numpy())
        use_w = w is not None
        wa = np.ascontiguousarray(w.numpy(), dtype=np.float64) if use_w else np.ones(1)
        B = (n + _SUB_ROWS - 1) // _SUB_ROWS
        nk, ll, sums = np.empty((B, K)), np.empty(B), np.empty((B, K, D))
        full = self.cov_type == "full"
        second = np.empty((B, K, D, D) if full else (B, K, D))
        kernel = _full_kernel if full else _diag_kernel
        try:
            kernel(A, wa, use_w, shift, first, second_arr, const, bool(hard), nk, sums,
                   second, ll)
        except _CompileError:  # e.g. a numba that cannot target this machine
            _broken = True
            return None
        M = second.sum(0)
        if full:  # the kernel summed the upper triangle only
            iu = np.triu_indices(D, 1)
            M[:, iu[1], iu[0]] = M[:, iu[0], iu[1]]
        return (torch.from_numpy(nk.sum(0)), torch.from_numpy(sums.sum(0)),
                torch.from_numpy(M), float(ll.sum()))
