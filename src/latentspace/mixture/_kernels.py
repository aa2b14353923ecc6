"""Compiled E-steps of the Gaussian mixture for dense rows on the CPU.

One pass over a block of rows gives its log-likelihood and every statistic of
:class:`~latentspace.mixture._gaussian.GaussStats`, without the (rows × K) log-probabilities
and, for full covariances, the (rows × K × D) products the array route writes and reads back.
The rows go through in tiles of :data:`_TILE`, transposed so that every loop over them
is a vector loop: their centred copies x̃ = x − s, the K quadratic forms, the log-sum-exp and
responsibilities, then their sums Σ r_k, Σ r_k x̃ and Σ r_k x̃x̃ᵀ (or Σ r_k x̃²).

The quadratic forms are taken from the differences, Σ_d prec_kd (x̃_d − m_kd)² for diagonal
and spherical covariances and ‖L_kᵀx̃ − L_kᵀm_k‖² for full ones (m_k = μ_k − s), so they never
cancel or overflow the way the expanded form can. The rows are cut into sub-blocks of
:data:`_SUB_ROWS` whose partial sums are added in order, so the result does not depend on
the number of threads (the sums over a tile's rows are vectorised, so their order follows
the machine's vector width). Full covariances only go this way up to
:data:`FULL_MAX_FEATURES` features: at 32 this pass took 0.6 of the array route's time,
at 64 the same (100000 rows, 4 and 16 components, 2 cores), and beyond, the array route's
matrix products do the (D × D) work at BLAS speed.
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
FULL_MAX_FEATURES = 32  # full covariances up to this many features take the compiled pass
_LOG_2PI = math.log(2 * math.pi)
_broken = False  # set when numba cannot compile for this machine: the array route then runs

if numba is not None:
    # the row sums of a tile (Σ over its rows) may be reassociated so that they vectorise:
    # their order then follows this machine's vector width, never the thread count
    _FAST = {"reassoc", "contract", "nsz"}

    @numba.njit(inline="always", fastmath=_FAST, error_model="numpy")
    def _responsibilities(qT, mx, ti, total, w, use_w, t0, h, K, hard):  # pragma: no cover
        """Columns 0..h of the tile qT (K, T) of log-weighted densities → (weighted)
        responsibilities in place; returns the tile's Σ w log p(x) (hard: the largest
        terms, one-hot responsibilities, the first largest on ties).

        exp is evaluated as 2^n · p(r), r = x − n log 2 in [−½ log 2, ½ log 2], with a
        degree-13 Taylor polynomial (truncation below 1e-17, rounding a few units in the
        last place), which vectorises over the rows where the library call would not.
        ``total`` (T,) is scratch space for the rows' sums."""
        for i in range(h):
            mx[i] = qT[0, i]
        for k in range(1, K):
            for i in range(h):
                mx[i] = max(mx[i], qT[k, i])
        tf = ti.view(np.float64)
        if hard:
            taken = tf[0]  # a row of the scratch tile: 1.0 once a row has its component
            for i in range(h):
                taken[i] = 0.0
            for k in range(K):
                for i in range(h):
                    hit = qT[k, i] == mx[i] and taken[i] == 0.0
                    qT[k, i] = 1.0 if hit else 0.0
                    taken[i] = 1.0 if hit else taken[i]
        else:
            for k in range(K):
                for i in range(h):
                    x = max(qT[k, i] - mx[i], -700.0)
                    nf = math.floor(x * 1.4426950408889634 + 0.5)
                    r = (x - nf * 0.6931471803691238) - nf * 1.9082149292705877e-10
                    p = 1.0 + r * (1.0 + r * (0.5 + r * (1 / 6 + r * (1 / 24 + r * (
                        1 / 120 + r * (1 / 720 + r * (1 / 5040 + r * (1 / 40320 + r * (
                            1 / 362880 + r * (1 / 3628800 + r * (1 / 39916800 + r * (
                                1 / 479001600 + r / 6227020800))))))))))))
                    ti[k, i] = (np.int64(nf) + 1023) << 52
                    qT[k, i] = p
            for i in range(h):
                total[i] = 0.0
            for k in range(K):
                for i in range(h):
                    qT[k, i] *= tf[k, i]
                    total[i] += qT[k, i]
            for i in range(h):
                mx[i] += math.log(total[i])
                total[i] = (w[t0 + i] if use_w else 1.0) / total[i]
            for k in range(K):
                for i in range(h):
                    qT[k, i] *= total[i]
        acc = 0.0
        if use_w:
            if hard:
                for k in range(K):
                    for i in range(h):
                        qT[k, i] *= w[t0 + i]
            for i in range(h):
                acc += w[t0 + i] * mx[i]
        else:
            for i in range(h):
                acc += mx[i]
        return acc

    @numba.njit(inline="always", fastmath=_FAST, error_model="numpy")
    def _load_tile(X, shift, xcT, t0, h, D):  # pragma: no cover - compiled
        """xcT[:, :h] = (X[t0:t0 + h] − shift)ᵀ."""
        for i in range(h):
            for j in range(D):
                xcT[j, i] = X[t0 + i, j] - shift[j]

    @numba.njit(parallel=True, cache=True, nogil=True, fastmath=_FAST, error_model="numpy")
    def _diag_kernel(X, w, use_w, shift, mc, prec, const, hard,
                     nk, sums, second, ll):  # pragma: no cover - compiled
        """Diagonal (and spherical) covariances: mc, prec (K, D) are the centred means and
        the precisions, ``const`` (K,) holds log π_k + Σ_d log L_kd − D/2 log 2π."""
        n, D = X.shape
        K = const.shape[0]
        for b in numba.prange(ll.shape[0]):
            lo = b * _SUB_ROWS
            hi = min(n, lo + _SUB_ROWS)
            xcT = np.empty((D, _TILE))
            qT = np.empty((K, _TILE))
            mx = np.empty(_TILE)
            tot = np.empty(_TILE)
            ti = np.empty((K, _TILE), np.int64)
            nkb = nk[b]
            sb = sums[b]
            mb = second[b]
            nkb[:] = 0.0
            sb[:, :] = 0.0
            mb[:, :] = 0.0
            acc = 0.0
            for t0 in range(lo, hi, _TILE):
                h = min(_TILE, hi - t0)
                _load_tile(X, shift, xcT, t0, h, D)
                for k in range(K):
                    qk = qT[k]
                    for i in range(h):
                        qk[i] = 0.0
                    for j in range(D):
                        m = mc[k, j]
                        p = prec[k, j]
                        xj = xcT[j]
                        for i in range(h):
                            t = xj[i] - m
                            qk[i] += p * t * t
                    c = const[k]
                    for i in range(h):
                        qk[i] = c - 0.5 * qk[i]
                acc += _responsibilities(qT, mx, ti, tot, w, use_w, t0, h, K, hard)
                for k in range(K):
                    rk = qT[k]
                    s0 = 0.0
                    for i in range(h):
                        s0 += rk[i]
                    nkb[k] += s0
                    for j in range(D):
                        xj = xcT[j]
                        s1 = 0.0
                        s2 = 0.0
                        for i in range(h):
                            v = rk[i] * xj[i]
                            s1 += v
                            s2 += v * xj[i]
                        sb[k, j] += s1
                        mb[k, j] += s2
            ll[b] = acc

    @numba.njit(parallel=True, cache=True, nogil=True, fastmath=_FAST, error_model="numpy")
    def _full_kernel(X, w, use_w, shift, L, Lm, const, hard,
                     nk, sums, second, ll):  # pragma: no cover - compiled
        """Full covariances: L (K, D, D) the upper precision factors, Lm (K, D) = L_kᵀ m_k;
        ``second`` gets the upper triangle of Σ r x̃x̃ᵀ only (mirrored by the caller)."""
        n, D = X.shape
        K = const.shape[0]
        for b in numba.prange(ll.shape[0]):
            lo = b * _SUB_ROWS
            hi = min(n, lo + _SUB_ROWS)
            xcT = np.empty((D, _TILE))
            yT = np.empty((D, _TILE))
            rx = np.empty(_TILE)
            qT = np.empty((K, _TILE))
            mx = np.empty(_TILE)
            tot = np.empty(_TILE)
            ti = np.empty((K, _TILE), np.int64)
            nkb = nk[b]
            sb = sums[b]
            mb = second[b]
            nkb[:] = 0.0
            sb[:, :] = 0.0
            mb[:, :, :] = 0.0
            acc = 0.0
            for t0 in range(lo, hi, _TILE):
                h = min(_TILE, hi - t0)
                _load_tile(X, shift, xcT, t0, h, D)
                for k in range(K):
                    for e in range(D):  # y = L_kᵀ x̃ − L_kᵀ m_k; L_k upper: x̃_j reaches e >= j
                        ye = yT[e]
                        c = -Lm[k, e]
                        for i in range(h):
                            ye[i] = c
                        for j in range(e + 1):
                            l = L[k, j, e]
                            xj = xcT[j]
                            for i in range(h):
                                ye[i] += l * xj[i]
                    qk = qT[k]
                    for i in range(h):
                        qk[i] = 0.0
                    for e in range(D):
                        ye = yT[e]
                        for i in range(h):
                            qk[i] += ye[i] * ye[i]
                    c = const[k]
                    for i in range(h):
                        qk[i] = c - 0.5 * qk[i]
                acc += _responsibilities(qT, mx, ti, tot, w, use_w, t0, h, K, hard)
                for k in range(K):
                    rk = qT[k]
                    s0 = 0.0
                    for i in range(h):
                        s0 += rk[i]
                    nkb[k] += s0
                    for j in range(D):
                        xj = xcT[j]
                        s1 = 0.0
                        for i in range(h):
                            rx[i] = rk[i] * xj[i]
                            s1 += rx[i]
                        sb[k, j] += s1
                        for e in range(j, D):
                            xe = xcT[e]
                            s2 = 0.0
                            for i in range(h):
                                s2 += rx[i] * xe[i]
                            mb[k, j, e] += s2
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
            arrays = (np.ascontiguousarray(mc), np.ascontiguousarray(precT.T))
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
