"""Mixture of probabilistic principal component analysers (Tipping & Bishop 1999), by EM.

p(x) = Σ_k π_k N(x | μ_k, C_k) with C_k = W_k W_kᵀ + σ²_k I: each component is a
probabilistic PCA with its own mean μ_k (D,), loading matrix W_k (D, q) and noise variance
σ²_k (Tipping & Bishop 1999, "Mixtures of probabilistic principal component analysers",
Neural Computation 11(2), eqs. 2–4 and §3).

Log-density. With M_k = W_kᵀ W_k + σ²_k I (q × q) the Woodbury identity gives

    C⁻¹ = (I − W M⁻¹ Wᵀ) / σ²,   log det C = (D − q) log σ² + log det M,             (1)

and with the thin SVD W = V S Rᵀ (V orthonormal D × q, kept with the parameters) the
quadratic form, for u = x − μ, y = Vᵀu and the residual r = u − V y, is

    uᵀ C⁻¹ u = ‖r‖² / σ² + Σ_j y_j² / (s_j² + σ²),  log det C = (D − q) log σ² + Σ_j log(s_j² + σ²) (2)

(the same as (1): Wᵀ W + σ²I = R (S² + σ²) Rᵀ). It costs O(D q) per row and component — a
block of n rows against K components is two batched products (K, n, D) @ (K, D, q) and back,
never a D × D matrix — and, unlike ‖u‖² − uᵀ W M⁻¹ Wᵀ u, it does not cancel: the residual is
formed before it is squared, so a noise variance far below the data's variance (1e-10 of it)
loses no more than ε‖u‖/‖r‖ relative.

M-step. The statistics are those of the full-covariance Gaussian mixture (N_k, the sums and
the second moments about the data mean, :class:`~latentspace.mixture._gaussian.GaussStats`,
computed by its own code). Given the responsibilities, the expected complete log-likelihood
of component k is −N_k/2 (log det C_k + tr(C_k⁻¹ S_k)) + const with S_k its weighted
covariance, maximised by the PPCA solution applied to S_k (Tipping & Bishop 1999,
Appendix C, and Tipping & Bishop 1999b, JRSS-B 61(3), eqs. 7–8):

    μ_k = Σ r x / N_k,   σ²_k = (1/(D − q)) Σ_{j>q} λ_j,   W_k = U_q (Λ_q − σ²_k I)^½,     (3)

with λ_1 ≥ … ≥ λ_D the eigenvalues of S_k and U_q the first q eigenvectors. This exact
eigen-solution (rather than the iterative W-update of their eqs. C.14–C.15) makes every
M-step the maximiser, so EM never lowers the likelihood and K = 1 is exactly probabilistic
PCA; it costs one D × D eigendecomposition per component and iteration (O(K D³)), which is
what the iterative update would avoid for very wide data. ``reg_covar`` is then added to
σ²_k (C_k = C_k,ML + reg_covar·I, as GaussianMixture adds it to its covariances).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from sklearn.base import TransformerMixin

from .._backend import ArrayLike, ArrayOrTensor, RandomStateLike
from .._math import abs_max, ldexp_exact, row_exponents, scaled_half_sq_norm, working_scale
from .._memory import check_allocation
from .._validation import ParameterError, check_array_like, check_float, check_int, check_labels
from ._stream import DEFAULT_LEARNING_DECAY, DEFAULT_LEARNING_OFFSET
from ._base import Family, MixtureBase
from ._gaussian import _WIDE_FLOPS, GaussianMixture, GaussParams, GaussStats, _GaussianFamily

__all__ = ["PPCAMixture"]

_LOG_2PI = math.log(2 * math.pi)
_EPS10 = 10 * float(np.finfo(np.float64).eps)
_ILL = (
    "Fitting the mixture of probabilistic PCA failed because the noise variance of "
    "component {k} is {s2:.3g} (its points lie in a subspace of dimension <= n_latent, e.g. "
    "collapsed or duplicate samples). Increase reg_covar (now {reg}), decrease n_components "
    "or n_latent, or scale the input data."
)


@dataclass(frozen=True)
class PPCAParams:
    """Parameters in working units (data × scale), float64.

    ``W`` (K, D, q) are the loadings, ``sigma2`` (K,) the noise variances; with the thin SVD
    W = V S Rᵀ, ``V`` (K, D, q) is orthonormal, ``inv_sub`` (K, q) is 1/(s² + σ²)^½ and
    ``inv_sd`` (K,) is 1/σ (eq. 2); ``B`` (K, q, D) is M⁻¹Wᵀ, the posterior mean map, and
    ``log_det`` (K,) is log det C_k; ``shift`` (D,) is the data mean, about which the moments
    are taken.
    """

    weights: torch.Tensor | None
    means: torch.Tensor | None
    W: torch.Tensor | None
    sigma2: torch.Tensor | None
    V: torch.Tensor | None
    inv_sub: torch.Tensor | None
    inv_sd: torch.Tensor | None
    B: torch.Tensor | None
    log_det: torch.Tensor | None
    shift: torch.Tensor

    def rescaled(self, r: float) -> "PPCAParams":
        """The same model in units multiplied by the power of two ``r`` (exact; V is
        unit-free): what a query at another working scale needs, computed where the
        model's own values are representable."""
        if r == 1.0:
            return self
        assert (self.weights is not None and self.means is not None and self.W is not None
                and self.sigma2 is not None and self.inv_sub is not None
                and self.inv_sd is not None and self.B is not None
                and self.log_det is not None)  # complete parameters (from _complete)
        D = self.means.shape[1]
        return PPCAParams(self.weights, self.means * r, self.W * r, self.sigma2 * (r * r),
                          self.V, self.inv_sub / r, self.inv_sd / r, self.B / r,
                          self.log_det + 2 * D * math.log(r), self.shift * r)


def _complete(weights: torch.Tensor, means: torch.Tensor, W: torch.Tensor,
              sigma2: torch.Tensor, shift: torch.Tensor, reg_covar: float) -> PPCAParams:
    """The parameters with V, 1/(s² + σ²)^½, 1/σ, M⁻¹Wᵀ and log det C of eq. (2);
    ``ValueError`` for a σ² that is not positive (the density would be degenerate)."""
    bad = ~(torch.isfinite(sigma2) & (sigma2 > 0))
    if bool(bad.any()):
        k = int(torch.nonzero(bad).flatten()[0])
        raise ValueError(_ILL.format(k=k, s2=float(sigma2[k]), reg=reg_covar))
    K, D, q = W.shape
    V, sv, Rt = torch.linalg.svd(W, full_matrices=False)  # (K, D, q), (K, q), (K, q, q)
    sub = sv * sv + sigma2[:, None]  # (K, q): the variances along V's columns
    # M⁻¹Wᵀ = R diag(s / (s² + σ²)) Vᵀ
    B = Rt.transpose(1, 2) @ ((sv / sub)[:, :, None] * V.transpose(1, 2))
    log_det = (D - q) * torch.log(sigma2) + torch.log(sub).sum(1)
    return PPCAParams(weights, means, W, sigma2, V.contiguous(), 1.0 / torch.sqrt(sub),
                      1.0 / torch.sqrt(sigma2), B, log_det, shift)


def _ppca_solution(S: torch.Tensor, q: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. (3) for a batch of covariances S (K, D, D): (W (K, D, q), σ²_ML (K,)).

    Each loading column's largest-magnitude entry is made positive (a deterministic sign).
    """
    lam, U = torch.linalg.eigh(S)  # ascending
    lam, U = lam.flip(-1).clamp_min(0), U.flip(-1)
    sigma2 = lam[:, q:].mean(1)
    Uq = U[:, :, :q]
    peak = Uq.abs().argmax(1, keepdim=True)  # (K, 1, q)
    sign = torch.sign(torch.gather(Uq, 1, peak))
    sign[sign == 0] = 1.0
    W = Uq * sign * torch.sqrt((lam[:, :q] - sigma2[:, None]).clamp_min(0))[:, None, :]
    return W, sigma2


class _PPCAFamily(Family):
    """The mixture of PPCA's math for one fit, in working units.

    Parameters
    ----------
    n_components, n_latent : int
    reg : float
        ``reg_covar`` in working units (reg_covar · scale²), added to each σ²_k.
    reg_covar : float
        The same in data units, for error messages.
    """

    def __init__(self, n_components: int, n_latent: int, reg: float, reg_covar: float):
        self.n_components, self.n_latent = n_components, n_latent
        self.reg, self.reg_covar = reg, reg_covar
        # the statistics are the full Gaussian mixture's: its own code computes them
        self._stats = _GaussianFamily(n_components, "full", reg, reg_covar, {})

    def block_rows(self, d: int) -> int:  # (K, rows, D) intermediates
        return max(64, (1 << 20) // max(1, self.n_components * d))

    def base_params(self, summary, shift0) -> PPCAParams:
        """Only the shift: the data mean (working units)."""
        return PPCAParams(None, None, None, None, None, None, None, None, None,
                          shift0 + summary.sum / summary.n)

    def log_weighted(self, X: torch.Tensor, P: PPCAParams) -> torch.Tensor:
        """log π_k + log N(x | μ_k, C_k) by eq. (2) for X (n, D): (n, K)."""
        assert (P.weights is not None and P.means is not None and P.V is not None
                and P.inv_sd is not None and P.inv_sub is not None
                and P.log_det is not None)  # complete parameters here
        D = X.shape[1]
        diff = (X - P.shift)[None] - (P.means - P.shift)[:, None, :]  # (K, n, D)
        Y = torch.bmm(diff, P.V)  # (K, n, q)
        diff -= torch.bmm(Y, P.V.transpose(1, 2))  # the residual outside span(W)
        # scaled before squaring: overflows (to a far query's −inf) only where the form does
        quad = torch.linalg.vector_norm(diff.mul_(P.inv_sd[:, None, None]), dim=-1).square_()
        quad += torch.linalg.vector_norm(Y.mul_(P.inv_sub[:, None, :]), dim=-1).square_()
        out = -0.5 * (D * _LOG_2PI + P.log_det[:, None] + quad) + torch.log(P.weights)[:, None]
        return out.T.contiguous()

    def resp_stats(self, X, resp, w, P: PPCAParams) -> GaussStats:
        """N_k, Σ r (x − s) and Σ r (x − s)(x − s)ᵀ about the shift s (the full Gaussian
        mixture's statistics, which read only the shift)."""
        only_shift = GaussParams(None, None, None, None, None, P.shift)
        return self._stats.resp_stats(X, resp, w, only_shift)

    def m_step(  # type: ignore[override]  # each family receives its own statistics
        self, S: GaussStats, P: PPCAParams
    ) -> PPCAParams:
        """Eq. (3) on each component's weighted covariance, then σ²_k + reg."""
        nk = S.nk + _EPS10
        delta = S.sums / nk[:, None]  # (K, D): new mean − shift
        cov = S.second / nk[:, None, None] - delta[:, :, None] * delta[:, None, :]
        cov = 0.5 * (cov + cov.transpose(1, 2))
        W, sigma2 = _ppca_solution(cov, self.n_latent)
        return _complete(nk / nk.sum(), P.shift + delta, W, sigma2 + self.reg, P.shift,
                         self.reg_covar)


# ----------------------------------------------------------------------------- estimator
class PPCAMixture(TransformerMixin, MixtureBase):
    """Mixture of probabilistic principal component analysers, fitted by EM.

    Each component is a probabilistic PCA: x = W_k z + μ_k + ε with z ~ N(0, I_q) and
    ε ~ N(0, σ²_k I), so p(x) = Σ_k π_k N(x | μ_k, W_k W_kᵀ + σ²_k I) (Tipping & Bishop
    1999). It sits between the diagonal and the full Gaussian mixture: each covariance has
    D·q − q(q − 1)/2 + 1 free parameters instead of D(D + 1)/2. The M-step is the exact
    eigen-solution of Tipping & Bishop's Appendix C (module docstring, eq. 3), so with
    ``n_components=1`` the model is PCA's probabilistic PCA with the maximum-likelihood
    (divide-by-N) covariance.

    Parameters
    ----------
    n_components : int, default=1
        Number of components K.
    n_latent : int, default=2
        Latent dimension q of every component, 1 <= q < n_features.
    tol : float, default=1e-3
        Convergence threshold on the change of the per-sample lower bound.
    reg_covar : float, default=1e-6
        Added to each component's noise variance σ²_k (data units), so that components
        whose points span no more than q dimensions keep a positive-definite covariance;
        it makes C_k the maximum-likelihood covariance plus reg_covar·I.
    max_iter : int, default=100
        EM iterations per initialisation; 0 evaluates the initial parameters only.
    n_init : int, default=1
        Initialisations; the best final lower bound wins.
    init_params : {"kmeans", "k-means++", "random", "random_from_data"}, default="kmeans"
        Initial responsibilities: K-means labels, k-means++ seeds, uniform random, or K random
        rows (the first M-step turns them into parameters).
    hard : bool, default=False
        Classification EM: each point goes wholly to its most probable component.
    random_state : int, RandomState or None, default=None
    warm_start : bool, default=False
        Start the next ``fit`` from the current parameters (``n_init`` is then 1).
    verbose : int, default=0
    device : {"cpu", "cuda", "auto"}, default="cpu"
    learning_decay : float in (0.5, 1], default=0.7
    learning_offset : float >= 0, default=1.0
        The step sizes η_t = (learning_offset + t)^(−learning_decay) of :meth:`partial_fit`
        (stepwise online EM, as in :class:`GaussianMixture`, whose docstring gives the
        reason for the defaults).

    Use :meth:`fit` (exact batch EM, in memory, chunked or Dask, with ``sample_weight``)
    when the data can be read several times, and :meth:`partial_fit` for one pass over a
    stream.

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
    means_ : ndarray of shape (n_components, n_features)
    components_ : ndarray of shape (n_components, n_latent, n_features)
        W_kᵀ: row j of ``components_[k]`` is the j-th orthonormal principal direction u_j of
        component k scaled by (λ_j − σ²_k)^½, the j-th column of W_k = U (Λ − σ²I)^½
        (eq. 3); rows are mutually orthogonal, in decreasing norm, each with its
        largest-magnitude entry positive.
    noise_variance_ : ndarray of shape (n_components,)
        σ²_k, reg_covar included.
    converged_ : bool
    n_iter_ : int
    lower_bounds_ : ndarray of shape (``n_iter_`` + 1,)
        Mean log-likelihood of the initial parameters and after each EM step (classification
        log-likelihood when ``hard=True``); non-decreasing up to rounding when
        ``reg_covar=0`` (a positive one moves each M-step slightly off the maximiser).
    lower_bound_ : float
    n_features_in_ : int

    Notes
    -----
    The number of free parameters (:meth:`bic`, :meth:`aic`) is
    K − 1 + K·D + K·(D·q − q(q − 1)/2 + 1): the weights, the means, and per component the
    loadings up to a rotation of the latent space plus one noise variance.

    Examples
    --------
    >>> import numpy as np
    >>> from latentspace import PPCAMixture
    >>> rng = np.random.RandomState(0)
    >>> X = np.r_[rng.randn(200, 5) * [3, .1, .1, .1, .1], rng.randn(200, 5) * .1 + 10]
    >>> m = PPCAMixture(2, n_latent=1, random_state=0).fit(X)
    >>> m.transform(X).shape
    (400, 1)
    """

    # fitted attributes a saved file may hold: kind, symbolic shape (see latentspace._schema)
    _fitted_schema = {
        "weights_": ("float", ("n_components",)),
        "means_": ("float", ("n_components", "n_features_in_")),
        "components_": ("float", ("n_components", "n_latent", "n_features_in_")),
        "noise_variance_": ("float", ("n_components",)),
        "lower_bounds_": ("float", ("*",), "nonfinite"), "lower_bound_": ("float", None),
        "n_iter_": ("int", None), "converged_": ("bool", None),
        # partial_fit's running statistics: a full Gaussian mixture's (see _stream.py)
        "running_nk_": ("float", ("n_components",), "optional"),
        "running_sums_": ("float", ("n_components", "n_features_in_"), "optional"),
        "running_second_": ("float", ("n_components", "n_features_in_", "n_features_in_"),
                            "optional"),
        "running_shift_": ("float", ("n_features_in_",), "optional"),
        "running_scale_": ("float", None, "optional"),
        "n_samples_seen_": ("float", None, "optional"), "n_steps_": ("int", None, "optional"),
    }

    def __init__(
        self,
        n_components: int = 1,
        *,
        n_latent: int = 2,
        tol: float = 1e-3,
        reg_covar: float = 1e-6,
        max_iter: int = 100,
        n_init: int = 1,
        init_params: Literal["kmeans", "k-means++", "random", "random_from_data"] = "kmeans",
        hard: bool = False,
        random_state: RandomStateLike = None,
        warm_start: bool = False,
        verbose: int = 0,
        device: str | torch.device = "cpu",
        learning_decay: float = DEFAULT_LEARNING_DECAY,
        learning_offset: float = DEFAULT_LEARNING_OFFSET,
    ) -> None:
        self.n_components = n_components
        self.n_latent = n_latent
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.hard = hard
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.device = device
        self.learning_decay = learning_decay
        self.learning_offset = learning_offset

    # --- the family and its parameters ---------------------------------------------------
    def _check_n_latent(self, n_features: int) -> int:
        q = self.n_latent
        check_int("n_latent", q)
        if not 1 <= q < n_features:
            raise ParameterError(
                f"n_latent={q} must be at least 1 and below n_features={n_features} (a latent "
                "space as wide as the data is a full-covariance Gaussian: use "
                "GaussianMixture(covariance_type='full'))."
            )
        return int(q)

    def _family(self, n_features: int, scale: float, *, fit: bool = True) -> _PPCAFamily:
        check_float("reg_covar", self.reg_covar, low=0)
        q = self._check_n_latent(n_features)
        reg = self.reg_covar * scale * scale
        if reg == math.inf:
            raise ValueError(
                f"X is so small in magnitude (max |x| ≈ {1 / scale:.3g}) that "
                f"reg_covar={self.reg_covar} swamps its variance; rescale X (e.g. "
                "StandardScaler) or lower reg_covar."
            )
        K = self.n_components
        if fit:
            check_allocation(
                5.0 * K * n_features * n_features * 8,
                f"PPCAMixture with {K} component(s) on {n_features} features: the "
                f"{K} x {n_features} x {n_features} second moments of its M-step",
                "reduce the features first (e.g. PCA) or use fewer components",
                device=self._device(),
            )
        return _PPCAFamily(K, q, reg, self.reg_covar)

    def _attributes(self, P: PPCAParams, scale: float) -> dict:
        """The fitted attributes in data units; ``ValueError`` when σ² has no normal float64
        there (data near 1e-300: their variances are below 1e-308)."""
        assert P.sigma2 is not None and P.means is not None and P.W is not None  # fitted
        sigma2 = P.sigma2 / scale / scale
        if bool((sigma2 < np.finfo(np.float64).tiny).any()):
            raise ValueError(
                "the noise variances of X are below the float64 range (X's magnitude is about "
                f"{1 / scale:.3g}); rescale X (e.g. StandardScaler)."
            )
        return {
            "weights_": P.weights,
            "means_": P.means / scale,
            "components_": P.W.transpose(1, 2) / scale,
            "noise_variance_": sigma2,
        }

    def _parameters(self, scale: float) -> PPCAParams:
        """Computed at the model's own working scale, where its values are representable,
        then brought to ``scale`` exactly (:meth:`PPCAParams.rescaled`)."""
        dev, f64 = self._device(), torch.float64
        own = working_scale(self._magnitude(), torch.float64)
        weights = torch.as_tensor(self.weights_, device=dev, dtype=f64)
        means = torch.as_tensor(self.means_, device=dev, dtype=f64) * own
        W = torch.as_tensor(self.components_, device=dev, dtype=f64).transpose(1, 2) * own
        sigma2 = torch.as_tensor(self.noise_variance_, device=dev, dtype=f64) * own * own
        shift = weights @ means  # the mixture's mean, the best stand-in for the data mean
        P = _complete(weights, means, W.contiguous(), sigma2, shift, self.reg_covar)
        return P.rescaled(scale / own)

    def _check_cost(self, n_samples: int, n_features: int) -> None:
        """Wide data (fewer samples than features): refused when an iteration's K
        eigendecompositions of D × D covariances (about 4 D³ flops each) exceed the
        budget GaussianMixture allows its full covariances."""
        K, D = self.n_components, n_features
        flops = K * 4.0 * float(D) ** 3
        if n_samples < D and flops > _WIDE_FLOPS:
            raise ValueError(
                f"PPCAMixture on {n_samples} samples x {D} features eigendecomposes {K} "
                f"{D} x {D} covariance(s) in every EM iteration (about {flops:.1e} flops) "
                f"although they have rank below n_samples={n_samples}; reduce the features "
                f"first (e.g. PCA(n_components<{n_samples}))."
            )

    def _check_summary(self, summary, scale: float) -> None:
        """``reg_covar`` above every feature's variance swamps the data (as in
        :class:`GaussianMixture`, whose check this is)."""
        GaussianMixture._check_summary(self, summary, scale)

    def _magnitude(self) -> float:
        """The largest of abs(μ) and of the components' standard deviations (data units;
        bounded by σ and √q max abs(W) without squaring, which could overflow)."""
        q = self.components_.shape[1]
        sd = max(float(np.sqrt(np.max(self.noise_variance_))),
                 float(np.max(np.abs(self.components_))) * math.sqrt(q))
        return max(super()._magnitude(), sd)

    def _far_wlp(self, rows: torch.Tensor):
        """log π_k + log N(x | μ_k, C_k) for far rows (m, D), data units, from
        y = [Vᵀu / (s² + σ²)^½, (u − V Vᵀu)/σ] with W = V S Rᵀ (thin SVD) and
        u = (x − μ_k)·2^−e, e each row's exponent (‖y‖² is the quadratic form of eq. 2);
        and log₂ of the Mahalanobis distances (m, K)."""
        dev, f64 = rows.device, torch.float64
        means = torch.as_tensor(self.means_, device=dev, dtype=f64)  # (K, D)
        W = torch.as_tensor(self.components_, device=dev, dtype=f64).transpose(1, 2)  # (K, D, q)
        s2 = torch.as_tensor(self.noise_variance_, device=dev, dtype=f64)
        weights = torch.as_tensor(self.weights_, device=dev, dtype=f64)
        K, D = means.shape
        V, s, _ = torch.linalg.svd(W, full_matrices=False)  # (K, D, q), (K, q)
        e = row_exponents(torch.cat([rows, means.abs().amax(0).expand_as(rows)], 1))[:, None]
        U = ldexp_exact(rows[:, None, :], -e[..., None]) - ldexp_exact(means[None], -e[..., None])
        Z = torch.einsum("mkd,kdq->mkq", U, V)  # (m, K, q)
        R = U - torch.einsum("mkq,kdq->mkd", Z, V)
        Y = torch.cat([Z / torch.sqrt(s * s + s2[:, None])[None],
                       R / torch.sqrt(s2)[None, :, None]], -1)
        half, log2_dist = scaled_half_sq_norm(Y, e)  # (m, K)
        log_det = (torch.log(s * s + s2[:, None]).sum(1)
                   + (D - W.shape[2]) * torch.log(s2))
        return (-0.5 * (D * _LOG_2PI + log_det) + torch.log(weights)) - half, log2_dist

    def _n_parameters(self) -> int:
        K, q, D = self.components_.shape
        return int(K - 1 + K * D + K * (D * q - q * (q - 1) // 2 + 1))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    # --- the latent side ----------------------------------------------------------------
    def transform(self, X: ArrayLike) -> ArrayOrTensor:
        """Posterior latent mean under each row's most responsible component.

        z = M_k⁻¹ W_kᵀ (x − μ_k), M_k = W_kᵀ W_k + σ²_k I, with k = ``predict(x)``
        (Tipping & Bishop 1999, eq. 7 for that component).

        Parameters
        ----------
        X : array-like or tensor of shape (n_samples, n_features)

        Returns
        -------
        Z : array of shape (n_samples, n_latent), X's type and float dtype
        """
        Xt, kind = self._query_rows(X)
        wlp, _, _ = self._weighted_log_prob(Xt, limit=True)
        labels = wlp.argmax(1)
        scale = working_scale(max(abs_max(Xt), self._magnitude()), torch.float64)
        P = self._parameters(scale)
        assert P.B is not None and P.means is not None  # fitted parameters are complete
        X64 = Xt.to(torch.float64) * scale
        Z = torch.zeros(Xt.shape[0], P.B.shape[1], dtype=torch.float64, device=Xt.device)
        for k in torch.unique(labels).tolist():
            rows = labels == k
            Z[rows] = (X64[rows] - P.means[k]) @ P.B[k].T
        if not bool(torch.isfinite(Z).all()):
            raise ValueError(
                "transform: the latent means of some rows are beyond the float64 range (X is "
                "that far from every component); rescale X."
            )
        return self._out(Z.to(Xt.dtype), kind)

    def inverse_transform(self, Z: ArrayLike,
                          labels: int | ArrayLike | None = None) -> ArrayOrTensor:
        """Map latent codes back to data space: x̂ = W_k z + μ_k.

        Parameters
        ----------
        Z : array-like or tensor of shape (n_samples, n_latent)
        labels : int, array-like of shape (n_samples,) or None, default=None
            The component of each row (one int: the same for every row). None uses the
            component of largest weight (the lowest index among equal weights) for every
            row; pass ``labels=predict(X)`` to map ``transform(X)`` back.

        Returns
        -------
        X : array of shape (n_samples, n_features), Z's type and float dtype
        """
        self._check_fitted()
        K, q, _ = self.components_.shape
        Zt, kind = check_array_like(Z, device=self._device(), n_features=q, name="Z",
                                    owner=type(self).__name__,
                                    hint="; pass the output of transform()")
        n = Zt.shape[0]
        if labels is None:
            lab = np.full(n, int(np.argmax(self.weights_)))
        elif isinstance(labels, (int, np.integer)) and not isinstance(labels, (bool, np.bool_)):
            if not 0 <= labels < K:
                raise ValueError(f"labels={labels} must be a component in [0, {K - 1}].")
            lab = np.full(n, int(labels))
        else:
            lab, _ = check_labels(labels, K, name="labels", owner=type(self).__name__)
            if lab.shape[0] != n:
                raise ValueError(
                    f"labels has {lab.shape[0]} entries, but Z has {n} rows; give one "
                    "component per row (or one int for all)."
                )
        dev, f64 = Zt.device, torch.float64
        lab_t = torch.as_tensor(lab, device=Zt.device)
        comps = torch.as_tensor(self.components_, device=dev, dtype=f64)
        X = torch.as_tensor(self.means_, device=dev, dtype=f64)[lab_t]  # (n, D)
        Z64 = Zt.to(torch.float64)
        for k in torch.unique(lab_t).tolist():
            rows = lab_t == k
            X[rows] += Z64[rows] @ comps[k]
        if not bool(torch.isfinite(X).all()):
            raise ValueError(
                "inverse_transform: the reconstruction is beyond the float64 range; Z holds "
                "values far outside the latent distribution N(0, I) (rescale Z)."
            )
        return self._out(X.to(Zt.dtype), kind)

    def sample(self, n_samples: int = 1,
               random_state: RandomStateLike = None) -> tuple[ArrayOrTensor, ArrayOrTensor]:
        """Draw new points from the fitted mixture: x = μ_k + W_k z + σ_k ε.

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
        self._check_fitted()
        K, q, D = self.components_.shape
        # the label, z, eps, the output and a temporary per row
        n_samples, labels, rng = self._sample_labels(n_samples, random_state,
                                                     8 * (1 + q + 3 * D))
        z = rng.standard_normal((n_samples, q))
        eps = rng.standard_normal((n_samples, D))
        X = eps * np.sqrt(self.noise_variance_)[labels][:, None] + self.means_[labels]
        for k in range(K):
            rows = labels == k
            X[rows] += z[rows] @ self.components_[k]
        return self._drawn_out(X), self._drawn_out(labels)
