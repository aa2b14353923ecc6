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
M-steps are unchanged. Full and tied covariances are evaluated through the precision
Λ = Σ⁻¹ = L Lᵀ (L the stored Cholesky factor of the precision), whose block identities need
only the j × j block Λ_mm of the j missing coordinates, not the |o| × |o| Σ_oo:

    Cov[x_m | x_o, k] = Λ_mm⁻¹,                                                           (3)
    E[x_m | x_o, k] = μ_m − Λ_mm⁻¹ Λ_mo (x_o − μ_o)                 (= eq. 1),             (4)
    (x_o − μ_o)ᵀ Σ_oo⁻¹ (x_o − μ_o) = ‖Lᵀ (x̂ − μ)‖²                 (x̂ completed by 4),    (5)
    log det Σ_oo = log det Σ + log det Λ_mm                        (Schur complement).    (6)

(5) holds because x̂_m minimises the complete quadratic form over x_m, and its minimum is
the Schur complement form; written as a sum of squares it cannot cancel below 0. Rows are
grouped by their number of missing entries, and within a group of rows by pattern: each
distinct pattern's Λ_mm is factorised once per component (a pattern that spans groups once
in each), and a typical row with a few missing entries costs a few small matrix products.

Rows with nothing missing take the complete-data code, so a block with no NaN costs one
``isnan`` check more than without ``missing="marginalize"``.
"""

from __future__ import annotations

import math

import torch

__all__ = ["bernoulli_conditional", "bernoulli_log_weighted", "bernoulli_sums",
           "check_observed_columns", "fill_values", "gauss_conditional", "gauss_groups",
           "gauss_log_weighted", "gauss_stats", "split_complete"]

_LOG_2PI = math.log(2 * math.pi)
_GROUP_ELEMS = 1 << 20  # rows × (components × D + Λ_mm's j²) handled at once (full, tied)


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
def gauss_groups(family, X: torch.Tensor, P, obs: torch.Tensor) -> list:
    """For full/tied covariances: groups of rows of X (all with some NaN) with, per row and
    component, the log-density of the observed entries (eqs. 4–6), the completed rows x̂
    (eq. 4) and the conditional covariances Λ_mm⁻¹ (eq. 3) per pattern; the family may
    hand the same groups to :func:`gauss_log_weighted` and :func:`gauss_stats`.

    Rows are grouped by their number j of missing entries, and within a group of rows by
    pattern, each pattern's Λ_mm (j × j) factorised once per component.

    Returns a list of (idx (r,), loglik (r, K), Xh (r, K, D), local (r,) pattern of each row,
    missing coordinates of each pattern (u, j), Λ_mm⁻¹ (u, Kc, j, j), failed), with Kc = K
    (full) or 1 (tied); ``failed``: some Λ_mm did not factorise (their log-densities are
    −inf, their moments unusable).
    """
    return list(_pattern_groups(X, obs, P, family.cov_type))


def _check_groups(groups, family) -> None:
    from ._gaussian import _ILL

    if any(g[-1] for g in groups):
        raise ValueError(_ILL.format(reg=family.reg_covar))


def _pattern_groups(X: torch.Tensor, obs: torch.Tensor, P, cov_type: str):
    n, D = X.shape
    K = P.means.shape[0]
    L = P.prec_chol if cov_type == "full" else P.prec_chol[None]  # (Kc, D, D), Λ = L Lᵀ
    Kc = L.shape[0]
    Lam = L @ L.transpose(-1, -2)
    X0 = torch.where(obs, X, 0.0)
    n_miss = D - obs.sum(1)
    for j in torch.unique(n_miss).tolist():
        rows_j = torch.nonzero(n_miss == j).flatten()
        miss_j = torch.nonzero(~obs[rows_j])[:, 1].view(-1, j)  # each row's missing coords
        pats, inv = _unique_rows(miss_j, D)  # (u, j), (rows,)
        # each pattern's Λ_mm once per component, for all the rows with j missing entries
        Lmm = Lam[:, pats[:, :, None], pats[:, None, :]].transpose(0, 1)  # (u, Kc, j, j)
        C, info = torch.linalg.cholesky_ex(Lmm)
        failed_all = info != 0  # (u, Kc)
        if bool(failed_all.any()):
            # Λ_mm is a principal block of a positive-definite Λ, so this is overflow: a
            # query far beyond the model's scale, not representable on this route (−inf,
            # left to the far route of the queries)
            C = torch.where(failed_all[..., None, None],
                            torch.eye(j, dtype=X.dtype, device=X.device), C)
        Cinv_all = torch.cholesky_inverse(C)  # Λ_mm⁻¹: (u, Kc, j, j)
        half_logdet_all = torch.log(torch.diagonal(C, dim1=-2, dim2=-1)).sum(-1)  # (u, Kc)
        step = max(1, _GROUP_ELEMS // (K * D + Kc * j * j))
        for a in range(0, rows_j.numel(), step):
            idx = rows_j[a : a + step]
            r = idx.numel()
            ob = obs[idx]
            miss = miss_j[a : a + step]
            # the chunk's own patterns, renumbered from 0
            used, local = torch.unique(inv[a : a + step], return_inverse=True)
            pats_c, Cinv, half_logdet = pats[used], Cinv_all[used], half_logdet_all[used]
            failed = failed_all[used]
            g = (lambda A: A) if used.numel() == 1 else (lambda A: A[local])
            d = (X0[idx][:, None, :] - P.means[None]) * ob[:, None, :]  # (r, K, D)
            # h = (Λ d)_m and δ = −Λ_mm⁻¹ h: the conditional mean's offset (eq. 4)
            Lamd = torch.einsum("kde,rke->rkd", Lam.expand(K, D, D), d)
            gather = miss[:, None, :].expand(r, K, j)
            h = torch.gather(Lamd, 2, gather)
            delta = -(g(Cinv) @ h[..., None]).squeeze(-1)  # (r, K, j)
            Xh = torch.where(ob[:, None, :], X0[idx][:, None, :], P.means[None]).scatter_add(
                2, gather, delta)
            # eq. (5) as ‖Lᵀ(x̂ − μ)‖², a sum of squares, and eq. (6)
            y = torch.einsum("rkd,kde->rke", Xh - P.means[None], L.expand(K, D, D))
            n_obs = float(D - j)
            ll = -0.5 * (n_obs * _LOG_2PI + y.square().sum(-1)) + P.log_det \
                - g(half_logdet)
            any_failed = bool(failed.any())
            if any_failed:
                ll = ll.masked_fill(g(failed).expand_as(ll), -math.inf)
            yield idx, ll, Xh, local, pats_c, Cinv, any_failed


def _unique_rows(miss: torch.Tensor, D: int):
    """(distinct rows (u, j), index of each row's (n,)) of sorted coordinate lists ``miss``
    (n, j) in [0, D): through one int64 code per row when the patterns fit in 63 bits (a
    1-D unique is much faster than a row-wise one)."""
    if D <= 63:
        bits = torch.ones(1, dtype=torch.int64, device=miss.device) << miss  # (n, j)
        codes, inv = torch.unique(bits.sum(1), return_inverse=True)
        first = torch.zeros(codes.numel(), dtype=torch.int64, device=miss.device).scatter_(
            0, inv, torch.arange(miss.shape[0], device=miss.device))
        return miss[first], inv
    return torch.unique(miss, dim=0, return_inverse=True)


def _diag_parts(X: torch.Tensor, obs: torch.Tensor, P, cov_type: str):
    """Diagonal/spherical: (observed mask as float (n, D), X − shift with 0 where missing,
    means − shift (K, D), variances (K, D))."""
    var = P.covariances if cov_type == "diag" else P.covariances[:, None].expand_as(P.means)
    mo = obs.to(X.dtype)
    Xc0 = torch.where(obs, X - P.shift, 0.0)
    return mo, Xc0, P.means - P.shift, var


def gauss_log_weighted(family, X: torch.Tensor, P, obs: torch.Tensor,
                       groups=None) -> torch.Tensor:
    """log π_k + log N(x_o | μ_ko, Σ_k,oo) of rows X (n, D) that all have some NaN: (n, K)
    (full/tied from ``groups`` of :func:`gauss_groups` where given)."""
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
    for idx, ll, *_ in (gauss_groups(family, X, P, obs) if groups is None else groups):
        out[idx] = ll + log_w
    return out


def gauss_stats(family, X: torch.Tensor, Rw: torch.Tensor, P, obs: torch.Tensor,
                groups=None):
    """(Σ_n Rw_nk (x̂_nk − s) (K, D), expected second moments about the shift s by
    covariance type) of rows X (n, D) that all have some NaN, for weighted responsibilities
    Rw (n, K) (full/tied from ``groups`` of :func:`gauss_groups` where given)."""
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
    flat = second.view(-1, D * D)  # (K or 1, D²)
    groups = gauss_groups(family, X, P, obs) if groups is None else groups
    _check_groups(groups, family)
    for idx, _, Xh, local, pats, Cinv, _ in groups:
        R = Rw[idx]  # (r, K)
        Xc = Xh - P.shift  # (r, K, D)
        RX = R[:, :, None] * Xc
        sums += RX.sum(0)
        pw = torch.zeros(pats.shape[0], K, dtype=X.dtype, device=X.device).index_add_(
            0, local, R)  # Σ of Rw over each pattern's rows: (u, K)
        if t == "full":
            second += torch.einsum("rkd,rke->kde", RX, Xc)
        else:
            second += torch.einsum("rkd,rke->de", RX, Xc)
            pw = pw.sum(1, keepdim=True)  # (u, 1)
        # eq. (2) in each pattern's missing block, weighted by its rows' Rw: into M_k
        at = (pats[:, :, None] * D + pats[:, None, :]).reshape(-1)  # (u·j·j,)
        vals = (pw[:, :, None, None] * Cinv).permute(1, 0, 2, 3).reshape(flat.shape[0], -1)
        flat.index_add_(1, at, vals)
    return sums, second


def gauss_conditional(family, X: torch.Tensor, P, obs: torch.Tensor) -> torch.Tensor:
    """E[x | x_o, k] of rows X (n, D) that all have some NaN (eq. 1; observed entries as
    given): (n, K, D)."""
    t = family.cov_type
    if t in ("diag", "spherical"):
        return torch.where(obs[:, None, :], X[:, None, :], P.means[None])
    out = torch.empty(X.shape[0], family.n_components, X.shape[1], dtype=X.dtype,
                      device=X.device)
    groups = gauss_groups(family, X, P, obs)
    _check_groups(groups, family)
    for idx, _, Xh, *_ in groups:
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

