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

import numpy as np
import torch

from .._backend import to_numpy
from .._validation import check_choice, check_float, check_finite_result
from ._base import MixtureBase, MixtureStats

__all__ = ["GaussianMixture"]

_LOG_2PI = math.log(2 * math.pi)
_EPS10 = 10 * float(np.finfo(np.float64).eps)
_COV_TYPES = ("full", "tied", "diag", "spherical")
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

    sums: torch.Tensor = None  # (K, D)
    second: torch.Tensor = None  # full (K, D, D); tied (D, D); diag/spherical (K, D)


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
        return q
    prec = L * L  # (K,)
    q = (Xc * Xc).sum(1, keepdim=True) * prec[None]
    q -= 2.0 * (Xc @ mc.T) * prec[None]
    q += (mc * mc).sum(1) * prec
    return q


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
    lower_bounds_ : ndarray of shape (n_iter_ + 1,)
        Mean log-likelihood of the initial parameters and after each EM step (classification
        log-likelihood when ``hard=True``). Exact EM (``reg_covar=0``) never decreases it; a
        positive ``reg_covar`` moves each M-step slightly off the maximiser, which can lower it
        by a tiny amount near convergence (as in scikit-learn).
    lower_bound_ : float
        Last entry of ``lower_bounds_``: the objective at the returned parameters.
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from latentspace import GaussianMixture
    >>> X = np.r_[np.random.RandomState(0).randn(100, 2), np.random.RandomState(1).randn(100, 2) + 8]
    >>> gm = GaussianMixture(2, random_state=0).fit(X)
    >>> sorted(np.round(gm.means_[:, 0]).astype(int).tolist())
    [0, 8]
    """

    def __init__(
        self,
        n_components=1,
        *,
        covariance_type="full",
        tol=1e-3,
        reg_covar=1e-6,
        max_iter=100,
        n_init=1,
        init_params="kmeans",
        weights_init=None,
        means_init=None,
        precisions_init=None,
        hard=False,
        random_state=None,
        warm_start=False,
        verbose=0,
        device="cpu",
    ):
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

    # --- parameters -------------------------------------------------------------------
    def _check_model_params(self, d: int) -> None:
        check_choice("covariance_type", self.covariance_type, _COV_TYPES)
        check_float("reg_covar", self.reg_covar, low=0)
        K = self.n_components
        self._user_init = {}
        if self.weights_init is not None:
            w = to_numpy(self.weights_init).astype(np.float64)
            if w.shape != (K,):
                raise ValueError(
                    f"weights_init has shape {w.shape}, but it must be (n_components,) = {(K,)}."
                )
            if np.any(w < 0) or np.any(w > 1) or not np.allclose(w.sum(), 1.0):
                raise ValueError(
                    "weights_init must be non-negative and sum to 1; got values in "
                    f"[{w.min():.3g}, {w.max():.3g}] summing to {w.sum():.6g}."
                )
            self._user_init["weights"] = w
        if self.means_init is not None:
            m = to_numpy(self.means_init).astype(np.float64)
            if m.shape != (K, d):
                raise ValueError(
                    f"means_init has shape {m.shape}, but it must be (n_components, n_features)"
                    f" = {(K, d)}."
                )
            if not np.all(np.isfinite(m)):
                raise ValueError("means_init contains NaN or infinity.")
            self._user_init["means"] = m
        if self.precisions_init is not None:
            self._user_init["precisions"] = self._check_precisions(
                to_numpy(self.precisions_init).astype(np.float64), K, d
            )

    def _check_precisions(self, P: np.ndarray, K: int, d: int) -> np.ndarray:
        shape = {"full": (K, d, d), "tied": (d, d), "diag": (K, d), "spherical": (K,)}[
            self.covariance_type
        ]
        if P.shape != shape:
            raise ValueError(
                f"precisions_init has shape {P.shape}, but covariance_type="
                f"'{self.covariance_type}' needs {shape}."
            )
        if not np.all(np.isfinite(P)):
            raise ValueError("precisions_init contains NaN or infinity.")
        if self.covariance_type in ("full", "tied"):
            mats = P.reshape(-1, d, d)
            for k, M in enumerate(mats):
                if not np.allclose(M, M.T) or np.any(np.linalg.eigvalsh(M) <= 0):
                    raise ValueError(
                        f"precisions_init[{k}] should be symmetric, positive-definite."
                        if self.covariance_type == "full"
                        else "precisions_init should be symmetric, positive-definite."
                    )
        elif np.any(P <= 0):
            raise ValueError("precisions_init should be positive.")
        return P

    def _init_given(self) -> bool:
        return len(self._user_init) == 3

    def _base_params_for(self, summary, shift0, d, dtype):
        shift = shift0 + summary.sum / summary.n  # data mean, working units
        if self.reg_covar * self._scale * self._scale == math.inf:
            raise ValueError(
                f"X is so small in magnitude (max |x| ≈ {1 / self._scale:.3g}) that "
                f"reg_covar={self.reg_covar} swamps its variance; rescale X (e.g. "
                "StandardScaler) or lower reg_covar."
            )
        return GaussParams(None, None, None, None, None, shift)

    # --- EM pieces --------------------------------------------------------------------
    def _block_rows(self, d: int) -> int:
        if self.covariance_type in ("full", "tied"):  # (rows, K, D) intermediates
            return max(64, (1 << 20) // max(1, self.n_components * d))
        return super()._block_rows(d)

    def _log_weighted(self, X: torch.Tensor, P: GaussParams) -> torch.Tensor:
        q = _quadratic(X - P.shift, P, self.covariance_type)
        D = X.shape[1]
        # eq. (1) plus log π_k
        return (-0.5 * (D * _LOG_2PI + q) + P.log_det) + torch.log(P.weights)

    def _resp_stats(self, X, resp, w, P: GaussParams) -> GaussStats:
        Rw = resp if w is None else resp * w[:, None]  # (n, K)
        nk = Rw.sum(0)
        t = self.covariance_type
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

    def _params_from_stats(self, S: GaussStats, P: GaussParams, *, init: bool = False):
        t = self.covariance_type
        reg = self.reg_covar * self._scale * self._scale
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

    def _apply_user_init(self, P: GaussParams | None) -> GaussParams:
        u = self._user_init
        if not u:
            return P
        s = self._scale
        dev = self._device()
        K, t = self.n_components, self.covariance_type
        weights = torch.as_tensor(u["weights"], device=dev) if "weights" in u else P.weights
        means = torch.as_tensor(u["means"], device=dev) * s if "means" in u else P.means
        D = means.shape[1]
        if "precisions" in u:
            prec = torch.as_tensor(u["precisions"], device=dev) / (s * s)
            if t in ("full", "tied"):
                # L lower with precision = L Lᵀ serves eq. (1) as well as the upper factor
                L = torch.linalg.cholesky(prec)
                cov = torch.cholesky_inverse(L)
            else:
                L = torch.sqrt(prec)
                cov = 1.0 / prec
        else:
            L, cov = P.prec_chol, P.covariances
        shift = self._base_params.shift
        return GaussParams(weights, means, cov, L, _log_det(L, t, K, D), shift)

    # --- attributes <-> parameters ------------------------------------------------------
    def _store(self, P: GaussParams, scale: float) -> None:
        t = self.covariance_type
        L = P.prec_chol * scale
        prec = L @ L.transpose(-1, -2) if t in ("full", "tied") else L * L
        attrs = {
            "weights_": P.weights,
            "means_": P.means / scale,
            "covariances_": P.covariances / scale / scale,
            "precisions_cholesky_": L,
            "precisions_": prec,
        }
        attrs = {k: to_numpy(v) for k, v in attrs.items()}
        for name, value in attrs.items():  # all checked before any is set: a failed fit
            check_finite_result(  # leaves an earlier one intact
                name, value,
                "the data's scale is beyond float64 for this model; rescale X (e.g. "
                "StandardScaler).",
            )
        for name, value in attrs.items():
            setattr(self, name, value)

    def _params_from_attributes(self, scale: float) -> GaussParams:
        dev = self._device()
        t = self.covariance_type
        weights = torch.as_tensor(self.weights_, device=dev, dtype=torch.float64)
        means = torch.as_tensor(self.means_, device=dev, dtype=torch.float64) * scale
        cov = torch.as_tensor(self.covariances_, device=dev, dtype=torch.float64) * scale * scale
        L = torch.as_tensor(self.precisions_cholesky_, device=dev, dtype=torch.float64) / scale
        K, D = means.shape
        shift = weights @ means  # the mixture's mean, the best stand-in for the data mean
        return GaussParams(weights, means, cov, L, _log_det(L, t, K, D), shift)

    def _set_params_from(self, *, weights, means, covariances, n_features):
        """Make this (spherical/diag/...) mixture fitted with the given parameters."""
        self._check_common_params()
        self._check_model_params(n_features)
        self.n_features_in_ = n_features
        t = self.covariance_type
        cov = torch.as_tensor(covariances, dtype=torch.float64)
        L = _precision_cholesky(cov, t, self.reg_covar)
        K, D = np.shape(means)
        P = GaussParams(
            torch.as_tensor(weights, dtype=torch.float64), torch.as_tensor(means, dtype=torch.float64),
            cov, L, _log_det(L, t, K, D), torch.zeros(D, dtype=torch.float64),
        )
        self._scale = 1.0
        self._store(P, 1.0)
        self.converged_ = True
        self.n_iter_ = 0
        self.lower_bounds_ = np.zeros(0)
        self.lower_bound_ = float("nan")
        return self

    def _n_parameters(self) -> int:
        K, D = self.means_.shape
        cov = {"full": K * D * (D + 1) / 2, "tied": D * (D + 1) / 2, "diag": K * D, "spherical": K}
        return int(cov[self.covariance_type] + K * D + K - 1)

    # --- generative side ----------------------------------------------------------------
    def sample(self, n_samples=1, random_state=None):
        """Draw new points from the fitted mixture.

        Components are drawn per sample, so rows come in random order (not grouped).

        Parameters
        ----------
        n_samples : int, default=1
        random_state : int, RandomState or None
            None uses the estimator's ``random_state``.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        labels : ndarray of shape (n_samples,)
            Component of each row.
        """
        labels, rng = self._sample_labels(n_samples, random_state)
        K, D = self.means_.shape
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
        return X, labels
