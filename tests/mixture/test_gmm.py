"""GaussianMixture against scikit-learn, scipy's densities and EM's invariants."""

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from sklearn.datasets import make_blobs
from sklearn.mixture import GaussianMixture as SKGaussianMixture

import latentspace
from latentspace.cluster import KMeans
from latentspace.data import ChunkedSource
from latentspace.exceptions import ConvergenceWarning
from latentspace.mixture import GaussianMixture, anneal_variance

TYPES = ["full", "tied", "diag", "spherical"]


def _mixture_data(n=600, seed=0):
    rng = np.random.RandomState(seed)
    A = rng.randn(3, 3)
    return np.r_[
        rng.randn(n // 2, 3) @ A,
        rng.randn(n // 3, 3) * 0.5 + 3,
        rng.randn(n - n // 2 - n // 3, 3) + [0, 5, 0],
    ]


def _quiet(fn, *a, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fn(*a, **kw)


def _init_from_sklearn(X, t, K=3):
    sk0 = _quiet(SKGaussianMixture(K, covariance_type=t, max_iter=2, random_state=1).fit, X)
    return dict(weights_init=sk0.weights_, means_init=sk0.means_, precisions_init=sk0.precisions_)


# ----------------------------------------------------------------------------- oracles
@pytest.mark.parametrize("t", TYPES)
def test_twenty_iterations_from_same_init_agree_with_sklearn(t):
    X = _mixture_data()
    init = _init_from_sklearn(X, t)
    sk = _quiet(SKGaussianMixture(3, covariance_type=t, max_iter=20, tol=0, **init).fit, X)
    ours = _quiet(GaussianMixture(3, covariance_type=t, max_iter=20, tol=0, **init).fit, X)
    assert ours.n_iter_ == 20
    for attr in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
        np.testing.assert_allclose(getattr(ours, attr), getattr(sk, attr), rtol=1e-6, atol=1e-9,
                                   err_msg=attr)
    np.testing.assert_allclose(ours.score_samples(X), sk.score_samples(X), rtol=1e-9)
    np.testing.assert_allclose(ours.predict_proba(X), sk.predict_proba(X), atol=1e-9)
    np.testing.assert_array_equal(ours.predict(X), sk.predict(X))
    assert ours.bic(X) == pytest.approx(sk.bic(X), rel=1e-9)
    assert ours.aic(X) == pytest.approx(sk.aic(X), rel=1e-9)


@pytest.mark.parametrize("init", ["kmeans", "k-means++", "random_from_data"])
def test_builtin_inits_reproduce_sklearn_from_the_same_seed(init):
    X = _mixture_data(seed=3)
    kw = dict(covariance_type="full", init_params=init, random_state=7, max_iter=5, tol=0)
    sk = _quiet(SKGaussianMixture(3, **kw).fit, X)
    ours = _quiet(GaussianMixture(3, **kw).fit, X)
    np.testing.assert_allclose(ours.means_, sk.means_, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(ours.covariances_, sk.covariances_, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("t", TYPES)
def test_score_samples_is_the_mixture_density_from_scipy(t):
    X = _mixture_data(200)
    gm = GaussianMixture(3, covariance_type=t, random_state=0).fit(X)
    K, D = gm.means_.shape
    cov = {
        "full": lambda k: gm.covariances_[k],
        "tied": lambda k: gm.covariances_,
        "diag": lambda k: np.diag(gm.covariances_[k]),
        "spherical": lambda k: np.eye(D) * gm.covariances_[k],
    }[t]
    logp = np.stack(
        [np.log(gm.weights_[k]) + multivariate_normal(gm.means_[k], cov(k)).logpdf(X) for k in range(K)],
        axis=1,
    )
    np.testing.assert_allclose(gm.score_samples(X), logsumexp(logp, axis=1), rtol=1e-10)
    np.testing.assert_allclose(gm.predict_proba(X), np.exp(logp - logsumexp(logp, 1, keepdims=True)),
                               atol=1e-10)
    np.testing.assert_array_equal(gm.predict(X), logp.argmax(1))
    assert gm.score(X) == pytest.approx(logsumexp(logp, axis=1).mean(), rel=1e-10)
    np.testing.assert_allclose(gm.precisions_, np.linalg.inv(gm.covariances_) if t in ("full", "tied")
                               else 1 / gm.covariances_, rtol=1e-8)


# ----------------------------------------------------------------------------- invariants
@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    t=st.sampled_from(TYPES),
    k=st.integers(1, 4),
    dup=st.integers(1, 3),
    hard=st.booleans(),
    init=st.sampled_from(["kmeans", "random", "random_from_data"]),
)
def test_lower_bound_never_decreases(seed, t, k, dup, hard, init):
    # reg_covar=0 is exact EM, whose monotonicity is a theorem (Dempster et al. 1977); a
    # positive reg_covar moves each M-step off the maximiser of Q by reg_covar·I
    rng = np.random.RandomState(seed)
    X = np.repeat(rng.randn(20, 2) * rng.uniform(0.1, 5, 2), dup, axis=0)  # duplicates
    gm = GaussianMixture(k, covariance_type=t, hard=hard, init_params=init, max_iter=30, tol=0,
                         random_state=seed, reg_covar=0.0)
    try:
        _quiet(gm.fit, X)
    except ValueError as exc:  # a component shrank onto one point: the documented answer
        assert "reg_covar" in str(exc)
        return
    variances = gm.covariances_ if t != "full" else np.linalg.eigvalsh(gm.covariances_)
    if t == "tied":
        variances = np.linalg.eigvalsh(gm.covariances_)
    if np.min(variances) < 1e-8 * X.var(0).min():
        # a component collapsed onto duplicates: its precision (> 1e8) makes every
        # log-density an ill-conditioned difference (as in scikit-learn); not EM's property
        return
    lb = gm.lower_bounds_
    assert len(lb) == gm.n_iter_ + 1
    assert np.all(np.diff(lb) >= -1e-9 * max(1.0, np.abs(lb).max())), lb
    if not hard:
        assert lb[-1] == pytest.approx(gm.score(X), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("true_k", [2, 3, 4])
def test_bic_picks_the_true_k_on_separated_mixtures(true_k):
    X, _ = make_blobs(n_samples=150 * true_k, n_features=2, centers=true_k, cluster_std=0.6,
                      center_box=(-20, 20), random_state=true_k)
    bics = [GaussianMixture(k, random_state=0, n_init=2).fit(X).bic(X) for k in range(1, 7)]
    assert int(np.argmin(bics)) + 1 == true_k


@pytest.mark.parametrize("t", TYPES)
def test_chunked_and_memmap_equal_in_memory(t, tmp_path):
    X = _mixture_data(500, seed=2)
    kw = dict(covariance_type=t, random_state=0, max_iter=40, tol=0)
    a = _quiet(GaussianMixture(3, **kw).fit, X)
    b = _quiet(GaussianMixture(3, **kw).fit, ChunkedSource(np.split(X, [3, 4, 200, 457])))
    np.save(tmp_path / "X.npy", X)
    c = _quiet(GaussianMixture(3, **kw).fit, np.load(tmp_path / "X.npy", mmap_mode="r"))
    for other in (b, c):
        for attr in ("weights_", "means_", "covariances_"):
            np.testing.assert_allclose(getattr(other, attr), getattr(a, attr), rtol=1e-10,
                                       atol=1e-10, err_msg=attr)


def test_random_init_does_not_depend_on_chunking():
    X = _mixture_data(3000, seed=4)
    kw = dict(init_params="random", random_state=0, max_iter=0)
    a = GaussianMixture(3, **kw).fit(X)
    b = GaussianMixture(3, **kw).fit(ChunkedSource(np.split(X, [1000, 1001, 2500])))
    np.testing.assert_allclose(a.means_, b.means_, rtol=1e-12)


def test_max_iter_zero_initialises_only_and_warm_start_continues():
    X = _mixture_data()
    init = _init_from_sklearn(X, "full")
    gm0 = GaussianMixture(3, max_iter=0, **init).fit(X)
    assert gm0.n_iter_ == 0 and len(gm0.lower_bounds_) == 1
    np.testing.assert_allclose(gm0.means_, init["means_init"])
    np.testing.assert_allclose(gm0.precisions_, init["precisions_init"], rtol=1e-10)
    one = _quiet(GaussianMixture(3, max_iter=20, tol=0, **init).fit, X)
    warm = GaussianMixture(3, max_iter=10, tol=0, warm_start=True, **init)
    _quiet(warm.fit, X)
    _quiet(warm.fit, X)
    np.testing.assert_allclose(warm.means_, one.means_, rtol=1e-8)
    np.testing.assert_allclose(warm.covariances_, one.covariances_, rtol=1e-8)


def test_sample_moments_and_order():
    X = _mixture_data()
    gm = GaussianMixture(3, random_state=0).fit(X)
    S, labels = gm.sample(60_000, random_state=1)
    assert S.shape == (60_000, 3) and labels.shape == (60_000,)
    mean = gm.weights_ @ gm.means_
    cov = sum(w * (c + np.outer(m - mean, m - mean))
              for w, m, c in zip(gm.weights_, gm.means_, gm.covariances_))
    np.testing.assert_allclose(S.mean(0), mean, atol=0.05)
    np.testing.assert_allclose(np.cov(S.T), cov, atol=0.15)
    np.testing.assert_allclose(np.bincount(labels) / len(labels), gm.weights_, atol=0.01)
    assert not np.all(np.diff(labels) >= 0)  # shuffled, not grouped by component
    for t in TYPES:
        g = GaussianMixture(2, covariance_type=t, random_state=0).fit(X)
        assert g.sample(5)[0].shape == (5, 3)


def test_hard_em_means_are_the_means_of_its_clusters():
    X, _ = make_blobs(400, 2, centers=3, cluster_std=1.5, random_state=1)
    gm = GaussianMixture(3, hard=True, covariance_type="diag", random_state=0, max_iter=200).fit(X)
    assert gm.converged_
    labels = gm.predict(X)
    # after convergence the hard partition is stable: the means are its cluster means
    for k in range(3):
        np.testing.assert_allclose(gm.means_[k], X[labels == k].mean(0), rtol=1e-8)


def test_annealed_mixture_labels_equal_kmeans_labels_from_same_centres():
    X, _ = make_blobs(300, 2, centers=4, cluster_std=2.0, random_state=0)
    C0 = X[:4]
    km = KMeans(4, init=C0, tol=0).fit(X)
    path = anneal_variance(X, C0, np.geomspace(30.0, 1e-3, 10))
    agreement = path.agreement(km.labels_)
    assert agreement[-1] == 1.0 and agreement[0] < 1.0  # soft at large σ², K-means at small
    np.testing.assert_allclose(path.means[-1], km.cluster_centers_, rtol=1e-10)
    for lb in path.lower_bounds:
        assert np.all(np.diff(lb) >= -1e-12)


def test_fit_predict_float32_and_torch():
    X = _mixture_data()
    gm = GaussianMixture(3, random_state=0)
    labels = gm.fit_predict(X)
    np.testing.assert_array_equal(labels, gm.predict(X))
    np.testing.assert_array_equal(gm.predict(X), gm.predict_proba(X).argmax(1))
    T = torch.as_tensor(X, dtype=torch.float32)
    out = gm.predict_proba(T)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    assert gm.score_samples(X.astype(np.float32)).dtype == np.float32


def test_bad_init_shapes_are_named():
    X = _mixture_data()
    with pytest.raises(ValueError, match="means_init"):
        GaussianMixture(3, means_init=np.zeros((2, 3))).fit(X)
    with pytest.raises(ValueError, match="weights_init"):
        GaussianMixture(3, weights_init=[0.5, 0.6, 0.1]).fit(X)
    with pytest.raises(ValueError, match="positive-definite"):
        GaussianMixture(2, precisions_init=np.stack([np.eye(3), -np.eye(3)])).fit(X)
    with pytest.raises(ValueError, match="covariance_type"):
        GaussianMixture(3, covariance_type="banded").fit(X)
    with pytest.raises(ValueError, match="reg_covar"):
        GaussianMixture(3, reg_covar=-1).fit(X)


def test_collapsed_component_error_names_reg_covar():
    X = np.r_[np.zeros((10, 2)), np.ones((10, 2))]
    with pytest.raises(ValueError, match="reg_covar"):
        GaussianMixture(2, reg_covar=0.0, random_state=0).fit(X)


@pytest.mark.parametrize("t", TYPES)
def test_save_load_round_trip(t, tmp_path):
    X = _mixture_data()
    gm = GaussianMixture(3, covariance_type=t, random_state=0).fit(X)
    gm.save(tmp_path / "gm.safetensors")
    back = latentspace.load(tmp_path / "gm.safetensors")
    assert isinstance(back, GaussianMixture) and back.get_params() == gm.get_params()
    np.testing.assert_array_equal(back.score_samples(X), gm.score_samples(X))
    np.testing.assert_array_equal(back.lower_bounds_, gm.lower_bounds_)


@pytest.mark.slow
def test_handbook_aic_curve_equals_sklearn():
    """Digits → PCA(99%, whitened) → 41 dims; full-covariance AIC per K as scikit-learn's."""
    from sklearn.datasets import load_digits
    from sklearn.decomposition import PCA as SKPCA

    Z = SKPCA(0.99, whiten=True).fit_transform(load_digits().data)
    assert Z.shape == (1797, 41)
    for k in (50, 110, 150, 200):
        ours = GaussianMixture(k, covariance_type="full", random_state=0).fit(Z).aic(Z)
        theirs = SKGaussianMixture(k, covariance_type="full", random_state=0).fit(Z).aic(Z)
        assert ours == pytest.approx(theirs, rel=1e-6)


def test_from_kmeans_is_the_equal_weight_spherical_limit():
    X, _ = make_blobs(n_samples=300, n_features=4, centers=5, cluster_std=1.5, random_state=0)
    km = KMeans(5, random_state=0).fit(X)
    gm = GaussianMixture.from_kmeans(km)
    assert gm.covariance_type == "spherical"
    np.testing.assert_allclose(gm.weights_, 0.2)
    np.testing.assert_allclose(gm.means_, km.cluster_centers_)
    var = km.inertia_ / (len(X) * X.shape[1])
    np.testing.assert_allclose(gm.covariances_, var)
    # equal weights and one shared variance: the most probable component is the nearest centre
    np.testing.assert_array_equal(gm.predict(X), km.predict(X))
