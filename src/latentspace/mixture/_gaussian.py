"""Gaussian mixture with full, tied, diagonal or spherical covariances, fitted by EM.

p(x) = Σ_k π_k N(x | μ_k, Σ_k). Each Σ_k is kept through the Cholesky factor L_k of its
precision (Σ_k⁻¹ = L_k L_kᵀ), so that

    log N(x | μ_k, Σ_k) = −½ (D log 2π + ‖L_kᵀ(x − μ_k)‖²) + Σ_d log (L_k)_dd      (1)

needs no inverse and its log-determinant comes from the factor's diagonal. For the full type
the quadratic forms of a block of rows against all K components come from one matrix
product X [L_1 … L_K] (n × KD).

The statistics of a pass are N_k = Σ r_nk, S_k = Σ r_nk (x_n − s) and the second moments
M_k = Σ r_nk (x_n − s)(x_n − s)ᵀ (or their diagonal) around a fixed shift s, the data mean:
centring keeps E[xxᵀ] − E[x]E[x]ᵀ from cancelling for data far from the origin, and a shift
shared by all components lets one matrix product give every M_k. The M-step (Bishop 2006,
eqs. 9.24–9.26), with δ_k = S_k/N_k:

    N_k ← N_k + 10ε,   μ_k = s + δ_k,   Σ_k = M_k/N_k − δ_k δ_kᵀ + reg_covar·I,   π_k = N_k/ΣN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from .._math import format_unscaled, ldexp_exact, row_exponents, scaled_half_sq_norm
from .._memory import check_allocation
from .._validation import (
    ParameterError,
    check_choice,
    check_float,
    check_missing,
    check_param_array,
)
from .._backend import ArrayLike, ArrayOrTensor, RandomStateLike
from . import _missing
from ._kernels import GaussKernel
from ._stream import DEFAULT_LEARNING_DECAY, DEFAULT_LEARNING_OFFSET
from ._base import Family, MixtureBase, MixtureStats, check_means_init, check_weights_init

if TYPE_CHECKING:
    from ..cluster import KMeans

__all__ = ["GaussianMixture", "check_precisions_init"]

_LOG_2PI = math.log(2 * math.pi)
_EPS10 = 10 * float(np.finfo(np.float64).eps)
_COV_TYPES = ("full", "tied", "diag", "spherical")
# flops per EM iteration beyond which wide data (n < D) are refused full/tied covariances:
# about a second of one core's dense linear algebra (D ≈ 3100 for one component)
_WIDE_FLOPS = 2e10
_ILL = (
    "Fitting the mixture model failed because some components have ill-defined empirical "
    "covariance (for instance caused by singleton or collapsed samples). Try to decrease the "
    "number of components, increase reg_covar (now {reg}), or scale the input data."
)


@dataclass(frozen=True)
class GaussParams:
    """Parameters in working units (data × scale), all float64.

    ``covariances`` / ``prec_chol`` shapes by type: full (K, D, D), tied (D, D), diag (K, D),
    spherical (K,). ``shift`` (D,) is the data mean, around which the quadratic forms and the
    moments are computed.
    """

    weights: torch.Tensor | None
    means: torch.Tensor | None
    covariances: torch.Tensor | None
    prec_chol: torch.Tensor | None
    log_det: torch.Tensor | None  # (K,) Σ_d log (L_k)_dd
    shift: torch.Tensor


@dataclass(frozen=True)
class GaussStats(MixtureStats):
    """N_k, S_k = Σ w r (x − s) and the second moments by covariance type."""

    sums: torch.Tensor = None  # type: ignore[assignment]  # always given; (K, D)
    second: torch.Tensor = None  # type: ignore[assignment]  # always given; full (K, D, D); tied (D, D); diag/spherical (K, D)


# ----------------------------------------------------------------------------- numerics
def _precision_cholesky(cov: torch.Tensor, cov_type: str, reg: float) -> torch.Tensor:
    """Cholesky factor L of the precision (Σ⁻¹ = L Lᵀ, L upper) for each covariance."""
    if cov_type in ("full", "tied"):
        C, info = torch.linalg.cholesky_ex(cov)  # lower: Σ = C Cᵀ
        if bool((info != 0).any()):
            bad = torch.nonzero(info.reshape(-1)).flatten().tolist()
            where = f" (component {bad[0]})" if cov_type == "full" else ""
            raise ValueError(_ILL.format(reg=reg) + where)
        eye = torch.eye(cov.shape[-1], dtype=cov.dtype, device=cov.device).expand_as(cov)
        # Σ⁻¹ = C⁻ᵀ C⁻¹, so L = C⁻ᵀ (upper triangular)
        return torch.linalg.solve_triangular(C, eye, upper=False).transpose(-1, -2)
    if bool((cov <= 0).any()) or not bool(torch.isfinite(cov).all()):
        raise ValueError(_ILL.format(reg=reg))
    return 1.0 / torch.sqrt(cov)


def _log_det(prec_chol: torch.Tensor, cov_type: str, K: int, D: int) -> torch.Tensor:
    """Σ_d log (L_k)_dd for each component: (K,)."""
    if cov_type == "full":
        return torch.log(torch.diagonal(prec_chol, dim1=-2, dim2=-1)).sum(-1)
    if cov_type == "tied":
        return torch.log(torch.diagonal(prec_chol)).sum().expand(K)
    if cov_type == "diag":
        return torch.log(prec_chol).sum(1)
    return D * torch.log(prec_chol)


def _quadratic(Xc: torch.Tensor, P: GaussParams, cov_type: str) -> torch.Tensor:
    """‖L_kᵀ(x − μ_k)‖² for a block of centred rows Xc = X − shift: (n, K)."""
    assert P.means is not None and P.prec_chol is not None  # complete parameters here
    mc = P.means - P.shift  # (K, D)
    L = P.prec_chol
    if cov_type == "full":
        K, D = mc.shape
        # X [L_1 … L_K] in one product: (n, D) @ (D, K·D)
        Y = (Xc @ L.permute(1, 0, 2).reshape(D, K * D)).view(-1, K, D)
        Y -= torch.einsum("kd,kde->ke", mc, L)[None]
        return torch.linalg.vector_norm(Y, dim=-1).square_()  # one pass over (n, K, D)
    if cov_type == "tied":
        Y = (Xc @ L)[:, None, :] - (mc @ L)[None]  # (n, K, D)
        return torch.linalg.vector_norm(Y, dim=-1).square_()
    if cov_type == "diag":
        prec = L * L  # (K, D)
        q = (Xc * Xc) @ prec.T
        q -= 2.0 * (Xc @ (mc * prec).T)
        q += (mc * mc * prec).sum(1)
        return _overflowed(q, Xc, mc, prec)
    prec = L * L  # (K,)
    q = (Xc * Xc).sum(1, keepdim=True) * prec[None]
    q -= 2.0 * (Xc @ mc.T) * prec[None]
    q += (mc * mc).sum(1) * prec
    return _overflowed(q, Xc, mc, prec[:, None])


def _overflowed(q: torch.Tensor, Xc: torch.Tensor, mc: torch.Tensor, prec: torch.Tensor):
    """``q`` with the rows whose expanded form overflowed (inf − inf) taken from the
    differences, Σ_d prec_kd (x_d − μ_kd)², which cannot cancel: (n, K). One reduction
    checks the block; ordinary blocks are returned as they are."""
    if math.isfinite(float(q.sum())):
        return q
    bad = ~torch.isfinite(q).all(1)
    diff = Xc[bad][:, None, :] - mc[None]  # (m, K, D)
    q[bad] = (diff * diff * prec[None]).sum(-1)
    return q


def _check_memory(cov_type: str, K: int, d: int, device) -> None:
    """Up-front ``ValueError`` when the full or tied covariances do not fit in memory.

    An M-step holds six (K, d, d) float64 arrays at once (second moments, the covariances
    and their symmetrised copy, the Cholesky factor, the precision factor and the
    attributes' precisions); tied ones are one (d, d) each.
    """
    m = K if cov_type == "full" else 1
    shape = f"{K} x {d} x {d}" if cov_type == "full" else f"{d} x {d}"
    check_allocation(
        6.0 * m * d * d * 8,
        f"GaussianMixture(covariance_type={cov_type!r}) with {K} component(s) on {d} "
        f"features: its {shape} covariances",
        "use covariance_type='diag' or 'spherical', or reduce the features first (e.g. PCA)",
        device=device,
    )


# ----------------------------------------------------------------------------- the family
def check_precisions_init(precisions_init, cov_type: str, K: int, d: int) -> np.ndarray:
    """``precisions_init`` as float64 of the covariance type's shape, finite and positive
    (definite); else ``ValueError``."""
    shape = {"full": (K, d, d), "tied": (d, d), "diag": (K, d), "spherical": (K,)}[cov_type]
    P = check_param_array("precisions_init", precisions_init,
                          f"{shape} for covariance_type={cov_type!r}")
    if P.shape != shape:
        raise ParameterError(
            f"precisions_init has shape {P.shape}, but covariance_type='{cov_type}' needs "
            f"{shape}."
        )
    if not np.all(np.isfinite(P)):
        raise ParameterError("precisions_init contains NaN or infinity.")
    if cov_type in ("full", "tied"):
        for k, M in enumerate(P.reshape(-1, d, d)):
            if not np.allclose(M, M.T) or np.any(np.linalg.eigvalsh(M) <= 0):
                raise ParameterError(
                    f"precisions_init[{k}] should be symmetric, positive-definite."
                    if cov_type == "full" else "precisions_init should be symmetric, positive-definite."
                )
    elif np.any(P <= 0):
        raise ParameterError("precisions_init should be positive.")
    return P


class _GaussianFamily(Family):
    """The Gaussian mixture's math for one fit, in working units.

    Parameters
    ----------
    n_components : int
    cov_type : {"full", "tied", "diag", "spherical"}
    reg : float
        ``reg_covar`` in working units (reg_covar · scale²), added to the covariances.
    reg_covar : float
        The same in data units, for error messages.
    user : dict
        User initial ``weights`` (K,), ``means`` (K, D) and ``precisions`` in working units.
    missing : bool
        NaN entries are missing values, marginalised out (:mod:`._missing`); blocks without
        NaN take the complete-data code.
    fit : bool
        The family of a fit, whose E-step calls ``resp_stats`` on each block right after
        ``log_weighted``: full/tied pattern factorisations are kept for it (per thread).
    """

    def __init__(self, n_components: int, cov_type: str, reg: float, reg_covar: float,
                 user: dict, missing: bool = False, fit: bool = False):
        self.n_components, self.cov_type = n_components, cov_type
        self.reg, self.reg_covar, self.user = reg, reg_covar, user
        self.missing, self.fit = missing, fit
        self._kernel = GaussKernel(cov_type)

    def block_rows(self, d: int) -> int:
        if self.cov_type in ("full", "tied"):  # (rows, K, D) intermediates
            rows = max(64, (1 << 20) // max(1, self.n_components * d))
            if not self.missing and GaussKernel.applies(self.cov_type, d):
                # blocks the compiled pass takes in one call, still bounded for the array
                # route (on another device)
                rows = max(rows, min(1 << 14, (1 << 22) // max(1, self.n_components * d)))
            return rows
        return super().block_rows(d)

    def base_params(self, summary, shift0) -> GaussParams:
        """Only the shift: the data mean (working units), around which moments are taken
        (over the observed entries of each feature when some are missing)."""
        return GaussParams(None, None, None, None, None, shift0 + summary.sum / summary.counts())

    def block_context(self, X: torch.Tensor, P: GaussParams):
        """With missing values in a fit, the pattern factorisations of the block's incomplete
        rows (full and tied types), which both halves of the E-step use."""
        if self.fit and self.missing and self.cov_type in ("full", "tied") \
                and bool(torch.isnan(X).any()):
            obs, some = _missing.split_complete(X)
            return _missing.gauss_groups(self, X[some], P, obs[some])
        return None

    def log_weighted(self, X: torch.Tensor, P: GaussParams, ctx=None) -> torch.Tensor:
        """eq. (1) plus log π_k for X (n, D): (n, K); with missing values, rows with NaN get
        the marginal log-density of their observed entries (:mod:`._missing`); ``ctx``: the
        block's :meth:`block_context`."""
        if self.missing and bool(torch.isnan(X).any()):
            obs, some = _missing.split_complete(X)
            out = torch.empty(X.shape[0], self.n_components, dtype=X.dtype, device=X.device)
            if not bool(some.all()):
                out[~some] = self._log_weighted(X[~some], P)
            groups = ctx
            if groups is None and self.cov_type in ("full", "tied"):
                groups = _missing.gauss_groups(self, X[some], P, obs[some])
            out[some] = _missing.gauss_log_weighted(self, X[some], P, obs[some], groups)
            return out
        return self._log_weighted(X, P)

    def _log_weighted(self, X: torch.Tensor, P: GaussParams) -> torch.Tensor:
        q = _quadratic(X - P.shift, P, self.cov_type)
        D = X.shape[1]
        assert P.log_det is not None and P.weights is not None  # complete parameters here
        return (-0.5 * (D * _LOG_2PI + q) + P.log_det) + torch.log(P.weights)

    def resp_stats(self, X, resp, w, P: GaussParams, ctx=None) -> GaussStats:
        """N_k (K,), S_k (K, D) and the second moments about the shift (module docstring);
        with missing values, the expected ones given each row's observed entries
        (:mod:`._missing`)."""
        if self.missing and bool(torch.isnan(X).any()):
            obs, some = _missing.split_complete(X)
            Rw = resp if w is None else resp * w[:, None]
            sums, second = _missing.gauss_stats(self, X[some], Rw[some], P, obs[some], ctx)
            nk = Rw.sum(0)
            if not bool(some.all()):  # the complete rows' moments as without missing values
                rest = self._resp_stats(X[~some], resp[~some],
                                        None if w is None else w[~some], P)
                sums, second = sums + rest.sums, second + rest.second
            n = float(nk.sum()) if w is None else float(w.sum())
            return GaussStats(n=n, loglik=0.0, nk=nk, sums=sums, second=second)
        return self._resp_stats(X, resp, w, P)

    def compiled_e_step(self, X, w, P: GaussParams, hard: bool) -> GaussStats | None:
        """One compiled pass over complete rows on the CPU (:mod:`._kernels`); None with
        missing values marginalised, tied covariances, or where it does not apply."""
        if self.missing:
            return None
        out = self._kernel(X, w, P, hard)
        if out is None:
            return None
        nk, sums, second, loglik = out
        n = float(nk.sum()) if w is None else float(w.sum())
        return GaussStats(n=n, loglik=loglik, nk=nk, sums=sums, second=second)

    def _resp_stats(self, X, resp, w, P: GaussParams) -> GaussStats:
        Rw = resp if w is None else resp * w[:, None]  # (n, K)
        nk = Rw.sum(0)
        t = self.cov_type
        Xc = X - P.shift  # (n, D)
        sums = Rw.T @ Xc  # (K, D)
        if t == "full":
            n, D = Xc.shape
            K = Rw.shape[1]
            # all M_k = Σ_n r_nk x̃_n x̃_nᵀ in one product: (K·D, n) @ (n, D)
            A = (Rw[:, :, None] * Xc[:, None, :]).view(n, K * D)
            second = (A.T @ Xc).view(K, D, D)
        elif t == "tied":
            Xw = Xc if w is None else Xc * w[:, None]
            second = Xw.T @ Xc
        else:
            second = Rw.T @ (Xc * Xc)
        n = float(nk.sum()) if w is None else float(w.sum())
        return GaussStats(n=n, loglik=0.0, nk=nk, sums=sums, second=second)

    def m_step(  # type: ignore[override]  # each family receives its own statistics
        self, S: GaussStats, P: GaussParams
    ) -> GaussParams:
        """Bishop (2006) eqs. 9.24–9.26 about the shift, with ``reg`` on the diagonal."""
        t, reg = self.cov_type, self.reg
        if t != "tied" and S.nk.device.type == "cpu":
            return self._m_step_numpy(S, P)
        nk = S.nk + _EPS10
        delta = S.sums / nk[:, None]  # (K, D): new mean − shift
        means = P.shift + delta
        D = means.shape[1]
        eye = torch.eye(D, dtype=torch.float64, device=means.device)
        if t == "full":
            cov = S.second / nk[:, None, None] - delta[:, :, None] * delta[:, None, :]
            cov = 0.5 * (cov + cov.transpose(1, 2)) + reg * eye
        elif t == "tied":
            cov = S.second - torch.einsum("k,kd,ke->de", nk, delta, delta)
            cov = 0.5 * (cov + cov.T) / nk.sum() + reg * eye
        else:
            cov = (S.second / nk[:, None] - delta * delta).clamp_min(0) + reg
            if t == "spherical":
                cov = cov.mean(1)
        weights = nk / nk.sum()
        L = _precision_cholesky(cov, t, self.reg_covar)
        return GaussParams(weights, means, cov, L, _log_det(L, t, nk.shape[0], D), P.shift)

    def _m_step_numpy(self, S: GaussStats, P: GaussParams) -> GaussParams:
        """:meth:`m_step` of full, diagonal and spherical covariances in numpy (the
        factorisations of full ones in torch): on the CPU its dozen operations on (K, D) or
        (K, D, D) arrays cost a third of a small fit's iteration in torch."""
        nk = S.nk.numpy() + _EPS10
        delta = S.sums.numpy() / nk[:, None]
        shift = P.shift.numpy()
        D = delta.shape[1]
        t = torch.from_numpy
        if self.cov_type == "full":
            cov = S.second.numpy() / nk[:, None, None] - delta[:, :, None] * delta[:, None, :]
            cov = 0.5 * (cov + cov.transpose(0, 2, 1))
            cov[:, np.arange(D), np.arange(D)] += self.reg
            Lt = _precision_cholesky(t(cov), "full", self.reg_covar)
            L = Lt.numpy()
            log_det = np.log(np.diagonal(L, axis1=1, axis2=2)).sum(1)
            return GaussParams(t(nk / nk.sum()), t(shift + delta), t(cov), Lt, t(log_det),
                               P.shift)
        with np.errstate(all="ignore"):  # non-finite results are refused just below
            cov = np.maximum(S.second.numpy() / nk[:, None] - delta * delta, 0.0) + self.reg
            if self.cov_type == "spherical":
                cov = cov.mean(1)
            if np.any(cov <= 0) or not np.all(np.isfinite(cov)):
                raise ValueError(_ILL.format(reg=self.reg_covar))
            L = 1.0 / np.sqrt(cov)
        log_det = np.log(L).sum(1) if self.cov_type == "diag" else D * np.log(L)
        return GaussParams(t(nk / nk.sum()), t(shift + delta), t(cov), t(L), t(log_det), P.shift)

    def init_given(self) -> bool:
        return len(self.user) == 3

    def with_user_init(self, P: GaussParams | None, base: GaussParams) -> GaussParams | None:
        u = self.user
        if not u:
            return P
        # P is None only when every parameter is given, and then none of its fields is read
        start = P if P is not None else base
        K, t = self.n_components, self.cov_type
        L: torch.Tensor | None
        cov: torch.Tensor | None
        weights = u["weights"] if "weights" in u else start.weights
        means = u["means"] if "means" in u else start.means
        assert means is not None
        D = means.shape[1]
        if "precisions" in u:
            prec = u["precisions"]
            if t in ("full", "tied"):
                cov = torch.cholesky_inverse(torch.linalg.cholesky(prec))
                # the upper factor (precision = L Lᵀ, L upper), as precisions_cholesky_ is
                # everywhere else: the lower Cholesky factor of the precision with its rows
                # and columns reversed, reversed back (J P J = M Mᵀ gives P = (JMJ)(JMJ)ᵀ)
                L = torch.linalg.cholesky(prec.flip(-1, -2)).flip(-1, -2)
            else:
                L = torch.sqrt(prec)
                cov = 1.0 / prec
        else:
            L, cov = start.prec_chol, start.covariances
        assert L is not None
        return GaussParams(weights, means, cov, L, _log_det(L, t, K, D), base.shift)

    def conditional_means(self, X: torch.Tensor, P: GaussParams) -> torch.Tensor:
        """E[x | x_o, k] (n, K, D): eq. (1) of :mod:`._missing` where x has NaN."""
        obs, some = _missing.split_complete(X)
        out = X[:, None, :].expand(-1, self.n_components, -1).clone()
        if bool(some.any()):
            out[some] = _missing.gauss_conditional(self, X[some], P, obs[some])
        return out


# ----------------------------------------------------------------------------- estimator
class GaussianMixture(MixtureBase):
    """Gaussian mixture model fitted by expectation-maximisation.

    Parameters
    ----------
    n_components : int, default=1
        Number of components K.
    covariance_type : {"full", "tied", "diag", "spherical"}, default="full"
        One full matrix per component, one shared full matrix, one diagonal per component,
        or one variance per component.
    tol : float, default=1e-3
        Convergence threshold on the change of the per-sample lower bound.
    reg_covar : float, default=1e-6
        Added to the covariances' diagonals so they stay positive definite (data units).
    max_iter : int, default=100
        EM iterations per initialisation; 0 evaluates the initial parameters only.
    n_init : int, default=1
        Initialisations; the best final lower bound wins.
    init_params : {"kmeans", "k-means++", "random", "random_from_data"}, default="kmeans"
        Initial responsibilities: K-means labels, k-means++ seeds, uniform random, or K random
        rows (the first M-step turns them into parameters).
    weights_init : array of shape (n_components,) or None
    means_init : array of shape (n_components, n_features) or None
    precisions_init : array or None
        User initial parameters; override what ``init_params`` gives. Shapes by type: full
        (K, D, D), tied (D, D), diag (K, D), spherical (K,).
    hard : bool, default=False
        Classification EM: each point goes wholly to its most probable component. The
        objective is the classification likelihood; ``score`` stays the mixture likelihood.
    random_state : int, RandomState or None, default=None
    warm_start : bool, default=False
        Start the next ``fit`` from the current parameters (``n_init`` is then 1).
    verbose : int, default=0
    device : {"cpu", "cuda", "auto"}, default="cpu"
    learning_decay : float in (0.5, 1], default=0.7
        κ of :meth:`partial_fit`'s step sizes η_t = (learning_offset + t)^(−κ) (stepwise
        online EM, Cappé & Moulines 2009): Σ η_t = ∞ and Σ η_t² < ∞ on this range. Lower
        values forget old chunks faster. The default was the best of a grid on the
        benchmark streams (``bench/stream.py --grid``; docs/decisions.md): on binarised
        MNIST, chunks seen early were E-stepped under poor parameters and are best forgotten
        quickly (κ = 0.7: 0.3 % from the batch fit, κ = 1: 0.8 %).
    learning_offset : float >= 0, default=1.0
        τ₀ of the step sizes; larger values damp the first steps (and keep the first chunk's
        statistics longer). Only :meth:`partial_fit` uses these two.

    missing : {"raise", "marginalize"}, default="raise"
        What a NaN entry of X means. "raise": an error, as for any invalid value.
        "marginalize": a value missing at random; each row's likelihood is that of its
        observed entries, N(x_o | μ_ko, Σ_k,oo) per component, and EM uses the expected
        statistics given them (Ghahramani & Jordan 1994; see
        :mod:`latentspace.mixture._missing`). :meth:`score_samples`, :meth:`predict`,
        :meth:`predict_proba`, :meth:`bic` and :meth:`aic` then marginalise the same way,
        and :meth:`impute` fills the missing entries in.

    Use :meth:`fit` (exact batch EM, in memory, chunked or Dask, with ``sample_weight``)
    when the data can be read several times, and :meth:`partial_fit` for one pass over a
    stream or for data that drift.

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
    means_ : ndarray of shape (n_components, n_features)
    covariances_ : ndarray (shape by ``covariance_type``)
    precisions_ : ndarray (same shape)
    precisions_cholesky_ : ndarray (same shape)
        Upper-triangular factors L with precision = L Lᵀ.
    converged_ : bool
    n_iter_ : int
    lower_bounds_ : ndarray of shape (``n_iter_`` + 1,)
        Mean log-likelihood of the initial parameters and after each EM step (classification
        log-likelihood when ``hard=True``). Exact EM (``reg_covar=0``) never decreases it; a
        positive ``reg_covar`` moves each M-step slightly off the maximiser, which can lower it
        by a tiny amount near convergence (as in scikit-learn). Each ``partial_fit`` call
        appends one entry (its chunk's mean log-likelihood before the update); the first call
        on an unfitted model leaves one entry, its batch fit's final bound.
    lower_bound_ : float
        Last entry of ``lower_bounds_``: the objective at the returned parameters.
    n_features_in_ : int
    n_samples_seen_ : float
        Total sample weight fitted: that of ``fit``, or summed over the ``partial_fit``
        calls since the model was started (N_t).
    n_steps_ : int
        Updates of the running statistics: 1 after ``fit`` or the first ``partial_fit``,
        then one per ``partial_fit`` call (the t of η_t).
    running_nk_, running_sums_ : ndarray
        ``partial_fit``'s running sufficient statistics per unit weight (N_k/N and the
        component sums, in the fit's working units), from the final E-step of ``fit``
        and updated by each ``partial_fit``; saved with the model so that a loaded model
        continues identically.
    running_second_, running_shift_, running_scale_ :
        The second moments (shape by ``covariance_type``: full (K, D, D), tied (D, D), diag
        and spherical (K, D)) about ``running_shift_`` (D,), and the working scale.

    Examples
    --------
    >>> import numpy as np
    >>> from latentspace import GaussianMixture
    >>> X = np.r_[np.random.RandomState(0).randn(100, 2), np.random.RandomState(1).randn(100, 2) + 8]
    >>> gm = GaussianMixture(2, random_state=0).fit(X)
    >>> sorted(np.round(gm.means_[:, 0]).astype(int).tolist())
    [0, 8]
    """

    # fitted attributes a saved file may hold: kind, symbolic shape (see latentspace._schema)
    _fitted_schema = {
        "weights_": ("float", ("n_components",)),
        "means_": ("float", ("n_components", "n_features_in_")),
        **dict.fromkeys(("covariances_", "precisions_cholesky_", "precisions_"), ("float", {
            "covariance_type": {"full": ("n_components", "n_features_in_", "n_features_in_"),
                                "tied": ("n_features_in_", "n_features_in_"),
                                "diag": ("n_components", "n_features_in_"),
                                "spherical": ("n_components",)}})),
        "lower_bounds_": ("float", ("*",), "nonfinite"), "lower_bound_": ("float", None),
        "n_iter_": ("int", None), "converged_": ("bool", None),
        # partial_fit's running statistics (per unit weight, working units; see _stream.py)
        "running_nk_": ("float", ("n_components",), "optional"),
        "running_sums_": ("float", ("n_components", "n_features_in_"), "optional"),
        "running_second_": ("float", {"covariance_type": {
            "full": ("n_components", "n_features_in_", "n_features_in_"),
            "tied": ("n_features_in_", "n_features_in_"),
            "diag": ("n_components", "n_features_in_"),
            "spherical": ("n_components", "n_features_in_")}}, "optional"),
        "running_shift_": ("float", ("n_features_in_",), "optional"),
        "running_scale_": ("float", None, "optional"),
        "n_samples_seen_": ("float", None, "optional"), "n_steps_": ("int", None, "optional"),
    }

    _weight_scale_free = True  # maximum likelihood: weights c·w give the same fit

    def __init__(
        self,
        n_components: int = 1,
        *,
        covariance_type: Literal["full", "tied", "diag", "spherical"] = "full",
        tol: float = 1e-3,
        reg_covar: float = 1e-6,
        max_iter: int = 100,
        n_init: int = 1,
        init_params: Literal["kmeans", "k-means++", "random", "random_from_data"] = "kmeans",
        weights_init: ArrayLike | None = None,
        means_init: ArrayLike | None = None,
        precisions_init: ArrayLike | None = None,
        hard: bool = False,
        random_state: RandomStateLike = None,
        warm_start: bool = False,
        verbose: int = 0,
        device: str | torch.device = "cpu",
        learning_decay: float = DEFAULT_LEARNING_DECAY,
        learning_offset: float = DEFAULT_LEARNING_OFFSET,
        missing: Literal["raise", "marginalize"] = "raise",
    ) -> None:
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.hard = hard
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.device = device
        self.learning_decay = learning_decay
        self.learning_offset = learning_offset
        self.missing = missing

    # --- the family and its parameters ---------------------------------------------------
    def _family(self, n_features: int, scale: float, *, fit: bool = True) -> "_GaussianFamily":
        check_choice("covariance_type", self.covariance_type, _COV_TYPES)
        missing = check_missing(getattr(self, "missing", "raise")) == "marginalize"
        check_float("reg_covar", self.reg_covar, low=0)
        K, t = self.n_components, self.covariance_type
        reg = self.reg_covar * scale * scale
        if reg == math.inf:
            raise ValueError(
                f"X is so small in magnitude (max |x| ≈ {1 / scale:.3g}) that "
                f"reg_covar={self.reg_covar} swamps its variance; rescale X (e.g. "
                "StandardScaler) or lower reg_covar."
            )
        user = {}
        if fit and self.weights_init is not None:
            user["weights"] = torch.as_tensor(check_weights_init(self.weights_init, K),
                                              device=self._device())
        if fit and self.means_init is not None:
            m = check_means_init(self.means_init, K, n_features)
            user["means"] = torch.as_tensor(m, device=self._device()) * scale
        if fit and self.precisions_init is not None:
            prec = check_precisions_init(self.precisions_init, t, K, n_features)
            user["precisions"] = torch.as_tensor(prec, device=self._device()) / (scale * scale)
        if fit and t in ("full", "tied"):
            _check_memory(t, K, n_features, self._device())
        return _GaussianFamily(K, t, reg, self.reg_covar, user, missing, fit)

    def _attributes(self, P: GaussParams, scale: float) -> dict:
        t = self.covariance_type
        assert P.prec_chol is not None and P.means is not None and P.covariances is not None
        L = P.prec_chol * scale
        return {
            "weights_": P.weights,
            "means_": P.means / scale,
            "covariances_": P.covariances / scale / scale,
            "precisions_cholesky_": L,
            "precisions_": L @ L.transpose(-1, -2) if t in ("full", "tied") else L * L,
        }

    def _parameters(self, scale: float) -> GaussParams:
        dev = self._device()
        t = self.covariance_type
        f64: dict[str, Any] = {"device": dev, "dtype": torch.float64}
        weights = torch.as_tensor(self.weights_, **f64)
        means = torch.as_tensor(self.means_, **f64) * scale
        cov = torch.as_tensor(self.covariances_, **f64) * scale * scale
        L = torch.as_tensor(self.precisions_cholesky_, **f64) / scale
        K, D = means.shape
        shift = weights @ means  # the mixture's mean, the best stand-in for the data mean
        return GaussParams(weights, means, cov, L, _log_det(L, t, K, D), shift)

    def _check_cost(self, n_samples: int, n_features: int) -> None:
        """Wide data (fewer samples than features) with full or tied covariances: refused
        when an EM iteration's factorisations exceed _WIDE_FLOPS.

        Each M-step factorises every D × D covariance (Cholesky D³/3, the triangular
        inverse D³/3, and the precisions D³ once at the end), whatever the number of
        samples; with n < D those covariances have rank below n apart from reg_covar·I, so
        the cubic work carries no information that 'diag' or a PCA to < n features lacks.
        """
        t, K, D = self.covariance_type, self.n_components, n_features
        if t not in ("full", "tied") or n_samples >= D:
            return
        flops = (K if t == "full" else 1) * (2.0 / 3.0) * float(D) ** 3
        if flops > _WIDE_FLOPS:
            raise ValueError(
                f"GaussianMixture(covariance_type={t!r}) on {n_samples} samples x {D} "
                f"features factorises {K if t == 'full' else 1} {D} x {D} covariance(s) in "
                f"every EM iteration (about {flops:.1e} flops each time) although they have "
                f"rank below n_samples={n_samples} apart from reg_covar; use "
                "covariance_type='diag' or 'spherical', or reduce the features first "
                f"(e.g. PCA(n_components<{n_samples}))."
            )

    def _check_summary(self, summary, scale: float) -> None:
        """``reg_covar`` larger than every feature's variance swamps the data: each
        covariance would be about reg_covar·I whatever the clusters, and EM would silently
        merge them into one. Compared in working units (data × scale), where both are
        representable; all-constant data (variance 0) are left to fit."""
        var = float(summary.variance().max()) if summary.n > 0 and summary.sum is not None \
            and summary.sum.numel() else 0.0
        reg = float(self.reg_covar) * scale * scale
        if 0.0 < var < reg:
            var_data = format_unscaled(var, scale, 2)
            raise ValueError(
                f"reg_covar={self.reg_covar!r} is larger than the largest variance of X's "
                f"features ({var_data}), so every covariance would be about reg_covar "
                "alone, whatever the data's own spread (clusters merge into one); rescale X (e.g. "
                f"sklearn.preprocessing.StandardScaler) or set reg_covar below {var_data}."
            )

    def _far_wlp(self, rows: torch.Tensor):
        """eq. (1) plus log π_k for far rows (m, D), in data units, on (x − μ_k)·2^−e with e
        each row's exponent, and log₂ of the Mahalanobis distances (m, K). Rows with missing
        entries (NaN) are evaluated on their observed ones, with the marginal N(μ_o, Σ_oo)."""
        t = self.covariance_type
        f64: dict[str, Any] = {"device": rows.device, "dtype": torch.float64}
        means = torch.as_tensor(self.means_, **f64)  # (K, D)
        L = torch.as_tensor(self.precisions_cholesky_, **f64)
        weights = torch.as_tensor(self.weights_, **f64)
        nan = torch.isnan(rows)
        if not bool(nan.any()):
            return self._far_core(rows, means, L, weights)
        wlp = torch.empty(rows.shape[0], means.shape[0], **f64)
        log2_dist = torch.empty_like(wlp)
        pats, inv = torch.unique(~nan, dim=0, return_inverse=True)
        cov = torch.as_tensor(self.covariances_, **f64)
        for p, o in enumerate(pats):  # the far rows are few: one marginal model per pattern
            sel = inv == p
            if t == "full":
                Lo = _precision_cholesky(cov[:, o][:, :, o], t, self.reg_covar)
            elif t == "tied":
                Lo = _precision_cholesky(cov[o][:, o], t, self.reg_covar)
            else:
                Lo = L[:, o] if t == "diag" else L
            wlp[sel], log2_dist[sel] = self._far_core(rows[sel][:, o], means[:, o], Lo, weights)
        return wlp, log2_dist

    def _far_core(self, rows, means, L, weights):
        """:meth:`_far_wlp` of complete rows against means (K, D) and precision factors L."""
        t = self.covariance_type
        K, D = means.shape
        e = row_exponents(torch.cat([rows, means.abs().amax(0).expand_as(rows)], 1))[:, None]
        # (x − μ_k)·2^−e, each term scaled before the difference: (m, K, D)
        U = ldexp_exact(rows[:, None, :], -e[..., None]) - ldexp_exact(means[None], -e[..., None])
        if t == "full":
            Y = torch.einsum("mkd,kde->mke", U, L)  # L_kᵀ(x − μ_k): (m, K, D)
        elif t == "tied":
            Y = U @ L
        elif t == "diag":
            Y = U * L[None]
        else:
            Y = U * L[None, :, None]
        half, log2_dist = scaled_half_sq_norm(Y, e)  # (m, K)
        log_det = _log_det(L, t, K, D)
        return (-0.5 * D * _LOG_2PI + log_det + torch.log(weights)) - half, log2_dist

    def _magnitude(self) -> float:
        """The largest of |μ| and of the standard deviations (data units)."""
        sd = float(np.sqrt(np.max(np.diagonal(self.covariances_, axis1=-2, axis2=-1)
                                  if self.covariance_type in ("full", "tied") else self.covariances_)))
        return max(super()._magnitude(), sd)

    def _n_parameters(self) -> int:
        K, D = self.means_.shape
        cov = {"full": K * D * (D + 1) / 2, "tied": D * (D + 1) / 2, "diag": K * D, "spherical": K}
        return int(cov[self.covariance_type] + K * D + K - 1)

    @classmethod
    def from_kmeans(cls, kmeans: KMeans) -> "GaussianMixture":
        """The Gaussian mixture that K-means is the σ → 0 limit of, at the fitted σ.

        Equal weights 1/K, means at the centres and one shared spherical variance
        σ² = inertia / (N·D), the maximum-likelihood variance given the hard assignments
        (Bishop 2006, §9.3.2).

        Parameters
        ----------
        kmeans : fitted latentspace KMeans

        Returns
        -------
        GaussianMixture
            Fitted, with ``covariance_type="spherical"``.
        """
        from ..cluster import KMeans

        if not isinstance(kmeans, KMeans):
            raise TypeError(
                f"from_kmeans takes a fitted latentspace KMeans, got {type(kmeans).__name__}; "
                "fit latentspace.cluster.KMeans first."
            )
        kmeans._check_fitted()
        C = np.asarray(kmeans.cluster_centers_, dtype=np.float64)
        K, D = C.shape
        var = kmeans.inertia_ / max(kmeans.n_samples_seen_ * D, np.finfo(float).tiny)
        var = max(var, np.finfo(np.float64).tiny)
        gm = cls(K, covariance_type="spherical", device=kmeans.device)
        cov = torch.full((K,), var, dtype=torch.float64)
        L = _precision_cholesky(cov, "spherical", gm.reg_covar)
        P = GaussParams(torch.full((K,), 1.0 / K, dtype=torch.float64),
                        torch.as_tensor(C), cov, L, _log_det(L, "spherical", K, D),
                        torch.zeros(D, dtype=torch.float64))
        gm.n_features_in_ = D
        gm._set_attributes(P, 1.0)
        gm.converged_ = True
        gm.n_iter_ = 0
        gm.lower_bounds_ = np.zeros(0)
        gm.lower_bound_ = float("nan")
        return gm

    # --- generative side ----------------------------------------------------------------
    def sample(self, n_samples: int = 1,
               random_state: RandomStateLike = None) -> tuple[ArrayOrTensor, ArrayOrTensor]:
        """Draw new points from the fitted mixture.

        Components are drawn per sample, so rows come in random order (not grouped).

        Parameters
        ----------
        n_samples : int, default=1
        random_state : int, RandomState or None
            None uses the estimator's ``random_state``.

        Returns
        -------
        X : ndarray or tensor of shape (n_samples, n_features)
            In the container, device and float dtype of the data the model was fitted on
            (numpy float64 for a model loaded from a file)
        labels : ndarray or tensor of shape (n_samples,)
            Component of each row.
        """
        self._check_fitted()  # before the fitted attributes are read
        K, D = self.means_.shape
        # the label, eps, the output and a temporary per row; the full Cholesky factor of
        # each row's component is gathered too
        per_row = 8 * (1 + 3 * D + (D * D if self.covariance_type == "full" else 0))
        n_samples, labels, rng = self._sample_labels(n_samples, random_state, per_row)
        eps = rng.standard_normal((n_samples, D))
        t = self.covariance_type
        if t == "full":
            C = np.linalg.cholesky(self.covariances_)  # (K, D, D), Σ = C Cᵀ
            X = self.means_[labels] + np.einsum("nde,ne->nd", C[labels], eps)
        elif t == "tied":
            C = np.linalg.cholesky(self.covariances_)
            X = self.means_[labels] + eps @ C.T
        elif t == "diag":
            X = self.means_[labels] + eps * np.sqrt(self.covariances_[labels])
        else:
            X = self.means_[labels] + eps * np.sqrt(self.covariances_[labels])[:, None]
        return self._drawn_out(X), self._drawn_out(labels)
