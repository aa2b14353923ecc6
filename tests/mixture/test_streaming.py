"""partial_fit of the mixtures: stepwise online EM (Cappé & Moulines 2009) against its own
update rule computed with scipy, against the batch fit on streams, and its contract (one bound
per call, feature checks, weights, parameters, failures, save/load)."""

import warnings

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

import latentspace
from latentspace.exceptions import ConvergenceWarning
from latentspace.mixture import BernoulliMixture, GaussianMixture

COV_TYPES = ("full", "tied", "diag", "spherical")


def _truth():
    """A known, well-separated mixture in 5-D: weights, means, covariances."""
    rng = np.random.default_rng(0)
    means = rng.standard_normal((4, 5)) * 6
    A = rng.standard_normal((4, 5, 5)) * 0.4 + np.eye(5)
    return np.array([0.4, 0.3, 0.2, 0.1]), means, A @ A.transpose(0, 2, 1)


def _draw(n, seed):
    weights, means, covs = _truth()
    rng = np.random.default_rng(seed)
    z = rng.choice(4, size=n, p=weights)
    return means[z] + np.einsum("nde,ne->nd", np.linalg.cholesky(covs)[z],
                                rng.standard_normal((n, 5))), z


def _stream(est, chunks, weights=None):
    for i, C in enumerate(chunks):
        est.partial_fit(C, sample_weight=None if weights is None else weights[i])
    return est


# ----------------------------------------------------------------------------- the update rule
def _diag_stats(X, gm, shift):
    """N_k, Σ r (x − s), Σ r (x − s)² per unit weight under gm's parameters, from scipy."""
    logp = np.stack([np.log(gm.weights_[k]) + multivariate_normal(
        gm.means_[k], np.diag(gm.covariances_[k])).logpdf(X) for k in range(gm.n_components)], 1)
    r = np.exp(logp - logsumexp(logp, axis=1, keepdims=True))
    Xc = X - shift
    n = X.shape[0]
    return r.sum(0) / n, r.T @ Xc / n, r.T @ (Xc * Xc) / n, logsumexp(logp, axis=1).mean()


def test_one_step_is_the_stepwise_em_update():
    """After fit, one partial_fit is eqs. (1)-(2): s̄ from fit's final E-step blended with the
    chunk's statistics by η_2 = (τ₀ + 2)^(−κ), then the M-step on N·s̄."""
    X, _ = _draw(2000, 1)
    Y, _ = _draw(300, 2)
    kappa, tau, reg = 0.8, 3.0, 1e-6
    gm = GaussianMixture(4, covariance_type="diag", random_state=0, tol=1e-8,
                         learning_decay=kappa, learning_offset=tau).fit(X)
    s = gm.running_shift_
    nk, sums, second, _ = _diag_stats(X, gm, s)
    # the running statistics are those of fit's final E-step (scipy's densities agree with
    # the Cholesky route to ~1e-13 per row)
    np.testing.assert_allclose(gm.running_nk_, nk, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(gm.running_sums_, sums, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(gm.running_second_, second, rtol=1e-9, atol=1e-10)
    assert gm.n_steps_ == 1 and gm.n_samples_seen_ == 2000
    hnk, hsums, hsecond, ll = _diag_stats(Y, gm, s)
    eta = (tau + 2) ** -kappa
    bnk, bsums, bsecond = ((1 - eta) * a + eta * b for a, b in
                           ((nk, hnk), (sums, hsums), (second, hsecond)))
    delta = bsums / bnk[:, None]
    means = s + delta
    cov = bsecond / bnk[:, None] - delta ** 2 + reg
    n_iter = gm.n_iter_
    gm.partial_fit(Y)
    # the M-step's 10ε guard on N_k and the rounding of the blend: ~1e-14 relative
    np.testing.assert_allclose(gm.weights_, bnk / bnk.sum(), rtol=1e-9)
    np.testing.assert_allclose(gm.means_, means, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(gm.covariances_, cov, rtol=1e-9)
    # the new bound entry: the chunk's mean log-likelihood under the parameters before the step
    assert gm.lower_bounds_[-1] == pytest.approx(ll, rel=1e-10)
    assert gm.n_steps_ == 2 and gm.n_samples_seen_ == 2300 and gm.n_iter_ == n_iter + 1


def test_first_call_is_a_batch_fit_of_its_chunk():
    X, _ = _draw(500, 3)
    a = GaussianMixture(4, random_state=0).partial_fit(X)
    b = GaussianMixture(4, random_state=0).fit(X)
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    np.testing.assert_array_equal(a.lower_bounds_, b.lower_bounds_[-1:])
    assert a.n_iter_ == b.n_iter_ and a.n_steps_ == 1


# ----------------------------------------------------------------------------- against batch
@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_one_pass_reaches_the_batch_fit(cov_type):
    """100 chunks of a known well-separated mixture, default learning parameters: the held-out
    log-likelihood of one pass is within 1 % of the batch fit's on all the rows."""
    X, _ = _draw(100 * 100, 4)
    H, z = _draw(5000, 5)
    chunks = np.split(X, 100)
    make = lambda: GaussianMixture(4, covariance_type=cov_type, random_state=0)  # noqa: E731
    stream = _stream(make(), chunks)
    batch = make().fit(X)
    s, b = stream.score(H), batch.score(H)
    assert abs(s - b) <= 0.01 * abs(b), (s, b)
    assert stream.lower_bounds_.shape == (100,)
    # and the clustering is the true one (the mixture is well separated)
    from sklearn.metrics import adjusted_rand_score

    assert adjusted_rand_score(z, stream.predict(H)) > 0.99


def test_hard_stream_clusters_as_the_hard_batch_fit():
    X, _ = _draw(50 * 100, 6)
    H, z = _draw(2000, 7)
    make = lambda: GaussianMixture(4, covariance_type="diag", hard=True, random_state=0)  # noqa: E731
    stream = _stream(make(), np.split(X, 50))
    batch = make().fit(X)
    from sklearn.metrics import adjusted_rand_score

    assert adjusted_rand_score(batch.predict(H), stream.predict(H)) > 0.99
    assert abs(stream.score(H) - batch.score(H)) <= 0.01 * abs(batch.score(H))
    assert np.all(np.isfinite(stream.lower_bounds_))


@pytest.mark.slow
def test_bernoulli_mnist_one_pass_reaches_the_batch_fit(shared_data):
    """Binarised MNIST in 600-row chunks, K=10: one pass within 2 % of the batch fit on the
    official test split."""
    d = latentspace.load_dataset("mnist", data_home=shared_data, return_images=False)
    X = (d.data > 0.5).astype(np.float64)
    Xt = (d.data_test > 0.5).astype(np.float64)
    stream = _stream(BernoulliMixture(10, random_state=0), np.split(X, X.shape[0] // 600))
    batch = BernoulliMixture(10, random_state=0).fit(X)
    s, b = stream.score(Xt), batch.score(Xt)
    assert abs(s - b) <= 0.02 * abs(b), (s, b)
    assert stream.lower_bounds_.shape == (100,)


def test_bernoulli_stream_of_two_sources():
    rng = np.random.RandomState(0)
    p = np.array([[0.9, 0.8, 0.1, 0.2, 0.5, 0.9], [0.1, 0.2, 0.9, 0.8, 0.5, 0.1]])

    def draw(n):
        z = rng.randint(2, size=n)
        return (rng.rand(n, 6) < p[z]).astype(float)

    H = draw(4000)
    stream = _stream(BernoulliMixture(2, random_state=0), [draw(100) for _ in range(60)])
    batch = BernoulliMixture(2, random_state=0).fit(np.concatenate([draw(100) for _ in range(60)]))
    assert abs(stream.score(H) - batch.score(H)) <= 0.01 * abs(batch.score(H))


# ----------------------------------------------------------------------------- the contract
def test_bound_trace_has_one_entry_per_call_after_fit():
    X, _ = _draw(1000, 8)
    gm = GaussianMixture(4, random_state=0).fit(X)
    n0 = gm.lower_bounds_.shape[0]
    _stream(gm, np.split(X[:300], 3))
    assert gm.lower_bounds_.shape == (n0 + 3,)
    assert gm.lower_bound_ == gm.lower_bounds_[-1]
    assert gm.n_steps_ == 4


def test_feature_count_mismatch():
    X, _ = _draw(400, 9)
    gm = GaussianMixture(2, random_state=0).partial_fit(X)
    with pytest.raises(ValueError, match="X has 4 features, but GaussianMixture is expecting 5 "
                                         "features as input"):
        gm.partial_fit(X[:, :4])


@pytest.mark.parametrize("model", ["gmm", "bmm"])
def test_partial_fit_integer_weights_equal_repetition(model):
    rng = np.random.RandomState(0)
    if model == "gmm":
        chunks = [_draw(80, s)[0] for s in range(10, 14)]
        make = lambda: GaussianMixture(  # noqa: E731
            4, covariance_type="full", means_init=_truth()[1], weights_init=np.full(4, 0.25),
            precisions_init=np.stack([np.eye(5)] * 4), max_iter=10, tol=0)
    else:
        chunks = [(rng.rand(80, 6) < 0.3).astype(float) for _ in range(4)]
        make = lambda: BernoulliMixture(  # noqa: E731
            2, means_init=[[0.2] * 6, [0.6] * 6], weights_init=[0.5, 0.5], max_iter=10, tol=0)
    weights = [rng.randint(0, 3, size=80).astype(float) for _ in chunks]
    for w in weights:
        w[0] = 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = _stream(make(), chunks, weights)
        b = _stream(make(), [np.repeat(C, w.astype(int), axis=0) for C, w in zip(chunks, weights)])
    # the same arithmetic up to the order of the sums (see test_weights.TOL)
    np.testing.assert_allclose(a.weights_, b.weights_, rtol=1e-10)
    np.testing.assert_allclose(a.means_, b.means_, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(a.lower_bounds_, b.lower_bounds_, rtol=1e-10)
    assert a.n_samples_seen_ == b.n_samples_seen_ == sum(w.sum() for w in weights)


@pytest.mark.parametrize("param, value", [
    ("learning_decay", 0.5), ("learning_decay", 1.5), ("learning_decay", float("nan")),
    ("learning_decay", "fast"), ("learning_offset", -1.0), ("learning_offset", float("inf")),
])
@pytest.mark.parametrize("fitted", [False, True])
def test_bad_learning_parameters_are_named(param, value, fitted):
    X, _ = _draw(300, 11)
    gm = GaussianMixture(2, random_state=0)
    if fitted:
        gm.fit(X)
    before = {k: v for k, v in vars(gm).items() if k.endswith("_")}
    gm.set_params(**{param: value})
    with pytest.raises(ValueError, match=param):
        gm.partial_fit(X)
    with pytest.raises(ValueError, match=param):
        GaussianMixture(2, **{param: value}).fit(X)
    assert set(before) == {k for k in vars(gm) if k.endswith("_")}


def test_failed_partial_fit_leaves_the_model_intact():
    X, _ = _draw(600, 12)
    gm = _stream(GaussianMixture(3, random_state=0), np.split(X, 3))
    before = {k: np.copy(v) if isinstance(v, np.ndarray) else v
              for k, v in vars(gm).items() if k.endswith("_")}
    bad = X[:50].copy()
    bad[3, 2] = np.nan
    for call in (lambda: gm.partial_fit(bad), lambda: gm.partial_fit(X[:50, :3]),
                 lambda: gm.partial_fit(X[:50], sample_weight=-np.ones(50)),
                 lambda: gm.partial_fit(X[:50] * 1e150)):
        with pytest.raises(ValueError):
            call()
        for k, v in before.items():
            np.testing.assert_array_equal(getattr(gm, k), v, err_msg=k)


def test_chunk_beyond_the_working_scale_says_rescale():
    X, _ = _draw(400, 13)
    gm = GaussianMixture(2, random_state=0).partial_fit(X)
    with pytest.raises(ValueError, match="rescale"):
        gm.partial_fit(X * 1e150)
    # a stream that starts at an extreme magnitude keeps it: its chunks are fine
    big = GaussianMixture(2, random_state=0).partial_fit(X * 1e150)
    big.partial_fit(X[:100] * 1e150)
    assert np.all(np.isfinite(big.lower_bounds_))
    ref = GaussianMixture(2, random_state=0).partial_fit(X).partial_fit(X[:100])
    # the working scale is an exact power of two: the same fit in other units
    np.testing.assert_allclose(big.means_ / 1e150, ref.means_, rtol=1e-9)


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_save_load_between_calls_continues_identically(cov_type, tmp_path):
    X, _ = _draw(900, 14)
    chunks = np.split(X, 3)
    gm = GaussianMixture(3, covariance_type=cov_type, random_state=0).partial_fit(chunks[0])
    gm.partial_fit(chunks[1])
    gm.save(tmp_path / "m.safetensors")
    loaded = latentspace.load(tmp_path / "m.safetensors")
    gm.partial_fit(chunks[2])
    loaded.partial_fit(chunks[2])
    for name in ("weights_", "means_", "covariances_", "running_second_", "lower_bounds_"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(gm, name), err_msg=name)
    assert loaded.n_steps_ == gm.n_steps_ == 3


def test_bernoulli_save_load_continues_identically(tmp_path):
    rng = np.random.RandomState(0)
    chunks = [(rng.rand(100, 8) < 0.4).astype(float) for _ in range(3)]
    bm = _stream(BernoulliMixture(2, random_state=0), chunks[:2])
    bm.save(tmp_path / "b.safetensors")
    loaded = latentspace.load(tmp_path / "b.safetensors")
    bm.partial_fit(chunks[2])
    loaded.partial_fit(chunks[2])
    np.testing.assert_array_equal(loaded.means_, bm.means_)
    np.testing.assert_array_equal(loaded.lower_bounds_, bm.lower_bounds_)


def test_model_without_running_statistics_restarts_them():
    """A model from from_kmeans has parameters but no running statistics: the next chunk's
    statistics under those parameters start them (η = 1)."""
    from latentspace.cluster import KMeans

    X, _ = _draw(800, 15)
    gm = GaussianMixture.from_kmeans(KMeans(4, random_state=0).fit(X))
    gm.partial_fit(X[:400])
    assert gm.n_steps_ == 1 and gm.n_samples_seen_ == 400
    assert gm.lower_bounds_.shape == (1,) and np.isfinite(gm.lower_bound_)
    gm.partial_fit(X[400:])
    assert gm.n_steps_ == 2


def test_fit_resets_the_stream():
    X, _ = _draw(600, 16)
    gm = _stream(GaussianMixture(2, random_state=0), np.split(X, 3))
    gm.fit(X)
    ref = GaussianMixture(2, random_state=0).fit(X)
    assert gm.n_steps_ == 1 and gm.n_samples_seen_ == 600
    np.testing.assert_array_equal(gm.lower_bounds_, ref.lower_bounds_)
    np.testing.assert_array_equal(gm.running_nk_, ref.running_nk_)
