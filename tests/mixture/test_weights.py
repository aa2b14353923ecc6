"""Sample weights in the mixtures: integer weights are repeated rows, zero weights are removed
rows, the weighted initialisers, and chunked / Dask weighted fits equal the in-memory one."""

import warnings

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from latentspace.cluster import KMeans
from latentspace.data import ChunkedSource
from latentspace.exceptions import ConvergenceWarning
from latentspace.mixture import BernoulliMixture, GaussianMixture

# The weighted and the repeated fits do the same arithmetic but for the order of the sums
# (Σ w x against Σ of repeated x): each statistic differs by a few ulps (~1e-15 relative),
# and 15 EM steps of a well-conditioned mixture amplify that by far less than 1e5, so 1e-10
# (relative, plus 1e-10 absolute for values near 0) leaves a wide margin and still catches
# any weight used wrongly (an error of one row's weight is ~1e-3 here).
TOL = 1e-10
COV_TYPES = ("full", "tied", "diag", "spherical")


def _blobs(seed=0, n=120):
    rng = np.random.RandomState(seed)
    return np.r_[rng.randn(n // 2, 3) * [1.0, 0.5, 2.0], rng.randn(n - n // 2, 3) + [6, -4, 2]]


def _precisions(cov_type, K=2, D=3):
    return {"full": np.stack([np.eye(D)] * K), "tied": np.eye(D), "diag": np.ones((K, D)),
            "spherical": np.ones(K)}[cov_type]


def _gmm(cov_type, **kw):
    """A GaussianMixture whose initial parameters are all given: the fit is deterministic."""
    return GaussianMixture(2, covariance_type=cov_type, max_iter=15, tol=0,
                           weights_init=[0.5, 0.5], means_init=[[0, 0, 0], [5, -3, 1]],
                           precisions_init=_precisions(cov_type), **kw)


def _bmm(**kw):
    return BernoulliMixture(2, max_iter=15, tol=0, weights_init=[0.4, 0.6],
                            means_init=[[0.2, 0.3, 0.7, 0.6], [0.8, 0.6, 0.3, 0.2]], **kw)


def _binary(seed=0, n=120):
    rng = np.random.RandomState(seed)
    p = np.where(np.arange(n)[:, None] < n // 2, [0.9, 0.8, 0.1, 0.2], [0.1, 0.3, 0.9, 0.7])
    return (rng.rand(n, 4) < p).astype(np.float64)


MODELS = [pytest.param(lambda t=t: _gmm(t), _blobs, id=f"gmm-{t}") for t in COV_TYPES] + [
    pytest.param(_bmm, _binary, id="bmm")]


def _fitted_arrays(est):
    names = ("weights_", "means_", "covariances_", "precisions_cholesky_")
    return {n: getattr(est, n) for n in names if hasattr(est, n)}


def _same_fit(a, b):
    for name, value in _fitted_arrays(a).items():
        np.testing.assert_allclose(value, getattr(b, name), rtol=TOL, atol=TOL, err_msg=name)


def _fit(est, X, w=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # tol=0: all 15 steps are taken
        return est.fit(X, sample_weight=w)


@pytest.mark.parametrize("make, data", MODELS)
def test_integer_weights_equal_repetition(make, data):
    X = data()
    w = np.random.RandomState(1).randint(1, 4, size=X.shape[0]).astype(float)
    Xr = np.repeat(X, w.astype(int), axis=0)
    a, b = _fit(make(), X, w), _fit(make(), Xr)
    _same_fit(a, b)
    np.testing.assert_allclose(a.lower_bounds_, b.lower_bounds_, rtol=TOL)
    Y = data(seed=5)
    v = np.random.RandomState(2).randint(1, 4, size=Y.shape[0]).astype(float)
    Yr = np.repeat(Y, v.astype(int), axis=0)
    assert a.score(Y, sample_weight=v) == pytest.approx(b.score(Yr), rel=TOL)
    assert a.bic(Y, sample_weight=v) == pytest.approx(b.bic(Yr), rel=TOL)
    assert a.aic(Y, sample_weight=v) == pytest.approx(b.aic(Yr), rel=TOL)


@pytest.mark.parametrize("make, data", MODELS)
def test_zero_weights_equal_removal(make, data):
    X = data()
    w = np.ones(X.shape[0])
    w[::3] = 0.0
    keep = w > 0
    a, b = _fit(make(), X, w), _fit(make(), X[keep])
    _same_fit(a, b)
    Y = data(seed=7)
    v = np.ones(Y.shape[0])
    v[1::4] = 0.0
    assert a.score(Y, sample_weight=v) == pytest.approx(b.score(Y[v > 0]), rel=TOL)
    assert a.bic(Y, sample_weight=v) == pytest.approx(b.bic(Y[v > 0]), rel=TOL)
    assert a.aic(Y, sample_weight=v) == pytest.approx(b.aic(Y[v > 0]), rel=TOL)


def test_weighted_queries_against_scipy():
    """score = Σ w log p / Σ w, bic = −2 Σ w log p + p log Σ w, with log p from scipy."""
    X = _blobs()
    gm = GaussianMixture(2, random_state=0).fit(X)
    w = np.random.RandomState(0).rand(X.shape[0]) * 3
    dens = sum(gm.weights_[k] * multivariate_normal(gm.means_[k], gm.covariances_[k]).pdf(X)
               for k in range(2))
    ll = np.log(dens)
    p = 2 * 3 + 2 * 6 + 1  # means, full covariances, weights
    # scipy and the Cholesky route agree to ~1e-14 per row
    assert gm.score(X, sample_weight=w) == pytest.approx(np.average(ll, weights=w), rel=1e-12)
    assert gm.bic(X, sample_weight=w) == pytest.approx(-2 * w @ ll + p * np.log(w.sum()), rel=1e-12)
    assert gm.aic(X, sample_weight=w) == pytest.approx(-2 * w @ ll + 2 * p, rel=1e-12)


def test_fit_predict_with_weights_equals_fit_then_predict():
    X = _blobs()
    w = np.random.RandomState(3).rand(X.shape[0])
    a = GaussianMixture(2, random_state=0).fit_predict(X, sample_weight=w)
    b = GaussianMixture(2, random_state=0).fit(X, sample_weight=w).predict(X)
    np.testing.assert_array_equal(a, b)


# ----------------------------------------------------------------------------- initialisers
def _far_zero_weight_data(seed):
    """Three blobs of weight 1 and a few far rows of weight 0, which D² seeding would pick
    first if it ignored the weights."""
    rng = np.random.RandomState(seed)
    X = np.r_[rng.randn(30, 2), rng.randn(30, 2) + 8, rng.randn(30, 2) + [0, 8],
              rng.randn(6, 2) * 0.1 + 1000]
    w = np.r_[np.ones(90), np.zeros(6)]
    return X, w


@pytest.mark.parametrize("init", ["k-means++", "random_from_data"])
def test_seeds_are_never_zero_weight_rows(init):
    for seed in range(15):
        X, w = _far_zero_weight_data(seed)
        # max_iter=0: the initial parameters, each mean the seed row of its component
        gm = GaussianMixture(3, init_params=init, max_iter=0, random_state=seed).fit(X, sample_weight=w)
        d = np.abs(gm.means_[:, None, :] - X[None]).max(-1)  # (K, n)
        seeds = d.argmin(1)
        assert np.all(d.min(1) < 1e-12), "each initial mean is a data row"
        assert np.all(w[seeds] > 0), f"seed {seed}: a zero-weight row became a seed"


def test_random_from_data_needs_enough_positive_rows():
    X, w = _far_zero_weight_data(0)
    w[:] = 0.0
    w[[0, 40, 70]] = 1.0
    with pytest.raises(ValueError, match="n_components = 4, n_samples = 3.*positive sample_weight"):
        GaussianMixture(4, init_params="random_from_data").fit(X[:80], sample_weight=w[:80])


def test_n_components_counts_positive_weight_rows():
    X = _blobs()
    w = np.zeros(X.shape[0])
    w[:2] = 1.0
    with pytest.raises(ValueError, match="n_samples = 2.*positive sample_weight"):
        GaussianMixture(3).fit(X, sample_weight=w)


def test_kmeans_init_is_the_weighted_kmeans():
    """init_params='kmeans' with weights: the initial means are the weighted centroids of the
    labels of the oracle KMeans fitted with the same weights and random stream."""
    rng = np.random.RandomState(0)
    X = np.r_[rng.randn(100, 2), rng.randn(100, 2) + [6, 0], rng.randn(100, 2) + [3, 6]]
    w = np.r_[np.full(100, 50.0), np.ones(200)]  # the first blob dominates
    for seed in range(3):
        gm = GaussianMixture(2, max_iter=0, random_state=seed).fit(X, sample_weight=w)
        km = KMeans(2, n_init=1, random_state=np.random.RandomState(seed)).fit(X, sample_weight=w)
        labels = km.predict(X)
        oracle = np.array([np.average(X[labels == k], axis=0, weights=w[labels == k])
                           for k in range(2)])
        np.testing.assert_allclose(gm.means_, oracle, rtol=1e-10, atol=1e-10)
        plain = GaussianMixture(2, max_iter=0, random_state=seed).fit(X)
        # the weights move the initial means (the heavy blob gets a component of its own)
        assert np.abs(np.sort(gm.means_[:, 0]) - np.sort(plain.means_[:, 0])).max() > 0.5


# ----------------------------------------------------------------------------- chunked and Dask
@pytest.mark.parametrize("cov_type", ["full", "diag"])
def test_chunked_and_dask_weighted_fits_equal_in_memory(cov_type):
    da = pytest.importorskip("dask.array")
    X = _blobs(n=400)
    w = np.random.RandomState(4).rand(400) * 2
    w[::7] = 0.0
    make = lambda: GaussianMixture(2, covariance_type=cov_type, random_state=0)  # noqa: E731
    ref = make().fit(X, sample_weight=w)
    pairs = [(X[i:i + 96], w[i:i + 96]) for i in range(0, 400, 96)]
    chunked = make().fit(ChunkedSource(pairs))
    dask = make().fit(da.from_array(X, chunks=(128, 3)),
                      sample_weight=da.from_array(w, chunks=128))
    # the same EM from the same initialisation; only the grouping of the sums differs
    for other in (chunked, dask):
        _same_fit(ref, other)
        np.testing.assert_allclose(other.lower_bound_, ref.lower_bound_, rtol=TOL)


@pytest.mark.parametrize("bad, match", [(-1.0, "non-negative"), (np.nan, "NaN or infinity")])
def test_bad_chunk_weights_are_refused(bad, match):
    X = _blobs()
    w = np.ones(X.shape[0])
    w[5] = bad
    with pytest.raises(ValueError, match=match):
        GaussianMixture(2).fit(ChunkedSource([(X[:60], w[:60]), (X[60:], w[60:])]))
    with pytest.raises(ValueError, match=match):
        GaussianMixture(2).fit(X, sample_weight=w)


def test_weighted_bernoulli_kmeans_init_runs_with_weights_in_chunks():
    X = _binary(n=200)
    w = np.random.RandomState(0).rand(200)
    ref = BernoulliMixture(2, random_state=0).fit(X, sample_weight=w)
    chunked = BernoulliMixture(2, random_state=0).fit(
        ChunkedSource([(X[i:i + 50], w[i:i + 50]) for i in range(0, 200, 50)]))
    _same_fit(ref, chunked)


@pytest.mark.parametrize("c", [1e-300, 1e-20, 1e20, 1e300])
def test_gaussian_fit_is_free_of_the_weights_scale(c):
    """Maximum likelihood: weights c·w give the fit of w, also where c·w·x² would leave
    float64 or the M-step's guard would swamp N_k, since the fit works on the weights
    times an exact power of two."""
    X = _blobs()
    w = np.random.RandomState(6).rand(X.shape[0]) + 0.5
    ref = _fit(_gmm("full"), X, w)
    got = _fit(_gmm("full"), X, w * c)
    # the same EM but for the rounding of c·w and the guard (10ε against N_k ≈ 60): 1e-12
    _same_fit(ref, got)
    assert got.n_samples_seen_ == pytest.approx(c * w.sum(), rel=1e-12)
    assert got.score(X, sample_weight=w * c) == pytest.approx(ref.score(X, sample_weight=w),
                                                             rel=1e-12)


@pytest.mark.parametrize("first_weighted", [True, False])
def test_chunks_with_and_without_weights_are_refused(first_weighted):
    X = _blobs()
    w = np.ones(60)
    chunks = [(X[:60], w), X[60:]] if first_weighted else [X[:60], (X[60:], w)]
    with pytest.raises(ValueError, match="every chunk or none"):
        GaussianMixture(2, random_state=0).fit(ChunkedSource(chunks))
