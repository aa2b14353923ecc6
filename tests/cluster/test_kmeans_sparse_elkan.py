"""KMeans on scipy.sparse input, Elkan's algorithm, callable init, the n_init warning and copy_x.

Oracles: the dense fit of the same data (sparse rows are only a storage of the same numbers),
Lloyd's algorithm from the same initial centres (Elkan's bounds only skip distances that
cannot change a label), scikit-learn's KMeans from the same explicit initial centres.
"""

import json
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.cluster import KMeans as SKKMeans
from sklearn.datasets import make_blobs

from latentspace import KMeans
from latentspace._validation import ParameterError
from latentspace.cluster import _elkan

RTOL = 1e-10  # float64 sums of a few hundred terms, summed in different orders


def _data(n=600, d=8, K=5, seed=0):
    X, _ = make_blobs(n, d, centers=K, random_state=seed)
    X[X < 0.5] = 0.0  # about half the entries zero: a real sparse pattern
    return X


def _weights(n, seed=1):
    return np.random.default_rng(seed).uniform(0.5, 2.0, n)


SPARSE = [sp.csr_matrix, sp.csc_matrix, sp.csr_array]


@pytest.mark.parametrize("to_sparse", SPARSE, ids=["csr", "csc", "csr_array"])
@pytest.mark.parametrize("weighted", [False, True])
def test_sparse_fit_equals_dense_fit(to_sparse, weighted):
    X = _data()
    w = _weights(len(X)) if weighted else None
    dense = KMeans(5, random_state=0).fit(X, sample_weight=w)
    sparse = KMeans(5, random_state=0).fit(to_sparse(X), sample_weight=w)
    scale = np.abs(X).max()
    np.testing.assert_allclose(sparse.cluster_centers_, dense.cluster_centers_,
                               rtol=RTOL, atol=RTOL * scale)
    np.testing.assert_array_equal(sparse.labels_, dense.labels_)
    assert sparse.inertia_ == pytest.approx(dense.inertia_, rel=RTOL)
    Q = _data(n=50, seed=3)
    Qs = to_sparse(Q)
    np.testing.assert_array_equal(sparse.predict(Qs), dense.predict(Q))
    np.testing.assert_allclose(sparse.transform(Qs), dense.transform(Q), rtol=RTOL,
                               atol=RTOL * scale)
    wq = _weights(50, seed=4) if weighted else None
    assert sparse.score(Qs, sample_weight=wq) == pytest.approx(
        dense.score(Q, sample_weight=wq), rel=RTOL)
    # an independent oracle of the score: the inertia of the predicted labels, from the centres
    C = dense.cluster_centers_
    d2 = ((Q - C[dense.predict(Q)]) ** 2).sum(1)
    expected = -(d2.sum() if wq is None else wq @ d2)
    assert sparse.score(Qs, sample_weight=wq) == pytest.approx(expected, rel=RTOL)


@pytest.mark.parametrize("weighted", [False, True])
def test_sparse_partial_fit_equals_dense_partial_fit(weighted):
    X = _data(n=900)
    w = _weights(len(X)) if weighted else None
    dense, sparse = KMeans(5, random_state=0), KMeans(5, random_state=0)
    for i in range(0, len(X), 300):
        wb = None if w is None else w[i:i + 300]
        dense.partial_fit(X[i:i + 300], sample_weight=wb)
        sparse.partial_fit(sp.csr_matrix(X[i:i + 300]), sample_weight=wb)
    np.testing.assert_allclose(sparse.cluster_centers_, dense.cluster_centers_, rtol=RTOL,
                               atol=RTOL * np.abs(X).max())
    np.testing.assert_allclose(sparse.counts_, dense.counts_, rtol=RTOL)
    np.testing.assert_array_equal(sparse.labels_, dense.labels_)
    assert sparse.inertia_ == pytest.approx(dense.inertia_, rel=RTOL)


@pytest.mark.skipif(not _elkan.available, reason="Elkan's kernel needs numba")
@pytest.mark.parametrize("weighted", [False, True])
def test_elkan_equals_lloyd_from_the_same_init(weighted):
    X, _ = make_blobs(2000, 6, centers=7, cluster_std=1.5, random_state=2)
    w = _weights(len(X)) if weighted else None
    init = X[np.random.default_rng(0).choice(len(X), 7, replace=False)]
    lloyd = KMeans(7, init=init, n_init=1).fit(X, sample_weight=w)
    elkan = KMeans(7, init=init, n_init=1, algorithm="elkan").fit(X, sample_weight=w)
    np.testing.assert_array_equal(elkan.labels_, lloyd.labels_)
    assert elkan.n_iter_ == lloyd.n_iter_
    np.testing.assert_allclose(elkan.cluster_centers_, lloyd.cluster_centers_, rtol=RTOL,
                               atol=RTOL * np.abs(X).max())
    assert elkan.inertia_ == pytest.approx(lloyd.inertia_, rel=RTOL)


@pytest.mark.skipif(not _elkan.available, reason="Elkan's kernel needs numba")
def test_elkan_matches_scikit_learn_elkan():
    X, _ = make_blobs(3000, 10, centers=8, random_state=5)
    init = X[np.random.default_rng(1).choice(len(X), 8, replace=False)]
    ours = KMeans(8, init=init, n_init=1, algorithm="elkan").fit(X)
    ref = SKKMeans(8, init=init, n_init=1, algorithm="elkan").fit(X)
    # the same fixed point reached from the same start: the same partition, so the inertia
    # agrees to the rounding of a sum of 3000 terms
    assert ours.inertia_ == pytest.approx(ref.inertia_, rel=1e-10)
    np.testing.assert_array_equal(ours.labels_, ref.labels_)
    np.testing.assert_allclose(ours.cluster_centers_, ref.cluster_centers_, rtol=1e-10,
                               atol=1e-10 * np.abs(X).max())


def test_elkan_on_sparse_falls_back_to_lloyd():
    X = sp.csr_matrix(_data())
    init = X[:5].toarray()
    lloyd = KMeans(5, init=init).fit(X)
    elkan = KMeans(5, init=init, algorithm="elkan").fit(X)
    np.testing.assert_array_equal(elkan.labels_, lloyd.labels_)
    np.testing.assert_array_equal(elkan.cluster_centers_, lloyd.cluster_centers_)
    assert elkan.inertia_ == lloyd.inertia_


def test_elkan_with_one_cluster_warns_and_runs_lloyd():
    X = _data()
    with pytest.warns(RuntimeWarning, match="single cluster"):
        km = KMeans(1, algorithm="elkan").fit(X)
    np.testing.assert_allclose(km.cluster_centers_[0], X.mean(0), rtol=RTOL, atol=RTOL)


def test_invalid_algorithm_names_the_choices():
    with pytest.raises(ParameterError, match=r"algorithm.*'elkan'.*'lloyd'"):
        KMeans(3, algorithm="full").fit(_data())


class _Recorder:
    def __init__(self, centers):
        self.centers, self.calls = centers, []

    def __call__(self, X, n_clusters, random_state):
        self.calls.append((X, n_clusters, random_state))
        return self.centers


@pytest.mark.parametrize("sparse_input", [False, True])
def test_callable_init_is_called_and_used(sparse_input):
    X = _data()
    C = X[[0, 100, 200, 300, 400]] + 0.25
    init = _Recorder(C)
    Xin = sp.csr_matrix(X) if sparse_input else X
    km = KMeans(5, init=init, max_iter=0, random_state=0).fit(Xin)
    assert len(init.calls) == 1
    data, k, rng = init.calls[0]
    assert k == 5 and isinstance(rng, np.random.RandomState)
    got = data.toarray() if sp.issparse(data) else np.asarray(data)
    np.testing.assert_array_equal(got, X)
    np.testing.assert_allclose(km.cluster_centers_, C, rtol=1e-15, atol=1e-15 * np.abs(C).max())
    # and a full fit from it equals the fit from the same array
    full = KMeans(5, init=_Recorder(C), random_state=0).fit(Xin)
    ref = KMeans(5, init=C).fit(Xin)
    np.testing.assert_array_equal(full.labels_, ref.labels_)


@pytest.mark.parametrize("bad, match", [
    (np.zeros((4, 8)), "number of clusters"),
    (np.zeros((5, 7)), "number of features"),
    (np.full((5, 8), np.nan), "NaN"),
])
def test_callable_init_bad_result(bad, match):
    with pytest.raises(ValueError, match=match):
        KMeans(5, init=lambda X, k, random_state: bad).fit(_data())


def test_n_init_warning_with_an_array_init():
    X = _data()
    with pytest.warns(RuntimeWarning, match="performing only one init in KMeans instead of "
                                            "n_init=3"):
        KMeans(5, init=X[:5], n_init=3).fit(X)
    for n_init in (1, "auto"):
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            KMeans(5, init=X[:5], n_init=n_init).fit(X)


@pytest.mark.parametrize("copy_x", [True, False])
@pytest.mark.parametrize("kind", ["dense", "sparse", "far"])
def test_copy_x_never_modifies_x(copy_x, kind):
    X = _data()
    if kind == "far":  # data the fit centres in its working frame
        X = X + 1e9
    Xin = sp.csr_matrix(X) if kind == "sparse" else X
    before = Xin.copy()
    KMeans(5, copy_x=copy_x, random_state=0).fit(Xin)
    if kind == "sparse":
        for a in ("data", "indices", "indptr"):
            assert getattr(Xin, a).tobytes() == getattr(before, a).tobytes()
    else:
        assert Xin.tobytes() == before.tobytes()


def test_copy_x_must_be_a_bool():
    with pytest.raises(ValueError, match="copy_x"):
        KMeans(2, copy_x="yes").fit(_data())


_CACHE_SCRIPT = textwrap.dedent("""
    import json, time
    import numpy as np
    from latentspace import KMeans
    from latentspace.cluster import _lloyd
    X = np.random.default_rng(0).normal(size=(10000, 16))
    t = time.perf_counter()
    KMeans(8, random_state=0).fit(X)
    dt = time.perf_counter() - t
    st = _lloyd._lloyd_kernel.stats
    print(json.dumps({"time": dt, "hits": sum(st.cache_hits.values()),
                      "misses": sum(st.cache_misses.values())}))
""")


@pytest.mark.slow
@pytest.mark.skipif(not _elkan.available, reason="the compiled kernels need numba")
def test_numba_kernels_load_from_the_on_disk_cache(tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    runs = []
    for _ in range(2):
        out = subprocess.run([sys.executable, "-c", _CACHE_SCRIPT], env=env, check=True,
                             capture_output=True, text=True, timeout=600)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    first, second = runs
    print(f"first fit: {first['time']:.2f} s (compiling), {second['time']:.2f} s (cached)")
    assert first["misses"] >= 1 and first["hits"] == 0
    assert second["hits"] >= 1 and second["misses"] == 0
    assert any((tmp_path / "cache").rglob("*.nbi"))


@pytest.mark.skipif(not _elkan.available, reason="the compiled kernels need numba")
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("weighted", [False, True])
def test_compiled_sparse_stats_against_numpy(dtype, weighted):
    from latentspace.cluster._sparse import compiled_sparse_stats

    rng = np.random.default_rng(7)
    X = sp.random(3000, 40, density=0.1, format="csr", random_state=rng, dtype=dtype)
    C = rng.standard_normal((6, 40)) * 0.1
    w = rng.uniform(0.0, 2.0, 3000) if weighted else None
    counts, sums = compiled_sparse_stats(X, C, w, 2)
    Xd = X.toarray().astype(np.float64)
    labels = ((Xd[:, None, :] - C[None]) ** 2).sum(2).argmin(1)
    ww = np.ones(3000) if w is None else w
    np.testing.assert_allclose(counts, np.bincount(labels, weights=ww, minlength=6), rtol=1e-12)
    expected = np.stack([(ww[labels == k, None] * Xd[labels == k]).sum(0) for k in range(6)])
    np.testing.assert_allclose(sums, expected, rtol=1e-12, atol=1e-12)


def test_sparse_fit_without_the_compiled_kernels(monkeypatch):
    from latentspace.cluster import _lloyd

    X = _data()
    ref = KMeans(5, random_state=0).fit(sp.csr_matrix(X))
    monkeypatch.setattr(_lloyd, "available", False)
    km = KMeans(5, random_state=0).fit(sp.csr_matrix(X))
    np.testing.assert_array_equal(km.labels_, ref.labels_)
    np.testing.assert_allclose(km.cluster_centers_, ref.cluster_centers_, rtol=RTOL,
                               atol=RTOL * np.abs(X).max())
