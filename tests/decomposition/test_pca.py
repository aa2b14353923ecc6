"""PCA against scikit-learn (oracle), closed forms and invariants."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA as SkPCA
from sklearn.utils.estimator_checks import parametrize_with_checks

from latentspace import PCA

EXACT = ["full", "covariance_eigh", "gram"]
SOLVERS = EXACT + ["randomized", "auto"]


@pytest.fixture(scope="module")
def digits():
    return load_digits().data.astype(np.float64)


@pytest.fixture(scope="module")
def lfw(shared_data):
    f = np.load(shared_data / "lfw_people_min60.npz", allow_pickle=False)
    return f["images"].reshape(len(f["images"]), -1).astype(np.float64)


def _gapped(ev, rel=1e-6):
    """Mask of eigenvalues separated from their neighbours by more than rel·λ₁."""
    gaps = np.full(len(ev), np.inf)
    d = np.abs(np.diff(ev))
    gaps[:-1] = np.minimum(gaps[:-1], d)
    gaps[1:] = np.minimum(gaps[1:], d)
    return gaps > rel * ev[0]


def _compare(ours, sk, X, exact=True):
    k = ours.n_components_
    assert k == sk.n_components_
    r_o, r_s = ours.explained_variance_ratio_, sk.explained_variance_ratio_
    cos = np.abs(np.sum(ours.components_ * sk.components_, axis=1))
    if exact:
        big = r_s > 1e-8
        np.testing.assert_allclose(r_o[big], r_s[big], rtol=1e-10)
        np.testing.assert_allclose(r_o[~big], r_s[~big], atol=1e-14)
        mask = _gapped(sk.explained_variance_) & big
        assert np.all(cos[mask] >= 1 - 1e-8), cos[mask].min()
        np.testing.assert_allclose(ours.singular_values_[big], sk.singular_values_[big], rtol=1e-9)
        np.testing.assert_allclose(ours.noise_variance_, sk.noise_variance_, rtol=1e-9, atol=1e-14)
        rec_o = ours.inverse_transform(ours.transform(X))
        rec_s = sk.inverse_transform(sk.transform(X))
        np.testing.assert_allclose(rec_o, rec_s, atol=1e-8)
        np.testing.assert_allclose(ours.score_samples(X), sk.score_samples(X), rtol=1e-8, atol=1e-8)
    else:
        # randomized: the documented tolerance (leading third of the components)
        lead = max(1, k // 3)
        np.testing.assert_allclose(r_o[:lead], r_s[:lead], rtol=1e-4)
        assert np.all(cos[:lead][_gapped(sk.explained_variance_)[:lead]] >= 1 - 1e-4)
        assert abs(r_o.sum() - r_s.sum()) <= 1e-3 * r_s.sum()
    np.testing.assert_allclose(ours.mean_, sk.mean_, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("k", [10, 40])
def test_matches_sklearn_on_digits(digits, solver, k):
    ours = PCA(k, svd_solver=solver, random_state=0).fit(digits)
    sk = SkPCA(k, svd_solver="full").fit(digits)
    _compare(ours, sk, digits, exact=solver != "randomized")


@pytest.fixture(scope="module")
def lfw_reference(lfw):
    return SkPCA(150, svd_solver="full").fit(lfw)


@pytest.mark.parametrize("solver", SOLVERS)
def test_matches_sklearn_on_lfw_eigenfaces(lfw, lfw_reference, solver):
    sk = lfw_reference
    ours = PCA(150, svd_solver=solver, random_state=0).fit(lfw)
    _compare(ours, sk, lfw, exact=solver != "randomized")
    if solver == "auto":
        assert ours.fit_svd_solver_ == "gram"
        # the eigenfaces experiment: 150 components carry most of the variance
        assert 0.90 < ours.explained_variance_ratio_.sum() < 0.97


@pytest.mark.parametrize("solver", EXACT)
def test_variance_fraction_matches_sklearn(digits, solver):
    ours = PCA(0.9, svd_solver=solver).fit(digits)
    sk = SkPCA(0.9, svd_solver="full").fit(digits)
    assert ours.n_components_ == sk.n_components_
    _compare(ours, sk, digits)


def test_all_components_wide_data_matches_sklearn():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 80)) @ np.diag(np.linspace(3, 0.1, 80))
    for solver in EXACT:
        ours = PCA(svd_solver=solver).fit(X)
        sk = SkPCA(svd_solver="full").fit(X)
        assert ours.n_components_ == 30
        np.testing.assert_allclose(ours.explained_variance_[:29], sk.explained_variance_[:29], rtol=1e-9)
        assert ours.noise_variance_ == 0.0


def test_whiten_matches_sklearn(digits):
    ours = PCA(12, whiten=True).fit(digits)
    sk = SkPCA(12, whiten=True, svd_solver="full").fit(digits)
    Z = ours.transform(digits)
    np.testing.assert_allclose(np.abs(Z), np.abs(sk.transform(digits)), atol=1e-8)
    np.testing.assert_allclose(Z.var(axis=0, ddof=1), 1.0, rtol=1e-8)
    np.testing.assert_allclose(ours.inverse_transform(Z), sk.inverse_transform(sk.transform(digits)), atol=1e-8)


def test_auto_solver_policy():
    rng = np.random.default_rng(0)
    assert PCA(3).fit(rng.standard_normal((500, 20))).fit_svd_solver_ == "covariance_eigh"
    assert PCA(3).fit(rng.standard_normal((50, 300))).fit_svd_solver_ == "gram"


def test_deterministic_signs(digits):
    a = PCA(10, svd_solver="full").fit(digits).components_
    b = PCA(10, svd_solver="covariance_eigh").fit(digits).components_
    np.testing.assert_allclose(a, b, atol=1e-10)
    idx = np.abs(a).argmax(axis=1)
    assert np.all(a[np.arange(10), idx] > 0)


# --------------------------------------------------------------------- PPCA
def test_ppca_loglik_is_gaussian_logpdf(digits):
    from scipy.stats import multivariate_normal

    pca = PCA(15).fit(digits)
    ref = multivariate_normal(pca.mean_, pca.get_covariance(), allow_singular=False).logpdf(digits[:50])
    np.testing.assert_allclose(pca.score_samples(digits[:50]), ref, rtol=1e-9)
    np.testing.assert_allclose(pca.get_precision() @ pca.get_covariance(), np.eye(64), atol=1e-8)
    assert pca.score(digits) == pytest.approx(np.mean(pca.score_samples(digits)))


def test_ppca_sample_reproduces_covariance():
    rng = np.random.default_rng(1)
    W = rng.standard_normal((6, 3))
    X = rng.standard_normal((4000, 3)) @ W.T + 0.3 * rng.standard_normal((4000, 6)) + 5.0
    pca = PCA(3).fit(X)
    S = pca.sample(50000, random_state=0)
    assert S.shape == (50000, 6)
    C = pca.get_covariance()
    np.testing.assert_allclose(S.mean(0), pca.mean_, atol=4 * np.sqrt(np.diag(C) / 50000).max())
    emp = np.cov(S.T)
    # standard error of a sample covariance entry: sqrt((C_ii C_jj + C_ij^2) / n)
    se = np.sqrt((np.outer(np.diag(C), np.diag(C)) + C**2) / 50000)
    assert np.all(np.abs(emp - C) < 5 * se)
    # a different seed gives different samples, the same seed the same
    np.testing.assert_array_equal(S, pca.sample(50000, random_state=0))
    assert not np.allclose(S[:5], pca.sample(5, random_state=1))


# --------------------------------------------------------------------- incremental
@pytest.mark.parametrize("chunks", [[600, 600, 597], [100] * 17 + [97], [1000, 797]])
def test_partial_fit_equals_full_fit(digits, chunks):
    full = PCA(20, svd_solver="full").fit(digits)
    inc = PCA(20)
    start = 0
    for size in chunks:
        inc.partial_fit(digits[start : start + size])
        start += size
    assert inc.n_samples_seen_ == len(digits)
    np.testing.assert_allclose(inc.mean_, full.mean_, atol=1e-10)
    np.testing.assert_allclose(inc.explained_variance_, full.explained_variance_, rtol=1e-8)
    np.testing.assert_allclose(inc.components_, full.components_, atol=1e-8)
    np.testing.assert_allclose(inc.noise_variance_, full.noise_variance_, rtol=1e-8)
    np.testing.assert_allclose(inc.transform(digits), full.transform(digits), atol=1e-8)


def test_partial_fit_on_memmap_chunks(tmp_path, digits):
    path = tmp_path / "x.npy"
    np.save(path, digits)
    mm = np.load(path, mmap_mode="r")
    inc = PCA(5)
    for s in range(0, len(mm), 256):
        inc.partial_fit(mm[s : s + 256])
    ref = PCA(5, svd_solver="full").fit(digits)
    np.testing.assert_allclose(inc.explained_variance_, ref.explained_variance_, rtol=1e-8)


# --------------------------------------------------------------------- types and devices
@pytest.mark.parametrize(
    "dtype, offset, rtol",
    [(np.float64, 0.0, 1e-9), (np.float64, 1e3, 1e-9), (np.float64, 1e6, 1e-9),
     (np.float64, 1e9, 1e-9), (np.float32, 0.0, 2e-6), (np.float32, 30.0, 2e-6),
     (np.float32, 1e3, 2e-6)],
)
def test_covariance_route_is_exact_far_from_the_origin(dtype, offset, rtol):
    # XᵀX − nμμᵀ cancels ~log10(μ²/σ²) digits: 12 at 1e6 against unit spread in float64, 6 at
    # 1e3 in float32, which would leave little or nothing of the spectrum; the fit must notice
    # and take the shifted pass
    rng = np.random.default_rng(3)
    X = (rng.standard_normal((20000, 8)) * np.arange(1, 9) + offset).astype(dtype)
    X64 = X.astype(np.float64)  # the reference sees the same (rounded) numbers
    ref = np.linalg.eigvalsh(np.cov((X64 - X64.mean(0)).T))[::-1]
    ours = PCA(8, svd_solver="covariance_eigh").fit(X)
    assert ours.fit_svd_solver_ == "covariance_eigh"
    np.testing.assert_allclose(ours.explained_variance_, ref, rtol=rtol)
    tol = 1e-12 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(ours.mean_, X64.mean(0), rtol=tol, atol=tol * (1 + offset))


def test_float32_wide_data_gram_route():
    # the Gram route works in float32 for float32 data: eigenvalues as float32 allows
    rng = np.random.default_rng(4)
    X = (rng.standard_normal((300, 20)) @ rng.standard_normal((20, 900))
         + 0.1 * rng.standard_normal((300, 900)) + 5.0)
    ref = SkPCA(15, svd_solver="full").fit(X)
    ours = PCA(15, svd_solver="gram").fit(X.astype(np.float32))
    np.testing.assert_allclose(ours.explained_variance_, ref.explained_variance_, rtol=2e-5)
    cos = np.abs(np.sum(ours.components_ * ref.components_, axis=1))
    assert cos.min() > 1 - 1e-5
    assert ours.transform(X.astype(np.float32)).dtype == np.float32


def test_float32_gram_route_small_eigenvalues_are_float64_accurate():
    # variances over five decades: float32 alone keeps each eigenvalue to ~1e-7 of the largest
    # (about 6e-3 relative on the smallest kept here); the float64 Rayleigh–Ritz step brings
    # that to ~1e-5, limited by how well float32 resolved those directions
    rng = np.random.default_rng(7)
    scales = np.logspace(0, -3, 120)
    basis = np.linalg.qr(rng.standard_normal((2000, 120)))[0]
    X = ((rng.standard_normal((600, 120)) * scales) @ basis.T + 2.0).astype(np.float32)
    ref = PCA(100, svd_solver="full").fit(X.astype(np.float64))
    ours = PCA(100, svd_solver="gram").fit(X)
    np.testing.assert_allclose(ours.explained_variance_, ref.explained_variance_, rtol=1e-4)
    np.testing.assert_allclose(ours.explained_variance_[:50], ref.explained_variance_[:50],
                               rtol=1e-9)
    cos = np.abs(np.sum(ours.components_ * ref.components_, axis=1))
    assert cos[:50].min() > 1 - 1e-9
    np.testing.assert_allclose(ours.components_ @ ours.components_.T, np.eye(100), atol=1e-10)


def test_float32_preserved_and_accurate(digits):
    X32 = digits.astype(np.float32)
    pca = PCA(10).fit(X32)
    Z = pca.transform(X32)
    assert Z.dtype == np.float32
    assert pca.inverse_transform(Z).dtype == np.float32
    ref = SkPCA(10, svd_solver="full").fit(digits)
    np.testing.assert_allclose(pca.explained_variance_ratio_, ref.explained_variance_ratio_, rtol=1e-5)


def test_torch_and_pandas_inputs(digits):
    import pandas as pd

    pca = PCA(5).fit(torch.from_numpy(digits))
    Zt = pca.transform(torch.from_numpy(digits))
    assert isinstance(Zt, torch.Tensor) and Zt.dtype == torch.float64
    np.testing.assert_allclose(Zt.numpy(), pca.transform(digits), atol=1e-12)
    Xt = pca.inverse_transform(Zt)
    assert isinstance(Xt, torch.Tensor)
    df = pd.DataFrame(digits, columns=[f"p{i}" for i in range(64)])
    pca_df = PCA(5).fit(df)
    assert list(pca_df.feature_names_in_) == list(df.columns)
    np.testing.assert_allclose(pca_df.transform(df), pca.transform(digits), atol=1e-10)
    assert list(pca_df.get_feature_names_out()) == [f"pca{i}" for i in range(5)]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu(digits):
    cpu = PCA(10).fit(digits)
    gpu = PCA(10, device="cuda").fit(digits)
    np.testing.assert_allclose(gpu.explained_variance_, cpu.explained_variance_, rtol=1e-10)
    Z = gpu.transform(torch.from_numpy(digits).cuda())
    assert Z.is_cuda


def test_cuda_unavailable_is_a_clear_error(digits):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    with pytest.raises(ValueError, match="no CUDA device"):
        PCA(2, device="cuda").fit(digits)


# --------------------------------------------------------------------- sklearn checks
@parametrize_with_checks(
    [PCA(), PCA(2, svd_solver="full"), PCA(2, svd_solver="gram"), PCA(2, svd_solver="randomized", random_state=0)]
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
