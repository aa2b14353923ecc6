"""Dask arrays as input: fits equal the in-memory fits from the same start (1e-10)."""

import numpy as np
import pytest

da = pytest.importorskip("dask.array", reason="Dask is an optional extra (latentspace[dask])")

from latentspace import PCA, BernoulliMixture, GaussianMixture, KMeans  # noqa: E402
from latentspace.data import DaskSource  # noqa: E402

UNEVEN = ((700, 1300, 400, 600), (3, 2))  # uneven row blocks, columns split too


@pytest.fixture(scope="module")
def blobs():
    rng = np.random.default_rng(0)
    return rng.standard_normal((3000, 5)) + rng.integers(0, 3, (3000, 1)) * 4.0


def test_kmeans_same_fit_with_weights(blobs):
    rng = np.random.default_rng(1)
    w = rng.uniform(0.1, 2.0, len(blobs))
    C0 = blobs[:3].copy()
    ref = KMeans(3, init=C0, max_iter=30, tol=0).fit(blobs, sample_weight=w)
    for weights in (w, da.from_array(w, chunks=500)):
        got = KMeans(3, init=C0, max_iter=30, tol=0).fit(da.from_array(blobs, chunks=UNEVEN),
                                                          sample_weight=weights)
        np.testing.assert_allclose(got.cluster_centers_, ref.cluster_centers_, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(got.inertia_, ref.inertia_, rtol=1e-10)
        assert (got.labels_ == ref.labels_).all()
    seeded = KMeans(3, n_init=2, random_state=0).fit(da.from_array(blobs, chunks=UNEVEN))
    plain = KMeans(3, n_init=2, random_state=0).fit(blobs)
    np.testing.assert_allclose(seeded.cluster_centers_, plain.cluster_centers_, rtol=1e-10)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_gaussian_mixture_same_fit(blobs, covariance_type):
    kw = dict(covariance_type=covariance_type, random_state=0, max_iter=50)
    ref = GaussianMixture(3, **kw).fit(blobs)
    got = GaussianMixture(3, **kw).fit(da.from_array(blobs, chunks=UNEVEN))
    np.testing.assert_allclose(got.means_, ref.means_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got.covariances_, ref.covariances_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got.lower_bounds_, ref.lower_bounds_, rtol=1e-10)
    assert got.n_iter_ == ref.n_iter_


def test_bernoulli_mixture_same_fit(blobs):
    Xb = (blobs > 1).astype(np.float64)
    ref = BernoulliMixture(3, random_state=0).fit(Xb)
    got = BernoulliMixture(3, random_state=0).fit(da.from_array(Xb, chunks=(450, 5)))
    np.testing.assert_allclose(got.means_, ref.means_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got.weights_, ref.weights_, rtol=1e-10)


@pytest.mark.parametrize("factor", [1.0, 1e-140, 1e152])
def test_pca_same_fit(factor):
    rng = np.random.default_rng(2)
    X = (rng.standard_normal((4000, 12)) @ rng.standard_normal((12, 12)) + 5.0) * factor
    ref = PCA(6).fit(X)
    got = PCA(6).fit(da.from_array(X, chunks=((1000, 500, 2500), (5, 7))))
    assert got.fit_svd_solver_ == "covariance_eigh" and got.n_samples_seen_ == 4000
    np.testing.assert_allclose(got.explained_variance_, ref.explained_variance_, rtol=1e-10)
    np.testing.assert_allclose(got.explained_variance_ratio_, ref.explained_variance_ratio_, rtol=1e-10)
    cos = np.abs(np.sum(got.components_ * ref.components_, axis=1))
    assert cos.min() > 1 - 1e-10
    np.testing.assert_allclose(got.mean_, ref.mean_, rtol=1e-12, atol=1e-12 * factor)


def test_pca_dask_errors():
    X = np.random.default_rng(3).standard_normal((600, 4))
    with pytest.raises(ValueError, match="covariance route"):
        PCA(2, svd_solver="full").fit(da.from_array(X, chunks=200))
    bad = X.copy()
    bad[450, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        PCA(2).fit(da.from_array(bad, chunks=200))
    with pytest.raises(ValueError, match="2D"):
        KMeans(2).fit(da.from_array(X[:, 0], chunks=200))


def test_bad_block_is_reported_from_its_task(blobs):
    bad = blobs.copy()
    bad[2500, 0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        KMeans(3, random_state=0).fit(da.from_array(bad, chunks=1000))


def test_source_take_and_map_chunks(blobs):
    src = DaskSource(da.from_array(blobs, chunks=UNEVEN),
                     prepare=lambda raw: __import__("torch").as_tensor(raw))
    idx = np.array([2999, 0, 701, 701, 1999])
    np.testing.assert_array_equal(src.take(idx).numpy(), blobs[idx])
    sizes = src.map_chunks(lambda c: (c.offset, len(c)))
    assert sizes == [(0, 700), (700, 1300), (2000, 400), (2400, 600)]
    assert src.map_reduce(lambda c: float(c.X.sum())) == pytest.approx(blobs.sum(), rel=1e-12)


def test_distributed_cluster(blobs):
    distributed = pytest.importorskip("distributed")
    C0 = blobs[:3].copy()
    ref = KMeans(3, init=C0, max_iter=20, tol=0).fit(blobs)
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=2,
                            dashboard_address=None):
        got = KMeans(3, init=C0, max_iter=20, tol=0).fit(da.from_array(blobs, chunks=UNEVEN))
        pca = PCA(3).fit(da.from_array(blobs, chunks=UNEVEN))
    np.testing.assert_allclose(got.cluster_centers_, ref.cluster_centers_, rtol=1e-10)
    np.testing.assert_allclose(pca.explained_variance_, PCA(3).fit(blobs).explained_variance_,
                               rtol=1e-10)
