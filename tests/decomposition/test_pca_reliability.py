"""RELIABILITY.md rows 1-5, 7-10 for PCA: bad input gets a clear, typed error."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.datasets import load_digits

from latentspace import PCA


@pytest.fixture(scope="module")
def X():
    return load_digits().data[:300].astype(np.float64)


@pytest.fixture
def fitted(X):
    return PCA(5).fit(X)


METHODS = ["transform", "score_samples"]


@pytest.mark.parametrize("value,word", [(np.nan, "NaN"), (np.inf, "infinity"), (-np.inf, "infinity")])
def test_nonfinite_rejected_everywhere_and_fit_survives(X, fitted, value, word):
    bad = X.copy()
    bad[3, 7] = value
    before = fitted.components_.copy()
    with pytest.raises(ValueError, match=word):
        PCA(5).fit(bad)
    with pytest.raises(ValueError, match=word):
        fitted.fit(bad)
    for method in METHODS:
        with pytest.raises(ValueError, match=word):
            getattr(fitted, method)(bad)
    with pytest.raises(ValueError, match=word):
        fitted.partial_fit(bad)
    Z = fitted.transform(X[:4])
    Z[0, 0] = value
    with pytest.raises(ValueError, match=word):
        fitted.inverse_transform(Z)
    # torch inputs are checked on their own device, same wording
    with pytest.raises(ValueError, match=word):
        fitted.transform(torch.from_numpy(bad))
    # the earlier fit is untouched and usable
    np.testing.assert_array_equal(fitted.components_, before)
    assert np.all(np.isfinite(fitted.transform(X)))


@pytest.mark.parametrize("shape,msg", [((0, 5), "0 sample"), ((5, 0), "0 feature")])
def test_empty_input(shape, msg):
    with pytest.raises(ValueError, match=msg):
        PCA().fit(np.zeros(shape))
    with pytest.raises(ValueError, match=msg):
        PCA().fit(torch.zeros(shape))


def test_one_row_and_one_feature():
    with pytest.raises(ValueError, match="at least 2 samples.*1 sample"):
        PCA().fit(np.ones((1, 4)))
    x = np.arange(10.0)[:, None]
    pca = PCA().fit(x)
    assert pca.n_components_ == 1
    np.testing.assert_allclose(pca.explained_variance_ratio_, [1.0])
    np.testing.assert_allclose(pca.inverse_transform(pca.transform(x)), x, atol=1e-12)


def test_constant_feature_and_constant_data(X):
    Xc = X.copy()
    Xc[:, 0] = 3.0
    pca = PCA().fit(Xc)
    for name in ["components_", "explained_variance_", "explained_variance_ratio_", "singular_values_", "mean_"]:
        assert np.all(np.isfinite(getattr(pca, name))), name
    const = np.full((20, 4), 7.0)
    for solver in ["full", "covariance_eigh", "gram", "randomized", "auto"]:
        p = PCA(2, svd_solver=solver, random_state=0).fit(const)
        np.testing.assert_array_equal(p.explained_variance_ratio_, [0.0, 0.0])  # scikit-learn gives NaN
        assert np.all(np.isfinite(p.components_)) and np.isfinite(p.noise_variance_)
        assert np.all(np.isfinite(p.score_samples(const)))
        assert np.all(np.isfinite(p.transform(const)))
    w = PCA(2, whiten=True).fit(const)
    assert np.all(np.isfinite(w.transform(const)))


def test_too_many_components_names_both_numbers():
    with pytest.raises(ValueError, match=r"n_components=7 .*min\(n_samples, n_features\)=5"):
        PCA(7).fit(np.random.default_rng(0).standard_normal((5, 9)))
    for bad in [-1, 1.5, "many", True]:
        with pytest.raises(ValueError, match="n_components"):
            PCA(bad).fit(np.random.default_rng(0).standard_normal((10, 3)))
    with pytest.raises(ValueError, match="svd_solver"):
        PCA(svd_solver="magic").fit(np.ones((3, 3)))


def test_wrong_feature_count(fitted, X):
    with pytest.raises(ValueError, match="X has 63 features, but PCA is expecting 64 features as input"):
        fitted.transform(X[:, :63])
    with pytest.raises(ValueError, match="X has 63 features, but PCA is expecting 64 features"):
        fitted.transform(torch.from_numpy(X[:, :63]))
    with pytest.raises(ValueError, match="Z has 4 features, but PCA is expecting 5"):
        fitted.inverse_transform(np.zeros((2, 4)))


def test_dtypes_and_containers(X):
    ref = PCA(3).fit(X)
    # numeric strings and object arrays convert; words do not
    as_str = X[:, :6].astype(str)
    np.testing.assert_allclose(PCA(3).fit(as_str).explained_variance_, PCA(3).fit(X[:, :6]).explained_variance_)
    with pytest.raises(ValueError):
        PCA(2).fit(np.array([["a", "b"], ["c", "d"], ["e", "f"]]))
    np.testing.assert_allclose(PCA(3).fit(X.astype(object)).components_, ref.components_)
    with pytest.raises((TypeError, ValueError), match="[Cc]omplex"):
        PCA(2).fit(X[:, :4] + 1j)
    with pytest.raises(TypeError, match="[Cc]omplex"):
        PCA(2).fit(torch.from_numpy(X[:, :4] + 1j))
    ints = PCA(3).fit(X.astype(np.int64))
    np.testing.assert_allclose(ints.components_, ref.components_, atol=1e-10)
    b = (X > 8).astype(bool)
    assert PCA(2).fit(b).transform(b).dtype == np.float64
    assert PCA(2).fit(X.astype(np.float16)).transform(X.astype(np.float16)).dtype == np.float32
    assert PCA(2).fit(torch.from_numpy(X).half()).transform(torch.from_numpy(X).half()).dtype == torch.float32
    # sparse input is taken by the routes that never densify it, refused by the others
    assert PCA(2).fit(sp.csr_matrix(X)).transform(sp.csr_matrix(X)).dtype == np.float64
    with pytest.raises(TypeError, match='"full" was passed'):
        PCA(2, svd_solver="full").fit(sp.csr_matrix(X))
    assert PCA(2).fit(X.astype(np.float32)).transform(X.astype(np.float32)).dtype == np.float32


@pytest.mark.parametrize("magnitude", [1e150, 1e-150])
def test_huge_and_tiny_values_correct_up_to_scale(X, magnitude):
    ref = PCA(5, svd_solver="full").fit(X)
    for solver in ["full", "covariance_eigh", "gram", "randomized"]:
        p = PCA(5, svd_solver=solver, random_state=0).fit(X * magnitude)
        np.testing.assert_allclose(p.explained_variance_ratio_, ref.explained_variance_ratio_, rtol=1e-6)
        np.testing.assert_allclose(np.abs(p.components_[:3]), np.abs(ref.components_[:3]), atol=1e-6)
        np.testing.assert_allclose(p.explained_variance_ / magnitude**2, ref.explained_variance_, rtol=1e-6)
    Z = p.transform(X * magnitude)[:, :3] / magnitude
    np.testing.assert_allclose(np.abs(Z), np.abs(ref.transform(X)[:, :3]), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("magnitude", [1e300, 1e-300])
def test_unrepresentable_variance_asks_to_rescale(X, magnitude):
    for solver in ["full", "covariance_eigh", "gram", "randomized"]:
        with pytest.raises(ValueError, match="rescale"):
            PCA(5, svd_solver=solver, random_state=0).fit(X * magnitude)
    if magnitude > 1:
        with pytest.raises(ValueError, match="rescale"):
            PCA(5).partial_fit(X * magnitude)


def test_not_fitted():
    from sklearn.exceptions import NotFittedError

    for method in ["transform", "score_samples", "get_covariance"]:
        with pytest.raises(NotFittedError):
            getattr(PCA(), method)(*( [np.ones((2, 2))] if method != "get_covariance" else []))
    with pytest.raises(NotFittedError):
        PCA().sample(3)
