"""PPCAMixture: against probabilistic PCA (K = 1), dense Gaussian densities, the EM invariant,
known subspaces, scikit-learn's checks and the reliability rows."""

import inspect
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from scipy.linalg import subspace_angles
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from sklearn.utils.estimator_checks import parametrize_with_checks

import latentspace
from latentspace import PCA, PPCAMixture, choose_k
from latentspace.data import ChunkedSource
from latentspace.exceptions import ConvergenceWarning
from latentspace.mixture._base import MixtureBase


def _mppca_data(n_per=400, d=10, q=2, K=3, noise=0.1, seed=0):
    """Data drawn from a known MPPCA: well-separated means, q-dimensional subspaces."""
    rng = np.random.RandomState(seed)
    means = rng.randn(K, d) * 20
    Ws = [np.linalg.qr(rng.randn(d, q))[0] * np.linspace(3, 2, q) for _ in range(K)]
    X = np.concatenate([rng.randn(n_per, q) @ W.T + m + noise * rng.randn(n_per, d)
                        for W, m in zip(Ws, means)])
    labels = np.repeat(np.arange(K), n_per)
    return X, labels, means, Ws


@pytest.fixture(scope="module")
def fitted():
    X, labels, means, Ws = _mppca_data()
    return PPCAMixture(3, n_latent=2, random_state=0).fit(X), X, labels, means, Ws


def _dense_log_density(m, X):
    """The mixture's log-density through scipy with each C_k = W_kW_kᵀ + σ²_k I built dense."""
    comp = np.stack([
        multivariate_normal(m.means_[k], m.components_[k].T @ m.components_[k]
                            + m.noise_variance_[k] * np.eye(X.shape[1])).logpdf(X)
        for k in range(m.n_components)], 1) + np.log(m.weights_)
    return logsumexp(comp, axis=1), comp


# ----------------------------------------------------------------------------- 1. K = 1 is PPCA
@pytest.mark.parametrize("reg_covar", [0.0, 1e-6, 0.3])
def test_one_component_is_probabilistic_pca(reg_covar):
    rng = np.random.RandomState(1)
    X = rng.randn(500, 8) @ rng.randn(8, 8) + 5.0
    m = PPCAMixture(1, n_latent=3, reg_covar=reg_covar).fit(X)
    pca = PCA(3).fit(X)
    # PCA's eigenvalues are of the ddof=1 covariance; the mixture's M-step is maximum
    # likelihood (divide by N), and reg_covar adds to the whole covariance: C + reg·I
    n = len(X)
    pca.explained_variance_ = pca.explained_variance_ * (n - 1) / n + reg_covar
    pca.noise_variance_ = pca.noise_variance_ * (n - 1) / n + reg_covar
    # both are float64 eigendecompositions of the same covariance (eigenvalues to about
    # D·ε·λ_max); the log-density's terms are O(D) and amplify that by at most
    # λ_max/σ² ≈ 1e2 here: ~1e-13 relative, so 1e-8 is a wide margin that still catches
    # any error of formula (a factor (n−1)/n alone is 2e-3)
    np.testing.assert_allclose(m.score_samples(X), pca.score_samples(X), rtol=1e-8)
    assert m.n_iter_ <= 2  # one M-step is the exact answer
    V = m.components_[0] / np.linalg.norm(m.components_[0], axis=1, keepdims=True)
    np.testing.assert_allclose(np.abs(V @ pca.components_.T), np.eye(3), atol=1e-8)


# ----------------------------------------------------------------------------- 2. EM never lowers
@settings(max_examples=12, deadline=None)
@given(n=st.integers(60, 150), d=st.integers(3, 6), K=st.integers(1, 3),
       q=st.integers(1, 5), seed=st.integers(0, 10_000),
       init=st.sampled_from(["kmeans", "random"]))
# a component collapsing to σ² ≈ 2e-10 of the data's variance: the density must not cancel
@example(n=126, d=4, K=3, q=3, seed=350, init="kmeans")
def test_the_bound_never_decreases(n, d, K, q, seed, init):
    # (not init 'random_from_data': its first M-step sees one row per component, whose σ²
    # is exactly 0 without reg_covar, a ValueError by design)
    q = min(q, d - 1)
    rng = np.random.RandomState(seed)
    # K clusters of equal size at random places, each a random linear map of a Gaussian
    X = np.concatenate([rng.randn(n // K, d) @ rng.randn(d, d) + 8 * rng.randn(d)
                        for _ in range(K)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m = PPCAMixture(K, n_latent=q, reg_covar=0.0, tol=0.0, max_iter=25, init_params=init,
                        random_state=seed)
        try:
            m.fit(X)
        except ValueError as exc:  # a component started on <= q points: σ² = 0 exactly
            assert "noise variance" in str(exc)
            assume(False)
    lb = m.lower_bounds_
    # the exact M-step maximises the expected complete log-likelihood, so the mean
    # log-likelihood cannot fall (Dempster et al. 1977); a mean of n float64 log-densities
    # of size |lb| is exact to ~1e-14·|lb|: 1e-10 relative is rounding only
    assert np.all(np.diff(lb) >= -1e-10 * np.abs(lb[:-1]))
    assert m.lower_bound_ == pytest.approx(m.score(X), rel=1e-10)


# ----------------------------------------------------------------------------- 3. sklearn's checks
@parametrize_with_checks(
    [PPCAMixture(2, n_latent=1)],
    expected_failed_checks=lambda est: {
        "check_sample_weight_equivalence_on_dense_data": (
            "the default init_params='kmeans' runs k-means++ seeding, which draws rows by "
            "index, so a repeated row and a weighted row consume the random stream "
            "differently; from the same start, integer weights and repetition give the same "
            "fit (test_integer_sample_weights_equal_repeated_rows)."
        ),
    },
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


# ----------------------------------------------------------------------------- 4. subspaces
def test_it_recovers_known_subspaces(fitted):
    m, X, labels, means, Ws = fitted
    assert m.converged_
    for k in range(3):
        j = int(np.argmin(np.linalg.norm(m.means_ - means[k], axis=1)))
        angles = subspace_angles(m.components_[j].T, Ws[k])
        assert np.max(angles) <= 0.05, angles
        # σ² is the noise variance, 0.01
        assert m.noise_variance_[j] == pytest.approx(0.01, rel=0.15)
    assert np.all(np.abs(m.weights_ - 1 / 3) < 1e-3)
    from sklearn.metrics import adjusted_rand_score
    assert adjusted_rand_score(labels, m.predict(X)) == 1.0
    # components_ rows are W_kᵀ: orthogonal, in decreasing norm
    for Wt in m.components_:
        G = Wt @ Wt.T
        np.testing.assert_allclose(G - np.diag(np.diag(G)), 0, atol=1e-10 * G.max())
        assert np.all(np.diff(np.diag(G)) <= 0)


# ----------------------------------------------------------------------------- the queries
def test_density_and_posteriors_match_dense_gaussians(fitted):
    m, X, *_ = fitted
    ll, comp = _dense_log_density(m, X[::7])
    # scipy factorises the dense D×D covariances; both routes are float64 to ~1e-12
    np.testing.assert_allclose(m.score_samples(X[::7]), ll, rtol=1e-10)
    np.testing.assert_allclose(m.predict_proba(X[::7]),
                               np.exp(comp - ll[:, None]), atol=1e-10)
    assert m.score(X) == pytest.approx(np.mean(_dense_log_density(m, X)[0]), rel=1e-10)


def test_transform_is_the_posterior_mean_and_inverse_transform_maps_back(fitted):
    m, X, *_ = fitted
    k = m.predict(X)
    Z = m.transform(X)
    assert Z.shape == (len(X), 2)
    for j in range(3):
        Wk = m.components_[j].T
        M = Wk.T @ Wk + m.noise_variance_[j] * np.eye(2)
        expect = np.linalg.solve(M, Wk.T @ (X[k == j] - m.means_[j]).T).T
        np.testing.assert_allclose(Z[k == j], expect, rtol=1e-9, atol=1e-12)
    Xhat = m.inverse_transform(Z, labels=k)
    expect = np.stack([m.components_[j].T @ z + m.means_[j] for z, j in zip(Z, k)])
    np.testing.assert_allclose(Xhat, expect, rtol=1e-12, atol=1e-12)
    # the noise is 0.1 per feature: the reconstruction keeps everything else
    assert np.mean((Xhat - X) ** 2) < 0.02
    big = int(np.argmax(m.weights_))
    np.testing.assert_allclose(m.inverse_transform(Z[:5]), m.inverse_transform(Z[:5], labels=big))
    np.testing.assert_allclose(m.inverse_transform(Z[:5], labels=1),
                               Z[:5] @ m.components_[1] + m.means_[1])
    with pytest.raises(ValueError, match=r"\[0, 2\]"):
        m.inverse_transform(Z[:5], labels=3)
    with pytest.raises(ValueError, match="labels has 4 entries"):
        m.inverse_transform(Z[:5], labels=[0, 1, 2, 0])
    with pytest.raises(ValueError, match="expecting 2 features"):
        m.inverse_transform(X[:5])


def test_sample_follows_the_model(fitted):
    m, X, *_ = fitted
    S, lab = m.sample(30_000, random_state=0)
    assert S.shape == (30_000, 10) and lab.shape == (30_000,)
    for j in range(3):
        C = m.components_[j].T @ m.components_[j] + m.noise_variance_[j] * np.eye(10)
        Sj = S[lab == j]
        # ~10 000 draws: sample means within 5 standard errors, covariances within 0.1·max
        se = np.sqrt(np.diag(C) / len(Sj))
        assert np.all(np.abs(Sj.mean(0) - m.means_[j]) < 5 * se)
        assert np.max(np.abs(np.cov(Sj.T) - C)) < 0.1 * np.max(C)
    np.testing.assert_array_equal(m.sample(5, random_state=1)[0], m.sample(5, random_state=1)[0])


def test_bic_aic_count_the_free_parameters(fitted):
    m, X, *_ = fitted
    K, D, q = 3, 10, 2
    p = (K - 1) + K * D + K * (D * q - q * (q - 1) / 2 + 1)
    log_l = np.sum(_dense_log_density(m, X)[0])
    assert m.bic(X) == pytest.approx(-2 * log_l + p * np.log(len(X)), rel=1e-10)
    assert m.aic(X) == pytest.approx(-2 * log_l + 2 * p, rel=1e-10)


def test_chunked_and_dask_fits_equal_the_in_memory_fit(fitted):
    import dask.array as da

    m, X, *_ = fitted
    c = PPCAMixture(3, n_latent=2, random_state=0).fit(ChunkedSource([X[:333], X[333:900], X[900:]]))
    dk = PPCAMixture(3, n_latent=2, random_state=0).fit(da.from_array(X, chunks=(250, 10)))
    for other in (c, dk):
        # sums of the same terms in another grouping: a few ulps, amplified by the eigen
        # solver at most by the inverse eigengap (≥ 0.1 here)
        np.testing.assert_allclose(other.means_, m.means_, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(other.components_, m.components_, rtol=1e-7, atol=1e-8)
        np.testing.assert_allclose(other.noise_variance_, m.noise_variance_, rtol=1e-7)
    np.testing.assert_allclose(to_np(dk.score_samples(da.from_array(X, chunks=(250, 10)))),
                               m.score_samples(X), rtol=1e-9, atol=1e-9)


def to_np(a):
    return np.asarray(a.compute() if hasattr(a, "compute") else a)


def test_save_load_round_trip(fitted, tmp_path):
    m, X, *_ = fitted
    m.save(tmp_path / "m.safetensors")
    back = latentspace.load(tmp_path / "m.safetensors")
    assert type(back) is PPCAMixture and back.get_params() == m.get_params()
    for name in ("weights_", "means_", "components_", "noise_variance_", "lower_bounds_"):
        np.testing.assert_array_equal(getattr(back, name), getattr(m, name))
    # the same float64 arithmetic on the same stored values
    np.testing.assert_allclose(back.score_samples(X), m.score_samples(X), rtol=1e-15)
    np.testing.assert_array_equal(back.predict(X), m.predict(X))
    np.testing.assert_allclose(back.transform(X), m.transform(X), rtol=1e-15)


def test_warm_start_continues_from_the_fit(fitted):
    m, X, *_ = fitted
    w = PPCAMixture(3, n_latent=2, random_state=0, warm_start=True, max_iter=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        w.fit(X)
        first = w.lower_bound_
        w.fit(X)
    assert w.lower_bounds_[0] == pytest.approx(first, rel=1e-12)


def test_choose_k_with_bic_and_heldout_likelihood():
    X, *_ = _mppca_data(n_per=150, seed=3)
    est = PPCAMixture(n_latent=2, random_state=0)
    assert choose_k(est, X, range(1, 6), criterion="bic").best_k == 3
    assert choose_k(est, X, [1, 2, 3], criterion="heldout", cv=3, random_state=0).best_k == 3


@pytest.mark.skipif("sample_weight" not in inspect.signature(MixtureBase.fit).parameters,
                    reason="MixtureBase.fit takes no sample_weight yet")
def test_integer_sample_weights_equal_repeated_rows():
    X, *_ = _mppca_data(n_per=60, seed=4)
    rng = np.random.RandomState(0)
    w = rng.randint(1, 4, size=len(X))
    for K in (1, 3):
        # run to the fixed point (tol 1e-12), which the two initialisations share on these
        # well-separated clusters, so that only the weighting is compared
        kw = dict(n_latent=2, tol=1e-12, max_iter=500, random_state=0)
        a = PPCAMixture(K, **kw).fit(X, sample_weight=w.astype(float))
        b = PPCAMixture(K, **kw).fit(np.repeat(X, w, axis=0))
        order_a, order_b = np.argsort(a.means_[:, 0]), np.argsort(b.means_[:, 0])
        np.testing.assert_allclose(a.means_[order_a], b.means_[order_b], rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(a.noise_variance_[order_a], b.noise_variance_[order_b],
                                   rtol=1e-6)
        np.testing.assert_allclose(np.abs(a.components_[order_a]),
                                   np.abs(b.components_[order_b]), rtol=1e-6, atol=1e-6)


# ----------------------------------------------------------------------------- 5. reliability
def _blobs(n=90, d=4, seed=0):
    X, *_ = _mppca_data(n_per=n // 3, d=d, q=1, seed=seed)
    return X


def _queries(est):
    return [est.predict, est.predict_proba, est.score_samples, est.transform]


@pytest.mark.parametrize("bad, word", [(np.nan, "NaN"), (np.inf, "infinity"), (-np.inf, "infinity")])
def test_rows_1_2_nan_and_inf(bad, word):
    X = _blobs()
    est = PPCAMixture(3, n_latent=1, random_state=0).fit(X)
    before = est.predict_proba(X)
    Xb = X.copy()
    Xb[5, 1] = bad
    with pytest.raises(ValueError, match=word):
        est.fit(Xb)
    for query in _queries(est):
        with pytest.raises(ValueError, match=word):
            query(Xb)
    np.testing.assert_array_equal(est.predict_proba(X), before)
    Z = est.transform(X[:3])
    Z[0, 0] = bad
    with pytest.raises(ValueError, match=word):
        est.inverse_transform(Z)


def test_row_3_4_empty_and_one_row():
    with pytest.raises(ValueError, match="0 sample"):
        PPCAMixture(n_latent=1).fit(np.empty((0, 3)))
    with pytest.raises(ValueError, match="0 feature"):
        PPCAMixture(n_latent=1).fit(np.empty((5, 0)))
    one = np.array([[0.0, 1.0, 1.0]])
    est = PPCAMixture(1, n_latent=1).fit(one)  # σ² = reg_covar: a finite density
    assert est.predict(one).tolist() == [0] and np.isfinite(est.score(one))
    with pytest.raises(ValueError, match="n_samples"):
        PPCAMixture(2, n_latent=1).fit(one)


def test_row_5_constant_feature_and_constant_data():
    X = _blobs()
    X[:, 1] = 1.0
    est = PPCAMixture(3, n_latent=1, random_state=0).fit(X)
    assert all(np.all(np.isfinite(getattr(est, a))) for a in
               ("weights_", "means_", "components_", "noise_variance_"))
    const = np.ones((20, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = PPCAMixture(2, n_latent=1).fit(const)
    # every covariance is reg_covar·I about the constant point
    np.testing.assert_allclose(est.noise_variance_, 1e-6)
    np.testing.assert_allclose(est.score_samples(const),
                               multivariate_normal(np.ones(3), 1e-6 * np.eye(3)).logpdf(const),
                               rtol=1e-10)
    with pytest.raises(ValueError, match="reg_covar"):
        PPCAMixture(1, n_latent=1, reg_covar=0.0).fit(const)


@settings(max_examples=10, deadline=None)
@given(n_distinct=st.integers(1, 3), repeats=st.integers(2, 6), k=st.integers(2, 5),
       seed=st.integers(0, 1000))
def test_row_6_duplicates(n_distinct, repeats, k, seed):
    rng = np.random.RandomState(seed)
    X = np.repeat(rng.randint(0, 2, size=(n_distinct, 4)).astype(float), repeats, axis=0)
    if len(X) < k:
        return
    distinct = len(np.unique(X, axis=0))
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        est = PPCAMixture(k, n_latent=2, random_state=seed).fit(X)
    if distinct < k:
        assert any(issubclass(r.category, ConvergenceWarning) for r in rec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        np.testing.assert_array_equal(est.fit_predict(X), est.predict(X))
    assert np.all(np.isfinite(est.score_samples(X)))


def test_row_7_k_above_n_and_n_latent_out_of_range_name_both_numbers():
    X = _blobs(n=4 * 3)[:4]
    with pytest.raises(ValueError, match=r"(?=.*\b4\b)(?=.*\b5\b)"):
        PPCAMixture(5, n_latent=1).fit(X)
    X = _blobs()
    for q in (4, 7, 0, -1):
        with pytest.raises(ValueError, match=rf"(?=.*n_latent={q})(?=.*n_features=4)"):
            PPCAMixture(2, n_latent=q).fit(X)
    for q in (1.5, "2", True, None):
        with pytest.raises(ValueError, match="n_latent"):
            PPCAMixture(2, n_latent=q).fit(X)


def test_row_8_wrong_number_of_features():
    X = _blobs()
    est = PPCAMixture(3, n_latent=1, random_state=0).fit(X)
    msg = "X has 2 features, but PPCAMixture is expecting 4 features as input."
    for query in _queries(est):
        with pytest.raises(ValueError, match=msg):
            query(X[:, :2])
        with pytest.raises(ValueError, match=msg):
            query(torch.as_tensor(X[:, :2]))


def test_row_9_element_types():
    X = _blobs()
    make = lambda: PPCAMixture(3, n_latent=1, random_state=0)  # noqa: E731
    with pytest.raises((ValueError, TypeError)):
        make().fit(X.astype(str).astype(object) + "x")
    with pytest.raises((ValueError, TypeError), match="[Cc]omplex"):
        make().fit(X + 1j)
    with pytest.raises(TypeError, match="[Ss]parse"):
        make().fit(sp.csr_matrix(X))
    ref = make().fit(X).predict(X)
    for converted in (X.astype(object), X.astype(np.float16), X.astype(np.float32)):
        np.testing.assert_array_equal(make().fit(converted).predict(converted), ref)
    Xi = np.rint(X).astype(np.int64)
    assert make().fit(Xi).predict(Xi).shape == (len(X),)
    X32 = X.astype(np.float32)
    est = make().fit(X32)
    for query in (est.transform, est.predict_proba, est.score_samples):
        assert query(X32).dtype == np.float32
    assert est.inverse_transform(est.transform(X32)).dtype == np.float32
    t = torch.as_tensor(X32)
    assert isinstance(est.transform(t), torch.Tensor) and est.transform(t).dtype == torch.float32


@pytest.mark.parametrize("factor", [1e154, 1e200, 1e300, 1e-300, 2.0**-1000])
def test_row_10_huge_and_tiny_values(factor):
    X = _blobs(n=150)
    # reg_covar is in data units: 0 keeps the two fits the same model up to scale
    ref = PPCAMixture(3, n_latent=1, reg_covar=0.0, random_state=0).fit(X)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)  # no overflow in the arithmetic
            est = PPCAMixture(3, n_latent=1, reg_covar=0.0, random_state=0).fit(X * factor)
    except ValueError as exc:
        assert "rescale" in str(exc).lower()
        return
    np.testing.assert_array_equal(est.predict(X * factor), ref.predict(X))
    np.testing.assert_allclose(est.means_ / factor, ref.means_, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(np.abs(est.components_ / factor), np.abs(ref.components_),
                               rtol=1e-6, atol=1e-9)
    # log p(x·f) = log p(x) − D log f (the Jacobian of the units)
    np.testing.assert_allclose(est.score_samples(X * factor) + 4 * np.log(factor),
                               ref.score_samples(X), rtol=1e-8)
    np.testing.assert_allclose(est.transform(X * factor), ref.transform(X), rtol=1e-6, atol=1e-9)


def test_far_queries_are_finite_or_named():
    X = _blobs()
    est = PPCAMixture(3, n_latent=1, random_state=0).fit(X)
    far = X[:3] * 1e150  # squares overflow on the ordinary route, the density does not
    ll = est.score_samples(far)
    dense = _dense_log_density(est, far)[0]  # scipy's route overflows to -inf here
    assert np.all(np.isfinite(ll)) and np.all(ll < -1e290)
    assert not np.all(np.isfinite(dense)) or np.allclose(ll, dense, rtol=1e-8)
    p = est.predict_proba(far)
    np.testing.assert_allclose(p.sum(1), 1.0)
    with pytest.raises(ValueError, match="rescale"):
        est.score_samples(X[:3] * 1e200)


@pytest.mark.parametrize("param, value", [
    ("n_components", 0), ("max_iter", -1), ("tol", -1.0), ("reg_covar", -1e-3),
    ("reg_covar", np.nan), ("n_init", 0), ("init_params", "bogus"), ("hard", "yes"),
    ("warm_start", 2),
])
def test_row_19_bad_hyperparameters_and_24_failed_refit_keeps_the_fit(param, value):
    from sklearn.exceptions import NotFittedError

    X = _blobs()
    with pytest.raises(NotFittedError):
        PPCAMixture(n_latent=1).predict(X)
    est = PPCAMixture(3, n_latent=1, random_state=0).fit(X)
    before = {k: v.copy() for k, v in vars(est).items() if isinstance(v, np.ndarray)}
    with pytest.raises(ValueError, match=param):
        est.set_params(**{param: value}).fit(X)
    for k, v in before.items():
        np.testing.assert_array_equal(getattr(est, k), v)
    est.set_params(**{param: PPCAMixture().get_params()[param]})
    est.set_params(n_components=3, n_latent=1)
    np.testing.assert_array_equal(est.predict(X), PPCAMixture(3, n_latent=1, random_state=0)
                                  .fit(X).predict(X))


def test_reg_covar_larger_than_the_data_is_refused():
    X = _blobs() * 1e-4
    with pytest.raises(ValueError, match="reg_covar"):
        PPCAMixture(3, n_latent=1, reg_covar=1.0).fit(X)


def test_wide_data_are_refused_before_any_pass():
    # 10 rows in 3000 dimensions: each iteration would eigendecompose a 3000 × 3000
    # covariance of rank 9 (about 1e11 flops)
    X = np.random.RandomState(0).randn(10, 3000)
    with pytest.raises(ValueError, match=r"(?=.*10 samples x 3000 features)(?=.*PCA)"):
        PPCAMixture(1, n_latent=2).fit(X)


# ----------------------------------------------------------------------------- streaming
def test_partial_fit_one_pass_is_near_the_batch_fit():
    """Stepwise online EM over 60 chunks of a known MPPCA ends within 2% of the batch fit's
    held-out log-likelihood per sample (both are estimates from the same 12000 rows)."""
    rng = np.random.default_rng(3)
    D, q, K = 8, 2, 3
    W = rng.normal(size=(K, D, q))
    mu = rng.normal(size=(K, D)) * 8
    labels = rng.integers(0, K, 16000)
    Z = rng.normal(size=(16000, q))
    X = mu[labels] + np.einsum("ndq,nq->nd", W[labels], Z) + 0.3 * rng.normal(size=(16000, D))
    train, test = X[:12000], X[12000:]
    stream = PPCAMixture(K, n_latent=q, random_state=0)
    for chunk in np.array_split(train, 60):
        stream.partial_fit(chunk)
    batch = PPCAMixture(K, n_latent=q, random_state=0).fit(train)
    assert stream.n_steps_ == 60 and len(stream.lower_bounds_) >= 60
    gap = abs(stream.score(test) - batch.score(test)) / abs(batch.score(test))
    assert gap < 0.02, gap
