"""Numerics at extreme offsets and scales, exact zeros and up-front memory estimates.

Oracles: scikit-learn's clusterings (which centre the data), the invariance of distances
under a shift and of a clustering under an exact power-of-two scaling, closed forms for
distances and for the variance of identical rows (0).
"""

import warnings

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans as SKKMeans
from sklearn.metrics import adjusted_rand_score

import latentspace._memory as memory
from latentspace import PCA, GaussianMixture, KMeans


def _blobs(seed=0):
    rng = np.random.RandomState(seed)
    X = np.r_[rng.randn(100, 2), rng.randn(100, 2) + 8.0]
    return X, np.r_[np.zeros(100), np.ones(100)]


# --- centring before distances: a shift or scale changes no clustering ----------------------
@pytest.mark.parametrize("shift, scale", [(1e12, 1.0), (0.0, 1e150), (0.0, 1e-150), (1e12, 1e-150)])
def test_kmeans_partition_survives_shift_and_scale(shift, scale):
    X, y = _blobs()
    Z = (X + shift) * scale
    sk = SKKMeans(2, n_init=1, random_state=0).fit((X + shift))  # sklearn centres the data
    km = KMeans(2, random_state=0).fit(Z)
    assert adjusted_rand_score(y, km.labels_) == 1.0
    assert adjusted_rand_score(sk.labels_, km.labels_) == 1.0
    np.testing.assert_array_equal(km.predict(Z), km.labels_)
    # the inertia of the true partition, computed from differences: within the
    # representation error of Z (ulp of |Z| per entry, squared and summed)
    ref = sum(((Z[y == k] - Z[y == k].mean(0)) ** 2).sum() for k in (0, 1))
    ulp = np.spacing(np.abs(Z).max())
    assert km.inertia_ == pytest.approx(ref, rel=1e-9, abs=8 * len(Z) * ulp * np.sqrt(ref / len(Z)))


@pytest.mark.parametrize("shift, scale", [(1e12, 1.0), (0.0, 1e150), (0.0, 1e-150)])
def test_gaussian_mixture_partition_survives_shift_and_scale(shift, scale):
    X, y = _blobs()
    # reg_covar is in data units: scaled with the data, so that the model is the same one
    gm = GaussianMixture(2, reg_covar=1e-6 * scale * scale, random_state=0).fit((X + shift) * scale)
    assert adjusted_rand_score(y, gm.predict((X + shift) * scale)) == 1.0


def test_kmeans_distances_of_a_query_at_zero_are_the_centre_norms():
    X, _ = _blobs()
    km = KMeans(2, random_state=0).fit(X)
    norms = np.linalg.norm(km.cluster_centers_, axis=1)
    for tiny in (1e-200, 1e-300, 1e-315):
        D = km.transform(X * tiny)
        assert np.all(np.isfinite(D))
        # ‖x − c‖ = ‖c‖ up to |x| ≤ 1e-199 and the rounding of the expansion
        np.testing.assert_allclose(D, np.broadcast_to(norms, D.shape), rtol=1e-12)
        assert np.isfinite(km.score(X * tiny))
        assert km.score(X * tiny) == pytest.approx(-len(X) * np.min(norms) ** 2, rel=1e-12)


def test_kmeans_huge_query_distances_are_finite_and_scale_with_the_query():
    X, _ = _blobs()
    km = KMeans(2, random_state=0).fit(X)
    D = km.transform(X * 1e300)
    assert np.all(np.isfinite(D))
    # the centres are negligible next to 1e300: ‖x·1e300 − c‖ = 1e300 ‖x‖ (1 + O(1e-299))
    np.testing.assert_allclose(D, np.linalg.norm(X, axis=1)[:, None] * 1e300 * np.ones(2), rtol=1e-12)
    with pytest.raises(ValueError, match="rescale"):
        km.score(X * 1e300)  # the inertia, ~1e600, has no float64


def test_kmeans_transform_after_shift_matches_the_unshifted_distances():
    X, _ = _blobs()
    km = KMeans(2, random_state=0).fit(X + 1e12)
    D = km.transform(X + 1e12)
    ref = np.linalg.norm((X + 1e12)[:, None, :] - km.cluster_centers_[None], axis=2)
    # the expansion ‖x‖² − 2xᵀc + ‖c‖² alone would be off by ~1e24·ε ≈ 1e8 here
    np.testing.assert_allclose(D, ref, rtol=0, atol=1e-3)


def test_kmeans_partial_fit_on_huge_values_raises_rescale_and_keeps_no_nan():
    X, _ = _blobs()
    km = KMeans(2, random_state=0)
    with pytest.raises(ValueError, match="rescale"):
        km.partial_fit(X * 1e200)
    assert not hasattr(km, "inertia_")
    km.partial_fit(X)
    before = km.cluster_centers_.copy()
    with pytest.raises(ValueError, match="rescale"):
        km.partial_fit(X * 1e200)
    np.testing.assert_array_equal(km.cluster_centers_, before)
    assert np.isfinite(km.inertia_)


def test_kmeans_partial_fit_on_shifted_data_matches_unshifted():
    X, y = _blobs()
    a = KMeans(2, random_state=0)
    b = KMeans(2, random_state=0)
    for part in np.array_split(np.random.RandomState(1).permutation(len(X)), 4):
        a.partial_fit(X[part])
        b.partial_fit(X[part] + 1e12)
    assert adjusted_rand_score(a.labels_, b.labels_) == 1.0
    np.testing.assert_allclose(b.cluster_centers_ - 1e12, a.cluster_centers_, atol=1e-3)


@pytest.mark.parametrize("cov", ["full", "tied", "diag", "spherical"])
@pytest.mark.parametrize("factor", [1e-300, 1e-315, 1e300])
def test_gaussian_mixture_queries_at_extreme_magnitudes_are_finite(cov, factor):
    X, _ = _blobs()
    gm = GaussianMixture(2, covariance_type=cov, random_state=0).fit(X)
    Q = X * factor
    P = gm.predict_proba(Q)
    assert np.all(np.isfinite(P))
    np.testing.assert_allclose(P.sum(1), 1.0, rtol=1e-12)
    if factor < 1:
        S = gm.score_samples(Q)
        assert not np.any(np.isnan(S))
        # a query at ~0 has the density of the origin: oracle from the model at x = 0
        ref = gm.score_samples(np.zeros((1, 2)))[0]
        np.testing.assert_allclose(S, ref, rtol=1e-9)
        np.testing.assert_allclose(P, np.broadcast_to(gm.predict_proba(np.zeros((1, 2))), P.shape), atol=1e-9)
        assert np.isfinite(gm.bic(Q))
    else:
        # log p ≈ −|x|²/σ² ≈ −1e600: below the float64 range, so a ValueError naming the
        # rows, never −inf or NaN; the responsibilities are the limit along the ray, the same
        # as at 2^40 times the data
        with pytest.raises(ValueError, match="below the range of float64.*rescale X"):
            gm.score_samples(Q)
        np.testing.assert_array_equal(gm.predict(Q), gm.predict(X * 2.0 ** 40))


# --- PCA: rounding noise is zero variance --------------------------------------------------
def _pca_cases():
    rng = np.random.RandomState(0)
    row = rng.randn(6)
    ident = np.tile(row, (20, 1))
    return {
        "identical": ident,
        "identical_shifted": ident + 1e12,
        "identical_tiny": ident * 1e-300,
        "identical_huge": ident * 1e300,
        "identical_float32": ident.astype(np.float32),
        "wide_identical": np.tile(rng.randn(50), (10, 1)),
    }


@pytest.mark.parametrize("solver", ["full", "gram", "randomized", "covariance_eigh"])
@pytest.mark.parametrize("case", list(_pca_cases()))
def test_pca_identical_rows_have_zero_variance(solver, case):
    X = _pca_cases()[case]
    k = min(X.shape) - 1 if solver == "randomized" else None
    p = PCA(k, svd_solver=solver, random_state=0).fit(X)
    np.testing.assert_array_equal(p.explained_variance_ratio_, 0.0)
    np.testing.assert_array_equal(p.explained_variance_, 0.0)
    assert p.noise_variance_ == 0.0


@pytest.mark.parametrize("solver", ["full", "gram", "covariance_eigh"])
def test_pca_constant_column_has_zero_variance(solver):
    rng = np.random.RandomState(0)
    X = np.c_[rng.randn(20, 3), np.full(20, 7.3)]
    p = PCA(svd_solver=solver).fit(X)
    assert p.explained_variance_ratio_[-1] == 0.0 and p.explained_variance_[-1] == 0.0
    # the others are the covariance's eigenvalues (oracle: numpy), summing to the total
    ref = np.linalg.eigvalsh(np.cov(X[:, :3].T))[::-1]
    np.testing.assert_allclose(p.explained_variance_[:3], ref, rtol=1e-10)
    np.testing.assert_allclose(p.explained_variance_ratio_.sum(), 1.0, rtol=1e-12)


# --- up-front memory estimates -------------------------------------------------------------
@pytest.fixture
def small_memory(monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda device="cpu": 1 << 20)  # 1 MiB


@pytest.mark.parametrize("solver, alt", [("gram", "covariance_eigh"), ("full", "randomized"),
                                         ("randomized", "covariance_eigh"),
                                         ("covariance_eigh", "randomized")])
def test_pca_memory_estimate_before_allocation(small_memory, solver, alt):
    X = np.random.RandomState(0).randn(600, 300)
    with pytest.raises(ValueError, match=rf"needs about .*available.*{alt}"):
        PCA(5, svd_solver=solver, random_state=0).fit(X)


def test_pca_gram_estimate_names_the_gram_matrix(small_memory):
    X = np.random.RandomState(0).randn(600, 300)
    with pytest.raises(ValueError, match=r"600 x 600 Gram matrix"):
        PCA(5, svd_solver="gram").fit(X)


@pytest.mark.parametrize("cov", ["full", "tied"])
def test_gaussian_mixture_memory_estimate_before_covariances(small_memory, cov):
    X = np.random.RandomState(0).randn(5, 400)
    with pytest.raises(ValueError, match=r"needs about .*covariance_type='diag'"):
        GaussianMixture(2, covariance_type=cov).fit(X)


def test_gaussian_mixture_diag_needs_no_square_matrices(small_memory):
    X = np.random.RandomState(0).randn(50, 400)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        GaussianMixture(2, covariance_type="diag", random_state=0).fit(X)


def test_torch_query_float32_stays_float32():
    X, _ = _blobs()
    km = KMeans(2, random_state=0).fit(X.astype(np.float32) + np.float32(1e6))
    D = km.transform(torch.as_tensor(X.astype(np.float32) + np.float32(1e6)))
    assert D.dtype == torch.float32 and bool(torch.isfinite(D).all())


@pytest.mark.parametrize("cov", ["full", "tied"])
def test_gaussian_mixture_wide_data_refused_before_cubic_work(cov):
    import time

    X = np.random.RandomState(0).randn(5, 5000)
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"5 samples x 5000 features.*covariance_type='diag'"):
        GaussianMixture(1, covariance_type=cov).fit(X)
    assert time.perf_counter() - start < 5.0
    # the diagonal model of the same data is cheap and finite
    gm = GaussianMixture(1, covariance_type="diag").fit(X)
    assert np.all(np.isfinite(gm.covariances_)) and np.isfinite(gm.score(X))
