"""BernoulliMixture against a direct NumPy EM, closed forms and EM's invariants."""

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import logsumexp

import latentspace
from latentspace.data import ChunkedSource
from latentspace.exceptions import ConvergenceWarning
from latentspace.mixture import BernoulliMixture


def _binary(n=400, d=12, k=3, seed=0):
    rng = np.random.RandomState(seed)
    protos = rng.uniform(0.05, 0.95, size=(k, d))
    z = rng.randint(k, size=n)
    return (rng.uniform(size=(n, d)) < protos[z]).astype(np.float64), z


def _numpy_em(X, weights, probs, alpha, n_iter):
    """Textbook EM for a Bernoulli mixture with Beta pseudo-counts (Bishop 2006, §9.3.3)."""
    K = len(weights)
    for _ in range(n_iter):
        logp = np.stack(
            [np.log(weights[k]) + (X * np.log(probs[k]) + (1 - X) * np.log(1 - probs[k])).sum(1)
             for k in range(K)], axis=1)
        resp = np.exp(logp - logsumexp(logp, axis=1, keepdims=True))
        nk = resp.sum(0) + 10 * np.finfo(float).eps
        weights = nk / nk.sum()
        probs = (resp.T @ X + alpha) / (nk[:, None] + 2 * alpha)
    return weights, probs


def _log_density(X, weights, probs):
    logp = np.log(weights)[None] + X @ np.log(probs).T + (1 - X) @ np.log1p(-probs).T
    return logsumexp(logp, axis=1)


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
def test_matches_a_direct_numpy_em_from_the_same_start(alpha):
    X, _ = _binary()
    w0 = np.array([0.2, 0.3, 0.5])
    p0 = np.random.RandomState(1).uniform(0.2, 0.8, size=(3, X.shape[1]))
    ours = BernoulliMixture(3, alpha=alpha, weights_init=w0, means_init=p0, max_iter=20, tol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours.fit(X)
    w, p = _numpy_em(X, w0, p0, alpha, 20)
    np.testing.assert_allclose(ours.weights_, w, rtol=1e-10)
    np.testing.assert_allclose(ours.means_, p, rtol=1e-10)
    np.testing.assert_allclose(ours.score_samples(X), _log_density(X, w, p), rtol=1e-10)


def test_queries_against_closed_forms():
    X, z = _binary(600, seed=2)
    bm = BernoulliMixture(3, random_state=0).fit(X)
    dens = _log_density(X, bm.weights_, bm.means_)
    np.testing.assert_allclose(bm.score_samples(X), dens, rtol=1e-10)
    assert bm.score(X) == pytest.approx(dens.mean(), rel=1e-12)
    logp = np.log(bm.weights_)[None] + X @ np.log(bm.means_).T + (1 - X) @ np.log1p(-bm.means_).T
    np.testing.assert_allclose(bm.predict_proba(X), np.exp(logp - dens[:, None]), atol=1e-10)
    np.testing.assert_array_equal(bm.predict(X), logp.argmax(1))
    p = 3 * X.shape[1] + 2
    assert bm.bic(X) == pytest.approx(-2 * dens.sum() + p * np.log(len(X)), rel=1e-12)
    assert bm.aic(X) == pytest.approx(-2 * dens.sum() + 2 * p, rel=1e-12)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), k=st.integers(1, 5), dup=st.integers(1, 3),
       alpha=st.sampled_from([0.0, 0.01, 1.0]), hard=st.booleans(),
       init=st.sampled_from(["kmeans", "random", "k-means++"]))
def test_penalised_lower_bound_never_decreases(seed, k, dup, alpha, hard, init):
    X, _ = _binary(40, 8, 3, seed=seed)
    X = np.repeat(X, dup, axis=0)
    bm = BernoulliMixture(k, alpha=alpha, hard=hard, init_params=init, tol=0, max_iter=25,
                          random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        bm.fit(X)
    lb = bm.lower_bounds_
    assert np.all(np.diff(lb) >= -1e-10 * np.abs(lb).max()), lb
    if alpha == 0 and not hard:
        assert lb[-1] == pytest.approx(bm.score(X), rel=1e-9)


def test_soft_counts_binarize_and_range_errors():
    X, _ = _binary()
    soft = np.clip(X * 0.8 + 0.1, 0, 1)
    bm = BernoulliMixture(3, random_state=0).fit(soft)
    assert np.all((bm.means_ > 0) & (bm.means_ < 1))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        BernoulliMixture(2).fit(X * 2)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        bm.predict(X - 0.5)
    grey = X * 200 + 20  # grey levels
    a = BernoulliMixture(3, binarize=100, random_state=0).fit(grey)
    b = BernoulliMixture(3, random_state=0).fit(X)
    np.testing.assert_allclose(a.means_, b.means_)
    np.testing.assert_array_equal(a.predict(grey), b.predict(X))


def test_sample_is_binary_with_the_right_moments():
    X, _ = _binary()
    bm = BernoulliMixture(3, random_state=0).fit(X)
    S, labels = bm.sample(50_000, random_state=3)
    assert set(np.unique(S)) <= {0.0, 1.0}
    np.testing.assert_allclose(S.mean(0), bm.weights_ @ bm.means_, atol=0.01)
    for k in range(3):
        np.testing.assert_allclose(S[labels == k].mean(0), bm.means_[k], atol=0.03)
    assert not np.all(np.diff(labels) >= 0)


def test_chunked_and_memmap_equal_in_memory(tmp_path):
    X, _ = _binary(500, seed=5)
    kw = dict(random_state=0, max_iter=30, tol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = BernoulliMixture(4, **kw).fit(X)
        b = BernoulliMixture(4, **kw).fit(ChunkedSource(np.split(X, [2, 3, 250, 499])))
        np.save(tmp_path / "X.npy", X)
        c = BernoulliMixture(4, **kw).fit(np.load(tmp_path / "X.npy", mmap_mode="r"))
    for other in (b, c):
        np.testing.assert_allclose(other.means_, a.means_, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(other.weights_, a.weights_, rtol=1e-10)


def test_torch_in_torch_out_and_save_load(tmp_path):
    X, _ = _binary()
    bm = BernoulliMixture(3, random_state=0).fit(torch.as_tensor(X, dtype=torch.float32))
    out = bm.predict_proba(torch.as_tensor(X, dtype=torch.float32))
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    bm.save(tmp_path / "bm.safetensors")
    back = latentspace.load(tmp_path / "bm.safetensors")
    assert isinstance(back, BernoulliMixture)
    np.testing.assert_array_equal(back.score_samples(X), bm.score_samples(X))


def _mnist(shared_data, n_train, n_test):
    d = np.load(shared_data / "mnist.npz")
    xtr = (d["x_train"][:n_train].reshape(-1, 784) >= 128).astype(np.float32)
    xte = (d["x_test"][:n_test].reshape(-1, 784) >= 128).astype(np.float32)
    return xtr, xte


@pytest.mark.slow
def test_binarised_mnist_monotone_and_heldout_improves_from_10_to_50(shared_data):
    xtr, xte = _mnist(shared_data, 60000, 10000)
    scores = {}
    for k in (10, 50):
        bm = BernoulliMixture(k, init_params="k-means++", random_state=0, max_iter=30, tol=1e-4)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            bm.fit(xtr)
        assert np.all(np.diff(bm.lower_bounds_) >= -1e-10 * np.abs(bm.lower_bounds_).max())
        scores[k] = bm.score(xte)
    assert scores[50] > scores[10]


def test_binarised_mnist_subset(shared_data):
    xtr, xte = _mnist(shared_data, 4000, 2000)
    scores = {}
    for k in (10, 50):
        bm = BernoulliMixture(k, init_params="k-means++", random_state=0, max_iter=10, tol=1e-4)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            bm.fit(xtr)
        assert np.all(np.diff(bm.lower_bounds_) >= -1e-10 * np.abs(bm.lower_bounds_).max())
        scores[k] = bm.score(xte)
    assert scores[50] > scores[10]
