"""The fused Lloyd kernel against the array route (numpy argmin and sums) and the fallback."""

import numpy as np
import pytest
from sklearn.cluster import KMeans as SkKMeans

from latentspace import KMeans
from latentspace.cluster import _lloyd

pytestmark = [
    pytest.mark.skipif(not _lloyd.available, reason="numba is not installed"),
    pytest.mark.filterwarnings("ignore::latentspace.exceptions.ConvergenceWarning"),
]


def _reference(X, C, w):
    d2 = (C * C).sum(1)[None, :] - 2.0 * X @ C.T  # the kernel's expansion, ‖x‖² dropped
    labels = d2.argmin(1)
    w = np.ones(len(X)) if w is None else w
    K = len(C)
    counts = np.bincount(labels, weights=w, minlength=K)
    sums = np.stack([np.bincount(labels, weights=w * X[:, j], minlength=K)
                     for j in range(X.shape[1])], axis=1)
    return labels, counts, sums


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("n_threads", [1, 2, 3])
# (2500, 300, 7): wide rows, whose blocks are cut to fit the core's cache (218 rows in
# float64), several per thread; K = 1 never enters the argmin's alternating passes
@pytest.mark.parametrize("n, d, K", [(5000, 7, 5), (3001, 16, 64), (10, 3, 4), (1500, 1, 2),
                                     (2500, 300, 7), (700, 5, 1)])
def test_kernel_matches_array_route(dtype, weighted, n_threads, n, d, K):
    rng = np.random.default_rng(n + d + K)
    X = (rng.standard_normal((n, d)) * 3).astype(dtype)
    C = X[rng.choice(n, K, replace=False)].copy()
    w = rng.uniform(0, 2, n) if weighted else None
    labels, counts, sums = _lloyd.lloyd_stats(X, -2.0 * C, (C * C).sum(1), w, n_threads)
    X64, C64 = X.astype(np.float64), C.astype(np.float64)
    ref_labels, ref_counts, ref_sums = _reference(X64, C64, w)
    # float32 distances may order near-ties differently from the float64 reference
    agree = (labels == ref_labels).mean()
    assert agree == 1.0 if dtype == np.float64 else agree > 0.999
    if dtype == np.float64:
        np.testing.assert_allclose(counts, ref_counts, rtol=1e-12)
        np.testing.assert_allclose(sums, ref_sums, rtol=1e-10, atol=1e-9)
    # the statistics always describe the labels the kernel returned
    own_counts = np.bincount(labels, weights=w, minlength=K)
    np.testing.assert_allclose(counts, own_counts, rtol=1e-12)
    assert _lloyd.lloyd_stats(X, -2.0 * C, (C * C).sum(1), w, n_threads, labels=False)[0] is None


def test_ties_go_to_the_lowest_cluster():
    X = np.zeros((300, 2))
    C = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]])  # every row is equally far from all
    labels, counts, _ = _lloyd.lloyd_stats(X, -2.0 * C, (C * C).sum(1), None, 2)
    assert (labels == 0).all() and counts[0] == 300


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fit_equal_with_and_without_the_kernel(monkeypatch, dtype):
    rng = np.random.default_rng(0)
    X = (rng.standard_normal((4000, 6)) + rng.integers(0, 4, (4000, 1)) * 3).astype(dtype)
    C0 = X[:5].copy()
    fast = KMeans(5, init=C0, max_iter=30, tol=0).fit(X)
    monkeypatch.setattr(_lloyd, "available", False)
    slow = KMeans(5, init=C0, max_iter=30, tol=0).fit(X)
    sk = SkKMeans(5, init=C0, n_init=1, max_iter=30, tol=0, algorithm="lloyd").fit(X)
    rtol = 1e-10 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(fast.cluster_centers_, slow.cluster_centers_, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(fast.cluster_centers_, sk.cluster_centers_, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(fast.inertia_, sk.inertia_, rtol=rtol)
    assert (fast.labels_ == fast.predict(X)).all()


def test_compile_failure_falls_back_with_a_warning(monkeypatch):
    rng = np.random.default_rng(5)
    X = rng.standard_normal((500, 3))
    C0 = X[:4].copy()
    ref = KMeans(4, init=C0, max_iter=10, tol=0).fit(X)

    def broken(*args, **kwargs):
        raise _lloyd.CompileError("no target for this machine")

    monkeypatch.setattr(_lloyd, "lloyd_stats", broken)
    monkeypatch.setattr(_lloyd, "available", True)  # restored after the test
    with pytest.warns(RuntimeWarning, match="compiled K-means step is unavailable"):
        got = KMeans(4, init=C0, max_iter=10, tol=0).fit(X)
    assert _lloyd.available is False
    np.testing.assert_allclose(got.cluster_centers_, ref.cluster_centers_, rtol=1e-10)


def test_fortran_ordered_input():
    rng = np.random.default_rng(6)
    X = rng.standard_normal((2000, 5))
    C0 = X[:3].copy()
    ref = KMeans(3, init=C0, max_iter=10, tol=0).fit(X)
    got = KMeans(3, init=C0, max_iter=10, tol=0).fit(np.asfortranarray(X))
    np.testing.assert_allclose(got.cluster_centers_, ref.cluster_centers_, rtol=1e-12)


def test_blas_limit_is_reentrant_and_restored():
    from threadpoolctl import threadpool_info

    def openblas_threads():
        return [d["num_threads"] for d in threadpool_info() if d["internal_api"] == "openblas"]

    before = openblas_threads()
    with _lloyd.one_blas_thread():
        assert set(openblas_threads()) == {1}
        with _lloyd.one_blas_thread():
            assert set(openblas_threads()) == {1}
        assert set(openblas_threads()) == {1}  # the inner exit leaves the outer limit alone
    assert openblas_threads() == before


_BLAS_SCRIPT = """
import sys, numpy as np
from latentspace.cluster import _blas, _lloyd
rng = np.random.default_rng(0)
X = (rng.standard_normal((4000, 24)) * 3).astype(sys.argv[1])
C = X[:12].astype(np.float64)
labels, counts, sums = _lloyd.lloyd_stats(X, -2.0 * C, (C * C).sum(1), None, 2)
np.save(sys.argv[2], np.concatenate([labels.astype(np.float64), counts, sums.ravel()]))
print(_blas.backend)
"""


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_kernel_blas_backends_agree(tmp_path, dtype):
    """The kernel's product through torch's MKL (where torch has it) and through scipy's BLAS
    give the same step: the labels (no near-ties in these data) and the sums to rounding."""
    import os
    import subprocess
    import sys

    out = {}
    for choice in ("auto", "scipy"):
        env = dict(os.environ)
        env.pop("LATENTSPACE_KERNEL_BLAS", None)
        if choice == "scipy":
            env["LATENTSPACE_KERNEL_BLAS"] = "scipy"
        path = tmp_path / f"{choice}.npy"
        run = subprocess.run([sys.executable, "-c", _BLAS_SCRIPT, dtype, str(path)], env=env,
                             capture_output=True, text=True, check=True)
        out[choice] = (run.stdout.split()[-1], np.load(path))
    assert out["scipy"][0] == "scipy"
    a, b = out["auto"][1], out["scipy"][1]
    n = 4000
    np.testing.assert_array_equal(a[:n], b[:n])
    # sums of at most 4000 rows of |x| ≲ 15: float32 blocks carry ~1e-7 relative per term
    tol = 1e-12 if dtype == "float64" else 1e-3
    np.testing.assert_allclose(a[n:], b[n:], rtol=tol, atol=tol)
