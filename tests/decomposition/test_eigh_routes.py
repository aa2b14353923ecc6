"""The three CPU routes of the covariance eigensolver (scipy's subset solver, torch's full
one after an MKL product, numpy's after numpy's product) against each other, and PCA through
each covariance product against scikit-learn.

Both are backward stable: each eigenvalue is exact for a matrix within about d·ε·λ_max, so
they agree to a few hundred ε of the largest eigenvalue; the eigenvectors of well-separated
eigenvalues agree to ε·λ_max / gap, up to sign.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from latentspace import PCA
from latentspace._math import eigh_desc
from latentspace.decomposition import _moments

EPS = np.finfo(np.float64).eps


def _matrix(d: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    values = 1.0 / (1.0 + np.arange(d))  # gaps of at least 1/(d+1)² between neighbours
    return (Q * values) @ Q.T


@pytest.mark.parametrize("pool", ["torch", "numpy"])
@pytest.mark.parametrize("upper_only", [False, True])
@pytest.mark.parametrize("k", [5, None])
def test_every_route_gives_scipys_eigenpairs(upper_only, k, pool):
    d = 60
    C = _matrix(d)
    if upper_only:  # the other triangle holds garbage that neither route may read
        C = np.triu(C) + np.tril(np.full((d, d), 7.0), -1)
    T = torch.from_numpy(C)
    w1, v1 = eigh_desc(T, k, upper_only=upper_only)
    w2, v2 = eigh_desc(T, k, upper_only=upper_only, pool=pool)
    m = d if k is None else k
    assert w1.shape == w2.shape == (m,) and v1.shape == v2.shape == (d, m)
    np.testing.assert_allclose(w1.numpy(), w2.numpy(), rtol=0, atol=200 * d * EPS)
    gap = 1.0 / (d + 1) ** 2
    dots = np.abs(np.sum(v1.numpy() * v2.numpy(), axis=0))
    np.testing.assert_allclose(dots, 1.0, atol=200 * d * EPS / gap)


POOLS = ["mkl", "mkl1", "scipy", "numpy"]


def _force(monkeypatch, pool):
    if pool.startswith("mkl") and not torch.backends.mkl.is_available():
        pytest.skip("torch has no MKL here")
    monkeypatch.setattr(_moments, "product_pool", lambda n, d: pool)


@pytest.mark.parametrize("pool", POOLS)
def test_pca_through_every_product_matches_scikit_learn(monkeypatch, pool):
    from sklearn.decomposition import PCA as SkPCA

    _force(monkeypatch, pool)
    n, d = 20000, 64
    rng = np.random.default_rng(3)
    X = rng.standard_normal((n, d)) / np.sqrt(1.0 + np.arange(d)) + 1.0
    ours = PCA(10, svd_solver="covariance_eigh").fit(X)
    sk = SkPCA(10, svd_solver="covariance_eigh").fit(X)
    # both from a d × d covariance of entries ~1 summed over n rows: n·ε relative at most
    np.testing.assert_allclose(ours.explained_variance_, sk.explained_variance_,
                               rtol=n * EPS)
    dots = np.abs(np.sum(ours.components_ * sk.components_, axis=1))
    np.testing.assert_allclose(dots, 1.0, atol=1e-8)
    for data in (X, X - X.mean(0)):  # the shifted and the raw pass
        _, scatter = _moments.moments(torch.from_numpy(data), 1.0)
        S = scatter.numpy()  # exactly symmetric on every route (merges and solvers rely on it)
        assert np.array_equal(S, S.T)
        np.testing.assert_allclose(S / (n - 1), np.cov(data, rowvar=False), rtol=0,
                                   atol=n * EPS * np.abs(data).max() ** 2)


@pytest.mark.parametrize("pool", POOLS)
@pytest.mark.parametrize("mean", [0.0, 1.0], ids=["raw", "shifted"])
def test_float32_pca_through_every_product_is_close_to_float64(monkeypatch, pool, mean):
    """Float32 products summed in float64 every block of at most 65536 rows: each block's
    sums carry a rounding error of about √rows·ε₃₂ of their size (a random walk), so the
    eigenvalues stay within a small multiple of √65536·ε₃₂·λ₁ of float64's. A mean of 1
    against variances down to 1/64 sends float32 data to the shifted pass, a mean of 0 to
    the raw one."""
    from sklearn.decomposition import PCA as SkPCA

    _force(monkeypatch, pool)
    n, d = 30000, 64
    rng = np.random.default_rng(4)
    X = rng.standard_normal((n, d)) / np.sqrt(1.0 + np.arange(d)) + mean
    ref = SkPCA(10, svd_solver="covariance_eigh").fit(X).explained_variance_
    ours = PCA(10, svd_solver="covariance_eigh").fit(X.astype(np.float32)).explained_variance_
    eps32 = np.finfo(np.float32).eps
    np.testing.assert_allclose(ours, ref, rtol=0, atol=20 * np.sqrt(65536) * eps32 * ref[0])


def test_without_mkl_on_intel_every_product_is_numpys(monkeypatch):
    monkeypatch.setattr(_moments, "_MKL", False)
    for n, d in [(100, 4), (10**6, 16), (10**5, 64), (10**5, 1024)]:
        assert _moments.product_pool(n, d) == "numpy"
        assert _moments.eigh_pool(n, d) == "numpy"


@pytest.mark.skipif(not torch.backends.mkl.is_available(), reason="torch has no MKL here")
def test_on_intel_the_pools_follow_the_measured_thresholds(monkeypatch):
    monkeypatch.setattr(_moments, "_MKL", True)
    assert _moments.product_pool(10**6, 16) == "mkl" and _moments.eigh_pool(10**6, 16) == "torch"
    assert _moments.product_pool(10**4, 16) == "mkl1" and _moments.eigh_pool(10**4, 16) == "scipy"
    assert _moments.product_pool(10**4, 64) == "scipy"
    assert _moments.product_pool(10**6, 256) == "scipy"


@pytest.mark.parametrize("intel", [False, True], ids=["scipy-gesdd", "torch-svd"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_wide_full_svd_through_either_library_matches_scikit_learn(monkeypatch, intel, dtype):
    """Wide data take scipy's SVD outside Intel processors and torch's on them. Both are
    backward stable: the singular values are exact for X + E with ‖E‖₂ within a small
    multiple of d·ε·σ₁ (Weyl), so each eigenvalue σ²/(n − 1) moves by at most about
    2·d·ε·λ₁; two such results (ours, scikit-learn's float64 one) differ by twice that."""
    from sklearn.decomposition import PCA as SkPCA

    from latentspace.decomposition import _solvers

    monkeypatch.setattr(_solvers, "intel_cpu", lambda: intel)
    n, d = 120, 600
    rng = np.random.default_rng(5)
    scale = np.ones(d)
    scale[:5] = [12.0, 9.0, 6.0, 4.0, 2.5]  # five leading directions well apart
    X = (rng.standard_normal((n, d)) * scale).astype(dtype)
    ours = PCA(5, svd_solver="full").fit(X)
    sk = SkPCA(5, svd_solver="full").fit(X.astype(np.float64))
    eps = np.finfo(dtype).eps
    lam1 = sk.explained_variance_[0]
    np.testing.assert_allclose(ours.explained_variance_, sk.explained_variance_, rtol=0,
                               atol=8 * d * eps * lam1)
    # eigenvectors move by about ‖E‖ / gap: gaps here are above a tenth of λ₁
    dots = np.abs(np.sum(ours.components_ * sk.components_, axis=1))
    np.testing.assert_allclose(dots, 1.0, atol=8 * d * eps * 10)


@pytest.mark.parametrize("mean", [0.0, 1e3], ids=["raw", "shifted"])
def test_row_blocks_dealt_to_threads_give_the_scatter(monkeypatch, mean):
    """numpy's pool deals float64 row blocks to threads (each on one BLAS thread) and adds
    the partial sums in thread order: the scatter is np.cov's to n·ε of the squares
    (different summation orders), exactly symmetric, and the same on every call whatever
    the threads' timing. A mean of 10³ against unit spread sends the rows to the shifted
    pass (cancellation above 10⁴), a mean of 0 to the raw one."""
    monkeypatch.setattr(_moments, "product_pool", lambda n, d: "numpy")
    monkeypatch.setattr(_moments, "_split_threads", lambda n, d, dtype: 3)
    n, d = 10007, 40  # blocks of unequal size, the last one short
    rng = np.random.default_rng(7)
    X = rng.standard_normal((n, d)) * np.linspace(0.5, 2.0, d) + mean
    first = [t.numpy() for t in _moments.moments(torch.from_numpy(X), 1.0)]
    again = [t.numpy() for t in _moments.moments(torch.from_numpy(X), 1.0)]
    mu, S = first
    assert np.array_equal(S, S.T)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    np.testing.assert_allclose(mu, X.mean(0), rtol=0, atol=n * EPS * np.abs(X).max())
    centred_max = np.abs(X - X.mean(0)).max()
    np.testing.assert_allclose(S / (n - 1), np.cov(X, rowvar=False), rtol=0,
                               atol=n * EPS * centred_max**2)
