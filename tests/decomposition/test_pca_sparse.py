"""PCA on scipy.sparse input, ARPACK, power-iteration normalisers, n_components='mle' and 0.

Oracles: the dense fit of the same data (sparse routes must agree to float64 rounding),
the exact full SVD, and scikit-learn's PCA for Minka's choice and the zero-component model.
"""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.decomposition import PCA as SkPCA

from latentspace import PCA, load

CONTAINERS = [sp.csr_matrix, sp.csc_matrix, sp.csr_array, sp.csc_array]


def _sparse_data(n=600, d=80, density=0.05, seed=0):
    """Sparse data with a clear eigen-gap: 4 strong sparse directions plus sparse noise."""
    rng = np.random.default_rng(seed)
    noise = sp.random(n, d, density=density, random_state=seed, format="csr")
    scores = sp.random(n, 4, density=0.3, random_state=seed + 1, format="csr")
    loadings = rng.standard_normal((4, d)) * np.array([[8.0], [6.0], [4.0], [3.0]])
    loadings[np.abs(loadings) < 2.0] = 0.0
    X = (noise + scores @ sp.csr_matrix(loadings)).tocsr()
    return X.multiply(rng.random(d) * 5 + 0.5).tocsr()  # uneven column scales and means


def _same_axes(A, B, atol):
    """Rows of A and B equal up to the sign of each row."""
    signs = np.sign(np.sum(A * B, axis=1))[:, None]
    np.testing.assert_allclose(A, B * signs, atol=atol, rtol=0)


@pytest.mark.parametrize("container", CONTAINERS)
@pytest.mark.parametrize("solver", ["covariance_eigh", "arpack", "randomized"])
def test_sparse_fit_equals_dense_fit(container, solver):
    Xs = container(_sparse_data())
    Xd = Xs.toarray()
    a = PCA(4, svd_solver=solver, random_state=0).fit(Xs)
    b = PCA(4, svd_solver=solver, random_state=0).fit(Xd)
    assert a.fit_svd_solver_ == b.fit_svd_solver_ == solver
    # float64 sums of n = 600 terms: rounding ~1e-13 relative; 1e-10 leaves a wide margin
    scale = b.explained_variance_[0]
    np.testing.assert_allclose(a.explained_variance_, b.explained_variance_, rtol=0,
                               atol=1e-10 * scale)
    np.testing.assert_allclose(a.noise_variance_, b.noise_variance_, rtol=1e-10)
    np.testing.assert_allclose(a.mean_, b.mean_, rtol=0, atol=1e-12 * np.abs(Xd).max())
    _same_axes(a.components_, b.components_, 1e-10)
    Xt = container(_sparse_data(seed=5))
    np.testing.assert_allclose(a.transform(Xt), b.transform(Xt.toarray()), rtol=0,
                               atol=1e-10 * np.abs(b.transform(Xt.toarray())).max())
    ll_s, ll_d = a.score_samples(Xt), b.score_samples(Xt.toarray())
    np.testing.assert_allclose(ll_s, ll_d, rtol=1e-10)
    np.testing.assert_allclose(a.score(Xt), b.score(Xt.toarray()), rtol=1e-10)


def test_sparse_outputs_are_dense_and_keep_float32():
    Xs = _sparse_data()
    pca = PCA(3, svd_solver="arpack", random_state=0).fit(Xs.astype(np.float32))
    Z = pca.transform(Xs.astype(np.float32))
    assert isinstance(Z, np.ndarray) and Z.dtype == np.float32 and Z.shape == (600, 3)
    assert isinstance(pca.inverse_transform(Z), np.ndarray)
    assert pca.score_samples(Xs).shape == (600,)
    ref = PCA(3, svd_solver="full").fit(Xs.toarray())
    # float32 stored values: the eigenvalues to float32's relative precision
    np.testing.assert_allclose(pca.explained_variance_, ref.explained_variance_, rtol=1e-5)


def test_whitened_sparse_transform_equals_dense():
    Xs = _sparse_data()
    a = PCA(4, whiten=True, svd_solver="covariance_eigh").fit(Xs)
    b = PCA(4, whiten=True, svd_solver="covariance_eigh").fit(Xs.toarray())
    Za, Zb = a.transform(Xs), b.transform(Xs.toarray())
    np.testing.assert_allclose(np.abs(Za), np.abs(Zb), atol=1e-10)
    np.testing.assert_allclose(Za.std(axis=0, ddof=1), np.ones(4), rtol=1e-10)


def test_auto_on_sparse_takes_a_sparse_route():
    Xs = _sparse_data()
    assert PCA(4).fit(Xs).fit_svd_solver_ == "covariance_eigh"
    wide = sp.random(50, 3000, density=0.01, random_state=0, format="csr")
    assert PCA(5, random_state=0).fit(wide).fit_svd_solver_ == "arpack"


@pytest.mark.parametrize("solver", ["full", "gram"])
def test_dense_only_solvers_refuse_sparse(solver):
    est = PCA(2, svd_solver=solver)
    with pytest.raises(TypeError, match=f'"{solver}" was passed.*toarray'):
        est.fit(_sparse_data())
    assert not hasattr(est, "n_features_in_")


def test_marginalize_refuses_sparse_input():
    est = PCA(2, missing="marginalize")
    with pytest.raises(TypeError, match="missing='raise'"):
        est.fit(_sparse_data())
    with pytest.raises(TypeError, match="missing='raise'"):
        est.partial_fit(_sparse_data())
    assert not hasattr(est, "n_features_in_")


def test_sparse_nonfinite_and_feature_count():
    X = _sparse_data().tolil()
    X[3, 4] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        PCA(2).fit(X.tocsr())
    fitted = PCA(2).fit(_sparse_data())
    with pytest.raises(ValueError, match="X has 79 features, but PCA is expecting 80"):
        fitted.transform(_sparse_data()[:, :79])


def test_failed_sparse_refit_keeps_the_earlier_fit():
    X = _sparse_data()
    pca = PCA(3, svd_solver="arpack", random_state=0).fit(X)
    before = pca.components_.copy()
    with pytest.raises(ValueError, match="strictly less"):
        pca.set_params(n_components=80).fit(X)
    np.testing.assert_array_equal(pca.components_, before)


def test_extreme_sparse_values_give_the_same_axes():
    X = _sparse_data()
    ref = PCA(3, svd_solver="covariance_eigh").fit(X)
    for factor in (1e150, 1e-150):
        for solver in ("covariance_eigh", "arpack", "randomized"):
            big = PCA(3, svd_solver=solver, random_state=0).fit(X * factor)
            _same_axes(big.components_, ref.components_, 1e-8)
            np.testing.assert_allclose(big.explained_variance_ratio_,
                                       ref.explained_variance_ratio_, rtol=1e-8)
    # variances beyond float64 (|x| ~ 1e301 or 1e-299): the dense route's error, never inf or 0
    for data in (X * 1e300, (X * 1e300).toarray(), X * 1e-300, (X * 1e-300).toarray()):
        with pytest.raises(ValueError, match="rescale"):
            PCA(3, svd_solver="covariance_eigh").fit(data)


def test_sparse_partial_fit_equals_full_fit():
    X = _sparse_data()
    inc = PCA(4)
    for start in range(0, 600, 150):
        inc.partial_fit(X[start : start + 150])
    full = PCA(4, svd_solver="full").fit(X.toarray())
    np.testing.assert_allclose(inc.explained_variance_, full.explained_variance_, rtol=1e-10)
    np.testing.assert_allclose(inc.mean_, full.mean_, atol=1e-12)
    _same_axes(inc.components_, full.components_, 1e-9)
    # dense and sparse batches mix
    mixed = PCA(4).partial_fit(X[:300]).partial_fit(X[300:].toarray())
    np.testing.assert_allclose(mixed.explained_variance_, full.explained_variance_, rtol=1e-10)


def test_arpack_matches_full_svd():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((300, 40)) @ np.diag(np.linspace(5, 0.5, 40))
    a = PCA(6, svd_solver="arpack", random_state=0).fit(X)
    f = PCA(6, svd_solver="full").fit(X)
    np.testing.assert_allclose(a.explained_variance_, f.explained_variance_, rtol=1e-10)
    np.testing.assert_allclose(a.noise_variance_, f.noise_variance_, rtol=1e-10)
    _same_axes(a.components_, f.components_, 1e-7)
    # a loose tol is a looser answer, still close
    loose = PCA(6, svd_solver="arpack", tol=1e-3, random_state=0).fit(X)
    np.testing.assert_allclose(loose.explained_variance_, f.explained_variance_, rtol=1e-2)


def test_arpack_component_limits():
    X = np.random.default_rng(0).standard_normal((30, 5))
    assert PCA(svd_solver="arpack", random_state=0).fit(X).n_components_ == 4
    with pytest.raises(ValueError, match=r"strictly less than min\(n_samples, n_features\)=5"):
        PCA(5, svd_solver="arpack").fit(X)
    with pytest.raises(ValueError, match="between 1 and"):
        PCA(0, svd_solver="arpack").fit(X)
    with pytest.raises(ValueError, match="tol"):
        PCA(2, svd_solver="arpack", tol=-1.0).fit(X)


@pytest.mark.parametrize("normalizer", ["auto", "QR", "LU", "none"])
def test_power_iteration_normalizers_match_full_svd(normalizer):
    rng = np.random.default_rng(2)
    # a spectrum with a gap after the 5th direction
    X = rng.standard_normal((500, 60)) @ np.diag(np.r_[np.linspace(20, 12, 5), np.ones(55)])
    r = PCA(5, svd_solver="randomized", power_iteration_normalizer=normalizer,
            random_state=0).fit(X)
    f = PCA(5, svd_solver="full").fit(X)
    # the documented accuracy of the randomized route for separated components
    np.testing.assert_allclose(r.explained_variance_, f.explained_variance_, rtol=1e-4)
    cos = np.abs(np.sum(r.components_ * f.components_, axis=1))
    assert np.all(cos > 1 - 1e-4)


def test_bad_normalizer_is_refused():
    with pytest.raises(ValueError, match="power_iteration_normalizer"):
        PCA(2, svd_solver="randomized", power_iteration_normalizer="qr").fit(np.ones((5, 3)))


def _mle_datasets():
    rng = np.random.RandomState(0)
    yield rng.randn(600, 10)  # pure noise
    low = rng.randn(500, 3) @ rng.randn(3, 12) * 3
    yield low + 0.1 * rng.randn(500, 12)  # rank 3 plus noise
    yield rng.randn(200, 20) * np.linspace(5, 0.1, 20)  # a graded spectrum
    from sklearn.datasets import load_iris

    yield load_iris().data


@pytest.mark.parametrize("i", range(4))
@pytest.mark.parametrize("solver", ["full", "covariance_eigh", "auto"])
def test_mle_choice_matches_scikit_learn(i, solver):
    X = list(_mle_datasets())[i]
    ours = PCA("mle", svd_solver=solver).fit(X)
    ref = SkPCA("mle", svd_solver="full").fit(X)
    assert ours.n_components_ == ref.n_components_
    np.testing.assert_allclose(ours.noise_variance_, ref.noise_variance_, rtol=1e-8)


def test_mle_errors():
    X = np.random.default_rng(0).standard_normal((20, 30))
    with pytest.raises(ValueError, match="n_samples >= n_features"):
        PCA("mle").fit(X)
    with pytest.raises(ValueError, match="cannot be a string with svd_solver='arpack'"):
        PCA("mle", svd_solver="arpack").fit(X.T)


@pytest.mark.parametrize("solver", ["full", "covariance_eigh", "gram"])
def test_zero_components_is_the_noise_model(solver):
    X = np.random.default_rng(3).standard_normal((40, 6)) * np.arange(1, 7)
    X = X if solver != "gram" else X[:5]
    ours = PCA(0, svd_solver=solver).fit(X)
    ref = SkPCA(0, svd_solver="full").fit(X)
    assert ours.n_components_ == 0 and ours.components_.shape == (0, X.shape[1])
    np.testing.assert_allclose(ours.noise_variance_, ref.noise_variance_, rtol=1e-10)
    assert ours.transform(X).shape == (X.shape[0], 0)
    # with no components the model is N(μ, σ² I): closed form
    d, s2 = X.shape[1], ours.noise_variance_
    closed = -0.5 * (d * np.log(2 * np.pi * s2) + ((X - X.mean(0)) ** 2).sum(1) / s2)
    np.testing.assert_allclose(ours.score_samples(X), closed, rtol=1e-10)


def test_new_hyperparameters_roundtrip(tmp_path):
    params = PCA().get_params()
    for name in ("copy", "tol", "power_iteration_normalizer"):
        assert name in params
    est = PCA(3, svd_solver="arpack", tol=1e-6, power_iteration_normalizer="LU", copy=False,
              random_state=0).fit(_sparse_data())
    est.save(tmp_path / "m.lsm")
    back = load(tmp_path / "m.lsm")
    assert back.get_params() == est.get_params()
    np.testing.assert_array_equal(back.transform(_sparse_data()), est.transform(_sparse_data()))


def test_copy_false_never_writes_into_X():
    X = np.random.default_rng(0).standard_normal((50, 8)) + 3.0
    before = X.copy()
    for solver in ("full", "covariance_eigh", "arpack", "randomized", "gram"):
        Z = PCA(3, svd_solver=solver, copy=False, random_state=0).fit_transform(X)
        np.testing.assert_array_equal(X, before)
        np.testing.assert_allclose(Z.mean(0), 0, atol=1e-12)
    with pytest.raises(ValueError, match="copy"):
        PCA(copy="yes").fit(X)


_MEMORY_SCRIPT = textwrap.dedent("""
    import sys, time
    import scipy.sparse as sp
    from latentspace import PCA
    def hwm():  # peak resident set (VmHWM) in bytes
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM"):
                return int(line.split()[1]) * 1024
    def rss():
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS"):
                return int(line.split()[1]) * 1024
    X = sp.load_npz(sys.argv[2]).tocsr()
    with open("/proc/self/clear_refs", "w") as f:  # restart the peak from the current RSS
        f.write("5")
    base = rss()
    t = time.perf_counter()
    pca = PCA(10, svd_solver=sys.argv[1], random_state=0).fit(X)
    Z = pca.transform(X)
    peak = hwm()
    size = X.data.nbytes + X.indices.nbytes + X.indptr.nbytes
    print(base, peak, size, time.perf_counter() - t, Z.shape[1])
""")


@pytest.fixture(scope="module")
def large_sparse_file(tmp_path_factory):
    """100000 x 50000 at 0.1 % (5e7 stored values, about 60 MB), written once."""
    n, d = 100_000, 50_000
    rng = np.random.default_rng(0)
    nnz = int(n * d * 1e-3)
    X = sp.csr_matrix((rng.random(nnz), (rng.integers(0, n, nnz), rng.integers(0, d, nnz))),
                      shape=(n, d))
    path = tmp_path_factory.mktemp("sparse") / "X.npz"
    sp.save_npz(path, X, compressed=False)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("solver", ["arpack", "randomized"])
def test_large_sparse_fit_has_bounded_memory(solver, large_sparse_file):
    """A dense copy would be 40 GB; the fit must grow the process by a few times X's size.

    Peak resident memory (VmHWM) is measured in a fresh process, restarted after loading X.
    """
    if not os.path.exists("/proc/self/clear_refs"):
        pytest.skip("needs Linux's /proc/self/clear_refs to restart the peak-memory count")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", _MEMORY_SCRIPT, solver, str(large_sparse_file)],
                         capture_output=True, text=True, env=env, timeout=900,
                         check=True).stdout.split()
    base, peak, size, seconds, k = int(out[0]), int(out[1]), int(out[2]), float(out[3]), int(out[4])
    assert k == 10
    blocks = 8 * (100_000 + 50_000) * 64  # a few n x l and d x l float64 blocks
    # the fit's own growth: X's transposed copy (CSR of Xᵀ), its blocks, the transform's
    # output and the libraries' working sets
    growth = peak - base
    print(f"{solver}: X {size / 1e6:.0f} MB, growth {growth / 1e6:.0f} MB, peak "
          f"{peak / 1e6:.0f} MB, {seconds:.1f} s")
    assert growth < 3 * size + 4 * blocks, (growth, size, seconds)
    assert peak < 2e9  # against 40 GB for one dense copy
