"""Mixtures on incomplete data: NaN entries missing at random, marginalised out.

With ``missing="marginalize"`` a row's observed coordinates o (its non-NaN entries) are all
that enters its likelihood, p(x_o) = Σ_k π_k p(x_o | θ_k), and EM climbs the observed-data
log-likelihood with the expected sufficient statistics of the complete data (Ghahramani &
Jordan 1994, "Supervised learning from incomplete data via an EM approach"):

- Gaussian: p(x_o | k) = N(x_o | μ_o, Σ_oo), and given x_o and k the missing block m is
  Gaussian with

      E[x_m | x_o, k] = μ_m + Σ_mo Σ_oo⁻¹ (x_o − μ_o),                                    (1)
      Cov[x_m | x_o, k] = Σ_mm − Σ_mo Σ_oo⁻¹ Σ_om,                                          (2)

  so E[x xᵀ | x_o, k] = x̂ x̂ᵀ + (2) in the missing block, with x̂ the row completed by (1).
  Diagonal and spherical covariances make the coordinates independent given k (x̂_m = μ_m,
  conditional variances σ²_km); a tied covariance shares Σ between the components.
- Bernoulli: p(x_o | k) is the product over the observed features, E[x_d | k] = p_kd.

The statistics keep the complete-data types (``GaussStats``, ``BernoulliStats``), so the
M-steps are unchanged. Full and tied covariances need Σ_oo⁻¹ for each row's pattern of
missing entries: rows are sorted by pattern and handled in groups of rows, each distinct
pattern of a group factorised once per component (a pattern that spans groups is factorised
once in each). The factorisation is that of the padded matrix

    Σ̃ = M Σ M + (I − M),      M = diag(observed),                                          (3)

which is Σ_oo on the observed coordinates and the identity on the missing ones, so a
whole group is one batched Cholesky of fixed size D whatever its patterns: its factor C̃
gives log det Σ_oo = 2 Σ log diag C̃ and, with W = C̃⁻¹ M Σ, both ‖C̃⁻¹ (x − μ)_o‖² (the
quadratic form) and x̂ = μ + Wᵀ C̃⁻¹ (x − μ)_o (eq. 1), and (2) is Σ − WᵀW in the missing
block.

Rows with nothing missing take the complete-data code, so a block with no NaN costs one
``isnan`` check more than without ``missing="marginalize"``.
"""

from __future__ import annotations

import math

import torch

__all__ = ["bernoulli_conditional", "bernoulli_log_weighted", "bernoulli_sums",
           "check_observed_columns", "fill_values", "gauss_conditional", "gauss_log_weighted",
           "gauss_stats", "split_complete"]

_LOG_2PI = math.log(2 * math.pi)
_GROUP_ELEMS = 1 << 20  # rows × components × D² handled at once (full and tied)


# ----------------------------------------------------------------------------- data summary
def check_observed_columns(summary, name: str = "X") -> None:
    """``ValueError`` naming the first feature with no observed value (of positive weight)."""
    if not summary.n_missing or summary.observed is None:
        return
    empty = torch.nonzero(~(summary.observed > 0)).flatten()
    if empty.numel():
        col = int(empty[0])
        more = f"; {empty.numel()} such columns in all" if empty.numel() > 1 else ""
        raise ValueError(
            f"Column {col} of {name} has no observed value (all its entries are NaN, or "
            f"belong to rows of zero sample_weight{more}): a model cannot estimate anything "
            "about it. Drop the columns with nothing observed."
        )


def fill_values(summary, view, shift: torch.Tensor):
    """The observed (weighted) mean of each feature of the data as the model reads them
    (working units, after the model's own preparation such as binarising), (D,), with which
    the initialisers see missing entries; None for complete data (``summary`` says which).
    One more pass over the data, taken only when some entries are missing."""
    from ..em._stats import summarize_chunk

    if not summary.n_missing:
        return None
    moments = view.map_reduce(lambda c: summarize_chunk(c.X, c.w, shift))
    return shift + moments.sum / moments.counts()


def split_complete(X: torch.Tensor):
    """(observed mask (n, D) bool, rows with some NaN (n,) bool)."""
    obs = ~torch.isnan(X)
    return obs, ~obs.all(1)


# ----------------------------------------------------------------------------- Gaussian
def _pattern_groups(X: torch.Tensor, obs: torch.Tensor, P, cov_type: str, reg_covar: float,
                    moments: bool):
    """For full/tied covariances: groups of rows of X (all with some NaN) with, per row and
    component, the log-density of the observed entries (eq. 3 route) and, with ``moments``,
    the completed rows x̂ (eq. 1) and the conditional covariances (eq. 2) per pattern.

    Yields (idx (r,), loglik (r, K), Xh (r, K, D) or None, local (r,) pattern of each row,
    Ccond (u, Kc, D, D) or None) with Kc = K (full) or 1 (tied).
    """
    from ._gaussian import _ILL

    n, D = X.shape
    covs = P.covariances if cov_type == "full" else P.covariances[None]
    Kc = covs.shape[0]
    pats, inv = torch.unique(obs, dim=0, return_inverse=True)
    order = torch.argsort(inv, stable=True)
    step = max(1, _GROUP_ELEMS // (Kc * D * D))
    eye = torch.eye(D, dtype=X.dtype, device=X.device)
    X0 = torch.where(obs, X, 0.0)
    for a in range(0, n, step):
        idx = order[a : a + step]
        up, local = torch.unique_consecutive(inv[idx], return_inverse=True)
        mf = pats[up].to(X.dtype)  # (u, D) 1 where observed
        u = mf.shape[0]
        Msig = mf[:, None, :, None] * covs[None]  # M Σ: (u, Kc, D, D)
        padded = Msig * mf[:, None, None, :] + torch.diag_embed((1.0 - mf)[:, None, :]
                                                                .expand(u, Kc, D))
        C, info = torch.linalg.cholesky_ex(padded)
        failed = info != 0  # (u, Kc)
        if bool(failed.any()):
            if moments:
                raise ValueError(_ILL.format(reg=reg_covar))
            # Σ_oo is a principal block of a positive-definite Σ, so this is underflow: a
            # query far beyond the model's scale, whose log-density is not representable on
            # this route (−inf, left to the far route of the queries)
            C = torch.where(failed[..., None, None], torch.eye(D, dtype=X.dtype,
                                                              device=X.device), C)
        Linv = torch.linalg.solve_triangular(C, eye.expand_as(C), upper=False)
        half_logdet = torch.log(torch.diagonal(C, dim1=-2, dim2=-1)).sum(-1)  # (u, Kc)
        g = (lambda A: A) if u == 1 else (lambda A: A[local])
        ob = obs[idx]
        d = (X0[idx][:, None, :] - P.means[None]) * ob[:, None, :]  # (r, K, D), 0 if missing
        y = (g(Linv) @ d[..., None]).squeeze(-1)  # C̃⁻¹ (x − μ)_o: (r, K, D)
        n_obs = ob.sum(1, keepdim=True).to(X.dtype)  # (r, 1)
        ll = -0.5 * (n_obs * _LOG_2PI + y.square().sum(-1)) - g(half_logdet)
        if bool(failed.any()):
            ll = ll.masked_fill(g(failed).expand_as(ll), -math.inf)
        if not moments:
            yield idx, ll, None, local, None
            continue
        W = Linv @ Msig  # C̃⁻¹ M Σ: (u, Kc, D, D)
        Xh = P.means[None] + (g(W).transpose(-1, -2) @ y[..., None]).squeeze(-1)
        Xh = torch.where(ob[:, None, :], X0[idx][:, None, :], Xh)  # observed kept as given
        mm = (1.0 - mf)[:, None, :, None] * (1.0 - mf)[:, None, None, :]
        Ccond = (covs[None] - W.transpose(-1, -2) @ W) * mm  # eq. (2) in the missing block
        yield idx, ll, Xh, local, Ccond


def _diag_parts(X: torch.Tensor, obs: torch.Tensor, P, cov_type: str):
    """Diagonal/spherical: (observed mask as float (n, D), X − shift with 0 where missing,
    means − shift (K, D), variances (K, D))."""
    var = P.covariances if cov_type == "diag" else P.covariances[:, None].expand_as(P.means)
    mo = obs.to(X.dtype)
    Xc0 = torch.where(obs, X - P.shift, 0.0)
    return mo, Xc0, P.means - P.shift, var


def gauss_log_weighted(family, X: torch.Tensor, P, obs: torch.Tensor) -> torch.Tensor:
    """log π_k + log N(x_o | μ_ko, Σ_k,oo) of rows X (n, D) that all have some NaN: (n, K)."""
    t = family.cov_type
    log_w = torch.log(P.weights)
    if t in ("diag", "spherical"):
        mo, Xc0, mc, var = _diag_parts(X, obs, P, t)
        prec = 1.0 / var
        q = (Xc0 * Xc0) @ prec.T
        q -= 2.0 * (Xc0 @ (mc * prec).T)
        q += mo @ (mc * mc * prec).T
        if not math.isfinite(float(q.sum())):  # the expanded form overflowed: differences
            diff = (Xc0[:, None, :] - mc[None]) * mo[:, None, :]
            q = (diff * diff * prec[None]).sum(-1)
        half_logdet = mo @ torch.log(var).T * 0.5  # ½ Σ_{d∈o} log σ²_kd: (n, K)
        n_obs = mo.sum(1, keepdim=True)
        return -0.5 * (n_obs * _LOG_2PI + q) - half_logdet + log_w
    out = torch.empty(X.shape[0], family.n_components, dtype=X.dtype, device=X.device)
    for idx, ll, _, _, _ in _pattern_groups(X, obs, P, t, family.reg_covar, False):
        out[idx] = ll + log_w
    return out


def gauss_stats(family, X: torch.Tensor, Rw: torch.Tensor, P, obs: torch.Tensor):
    """(Σ_n Rw_nk (x̂_nk − s) (K, D), expected second moments about the shift s by
    covariance type) of rows X (n, D) that all have some NaN, for weighted responsibilities
    Rw (n, K)."""
    t = family.cov_type
    if t in ("diag", "spherical"):
        mo, Xc0, mc, var = _diag_parts(X, obs, P, t)
        miss = Rw.T @ (1.0 - mo)  # (K, D): Σ_n Rw_nk over the rows missing feature d
        sums = Rw.T @ Xc0 + miss * mc
        second = Rw.T @ (Xc0 * Xc0) + miss * (mc * mc + var)
        return sums, second
    K, D = P.means.shape
    sums = torch.zeros(K, D, dtype=X.dtype, device=X.device)
    second = torch.zeros((K, D, D) if t == "full" else (D, D), dtype=X.dtype, device=X.device)
    for idx, _, Xh, local, Ccond in _pattern_groups(X, obs, P, t, family.reg_covar, True):
        R = Rw[idx]  # (r, K)
        Xc = Xh - P.shift  # (r, K, D)
        RX = R[:, :, None] * Xc
        sums += RX.sum(0)
        pw = torch.zeros(Ccond.shape[0], K, dtype=X.dtype, device=X.device).index_add_(
            0, local, R)  # Σ of Rw over each pattern's rows: (u, K)
        if t == "full":
            second += torch.einsum("rkd,rke->kde", RX, Xc)
            second += torch.einsum("pk,pkde->kde", pw, Ccond)
        else:
            second += torch.einsum("rkd,rke->de", RX, Xc)
            second += torch.einsum("p,pde->de", pw.sum(1), Ccond[:, 0])
    return sums, second


def gauss_conditional(family, X: torch.Tensor, P, obs: torch.Tensor) -> torch.Tensor:
    """E[x | x_o, k] of rows X (n, D) that all have some NaN (eq. 1; observed entries as
    given): (n, K, D)."""
    t = family.cov_type
    if t in ("diag", "spherical"):
        return torch.where(obs[:, None, :], X[:, None, :], P.means[None])
    out = torch.empty(X.shape[0], family.n_components, X.shape[1], dtype=X.dtype,
                      device=X.device)
    for idx, _, Xh, _, _ in _pattern_groups(X, obs, P, t, family.reg_covar, True):
        out[idx] = Xh
    return out


# ----------------------------------------------------------------------------- Bernoulli
def bernoulli_log_weighted(X: torch.Tensor, P, obs: torch.Tensor) -> torch.Tensor:
    """log π_k + Σ_{d∈o} log p(x_d | μ_kd) of rows X (n, D): (n, K)."""
    X0 = torch.where(obs, X, 0.0)
    log1m = torch.log1p(-P.probs)  # (K, D)
    return X0 @ P.logit.T + obs.to(X.dtype) @ log1m.T + torch.log(P.weights)


def bernoulli_sums(X: torch.Tensor, Rw: torch.Tensor, P, obs: torch.Tensor) -> torch.Tensor:
    """Σ_n Rw_nk E[x_nd | x_o, k] (K, D), with E[x_d | k] = μ_kd for a missing d."""
    X0 = torch.where(obs, X, 0.0)
    return Rw.T @ X0 + (Rw.T @ (~obs).to(X.dtype)) * P.probs


def bernoulli_conditional(X: torch.Tensor, P, obs: torch.Tensor) -> torch.Tensor:
    """E[x | x_o, k]: (n, K, D), μ_kd where x_d is missing."""
    return torch.where(obs[:, None, :], X[:, None, :], P.probs[None])

