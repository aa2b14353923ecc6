"""Mixtures with missing values (missing="marginalize") against closed forms, scipy's marginal
densities, the likelihood equations and EM's invariants."""

import os
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from latentspace import BernoulliMixture, GaussianMixture, load
from latentspace.data import ChunkedSource
from latentspace.em._stats import summarize_chunk
from latentspace.exceptions import ConvergenceWarning

TYPES = ["full", "tied", "diag", "spherical"]


def _quiet(fn, *a, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fn(*a, **kw)


def _blobs(n=400, seed=0, sep=5.0):
    rng = np.random.RandomState(seed)
    A = np.array([[1.0, 0.6, 0.0], [0.0, 0.8, 0.3], [0.0, 0.0, 0.5]])
    return np.r_[rng.randn(n // 2, 3) @ A, rng.randn(n - n // 2, 3) @ A.T + sep]


def _mask(X, frac, seed=1):
    """X with a fraction ``frac`` of its entries set to NaN, completely at random; a row left
    with nothing observed gets its first entry back."""
    rng = np.random.RandomState(seed)
    Xm = X.copy()
    Xm[rng.rand(*X.shape) < frac] = np.nan
    empty = np.isnan(Xm).all(1)
    Xm[empty, 0] = X[empty, 0]
    return Xm


def _full_cov(gm, k):
    """Component k's covariance as a full matrix."""
    c, t, D = gm.covariances_, gm.covariance_type, gm.means_.shape[1]
    return {"full": lambda: c[k], "tied": lambda: c, "diag": lambda: np.diag(c[k]),
            "spherical": lambda: np.eye(D) * c[k]}[t]()


def _marginal_log_density(gm, X):
    """log Σ_k π_k N(x_o | μ_ko, Σ_k,oo) of each row, by scipy on the observed sub-vector."""
    out = []
    for x in X:
        o = ~np.isnan(x)
        out.append(logsumexp([
            np.log(gm.weights_[k])
            + multivariate_normal(mean=gm.means_[k][o],
                                  cov=_full_cov(gm, k)[np.ix_(o, o)]).logpdf(x[o])
            for k in range(gm.n_components)
        ]))
    return np.array(out)


# ----------------------------------------------------------------------------- oracles
@pytest.mark.parametrize("t", TYPES)
def test_score_samples_is_scipy_marginal_on_observed_entries(t):
    Xm = _mask(_blobs(240), 0.25)
    gm = _quiet(GaussianMixture(2, covariance_type=t, missing="marginalize",
                                random_state=0).fit, Xm)
    ref = _marginal_log_density(gm, Xm)
    # both sides are O(D) float64 operations on values of order 10: a few 1e-15 relative,
    # 1e-10 leaves room for scipy's eigendecomposition route
    np.testing.assert_allclose(gm.score_samples(Xm), ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(gm.score(Xm), ref.mean(), rtol=1e-10)
    n, p = Xm.shape[0], gm._n_parameters()
    assert gm.bic(Xm) == pytest.approx(-2 * ref.sum() + p * np.log(n), rel=1e-10)
    assert gm.aic(Xm) == pytest.approx(-2 * ref.sum() + 2 * p, rel=1e-10)
    # predict_proba: the posterior of the marginal, rows summing to 1
    resp = gm.predict_proba(Xm)
    np.testing.assert_allclose(resp.sum(1), 1.0, atol=1e-12)
    comp = np.array([[np.log(gm.weights_[k]) + multivariate_normal(
        gm.means_[k][~np.isnan(x)], _full_cov(gm, k)[np.ix_(~np.isnan(x), ~np.isnan(x))]
    ).logpdf(x[~np.isnan(x)]) for k in range(2)] for x in Xm[:50]])
    np.testing.assert_allclose(resp[:50], np.exp(comp - logsumexp(comp, 1, keepdims=True)),
                               atol=1e-10)
    np.testing.assert_array_equal(gm.predict(Xm), resp.argmax(1))


def test_bernoulli_score_samples_is_product_over_observed_features():
    rng = np.random.RandomState(0)
    proto = np.r_[[0.9] * 4 + [0.1] * 4]
    B = np.r_[rng.rand(150, 8) < proto, rng.rand(150, 8) < 1 - proto].astype(float)
    Bm = _mask(B, 0.3)
    bm = BernoulliMixture(2, missing="marginalize", random_state=0).fit(Bm)
    mu = bm.means_
    comp = np.stack([np.log(bm.weights_[k]) + np.nansum(
        Bm * np.log(mu[k]) + (1 - Bm) * np.log1p(-mu[k]), axis=1) for k in range(2)], 1)
    # sums of 8 terms of order 1 in float64
    np.testing.assert_allclose(bm.score_samples(Bm), logsumexp(comp, 1), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(bm.predict_proba(Bm),
                               np.exp(comp - logsumexp(comp, 1, keepdims=True)), atol=1e-12)
    # the filled-in entries: Σ_k p(k | x_o) μ_kd
    imp = bm.impute(Bm)
    nan = np.isnan(Bm)
    np.testing.assert_allclose(imp[nan], (bm.predict_proba(Bm) @ mu)[nan], rtol=1e-12)
    np.testing.assert_array_equal(imp[~nan], Bm[~nan])


def _likelihood_gradients(gm, X):
    """Gradients of the observed-data log-likelihood Σ_n log Σ_k π_k N(x_o | μ_ko, Σ_k,oo) in
    the means (K, D) and in the covariances (projected on the covariance type), from the
    responsibilities of predict_proba: Σ_n r_nk P_oᵀ Σ_oo⁻¹ (x_o − μ_o) and
    ½ Σ_n r_nk P_oᵀ (Σ_oo⁻¹ (x_o − μ_o)(x_o − μ_o)ᵀ Σ_oo⁻¹ − Σ_oo⁻¹) P_o."""
    K, D = gm.means_.shape
    R = gm.predict_proba(X)
    gmu, gcov = np.zeros((K, D)), np.zeros((K, D, D))
    for x, r in zip(X, R):
        o = ~np.isnan(x)
        for k in range(K):
            S = np.linalg.inv(_full_cov(gm, k)[np.ix_(o, o)])
            a = S @ (x[o] - gm.means_[k][o])
            gmu[k, o] += r[k] * a
            gcov[k][np.ix_(o, o)] += 0.5 * r[k] * (np.outer(a, a) - S)
    t = gm.covariance_type
    proj = {"full": gcov, "tied": gcov.sum(0), "diag": np.diagonal(gcov, axis1=1, axis2=2),
            "spherical": np.trace(gcov, axis1=1, axis2=2)}[t]
    return gmu, proj


@pytest.mark.parametrize("t", TYPES)
def test_em_with_missing_values_reaches_a_stationary_point_of_the_observed_likelihood(t):
    # the fixed point of the expected-statistics M-step (eqs. 1-2 of mixture._missing) is a
    # maximum-likelihood estimate of the observed data: the gradients vanish there (a
    # missing conditional covariance or a wrong conditional mean moves the fixed point and
    # leaves gradients of order n·0.1)
    Xm = _mask(_blobs(300), 0.25)
    gm = _quiet(GaussianMixture(2, covariance_type=t, missing="marginalize", reg_covar=0,
                                tol=1e-13, max_iter=3000, random_state=0).fit, Xm)
    gmu, gcov = _likelihood_gradients(gm, Xm)
    # converged to a bound change below 1e-13 per sample: EM converges linearly, so the
    # parameters are within ~1e-11/(1 − rate) of the fixed point; gradients per sample of a
    # few 1e-8 at most
    n = Xm.shape[0]
    assert np.abs(gmu).max() / n < 1e-6
    assert np.abs(gcov).max() / n < 1e-6


@pytest.mark.parametrize("t", TYPES)
def test_bound_never_decreases_with_missing_values(t):
    Xm = _mask(_blobs(), 0.3, seed=3)
    gm = _quiet(GaussianMixture(2, covariance_type=t, missing="marginalize", reg_covar=0,
                                tol=1e-10, max_iter=300, random_state=1).fit, Xm)
    # exact EM (reg_covar=0) never lowers the observed-data likelihood (Dempster, Laird &
    # Rubin 1977); the bound is a mean of 400 float64 terms of order 5: rounding ~1e-13
    assert np.all(np.diff(gm.lower_bounds_) >= -1e-12)
    assert gm.lower_bounds_[-1] > gm.lower_bounds_[0]


def test_bernoulli_bound_never_decreases_with_missing_values():
    rng = np.random.RandomState(0)
    B = (rng.rand(300, 10) < rng.rand(3, 10)[rng.randint(3, size=300)]).astype(float)
    bm = BernoulliMixture(3, missing="marginalize", tol=1e-10, max_iter=300,
                          random_state=0).fit(_mask(B, 0.3))
    # MAP EM climbs the penalised likelihood of the observed data; rounding as above
    assert np.all(np.diff(bm.lower_bounds_) >= -1e-12)


@settings(max_examples=6, deadline=None)
@given(st.integers(0, 10**6), st.floats(0.05, 0.6), st.sampled_from(TYPES))
def test_bound_never_decreases_over_random_masks(seed, frac, t):
    Xm = _mask(_blobs(120, seed=seed % 7), frac, seed=seed)
    gm = _quiet(GaussianMixture(2, covariance_type=t, missing="marginalize", reg_covar=0,
                                tol=1e-8, max_iter=60, random_state=seed).fit, Xm)
    assert np.all(np.diff(gm.lower_bounds_) >= -1e-12 * max(1.0, abs(gm.lower_bound_)))


@pytest.mark.parametrize("t", TYPES)
def test_complete_data_marginalize_equals_raise(t):
    X = _blobs()
    a = GaussianMixture(2, covariance_type=t, random_state=0).fit(X)
    b = GaussianMixture(2, covariance_type=t, missing="marginalize", random_state=0).fit(X)
    for attr in ("weights_", "means_", "covariances_", "precisions_cholesky_", "lower_bounds_"):
        np.testing.assert_allclose(getattr(b, attr), getattr(a, attr), rtol=1e-12, atol=1e-12,
                                   err_msg=attr)
    np.testing.assert_allclose(b.score_samples(X), a.score_samples(X), rtol=1e-12)
    np.testing.assert_array_equal(b.impute(X), X)


def test_bernoulli_complete_data_marginalize_equals_raise():
    rng = np.random.RandomState(0)
    B = (rng.rand(200, 6) < 0.4).astype(float)
    a = BernoulliMixture(2, random_state=0).fit(B)
    b = BernoulliMixture(2, missing="marginalize", random_state=0).fit(B)
    np.testing.assert_allclose(b.means_, a.means_, rtol=1e-12)
    np.testing.assert_allclose(b.lower_bounds_, a.lower_bounds_, rtol=1e-12)


@pytest.mark.parametrize("t", TYPES)
def test_impute_of_one_component_is_the_gaussian_conditional_mean(t):
    Xm = _mask(_blobs(300), 0.3)
    gm = GaussianMixture(1, covariance_type=t, missing="marginalize").fit(Xm)
    mu, S = gm.means_[0], _full_cov(gm, 0)
    imp = gm.impute(Xm)
    for x, y in zip(Xm, imp):
        o, m = ~np.isnan(x), np.isnan(x)
        expect = mu[m] + S[np.ix_(m, o)] @ np.linalg.solve(S[np.ix_(o, o)], x[o] - mu[o])
        # a 3 × 3 solve on values of order 1
        np.testing.assert_allclose(y[m], expect, rtol=1e-10, atol=1e-12)
        assert np.array_equal(y[o], x[o])  # observed entries bit-exact


def test_impute_of_a_mixture_weights_the_components_by_their_posterior():
    Xm = _mask(_blobs(), 0.3)
    gm = GaussianMixture(2, missing="marginalize", random_state=0).fit(Xm)
    R = gm.predict_proba(Xm)
    imp = gm.impute(Xm)
    for x, y, r in zip(Xm[:60], imp[:60], R[:60]):
        o, m = ~np.isnan(x), np.isnan(x)
        cond = [gm.means_[k][m] + gm.covariances_[k][np.ix_(m, o)] @ np.linalg.solve(
            gm.covariances_[k][np.ix_(o, o)], x[o] - gm.means_[k][o]) for k in range(2)]
        np.testing.assert_allclose(y[m], r @ np.array(cond), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("t", ["full", "diag"])
def test_marginalising_recovers_means_better_than_mean_imputation(t):
    X = _blobs(1000, sep=6.0)
    Xm = _mask(X, 0.2)
    truth = np.array([X[:500].mean(0), X[500:].mean(0)])  # the sample means of the blobs

    def err(gm):
        M = gm.means_[np.argsort(gm.means_[:, 0])]
        return np.abs(M - truth).max()

    ours = GaussianMixture(2, covariance_type=t, missing="marginalize", random_state=0).fit(Xm)
    col = np.nanmean(Xm, 0)
    filled = np.where(np.isnan(Xm), col, Xm)
    naive = GaussianMixture(2, covariance_type=t, random_state=0).fit(filled)
    # mean imputation pulls each blob towards the global mean by ~20% of the separation
    # (≈ 1) in every feature; marginalising leaves a sampling error of order 0.1
    assert err(ours) < 0.25 < err(naive)
    assert err(ours) < err(naive) / 4


# ----------------------------------------------------------------------------- reliability
def test_row_with_nothing_observed_is_named():
    Xm = _mask(_blobs(), 0.2)
    Xm[7] = np.nan
    with pytest.raises(ValueError, match="Row 7"):
        GaussianMixture(2, missing="marginalize").fit(Xm)
    with pytest.raises(ValueError, match="Row 7"):
        BernoulliMixture(2, missing="marginalize").fit(np.where(np.isnan(Xm), np.nan, Xm > 0))


def test_column_with_nothing_observed_is_named():
    X = _blobs()
    X[:, 1] = np.nan
    for est in (GaussianMixture(2, missing="marginalize"),
                BernoulliMixture(2, missing="marginalize", binarize=0.0)):
        with pytest.raises(ValueError, match="Column 1 of X has no observed value"):
            est.fit(X)
    # chunked input: the same check, from the data summary
    with pytest.raises(ValueError, match="Column 1"):
        GaussianMixture(2, missing="marginalize").fit(ChunkedSource.from_array(X, 64))


def test_infinity_is_refused_with_marginalize():
    Xm = _mask(_blobs(), 0.2)
    Xm[3, 2] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        GaussianMixture(2, missing="marginalize").fit(Xm)
    with pytest.raises(ValueError, match="infinity"):
        GaussianMixture(2, missing="marginalize").fit(torch.tensor(Xm))


@pytest.mark.parametrize("make", [np.asarray, torch.tensor], ids=["numpy", "torch"])
def test_nan_with_missing_raise_points_to_marginalize(make):
    Xm = _mask(_blobs(), 0.2)
    for est in (GaussianMixture(2), BernoulliMixture(2, binarize=0.0)):
        with pytest.raises(ValueError, match="missing='marginalize'"):
            est.fit(make(Xm))
    gm = GaussianMixture(2, random_state=0).fit(_blobs())
    for method in (gm.impute, gm.score_samples, gm.predict_proba):
        with pytest.raises(ValueError, match="missing='marginalize'"):
            method(make(Xm))


@pytest.mark.parametrize("bad", ["bogus", "", None, 1, float("nan")])
def test_bad_missing_value_names_the_parameter(bad):
    for est in (GaussianMixture(2, missing=bad), BernoulliMixture(2, missing=bad)):
        with pytest.raises(ValueError, match="missing"):
            est.fit(np.abs(_blobs()) > 1)


@pytest.mark.parametrize("t", TYPES)
def test_impute_keeps_float32_and_kind(t):
    Xm = _mask(_blobs(), 0.2).astype(np.float32)
    gm = GaussianMixture(2, covariance_type=t, missing="marginalize", random_state=0).fit(Xm)
    imp = gm.impute(Xm)
    assert isinstance(imp, np.ndarray) and imp.dtype == np.float32
    assert np.isfinite(imp).all()
    assert np.array_equal(imp[~np.isnan(Xm)], Xm[~np.isnan(Xm)])
    timp = gm.impute(torch.tensor(Xm))
    assert isinstance(timp, torch.Tensor) and timp.dtype == torch.float32
    np.testing.assert_array_equal(timp.numpy(), imp)


def test_save_and_load_keep_missing(tmp_path):
    Xm = _mask(_blobs(), 0.2)
    gm = GaussianMixture(2, missing="marginalize", random_state=0).fit(Xm)
    gm.save(os.fspath(tmp_path / "gm"))
    back = load(os.fspath(tmp_path / "gm"))
    assert back.missing == "marginalize"
    np.testing.assert_array_equal(back.score_samples(Xm), gm.score_samples(Xm))
    np.testing.assert_array_equal(back.impute(Xm), gm.impute(Xm))


@pytest.mark.parametrize("t", TYPES)
def test_chunked_and_dask_with_nan_equal_in_memory(t):
    da = pytest.importorskip("dask.array")
    Xm = _mask(_blobs(240), 0.25)
    kw = dict(n_components=2, covariance_type=t, missing="marginalize", random_state=0)
    ref = GaussianMixture(**kw).fit(Xm)
    for src in (ChunkedSource.from_array(Xm, 97), da.from_array(Xm, chunks=(61, 3))):
        other = GaussianMixture(**kw).fit(src)
        # the same sums in another grouping: rounding of order 1e-15 per iteration
        for attr in ("weights_", "means_", "covariances_"):
            np.testing.assert_allclose(getattr(other, attr), getattr(ref, attr), rtol=1e-10,
                                       atol=1e-10, err_msg=attr)
        assert other.n_iter_ == ref.n_iter_


def test_bernoulli_chunked_with_nan_equals_in_memory_and_binarize_keeps_nan():
    rng = np.random.RandomState(0)
    X = rng.rand(300, 6) * (rng.rand(300, 1) < 0.5) + rng.rand(300, 6) * 0.3
    Xm = _mask(X, 0.25)
    kw = dict(n_components=2, binarize=0.5, missing="marginalize", random_state=0)
    ref = BernoulliMixture(**kw).fit(Xm)
    other = BernoulliMixture(**kw).fit(ChunkedSource.from_array(Xm, 70))
    np.testing.assert_allclose(other.means_, ref.means_, rtol=1e-10, atol=1e-12)
    # a missing entry stays missing through binarize: the same fit as on binarised data
    Bm = np.where(np.isnan(Xm), np.nan, (Xm > 0.5).astype(float))
    direct = BernoulliMixture(2, missing="marginalize", random_state=0).fit(Bm)
    np.testing.assert_allclose(direct.means_, ref.means_, rtol=1e-12)


@pytest.mark.parametrize("init", ["kmeans", "k-means++", "random", "random_from_data"])
def test_every_initialiser_takes_missing_values(init):
    Xm = _mask(_blobs(), 0.3)
    gm = _quiet(GaussianMixture(2, init_params=init, missing="marginalize", random_state=0).fit, Xm)
    assert np.isfinite(gm.lower_bound_) and np.all(np.isfinite(gm.covariances_))
    assert np.all(np.diff(gm.lower_bounds_) >= -1e-9)


def test_summary_of_a_chunk_with_nan_uses_observed_entries():
    rng = np.random.RandomState(0)
    X = _mask(rng.randn(50, 4) * 3 + 10, 0.3)
    w = rng.rand(50)
    shift = torch.zeros(4, dtype=torch.float64)
    S = summarize_chunk(torch.tensor(X), torch.tensor(w), shift)
    seen = ~np.isnan(X)
    np.testing.assert_allclose(S.sum.numpy(), np.nansum(w[:, None] * X, 0), rtol=1e-13)
    np.testing.assert_allclose(S.observed.numpy(), (w[:, None] * seen).sum(0), rtol=1e-13)
    mean = np.nansum(w[:, None] * X, 0) / (w[:, None] * seen).sum(0)
    var = np.nansum(w[:, None] * (X - mean) ** 2, 0) / (w[:, None] * seen).sum(0)
    # E[x²] − E[x]² at mean 10 and variance 9: relative rounding ~1e-14
    np.testing.assert_allclose(S.variance().numpy(), var, rtol=1e-10)
    assert S.n_missing == int((~seen).sum())
    first = summarize_chunk(torch.tensor(X), None, None)
    assert first.amax.value == np.nanmax(np.abs(X))
    # complete data: no NaN bookkeeping
    C = summarize_chunk(torch.tensor(np.nan_to_num(X)), None, shift)
    assert C.n_missing == 0 and C.counts() == 50.0


def test_reg_covar_check_uses_observed_variance():
    # observed variance ≈ 1e-4 in every feature: reg_covar=1 swamps it and must be refused,
    # reg_covar=1e-8 must fit (a NaN-blind summary gives NaN and checks nothing)
    Xm = _mask(_blobs() * 1e-2, 0.2)
    with pytest.raises(ValueError, match="reg_covar"):
        GaussianMixture(2, missing="marginalize", reg_covar=1.0).fit(Xm)
    GaussianMixture(2, missing="marginalize", reg_covar=1e-8, random_state=0).fit(Xm)


def test_extreme_scale_with_missing_values():
    X = _blobs()
    Xm = _mask(X, 0.2)
    ref = GaussianMixture(2, missing="marginalize", random_state=0).fit(Xm)
    for c in (1e150, 1e-150):
        gm = GaussianMixture(2, missing="marginalize", reg_covar=1e-6 * c * c,
                             random_state=0).fit(Xm * c)
        # an exact power-of-two working scale: the same fit in other units, up to rounding
        np.testing.assert_allclose(gm.means_ / c, ref.means_, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(gm.score_samples(Xm * c),
                                   ref.score_samples(Xm) - (~np.isnan(Xm)).sum(1) * np.log(c),
                                   rtol=1e-8)
        assert gm.lower_bound_ == pytest.approx(
            ref.lower_bound_ - (~np.isnan(Xm)).mean(1).mean() * 3 * np.log(c), rel=1e-8)


def test_far_row_with_missing_entries():
    gm = GaussianMixture(2, missing="marginalize", random_state=0).fit(_mask(_blobs(), 0.2))
    far = np.array([[1e200, np.nan, 0.0], [np.nan, -1e200, 0.0]])
    resp = gm.predict_proba(far)
    np.testing.assert_allclose(resp.sum(1), 1.0)
    with pytest.raises(ValueError, match="far"):
        gm.score_samples(far)
    # still representable: the ordinary route, the marginal of the observed entries
    near = np.array([[1e3, np.nan, 0.0]])
    np.testing.assert_allclose(gm.score_samples(near), _marginal_log_density(gm, near),
                               rtol=1e-10)


def test_hard_em_with_missing_values_climbs_its_objective():
    Xm = _mask(_blobs(), 0.3)
    gm = _quiet(GaussianMixture(2, hard=True, missing="marginalize", reg_covar=0, tol=1e-10,
                                random_state=0).fit, Xm)
    # classification EM with expected statistics: the classification likelihood of the
    # observed data never decreases (rounding as above)
    assert np.all(np.diff(gm.lower_bounds_) >= -1e-12)


@pytest.mark.parametrize("t", TYPES + ["bernoulli"])
def test_weighted_statistics_with_missing_values_equal_repeated_rows(t):
    # the families receive sample weights w (n,) with the responsibilities: integer weights
    # must give the statistics of the rows repeated (sums of the same terms, 1e-12)
    rng = np.random.RandomState(0)
    if t == "bernoulli":
        Xm = _mask((rng.rand(200, 5) < 0.4).astype(float), 0.3)
        est = BernoulliMixture(2, missing="marginalize", random_state=0).fit(Xm)
    else:
        Xm = _mask(_blobs(200), 0.3)
        est = GaussianMixture(2, covariance_type=t, missing="marginalize", random_state=0).fit(Xm)
    fam, P = est._family(Xm.shape[1], 1.0, fit=False), est._parameters(1.0)
    X = torch.tensor(Xm)
    w = torch.tensor(rng.randint(0, 4, len(Xm)), dtype=torch.float64)
    resp = torch.softmax(fam.log_weighted(X, P), 1)
    a = fam.resp_stats(X, resp, w, P)
    reps = w.long()
    b = fam.resp_stats(X.repeat_interleave(reps, 0), resp.repeat_interleave(reps, 0), None, P)
    assert a.n == pytest.approx(b.n, rel=1e-12)
    for name in ("nk", "sums") + (("second",) if t != "bernoulli" else ()):
        np.testing.assert_allclose(getattr(a, name).numpy(), getattr(b, name).numpy(),
                                   rtol=1e-12, atol=1e-12, err_msg=name)
