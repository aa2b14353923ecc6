"""Two initialisation bugs: zero-weight rows as K-means' random initial centres, and a lower
triangular ``precisions_cholesky_`` from ``precisions_init``.

Oracles: the definition of the weighted draw (a row of weight 0 has probability 0), and the
upper Cholesky factor scikit-learn defines (Σ⁻¹ = L Lᵀ, L upper, positive diagonal: unique).
"""

import warnings

import numpy as np
import pytest
import scipy.linalg

from latentspace import GaussianMixture, KMeans


def _weighted_rows(seed):
    rng = np.random.RandomState(seed)
    X = np.r_[rng.randn(60, 2), rng.randn(60, 2) + 100.0]  # the far half weighs nothing
    w = np.r_[np.ones(60), np.zeros(60)]
    return X, w


@pytest.mark.parametrize("seed", range(5))
def test_random_init_never_starts_from_a_zero_weight_row(seed):
    X, w = _weighted_rows(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        km = KMeans(3, init="random", n_init=1, max_iter=0, random_state=seed).fit(
            X, sample_weight=w)
    # with no Lloyd iteration the centres are the drawn rows: all of positive weight
    drawn = [np.flatnonzero((X == c).all(1)) for c in km.cluster_centers_]
    assert all(len(i) == 1 and w[i[0]] > 0 for i in drawn)


@pytest.mark.parametrize("seed", range(5))
def test_random_partial_fit_never_starts_from_a_zero_weight_row(seed):
    X, w = _weighted_rows(seed)
    km = KMeans(3, init="random", random_state=seed).partial_fit(X, sample_weight=w)
    # every centre is a weighted mean of positive-weight rows, all near the origin
    assert np.abs(km.cluster_centers_).max() < 50.0


def test_random_init_needs_k_rows_of_positive_weight():
    X, w = _weighted_rows(0)
    w[:] = 0.0
    w[:2] = 1.0
    with pytest.raises(ValueError, match="positive sample_weight"):
        KMeans(3, init="random", n_init=1, random_state=0).fit(X, sample_weight=w)


@pytest.mark.parametrize("cov_type", ["full", "tied"])
def test_precisions_init_gives_the_upper_cholesky_factor(cov_type):
    rng = np.random.RandomState(0)
    X = rng.randn(200, 3)
    A = rng.randn(2, 3, 3)
    P = A @ A.transpose(0, 2, 1) + np.eye(3)
    P = P if cov_type == "full" else P[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm = GaussianMixture(2, covariance_type=cov_type, precisions_init=P, means_init=X[:2],
                             weights_init=[0.5, 0.5], max_iter=0, random_state=0).fit(X)
    for Pk, Lk in zip(P.reshape(-1, 3, 3), gm.precisions_cholesky_.reshape(-1, 3, 3)):
        # scikit-learn's definition: L = (chol_lower(Σ))⁻ᵀ with Σ = P⁻¹
        C = np.linalg.cholesky(np.linalg.inv(Pk))
        expected = scipy.linalg.solve_triangular(C, np.eye(3), lower=True).T
        np.testing.assert_allclose(Lk, np.triu(Lk), atol=0)
        np.testing.assert_allclose(Lk, expected, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(Lk @ Lk.T, Pk, rtol=1e-12, atol=1e-12)
