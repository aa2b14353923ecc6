"""PCA(missing="marginalize"): probabilistic PCA by EM with missing entries, and its queries.

Oracles: the closed-form PPCA marginal of the observed sub-vector (scipy), the Gaussian
conditional mean E[x_m | x_o] = μ_m + C_mo C_oo⁻¹ (x_o − μ_o) (numpy), the exact solvers on
complete data, EM's monotonicity, and a known generating PPCA.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from scipy.linalg import subspace_angles
from scipy.stats import multivariate_normal
from sklearn.impute import SimpleImputer

from latentspace import PCA, load
from latentspace.decomposition._missing import fit_em


def ppca_data(n=400, d=8, k=2, sigma2=0.1, seed=0):
    """Rows of a known PPCA: (X, W (d, k), μ (d,), σ²)."""
    rng = np.random.RandomState(seed)
    W = rng.randn(d, k) * 2.0
    mu = rng.randn(d) * 3.0
    X = rng.randn(n, k) @ W.T + mu + np.sqrt(sigma2) * rng.randn(n, d)
    return X, W, mu, sigma2


def holes(X, rate, seed=1):
    """X with a share ``rate`` of its entries NaN (MCAR), every row keeping one observed."""
    rng = np.random.RandomState(seed)
    mask = rng.rand(*X.shape) < rate
    mask[np.arange(X.shape[0]), rng.randint(0, X.shape[1], X.shape[0])] = False
    out = X.copy()
    out[mask] = np.nan
    return out


def loadings(p):
    """W = Vᵀ (Λ − σ² I)^½ from the fitted attributes (the model's own parametrisation)."""
    return p.components_.T * np.sqrt(p.explained_variance_ - p.noise_variance_)


@pytest.fixture(scope="module")
def fitted():
    X, *_ = ppca_data()
    Xm = holes(X, 0.3)
    return X, Xm, PCA(2, missing="marginalize").fit(Xm)


# ------------------------------------------------------------------------- likelihood
def test_score_samples_is_the_closed_form_marginal(fitted):
    _, Xm, p = fitted
    W = loadings(p)
    C = W @ W.T + p.noise_variance_ * np.eye(W.shape[0])
    ref = np.array([multivariate_normal(p.mean_[o], C[np.ix_(o, o)]).logpdf(x[o])
                    for x, o in ((x, ~np.isnan(x)) for x in Xm)])
    # float64 on 8-dimensional Gaussians: agreement to ~1e-12 of the magnitude
    np.testing.assert_allclose(p.score_samples(Xm), ref, rtol=1e-10, atol=1e-10)
    # the covariance accessor is the same model
    np.testing.assert_allclose(p.get_covariance(), C, rtol=1e-12, atol=1e-12)
    # the trace's last entry is the per-sample log-likelihood of the returned parameters
    assert p.lower_bounds_[-1] == pytest.approx(p.score(Xm), rel=1e-12)
    assert p.n_iter_ == len(p.lower_bounds_) and p.converged_
    assert p.fit_svd_solver_ == "em"


def test_complete_rows_score_as_before(fitted):
    X, _, p = fitted
    # complete rows take the ordinary route, and mixing them with incomplete rows changes
    # none of their values
    Xmix = X.copy()
    Xmix[::2, 0] = np.nan
    full = p.score_samples(X)
    mixed = p.score_samples(Xmix)
    np.testing.assert_array_equal(mixed[1::2], full[1::2])


@pytest.mark.parametrize("k, rate", [(2, 0.3), (1, 0.5), (4, 0.2)])
def test_lower_bounds_never_decrease(k, rate):
    X, *_ = ppca_data(n=300, d=8, k=3, seed=2)
    p = PCA(k, missing="marginalize").fit(holes(X, rate, seed=3))
    lb = p.lower_bounds_
    assert len(lb) > 3
    # EM never lowers the likelihood; the slack is the rounding of a mean over 300 rows of
    # float64 log-densities of magnitude |lb| (about 1e-13 relative)
    assert np.min(np.diff(lb)) >= -1e-11 * np.max(np.abs(lb))


def test_complete_data_marginalize_is_the_exact_solver():
    X, *_ = ppca_data()
    for solver in ("auto", "full", "covariance_eigh"):
        a = PCA(3, svd_solver=solver, missing="marginalize").fit(X)
        b = PCA(3, svd_solver=solver).fit(X)
        for name in ("components_", "explained_variance_", "explained_variance_ratio_",
                     "singular_values_", "mean_", "noise_variance_"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
        assert not hasattr(a, "lower_bounds_") and a.fit_svd_solver_ == b.fit_svd_solver_


def test_em_on_complete_data_reaches_the_exact_ppca():
    """From a poor start, EM converges to Tipping & Bishop's closed-form ML solution."""
    X, *_ = ppca_data(n=300, d=6, k=2, seed=4)
    n, k = X.shape[0], 2
    exact = PCA(k).fit(X)
    rng = np.random.RandomState(0)
    # a poor start: random loadings, a large noise variance, a shifted mean
    fit = fit_em(torch.tensor(X), k, tol=1e-13, max_iter=20000,
                 init=(rng.randn(6, k), X.mean(0) + 0.1, 5.0))
    W, s2 = fit.W.numpy(), fit.sigma2
    # the ML covariance is the ddof=0 one: eigenvalues (n − 1)/n of the exact fit's
    ev = np.linalg.svd(W, compute_uv=False) ** 2 + s2
    # EM converges linearly; stopped at a per-iteration log-likelihood change of 1e-13 per
    # entry, the parameters' distance to the optimum is of order √1e-13 ≈ 3e-7 relative
    np.testing.assert_allclose(ev, exact.explained_variance_ * (n - 1) / n, rtol=1e-6)
    assert s2 == pytest.approx(exact.noise_variance_ * (n - 1) / n, rel=1e-6)
    np.testing.assert_allclose(fit.mu.numpy(), exact.mean_, atol=1e-6 * np.abs(X).max())
    assert np.max(subspace_angles(W, exact.components_.T)) < 1e-6
    assert fit.converged


def test_known_ppca_recovered_under_30_percent_mcar():
    X, W, mu, sigma2 = ppca_data(n=2000, d=10, k=3, sigma2=0.2, seed=5)
    p = PCA(3, missing="marginalize").fit(holes(X, 0.3, seed=6))
    # sampling error of the subspace ~ σ / (signal · √n) ≈ 0.45 / (2 · 45) = 5e-3 rad
    assert np.max(subspace_angles(p.components_.T, W)) < 0.05
    # σ² from ~14000 observed entries: relative standard error √(2 / 14000) ≈ 0.012; 5 of them
    assert p.noise_variance_ == pytest.approx(sigma2, rel=0.06)
    np.testing.assert_allclose(p.mean_, mu, atol=0.3)  # ± 3 standard errors (√(8/1400))
    # rows sorted by variance, orthonormal
    np.testing.assert_allclose(p.components_ @ p.components_.T, np.eye(3), atol=1e-12)
    assert np.all(np.diff(p.explained_variance_) <= 0)


# ------------------------------------------------------------------------- impute
def test_impute_is_the_gaussian_conditional_mean(fitted):
    _, Xm, p = fitted
    out = p.impute(Xm)
    obs = ~np.isnan(Xm)
    assert not np.isnan(out).any()
    np.testing.assert_array_equal(out[obs], Xm[obs])  # bit for bit
    C, mu = p.get_covariance(), p.mean_
    for x, y in zip(Xm[:50], out[:50]):
        o, m = ~np.isnan(x), np.isnan(x)
        if not m.any():
            continue
        ref = mu[m] + C[np.ix_(m, o)] @ np.linalg.solve(C[np.ix_(o, o)], x[o] - mu[o])
        # a solve of an 8 x 8 well-conditioned system: ~1e-13 relative
        np.testing.assert_allclose(y[m], ref, rtol=1e-9, atol=1e-9)


def test_impute_beats_column_means_on_low_rank_data():
    X, *_ = ppca_data(n=500, d=12, k=3, sigma2=0.05, seed=7)
    Xm = holes(X, 0.2, seed=8)
    miss = np.isnan(Xm)
    ours = PCA(3, missing="marginalize").fit(Xm).impute(Xm)
    mean = SimpleImputer(strategy="mean").fit_transform(Xm)
    rmse = lambda Y: np.sqrt(np.mean((Y[miss] - X[miss]) ** 2))  # noqa: E731
    # the low-rank structure predicts the entries almost to the noise level √0.05 ≈ 0.22
    assert rmse(ours) < 0.5 * rmse(mean)
    assert rmse(ours) < 2 * np.sqrt(0.05)


def test_transform_is_the_projection_of_the_completed_rows(fitted):
    X, Xm, p = fitted
    Z = p.transform(Xm)
    np.testing.assert_allclose(Z, (p.impute(Xm) - p.mean_) @ p.components_.T,
                               rtol=1e-12, atol=1e-12)
    complete = ~np.isnan(Xm).any(1)
    np.testing.assert_array_equal(Z[complete], p.transform(X[complete]))
    w = PCA(2, whiten=True, missing="marginalize").fit(Xm)
    np.testing.assert_allclose(w.transform(Xm), (w.impute(Xm) - w.mean_) @ w.components_.T
                               / np.sqrt(w.explained_variance_), rtol=1e-12, atol=1e-12)
    # inverse_transform as for any fit: μ + Vᵀ z
    np.testing.assert_allclose(p.inverse_transform(Z), Z @ p.components_ + p.mean_, atol=1e-12)


def test_containers_and_dtypes(fitted):
    _, Xm, p = fitted
    X32 = Xm.astype(np.float32)
    out = p.impute(X32)
    assert out.dtype == np.float32 and p.transform(X32).dtype == np.float32
    np.testing.assert_array_equal(out[~np.isnan(X32)], X32[~np.isnan(X32)])
    t = p.impute(torch.tensor(X32))
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float32
    np.testing.assert_array_equal(t.numpy(), out)
    # no NaN: a copy of X, never the caller's own buffer
    full = np.nan_to_num(Xm)
    got = p.impute(full)
    np.testing.assert_array_equal(got, full)
    assert not np.shares_memory(got, full)


# ------------------------------------------------------------------------- reliability
def test_row_with_nothing_observed_is_named(fitted):
    _, Xm, p = fitted
    bad = Xm.copy()
    bad[17] = np.nan
    for call in (PCA(2, missing="marginalize").fit, p.impute, p.transform, p.score_samples):
        with pytest.raises(ValueError, match="Row 17 of X has no observed entry"):
            call(bad)


def test_column_with_nothing_observed_is_named():
    X, *_ = ppca_data(n=50)
    X[:, 5] = np.nan
    with pytest.raises(ValueError, match="Column 5 of X has no observed entry"):
        PCA(2, missing="marginalize").fit(X)


def test_infinity_refused(fitted):
    _, Xm, p = fitted
    bad = Xm.copy()
    bad[2, 3] = np.inf
    for call in (PCA(2, missing="marginalize").fit, p.impute, p.score_samples):
        with pytest.raises(ValueError, match="infinity"):
            call(bad)


def test_missing_raise_names_marginalize(fitted):
    _, Xm, _ = fitted
    with pytest.raises(ValueError, match="missing='marginalize'"):
        PCA(2).fit(Xm)
    p = PCA(2).fit(np.nan_to_num(Xm))
    with pytest.raises(ValueError, match="missing='marginalize'"):
        p.impute(Xm)
    for call in (p.transform, p.score_samples):  # refused as before, by the shared check
        with pytest.raises(ValueError, match="NaN"):
            call(Xm)


@pytest.mark.parametrize("value", ["bogus", "", None, 1, "Marginalize"])
def test_bad_missing_value(value):
    X, *_ = ppca_data(n=30)
    with pytest.raises(ValueError, match="missing"):
        PCA(2, missing=value).fit(X)
    with pytest.raises(ValueError, match="missing"):
        PCA(2, missing=value).partial_fit(X)


@pytest.mark.parametrize("k", [None, 0.9, 0, 8, "mle", True])
def test_n_components_on_the_em_route(fitted, k):
    _, Xm, _ = fitted
    with pytest.raises(ValueError, match="n_components"):
        PCA(k, missing="marginalize").fit(Xm)


def test_failed_refit_leaves_the_earlier_fit(fitted):
    _, Xm, _ = fitted
    p = PCA(2, missing="marginalize").fit(Xm)
    before = {k: np.copy(v) for k, v in vars(p).items() if k.endswith("_")}
    out = p.impute(Xm)
    bad = Xm.copy()
    bad[0] = np.nan
    with pytest.raises(ValueError):
        p.fit(bad)
    with pytest.raises(ValueError):
        p.fit(Xm[:, :4][:1])  # one sample
    for k, v in before.items():
        np.testing.assert_array_equal(getattr(p, k), v)
    np.testing.assert_array_equal(p.impute(Xm), out)


def test_refits_replace_every_attribute(fitted):
    X, Xm, _ = fitted
    p = PCA(2, missing="marginalize").fit(Xm)
    p.fit(X)  # complete data: the exact route, no EM attributes left behind
    assert not hasattr(p, "lower_bounds_") and not hasattr(p, "n_iter_")
    p.partial_fit(X)
    assert hasattr(p, "scatter_")
    p.fit(Xm)
    assert not hasattr(p, "scatter_") and hasattr(p, "converged_")


def test_partial_fit_and_chunked_input_with_nan_refused(fitted):
    from latentspace.data import ChunkedSource

    _, Xm, _ = fitted
    with pytest.raises(ValueError, match="partial_fit needs complete rows"):
        PCA(2, missing="marginalize").partial_fit(Xm)
    with pytest.raises(ValueError, match="in-memory array"):
        PCA(2, missing="marginalize").fit(ChunkedSource.from_array(Xm, 50))
    da = pytest.importorskip("dask.array")
    with pytest.raises(ValueError, match="in-memory array"):
        PCA(2, missing="marginalize").fit(da.from_array(Xm, chunks=(100, 8)))
    # complete chunked data still fit by the covariance route
    X = np.nan_to_num(Xm)
    got = PCA(2, missing="marginalize").fit(ChunkedSource.from_array(X, 50))
    np.testing.assert_allclose(got.components_, PCA(2).fit(X).components_, atol=1e-10)


def test_save_load_keeps_missing_and_em_attributes(fitted, tmp_path):
    _, Xm, p = fitted
    path = tmp_path / "pca.safetensors"
    p.save(path)
    q = load(path)
    assert q.missing == "marginalize"
    for name in ("components_", "explained_variance_", "mean_", "lower_bounds_",
                 "singular_values_"):
        np.testing.assert_array_equal(getattr(q, name), getattr(p, name))
    assert (q.n_iter_, q.converged_, q.noise_variance_) == (
        p.n_iter_, p.converged_, p.noise_variance_)
    np.testing.assert_array_equal(q.impute(Xm), p.impute(Xm))
    np.testing.assert_array_equal(q.score_samples(Xm), p.score_samples(Xm))


def test_far_rows_raise_or_stay_finite(fitted):
    _, Xm, p = fitted
    far = Xm[:5] * 1e200
    with pytest.raises(ValueError, match="far from the fitted PCA"):
        p.score_samples(far)
    moderate = Xm[:5] * 1e3  # improbable but representable
    assert np.all(np.isfinite(p.score_samples(moderate)))


def test_scaled_data_give_scaled_fits():
    """A power-of-two working scale: X · 2^300 fits the same model in other units."""
    X, *_ = ppca_data(n=200, seed=9)
    Xm = holes(X, 0.2, seed=10)
    a = PCA(2, missing="marginalize").fit(Xm)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        b = PCA(2, missing="marginalize").fit(Xm * 2.0**300)
    np.testing.assert_allclose(b.components_, a.components_, atol=1e-9)
    np.testing.assert_allclose(b.noise_variance_ / 2.0**600, a.noise_variance_, rtol=1e-9)
    np.testing.assert_allclose(b.impute(Xm * 2.0**300) / 2.0**300, a.impute(Xm), rtol=1e-9)


def test_grouped_patterns_equal_rowwise():
    """Few missingness patterns (the grouped E-step) give the row-by-row results."""
    from latentspace.decomposition import _missing

    X, *_ = ppca_data(n=400, seed=11)
    Xm = X.copy()
    Xm[:150, :3] = np.nan  # two patterns: grouped
    Xm[150:200, 6] = np.nan
    a = _missing.fit_em(torch.tensor(Xm), 2)
    real = _missing._patterns
    try:
        _missing._patterns = lambda O: None  # force the row-by-row route
        b = _missing.fit_em(torch.tensor(Xm), 2)
    finally:
        _missing._patterns = real
    np.testing.assert_allclose(a.lower_bounds, b.lower_bounds, rtol=1e-12)
    np.testing.assert_allclose(a.W.numpy(), b.W.numpy(), rtol=1e-9, atol=1e-12)


def test_sklearn_tags_follow_missing():
    assert PCA(2, missing="marginalize").__sklearn_tags__().input_tags.allow_nan
    assert not PCA(2).__sklearn_tags__().input_tags.allow_nan
