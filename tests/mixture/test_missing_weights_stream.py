"""Missing values together with sample weights and partial_fit (the three meet in the
statistics: each must leave the others' guarantees intact)."""

import numpy as np
import pytest

from latentspace import BernoulliMixture, GaussianMixture


def _blobs(rng, n=300, d=4):
    centres = np.array([[0.0] * d, [6.0] * d])
    labels = rng.integers(0, 2, n)
    return centres[labels] + rng.normal(size=(n, d)), centres


def _mcar(rng, X, frac=0.2):
    X = X.copy()
    mask = rng.random(X.shape) < frac
    mask[mask.all(1), 0] = False  # every row keeps one observed entry
    X[mask] = np.nan
    return X


@pytest.mark.filterwarnings("ignore::latentspace.exceptions.ConvergenceWarning")  # tol=0
@pytest.mark.parametrize("cov", ["full", "tied", "diag", "spherical"])
def test_integer_weights_equal_repetition_with_missing_entries(cov):
    rng = np.random.default_rng(0)
    X, centres = _blobs(rng)
    X = _mcar(rng, X)
    counts = rng.integers(0, 4, X.shape[0])
    counts[:2] = 1  # at least some rows
    d = X.shape[1]
    prec = {"full": np.stack([np.eye(d)] * 2), "tied": np.eye(d), "diag": np.ones((2, d)),
            "spherical": np.ones(2)}[cov]
    # every initial parameter given: both fits start from the same point
    init = dict(means_init=centres, weights_init=[0.5, 0.5], precisions_init=prec,
                max_iter=20, tol=0.0)
    a = GaussianMixture(2, covariance_type=cov, missing="marginalize", **init).fit(
        X, sample_weight=counts.astype(float))
    b = GaussianMixture(2, covariance_type=cov, missing="marginalize", **init).fit(
        np.repeat(X, counts, axis=0))
    # the same sums in another order: float64 rounding of 20 EM iterations
    np.testing.assert_allclose(a.means_, b.means_, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(a.covariances_, b.covariances_, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(a.weights_, b.weights_, rtol=1e-10, atol=1e-12)


def test_partial_fit_streams_incomplete_chunks():
    rng = np.random.default_rng(1)
    X, centres = _blobs(rng, n=6000)
    Xm = _mcar(rng, X)
    test, _ = _blobs(rng, n=2000)
    stream = GaussianMixture(2, covariance_type="diag", missing="marginalize", random_state=0)
    for chunk in np.array_split(Xm, 30):
        stream.partial_fit(chunk)
    batch = GaussianMixture(2, covariance_type="diag", missing="marginalize",
                            random_state=0).fit(Xm)
    assert len(stream.lower_bounds_) >= 30
    assert np.all(np.isfinite(stream.lower_bounds_))
    # one pass over incomplete chunks ends near the batch fit on the same incomplete data
    gap = abs(stream.score(test) - batch.score(test)) / abs(batch.score(test))
    assert gap < 0.01, gap
    found = np.sort(stream.means_[:, 0])
    np.testing.assert_allclose(found, [0.0, 6.0], atol=0.2)


def test_bernoulli_partial_fit_and_weights_with_missing_entries():
    rng = np.random.default_rng(2)
    p = np.array([[0.9] * 6, [0.1] * 6])
    labels = rng.integers(0, 2, 3000)
    X = (rng.random((3000, 6)) < p[labels]).astype(float)
    X = _mcar(rng, X, 0.3)
    est = BernoulliMixture(2, missing="marginalize", random_state=0)
    for chunk in np.array_split(X, 10):
        est.partial_fit(chunk, sample_weight=np.full(len(chunk), 2.0))
    assert np.all(np.isfinite(est.lower_bounds_))
    got = np.sort(est.means_.mean(1))
    np.testing.assert_allclose(got, [0.1, 0.9], atol=0.05)
    assert np.isfinite(est.score(X, sample_weight=np.ones(len(X))))
    assert np.isfinite(est.bic(X, sample_weight=np.ones(len(X))))
