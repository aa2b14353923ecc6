"""Probabilistic PCA with missing entries: EM on the observed coordinates, and the queries.

The model is PPCA (Tipping & Bishop 1999), x = μ + W z + ε, z ~ N(0, I_k), ε ~ N(0, σ² I_d).
For a row with observed coordinates o (and missing ones m) the marginal of its observed part is

    x_o ~ N(μ_o, C_oo),  C_oo = W_o W_oᵀ + σ² I                                        (1)

and the posterior of z given x_o is Gaussian with (Ilin & Raiko 2010, §3.2, eq. 14–15)

    M = W_oᵀ W_o + σ² I_k,  E[z | x_o] = M⁻¹ W_oᵀ (x_o − μ_o),  Cov[z | x_o] = σ² M⁻¹.    (2)

By the matrix inversion lemma the log-density of (1) needs only M:

    log|C_oo| = (|o| − k) log σ² + log|M|,
    (x_o − μ_o)ᵀ C_oo⁻¹ (x_o − μ_o) = ‖r − W_o E[z]‖² / σ² + ‖E[z]‖²,  r = x_o − μ_o,      (3)

a sum of non-negative terms (no cancellation). The conditional mean of the missing entries is

    E[x_m | x_o] = μ_m + W_m E[z | x_o].                                                 (4)

EM (Ilin & Raiko 2010, §3.2; the mean fitted jointly with W by regressing each column on
z̃ = [z; 1]), in its parameter-expanded form (PX-EM, Liu, Rubin & Wu 1998; see
``_EMModel._m_step``): the E-step sums, over the rows where column j is observed,

    A_j = Σ E[z̃ z̃ᵀ],  B_j = Σ x_nj E[z̃],  Q_j = Σ x_nj²,                               (5)

and the M-step solves [w_j; μ_j] = A_j⁻¹ B_j for every column, then

    σ² = Σ_j (Q_j − [w_j; μ_j]ᵀ B_j) / (number of observed entries),                     (6)

the exact maximiser of the expected complete-data log-likelihood, so the observed-data
log-likelihood (1) never decreases (Dempster, Laird & Rubin 1977). The statistics (5) are
additive over rows: the loop is the shared EM engine (:mod:`latentspace.em`).

Rows are processed in blocks that bound the (rows × k × k) working arrays. Rows that share a
missingness pattern share M and its factor: when the data hold few patterns (at most a quarter
as many as rows, e.g. whole columns missing for groups of rows), M is built once per pattern
and A_j summed per pattern, which removes the n·d·k² terms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .._math import eigh_desc, working_scale
from ..data import InMemorySource
from ..em import run_em
from ..em._stats import Stats

__all__ = ["fit_em", "marginal_log_density", "posterior_mean", "scaled_marginal_parts",
           "weights_from_fit"]

MAX_ITER = 1000  # M-steps of the EM route at most
TOL = 1e-7  # convergence: per-sample log-likelihood change below TOL per observed entry
_BLOCK_FLOATS = 1 << 22  # float64 entries of one block's (rows, k+1, k+1) working array
_LOG2PI = math.log(2.0 * math.pi)


def _block_rows(k: int, d: int) -> int:
    return max(1, _BLOCK_FLOATS // ((k + 1) * (k + 1) + 2 * d))


def _patterns(O: torch.Tensor):
    """(unique patterns (P, d), inverse (n,)) when rows share few patterns, else None."""
    n = O.shape[0]
    if n < 8:
        return None
    uniq, inv = torch.unique(O, dim=0, return_inverse=True)
    return (uniq, inv) if uniq.shape[0] * 4 <= n else None


def _precision_factor(O, W, sigma2, groups):
    """Cholesky factors of M = W_oᵀ W_o + σ² I (2) for every row: (n, k, k)."""
    d, k = W.shape
    WW = (W[:, :, None] * W[:, None, :]).reshape(d, k * k)
    eye = torch.eye(k, dtype=W.dtype, device=W.device)
    rows = O if groups is None else groups[0]
    M = (rows @ WW).reshape(-1, k, k) + sigma2 * eye
    L, info = torch.linalg.cholesky_ex(M)
    if bool((info != 0).any()):
        raise ValueError(
            "PCA(missing='marginalize'): the posterior precision of the latent variables is "
            "not positive definite (the noise variance vanished); the data are numerically "
            "of rank at most n_components: choose fewer components."
        )
    return L if groups is None else L[groups[1]]


def _posterior(X, W, mu, sigma2, groups=None):
    """Posterior of z for rows of ``X`` (NaN = missing), eq. (2)–(3).

    Returns (O (n, d) float mask, X0 (n, d) with 0 at missing entries, Ez (n, k),
    L (n, k, k) factors of M, log-density of the observed part (n,)).
    """
    nan = torch.isnan(X)
    O = (~nan).to(X.dtype)
    X0 = torch.where(nan, torch.zeros((), dtype=X.dtype, device=X.device), X)
    R = (X0 - mu) * O  # x_o − μ_o, 0 at missing entries
    k = W.shape[1]
    if groups is None:
        groups = _patterns(O)
    L = _precision_factor(O, W, sigma2, groups)
    b = R @ W  # W_oᵀ (x_o − μ_o)
    Ez = torch.cholesky_solve(b[:, :, None], L)[:, :, 0]
    res = R - (Ez @ W.T) * O
    quad = (res * res).sum(1) / sigma2 + (Ez * Ez).sum(1)
    d_o = O.sum(1)
    logdet = (d_o - k) * math.log(sigma2) + 2.0 * torch.log(
        torch.diagonal(L, dim1=1, dim2=2)).sum(1)
    ll = -0.5 * (d_o * _LOG2PI + logdet + quad)
    return O, X0, Ez, L, ll


def _blocks(n: int, k: int, d: int):
    step = _block_rows(k, d)
    for start in range(0, n, step):
        yield slice(start, min(n, start + step))


def posterior_mean(X: torch.Tensor, W: torch.Tensor, mu: torch.Tensor,
                   sigma2: float) -> torch.Tensor:
    """E[z | x_o] (2) for every row of ``X`` (n, d) float64 with NaN at missing entries."""
    d, k = W.shape
    out = [_posterior(X[s], W, mu, sigma2)[2] for s in _blocks(X.shape[0], k, d)]
    return torch.cat(out) if out else X.new_zeros((0, k))


def marginal_log_density(X: torch.Tensor, W: torch.Tensor, mu: torch.Tensor,
                         sigma2: float) -> torch.Tensor:
    """log N(x_o | μ_o, W_o W_oᵀ + σ² I) (1, 3) for every row of ``X`` (n, d) float64."""
    d, k = W.shape
    out = [_posterior(X[s], W, mu, sigma2)[4] for s in _blocks(X.shape[0], k, d)]
    return torch.cat(out) if out else X.new_zeros((0,))


def scaled_marginal_parts(X: torch.Tensor, W: torch.Tensor, mu: torch.Tensor, sigma2: float,
                          e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The pieces of (1) for rows far from the model, without overflow.

    ``e`` (m,) int64 are row exponents: (x_o − μ_o) is formed as x_o·2^−e − μ_o·2^−e
    (exact), so that the quadratic form (3) equals ‖Y · 2^e‖² for the returned ``Y``
    (m, d + k) = [(r − W_o E[z]) / σ, E[z]] of the scaled residual.

    Returns (const (m,) = −½(|o| log 2π + log|C_oo|), Y (m, d + k)).
    """
    from .._math import ldexp_exact

    nan = torch.isnan(X)
    O = (~nan).to(X.dtype)
    Xf = torch.where(nan, mu.expand_as(X), X)
    R = ldexp_exact(Xf, -e[:, None]) - ldexp_exact(mu[None], -e[:, None])  # 0 at missing
    L = _precision_factor(O, W, sigma2, None)
    Ez = torch.cholesky_solve((R @ W)[:, :, None], L)[:, :, 0]
    res = R - (Ez @ W.T) * O
    d_o = O.sum(1)
    k = W.shape[1]
    logdet = (d_o - k) * math.log(sigma2) + 2.0 * torch.log(
        torch.diagonal(L, dim1=1, dim2=2)).sum(1)
    return -0.5 * (d_o * _LOG2PI + logdet), torch.cat([res / math.sqrt(sigma2), Ez], 1)


def weights_from_fit(V: torch.Tensor, lam: torch.Tensor, sigma2: float) -> torch.Tensor:
    """W = Vᵀ (Λ − σ² I)^½ (d, k) from the principal axes V (k, d) and variances λ ≥ σ²."""
    return V.T * torch.sqrt(torch.clamp(lam - sigma2, min=0.0))


# ---------------------------------------------------------------------------------- EM
@dataclass(frozen=True)
class _Stats(Stats):
    """Sums (5) over the rows seen: ``A`` (d, k+1, k+1), ``B`` (d, k+1), ``Q`` (d,),
    ``n_obs`` the number of observed entries."""

    A: torch.Tensor
    B: torch.Tensor
    Q: torch.Tensor
    n_obs: float
    z1: torch.Tensor  # (k,) Σ_n E[z_n] over all rows
    z2: torch.Tensor  # (k, k) Σ_n E[z_n z_nᵀ]


@dataclass(frozen=True)
class _Params:
    W: torch.Tensor  # (d, k)
    mu: torch.Tensor  # (d,)
    sigma2: float


class _EMModel:
    """The engine's model: pure functions of explicit parameters, in working units."""

    name = "PCA(missing='marginalize')"

    def __init__(self, init: _Params, floor: float, tol: float, log_scale: float,
                 n_obs: float):
        self.init, self.floor, self.tol = init, floor, tol
        self.log_scale, self.n_obs = log_scale, n_obs

    def _init_params(self, source, rng):
        return self.init

    def _e_step_stats(self, chunk, p: _Params) -> _Stats:
        total: Stats | None = None
        n, d = chunk.X.shape
        k = p.W.shape[1]
        for s in _blocks(n, k, d):
            X = chunk.X[s]
            groups = _patterns(~torch.isnan(X))
            if groups is not None:
                groups = (groups[0].to(X.dtype), groups[1])
            O, X0, Ez, L, ll = _posterior(X, p.W, p.mu, p.sigma2, groups)
            m = X.shape[0]
            Zt = torch.cat([Ez, torch.ones((m, 1), dtype=X.dtype, device=X.device)], 1)
            S = Zt[:, :, None] * Zt[:, None, :]
            S[:, :k, :k] += p.sigma2 * torch.cholesky_inverse(L)  # Cov[z | x_o] (2)
            S = S.reshape(m, -1)
            if groups is not None:  # A_j summed per pattern: P·d·k² instead of n·d·k²
                Sp = torch.zeros((groups[0].shape[0], S.shape[1]), dtype=X.dtype,
                                 device=X.device).index_add_(0, groups[1], S)
                A = groups[0].T @ Sp
            else:
                A = O.T @ S
            S_all = S.sum(0).reshape(k + 1, k + 1)
            st = _Stats(n=float(m), loglik=float(ll.sum()), A=A.reshape(d, k + 1, k + 1),
                        B=X0.T @ Zt, Q=(X0 * X0).sum(0), n_obs=float(O.sum()),
                        z1=S_all[:k, k], z2=S_all[:k, :k])
            total = st if total is None else total + st
        assert isinstance(total, _Stats)  # at least one block; a sum of _Stats is one
        return total

    def _m_step(self, st: _Stats, p: _Params) -> _Params:
        k = p.W.shape[1]
        L, info = torch.linalg.cholesky_ex(st.A)
        if bool((info != 0).any()):
            raise ValueError(
                "PCA(missing='marginalize'): a column's regression on the latent variables "
                "is singular; the data are numerically of rank at most n_components: choose "
                "fewer components."
            )
        Wt = torch.cholesky_solve(st.B[:, :, None], L)[:, :, 0]  # (d, k+1): [w_j; μ_j]
        sigma2 = float((st.Q - (Wt * st.B).sum(1)).sum()) / st.n_obs  # (6)
        if not math.isfinite(sigma2):
            raise ValueError(
                "PCA(missing='marginalize'): the EM updates are not finite; rescale X, e.g. "
                "with sklearn.preprocessing.StandardScaler."
            )
        # parameter expansion (PX-EM, Liu, Rubin & Wu 1998): the prior of z is also fitted,
        # z ~ N(c, Σ) with c = mean E[z], Σ = mean E[z zᵀ] − c cᵀ, and the model is mapped
        # back to z ~ N(0, I): μ ← μ + W c, W ← W Σ^½. The same likelihood, a larger step:
        # plain EM moves the mean very slowly when the noise is small (E[z] absorbs a shift)
        W, mu = Wt[:, :k], Wt[:, k]
        c = st.z1 / st.n
        Sigma = st.z2 / st.n - torch.outer(c, c)
        R, info = torch.linalg.cholesky_ex(Sigma)
        if int(info) == 0:
            mu = mu + W @ c
            W = W @ R
        return _Params(W.contiguous(), mu.contiguous(), max(sigma2, self.floor))

    def _lower_bound(self, st: _Stats, p: _Params) -> float:
        # per-sample log-likelihood in data units: x = x_w / s + shift adds |o| log s per row
        return (st.loglik + st.n_obs * self.log_scale) / st.n

    def _em_converged(self, lower_bounds, old, new, tol) -> bool:
        return abs(lower_bounds[-1] - lower_bounds[-2]) < tol


@dataclass
class EMFit:
    """Result of :func:`fit_em`, in data units: W (d, k), mu (d,), sigma2, the per-sample
    log-likelihood trace, iterations and convergence."""

    W: torch.Tensor
    mu: torch.Tensor
    sigma2: float
    lower_bounds: list
    n_iter: int
    converged: bool


def fit_em(X: torch.Tensor, k: int, *, max_iter: int = MAX_ITER, tol: float = TOL,
           warn: bool = True, init=None) -> EMFit:
    """Maximum-likelihood PPCA of ``X`` (n, d) with NaN at the missing entries, by EM.

    Initialisation: each column is shifted by its observed mean and the data are scaled by
    a power of two (exact; :func:`latentspace._math.working_scale`); the missing entries are
    filled with those means (0 after the shift) and W, σ² start from the exact PPCA of the
    filled data, W = V (Λ − σ² I)^½ with σ² the mean of the discarded eigenvalues of its
    covariance (each direction keeps at least 1e-2 σ² of variance, so that no column of W
    starts at the zero fixed point of EM).

    ``tol`` is per observed entry: the loop stops when the per-sample log-likelihood changes
    by less than ``tol`` times the mean number of observed entries per row. ``init``, a
    tuple (W (d, k), μ (d,), σ²) in data units, replaces the initialisation.
    """
    X = X.to(torch.float64)
    n, d = X.shape
    nan = torch.isnan(X)
    count = (~nan).sum(0)
    if bool((count == 0).any()):
        col = int(torch.nonzero(count == 0)[0, 0])
        raise ValueError(
            f"Column {col} of X has no observed entry (all {n} values are NaN): PCA cannot "
            "estimate its mean or its loadings. Drop the columns with nothing observed."
        )
    zero = torch.zeros((), dtype=X.dtype, device=X.device)
    shift = torch.where(nan, zero, X).sum(0) / count
    Xs = X - shift
    amax = float(torch.where(nan, zero, Xs).abs().max()) if X.numel() else 0.0
    scale = working_scale(amax, torch.float64)
    if scale != 1.0:
        Xs = Xs * scale
    X0 = torch.where(nan, zero, Xs)
    C = X0.T @ X0 / n  # covariance of the mean-filled data
    total = float(torch.diagonal(C).sum())
    mean_var = float((X0 * X0).sum()) / float(count.sum())
    floor = 1e-12 * mean_var if mean_var > 0 else 1e-300
    values, vectors = eigh_desc(C, k)
    values = torch.clamp(values, min=0.0)
    sigma2 = max((total - float(values.sum())) / (d - k), floor)
    W0 = vectors * torch.sqrt(torch.clamp(values - sigma2, min=1e-2 * sigma2))
    init_p = _Params(W0.contiguous(), torch.zeros(d, dtype=X.dtype, device=X.device), sigma2)
    if init is not None:
        W_i, mu_i, s2_i = (torch.as_tensor(v, dtype=X.dtype, device=X.device) for v in init)
        init_p = _Params((W_i * scale).contiguous(), (mu_i - shift) * scale,
                         float(s2_i) * scale * scale)
    n_obs = float(count.sum())
    model = _EMModel(init_p, floor, tol * n_obs / n, math.log(scale), n_obs)
    source = InMemorySource(Xs, chunk_rows=max(n, 1))
    with np.errstate(all="ignore"):
        result = run_em(model, source, n_init=1, max_iter=max_iter, tol=model.tol,
                        rng=None, warn=warn)
    p = result.params
    return EMFit(W=p.W / scale, mu=p.mu / scale + shift, sigma2=p.sigma2 / scale / scale,
                 lower_bounds=list(result.lower_bounds), n_iter=result.n_iter,
                 converged=result.converged)
