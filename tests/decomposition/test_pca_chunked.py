"""PCA on data read in chunks (a ChunkedSource or a memory-mapped file): one pass of mergeable
moments per chunk gives the in-memory fit."""

import numpy as np
import pytest

from latentspace.data import ChunkedSource
from latentspace.decomposition import PCA


@pytest.fixture(scope="module")
def X():
    rng = np.random.default_rng(3)
    # correlated columns with a mean far from zero: the merge must not lose the small variances
    return rng.standard_normal((5003, 12)) @ rng.standard_normal((12, 12)) + 50.0


def _agree(a, b, tol):
    """Same fit to ``tol`` relative: spectrum, mean, and components up to sign (fixed by
    the library's sign rule, so compared directly)."""
    ev = a.explained_variance_
    np.testing.assert_allclose(b.explained_variance_, ev, rtol=tol, atol=tol * ev[0])
    np.testing.assert_allclose(b.mean_, a.mean_, rtol=tol, atol=tol * np.abs(a.mean_).max())
    np.testing.assert_allclose(b.components_, a.components_, rtol=0, atol=1e-8)
    np.testing.assert_allclose(b.noise_variance_, a.noise_variance_, rtol=tol, atol=tol * ev[0])
    assert b.n_samples_seen_ == a.n_samples_seen_ and b.n_features_in_ == a.n_features_in_


@pytest.mark.parametrize("rows", [1, 250, 4096, 10_000])
def test_chunked_source_equals_the_in_memory_fit(X, rows):
    full = PCA(5, svd_solver="covariance_eigh").fit(X)
    chunked = PCA(5).fit(ChunkedSource.from_array(X, rows))
    assert chunked.fit_svd_solver_ == "covariance_eigh"
    # two float64 reductions in different orders: each moment is a sum of n terms whose
    # rounding is ~ n·eps relative (5e3 · 2.2e-16 ≈ 1e-12), kept well below 1e-10
    _agree(full, chunked, 1e-10)
    np.testing.assert_allclose(chunked.transform(X[:50]), full.transform(X[:50]),
                               rtol=1e-10, atol=1e-9)


def test_memmap_file_is_read_in_chunks_and_equals_the_in_memory_fit(X, tmp_path):
    path = tmp_path / "X.npy"
    mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.float64, shape=X.shape)
    mm[:] = X
    mm.flush()
    ro = np.load(path, mmap_mode="r")
    assert isinstance(ro, np.memmap)
    _agree(PCA(0.9, svd_solver="covariance_eigh").fit(X), PCA(0.9).fit(ro), 1e-10)


def test_float32_chunks_agree_to_float32_precision(X):
    X32 = X.astype(np.float32)
    full = PCA(4, svd_solver="covariance_eigh").fit(X32)
    chunked = PCA(4).fit(ChunkedSource([X32[:2000], X32[2000:]]))
    # float32 rows are centred and multiplied in float32 (each product rounded to 6e-8
    # relative) and summed in float64; another blocking centres on another shift, so the
    # spectra agree to float32 rounding, not to float64's: 1e-6 is about 16 float32 epsilons
    np.testing.assert_allclose(chunked.explained_variance_, full.explained_variance_, rtol=1e-6)


def test_chunked_input_with_a_solver_that_needs_all_rows_is_refused(X):
    with pytest.raises(ValueError, match="covariance route.*load it first"):
        PCA(3, svd_solver="full").fit(ChunkedSource([X[:100], X[100:]]))


def test_nan_in_a_later_chunk_is_named(X):
    bad = X[1000:2000].copy()
    bad[7, 3] = np.nan
    with pytest.raises(ValueError, match="contains NaN"):
        PCA(3).fit(ChunkedSource([X[:1000], bad]))
    bad[7, 3] = np.inf
    with pytest.raises(ValueError, match="contains infinity"):
        PCA(3).fit(ChunkedSource([X[:1000], bad]))


def test_a_chunk_with_other_columns_is_refused(X):
    with pytest.raises(ValueError, match="features"):
        PCA(3).fit(ChunkedSource([X[:100], X[100:200, :5]]))


def test_a_failed_chunked_fit_keeps_the_previous_model(X):
    pca = PCA(3).fit(X)
    before = pca.components_.copy()
    bad = X[:100].copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError):
        pca.fit(ChunkedSource([X[:100], bad]))
    np.testing.assert_array_equal(pca.components_, before)
