"""KMeans against scikit-learn, closed forms and the invariants of Lloyd's algorithm."""

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist
from sklearn.cluster import KMeans as SKKMeans
from sklearn.datasets import load_digits, make_blobs

import latentspace
from latentspace.cluster import KMeans, kmeans_plusplus
from latentspace.data import ChunkedSource
from latentspace.exceptions import ConvergenceWarning


def _blobs(n=300, d=4, k=5, seed=0):
    X, y = make_blobs(n_samples=n, n_features=d, centers=k, cluster_std=1.5, random_state=seed)
    return X, y


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fn(*args, **kwargs)


# ----------------------------------------------------------------------------- oracle
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("max_iter", [1, 2, 7, 30])
@pytest.mark.parametrize("weighted", [False, True])
def test_same_init_same_iterations_as_sklearn(dtype, max_iter, weighted):
    X, _ = _blobs(400, 6, 7, seed=1)
    X = X.astype(dtype)
    rng = np.random.RandomState(0)
    C0 = X[rng.choice(len(X), 7, replace=False)]
    w = rng.uniform(0.5, 2.0, len(X)) if weighted else None
    sk = SKKMeans(7, init=C0, n_init=1, max_iter=max_iter, tol=0, algorithm="lloyd")
    sk.fit(X, sample_weight=w)
    ours = _quiet(KMeans(7, init=C0, max_iter=max_iter, tol=0).fit, X, sample_weight=w)
    rtol = 1e-6 if dtype == np.float32 else 1e-10
    assert ours.n_iter_ == sk.n_iter_
    assert ours.inertia_ == pytest.approx(sk.inertia_, rel=rtol)
    np.testing.assert_allclose(ours.cluster_centers_, sk.cluster_centers_, rtol=rtol, atol=rtol)
    np.testing.assert_array_equal(ours.labels_, sk.labels_)
    assert ours.cluster_centers_.dtype == dtype


def test_kmeans_plusplus_matches_sklearn_seeding():
    from sklearn.cluster import kmeans_plusplus as sk_kpp

    X, _ = _blobs(500, 3, 6, seed=2)
    C_sk, idx_sk = sk_kpp(X, 6, random_state=np.random.RandomState(5))
    C, idx = kmeans_plusplus(torch.as_tensor(X), 6, np.random.RandomState(5))
    np.testing.assert_array_equal(idx, idx_sk)
    np.testing.assert_allclose(C.numpy(), C_sk)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_kmeans_plusplus_over_many_row_blocks_matches_sklearn_seeding(weighted, dtype):
    # more rows than one block of the compiled pass (4096): the draw walks the blocks'
    # masses, then one block's rows, where scikit-learn forms one cumulative sum
    from sklearn.cluster import kmeans_plusplus as sk_kpp

    from latentspace.data import InMemorySource

    X, _ = _blobs(30001, 5, 12, seed=4)
    X = X.astype(dtype)
    w = np.random.default_rng(3).uniform(0.0, 2.0, len(X)) if weighted else None
    if weighted:
        w[:5000] = 0.0  # whole blocks without mass are never drawn
    C_sk, idx_sk = sk_kpp(X, 12, sample_weight=w, random_state=np.random.RandomState(8))
    source = InMemorySource(torch.as_tensor(X),
                            None if w is None else torch.as_tensor(w))
    C, idx = kmeans_plusplus(source, 12, np.random.RandomState(8))
    np.testing.assert_array_equal(idx, idx_sk)
    np.testing.assert_array_equal(C.numpy(), X[idx].astype(np.float64))
    if weighted:
        assert (idx >= 5000).all()


def _label_matched_accuracy(labels, y):
    k = max(labels.max(), y.max()) + 1
    C = np.zeros((k, k))
    np.add.at(C, (labels, y), 1)
    r, c = linear_sum_assignment(-C)
    return C[r, c].sum() / len(y)


def test_digits_kmeanspp_one_seed():
    X, y = load_digits(return_X_y=True)
    km = KMeans(10, n_init=10, random_state=0).fit(X)
    sk = SKKMeans(10, n_init=10, random_state=0).fit(X)
    assert km.inertia_ <= sk.inertia_ * (1 + 1e-9)
    assert _label_matched_accuracy(km.labels_, y) >= 0.78


@pytest.mark.slow
def test_digits_kmeanspp_ninit10_no_worse_than_sklearn():
    X, y = load_digits(return_X_y=True)
    ours, theirs, accs = [], [], []
    for seed in range(5):
        km = KMeans(10, n_init=10, random_state=seed).fit(X)
        sk = SKKMeans(10, n_init=10, random_state=seed).fit(X)
        ours.append(km.inertia_)
        theirs.append(sk.inertia_)
        accs.append(_label_matched_accuracy(km.labels_, y))
    assert np.median(ours) <= np.median(theirs) * (1 + 1e-9)
    assert np.median(accs) >= 0.78


# ----------------------------------------------------------------------------- invariants
@settings(max_examples=30, deadline=None)
@given(
    n_distinct=st.integers(1, 6),
    repeats=st.integers(1, 5),
    k=st.integers(1, 6),
    seed=st.integers(0, 10_000),
    init=st.sampled_from(["k-means++", "random"]),
)
def test_labels_equal_predict_under_duplicates(n_distinct, repeats, k, seed, init):
    rng = np.random.RandomState(seed)
    base = rng.randint(-3, 4, size=(n_distinct, 2)).astype(float)
    X = np.repeat(base, repeats, axis=0)
    rng.shuffle(X)
    if len(X) < k:
        with pytest.raises(ValueError, match="n_clusters"):
            KMeans(k).fit(X)
        return
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        km = KMeans(k, init=init, n_init=2, random_state=seed).fit(X)
    np.testing.assert_array_equal(km.labels_, km.predict(X))
    assert np.all(np.isfinite(km.cluster_centers_))
    n_unique = len(np.unique(X, axis=0))
    if n_unique < k:
        assert any("distinct clusters" in str(r.message) for r in rec)
    # the objective never rises: −inertia trace is non-decreasing
    lb = km.lower_bounds_
    assert np.all(np.diff(lb) >= -1e-9 * max(1.0, abs(lb[0])))
    assert km.inertia_ == pytest.approx(-km.score(X), rel=1e-9, abs=1e-12)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), k=st.integers(2, 8), d=st.integers(1, 5))
def test_inertia_trace_never_rises(seed, k, d):
    rng = np.random.RandomState(seed)
    X = rng.randn(60, d) * rng.uniform(0.1, 10, d) + rng.randint(-5, 5, d)
    km = _quiet(KMeans(k, init="random", n_init=1, tol=0, random_state=seed).fit, X)
    lb = km.lower_bounds_
    assert np.all(np.diff(lb) >= -1e-9 * abs(lb[0]))
    assert -lb[-1] == pytest.approx(km.inertia_, rel=1e-9)


def test_empty_cluster_is_relocated_and_labels_agree():
    X, _ = _blobs(200, 2, 3, seed=4)
    C0 = np.vstack([X[:2], [[1e3, 1e3]]])  # the far centre gets no points on the first E-step
    km = _quiet(KMeans(3, init=C0, max_iter=50).fit, X)
    assert np.all(np.bincount(km.labels_, minlength=3) > 0)
    np.testing.assert_array_equal(km.labels_, km.predict(X))
    assert np.all(np.abs(km.cluster_centers_) < 100)


def test_transform_predict_score_inverse_transform():
    X, _ = _blobs()
    km = KMeans(5, random_state=0).fit(X)
    D = km.transform(X)
    np.testing.assert_allclose(D, cdist(X, km.cluster_centers_), rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(km.predict(X), D.argmin(1))
    assert km.score(X) == pytest.approx(-(D.min(1) ** 2).sum(), rel=1e-9)
    np.testing.assert_array_equal(km.inverse_transform(km.predict(X)), km.cluster_centers_[km.labels_])
    np.testing.assert_array_equal(km.inverse_transform(D), km.cluster_centers_[km.labels_])
    np.testing.assert_array_equal(KMeans(5, random_state=0).fit_predict(X), km.labels_)
    with pytest.raises(ValueError, match="integers"):
        km.inverse_transform(np.array([0, 7]))
    with pytest.raises(ValueError, match="columns"):
        km.inverse_transform(np.zeros((2, 3)))


def test_float32_stays_float32_and_torch_in_torch_out():
    X, _ = _blobs()
    X32 = X.astype(np.float32)
    km = KMeans(5, random_state=0).fit(X32)
    assert km.transform(X32).dtype == np.float32
    T = torch.as_tensor(X32)
    out = km.transform(T)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    assert isinstance(km.predict(T), torch.Tensor)


def test_sample_weight_integer_equals_repetition():
    X, _ = _blobs(120, 2, 3, seed=3)
    w = np.random.RandomState(0).randint(1, 4, len(X))
    C0 = X[:3]
    a = _quiet(KMeans(3, init=C0, tol=0, max_iter=20).fit, X, sample_weight=w)
    b = _quiet(KMeans(3, init=C0, tol=0, max_iter=20).fit, np.repeat(X, w, axis=0))
    np.testing.assert_allclose(a.cluster_centers_, b.cluster_centers_, rtol=1e-10)
    assert a.inertia_ == pytest.approx(b.inertia_, rel=1e-10)


def test_partial_fit_follows_the_online_mean_update():
    X, _ = _blobs(300, 3, 4, seed=5)
    C0 = X[:4].copy()
    km = KMeans(4, init=C0)
    km.partial_fit(X[:100])
    # oracle: hand-written MacQueen update from C0 on the first batch
    lab = cdist(X[:100], C0, "sqeuclidean").argmin(1)
    expected = C0.copy()
    for k in range(4):
        if np.any(lab == k):
            expected[k] = X[:100][lab == k].mean(0)
    np.testing.assert_allclose(km.cluster_centers_, expected, rtol=1e-12)
    counts = np.bincount(lab, minlength=4).astype(float)
    lab2 = cdist(X[100:200], expected, "sqeuclidean").argmin(1)
    km.partial_fit(X[100:200])
    for k in range(4):
        m = lab2 == k
        if m.any():
            expected[k] = (expected[k] * counts[k] + X[100:200][m].sum(0)) / (counts[k] + m.sum())
    np.testing.assert_allclose(km.cluster_centers_, expected, rtol=1e-12)
    assert km.n_steps_ == 2
    np.testing.assert_array_equal(km.labels_, km.predict(X[100:200]))
    with pytest.raises(ValueError, match="at least n_clusters"):
        KMeans(10).partial_fit(X[:5])


def test_partial_fit_epochs_approach_full_fit():
    X, _ = _blobs(1000, 2, 4, seed=6)
    full = KMeans(4, random_state=0, n_init=3).fit(X)
    mb = KMeans(4, random_state=0)
    for _ in range(3):
        for batch in np.array_split(np.random.RandomState(0).permutation(X), 10):
            mb.partial_fit(batch)
    assert -mb.score(X) <= 1.1 * full.inertia_


def test_chunked_and_memmap_fits_equal_in_memory(tmp_path):
    X, _ = _blobs(500, 4, 6, seed=7)
    a = KMeans(6, random_state=0, n_init=3).fit(X)
    chunks = np.split(X, [1, 50, 51, 333])
    b = KMeans(6, random_state=0, n_init=3).fit(ChunkedSource(chunks))
    np.save(tmp_path / "X.npy", X)
    c = KMeans(6, random_state=0, n_init=3).fit(np.load(tmp_path / "X.npy", mmap_mode="r"))
    for other in (b, c):
        np.testing.assert_allclose(other.cluster_centers_, a.cluster_centers_, rtol=1e-10, atol=1e-10)
        assert other.inertia_ == pytest.approx(a.inertia_, rel=1e-10)
        np.testing.assert_array_equal(other.labels_, a.labels_)


def test_weighted_chunks_equal_weighted_in_memory():
    X, _ = _blobs(300, 3, 4, seed=8)
    w = np.random.RandomState(1).uniform(0.1, 3.0, len(X))
    a = KMeans(4, random_state=0, n_init=2).fit(X, sample_weight=w)
    parts = [(X[i:j], w[i:j]) for i, j in [(0, 7), (7, 150), (150, 300)]]
    b = KMeans(4, random_state=0, n_init=2).fit(ChunkedSource(parts))
    np.testing.assert_allclose(b.cluster_centers_, a.cluster_centers_, rtol=1e-10, atol=1e-10)
    assert b.inertia_ == pytest.approx(a.inertia_, rel=1e-10)
    with pytest.raises(ValueError, match="chunk"):
        KMeans(4).fit(ChunkedSource([X]), sample_weight=w)


def test_save_load_round_trip(tmp_path):
    X, _ = _blobs()
    km = KMeans(5, random_state=0).fit(X)
    km.save(tmp_path / "km.safetensors")
    back = latentspace.load(tmp_path / "km.safetensors")
    assert isinstance(back, KMeans)
    np.testing.assert_array_equal(back.cluster_centers_, km.cluster_centers_)
    np.testing.assert_array_equal(back.predict(X), km.labels_)
    assert back.inertia_ == km.inertia_ and back.get_params() == km.get_params()
