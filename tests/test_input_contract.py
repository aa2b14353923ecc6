"""The input contract of every estimator (RELIABILITY rows 9, 19, 23, 24).

One test per class of defect, each over all seven estimators: a failed refit leaves the
earlier fit usable; tensors and arrays of any layout are read as their values; every public
method validates its input; parameters and sizes are checked with our wording; input
conversion converts what is numeric and names what is not.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from latentspace.cluster import KMeans
from latentspace.decomposition import PCA
from latentspace.mixture import BernoulliMixture, GaussianMixture
from latentspace.neural import GAN, VAE, Autoencoder

_NEURAL = dict(max_epochs=2, batch_size=32, random_state=0)
MAKE = {
    "PCA": lambda: PCA(2, random_state=0),
    "KMeans": lambda: KMeans(2, random_state=0),
    "GaussianMixture": lambda: GaussianMixture(2, random_state=0),
    "BernoulliMixture": lambda: BernoulliMixture(2, random_state=0),
    "Autoencoder": lambda: Autoencoder(2, hidden_sizes=(8,), **_NEURAL),
    "VAE": lambda: VAE(2, hidden_sizes=(8,), likelihood="gaussian", **_NEURAL),
    "GAN": lambda: GAN(2, generator_sizes=(8,), discriminator_sizes=(8,), **_NEURAL),
}
NAMES = list(MAKE)
NEURAL = {"Autoencoder", "VAE", "GAN"}
QUERIES = ("predict", "predict_proba", "transform", "score_samples", "discriminate")


@pytest.fixture(autouse=True)
def _one_thread_quiet():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with warnings.catch_warnings():
        # two epochs do not converge, and tiny fits may leave components empty: not the point
        warnings.simplefilter("ignore")
        yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def X():
    # binary values, so that every model (the Bernoulli mixture too) takes the same data
    return (np.random.RandomState(0).rand(40, 3) > 0.5).astype(np.float64)


def _queries(est, X):
    return {m: np.asarray(getattr(est, m)(X)) for m in QUERIES if hasattr(est, m)}


def _tol(name):
    # the networks compute in float32 (eps 1.2e-7): a few hundred ulps of accumulated
    # rounding over two epochs; the classical models are deterministic float64 up to BLAS order
    return 1e-5 if name in NEURAL else 1e-10


def _assert_same(a: dict, b: dict, tol: float):
    assert a.keys() == b.keys()
    for m in a:
        np.testing.assert_allclose(a[m], b[m], rtol=tol, atol=tol, err_msg=m)


# --- 6: a failed refit leaves the earlier fit usable ----------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_failed_refit_leaves_the_earlier_fit_usable(name, X):
    est = MAKE[name]().fit(X)
    before, attrs = _queries(est, X), dict(vars(est))
    rng = np.random.RandomState(1)
    X5 = (rng.rand(40, 5) > 0.5).astype(np.float64)
    nan5 = X5.copy()
    nan5[3, 2] = np.nan
    failures = [lambda: est.fit(nan5)]
    if name not in NEURAL:  # K > N (n_components > min(n, d) for PCA)
        failures.append(lambda: est.fit(X5[:1]))

    def bad_parameter():
        est.set_params(random_state=-1)
        try:
            est.fit(X5)
        finally:
            est.set_params(random_state=0)

    failures.append(bad_parameter)
    for fail in failures:
        with pytest.raises(ValueError):
            fail()
        assert est.n_features_in_ == 3
        assert vars(est).keys() == attrs.keys()
        assert all(vars(est)[k] is v for k, v in attrs.items()), "an attribute was replaced"
        _assert_same(_queries(est, X), before, 0.0)
    if hasattr(est, "partial_fit"):  # the same for an incremental fit
        inc = MAKE[name]().partial_fit(X)
        before = _queries(inc, X)
        state = {k: np.array(v, copy=True) for k, v in vars(inc).items()
                 if isinstance(v, np.ndarray)}
        with pytest.raises(ValueError):
            inc.partial_fit(nan5[:, :3])
        for k, v in state.items():  # nothing written into the arrays in place either
            np.testing.assert_array_equal(getattr(inc, k), v, err_msg=k)
        _assert_same(_queries(inc, X), before, 0.0)


# --- 7: tensors with autograd, odd layouts, the meta device; read-only and Fortran arrays ---
@pytest.mark.parametrize("name", NAMES)
def test_tensor_and_array_layouts(name, X):
    ref = _queries(MAKE[name]().fit(X), X)
    wide = torch.tensor(np.c_[X, X[:, ::-1]])  # its first three columns, a strided view
    read_only = X.copy()
    read_only.setflags(write=False)
    layouts = {
        "requires_grad": torch.tensor(X, requires_grad=True),
        "non-contiguous": wide[:, :3],
        "transposed": torch.tensor(X.T.copy()).T,
        "read-only": read_only,
        "Fortran": np.asfortranarray(X),
    }
    assert not layouts["non-contiguous"].is_contiguous()
    for what, data in layouts.items():
        est = MAKE[name]().fit(data)
        _assert_same(_queries(est, X), ref, _tol(name))
        # and as queries of a fitted model: the values, detached, in the caller's kind
        for m, expected in ref.items():
            out = getattr(est, m)(data)
            if isinstance(data, torch.Tensor):
                assert isinstance(out, torch.Tensor) and not out.requires_grad, (what, m)
                out = out.numpy()
            np.testing.assert_allclose(out, expected, rtol=_tol(name), atol=_tol(name),
                                       err_msg=f"{what}: {m}")
    meta = torch.empty(40, 3, device="meta")
    with pytest.raises(TypeError, match="'meta' device"):
        MAKE[name]().fit(meta)
    fitted = MAKE[name]().fit(X)
    for m in ref:
        with pytest.raises(TypeError, match="'meta' device"):
            getattr(fitted, m)(meta)


# --- 11: every public method takes its input through the shared validation -----------------
_BAD_X = {
    "None": (None, TypeError, "X is None"),
    "scalar": (3.0, ValueError, "2D array"),
    "generator": ((r for r in np.ones((4, 3))), TypeError, "iterator"),
    "str": ("abc", TypeError, "not an array"),
    "sparse": (sp.csr_matrix(np.ones((4, 3))), TypeError, "not supported yet.*toarray"),
    "NaN": (np.array([[0.0, np.nan, 1.0]] * 4), ValueError, "NaN"),
    "inf": (np.array([[0.0, np.inf, 1.0]] * 4), ValueError, "infinity|infinite"),
    "complex": (np.ones((4, 3)) + 1j, ValueError, "Complex data not supported"),
    "empty": (np.zeros((0, 3)), ValueError, "0 sample"),
    "width": (np.ones((4, 2)), ValueError, "2 features"),
    "dates": (np.ones((4, 3)).astype("datetime64[s]"), TypeError, "datetime64"),
}
_METHODS = QUERIES + ("score", "bic", "aic", "reconstruct")
# estimators that take scipy.sparse input (fitted without densifying; their own tests compare
# the sparse and dense fits); every other one refuses it with the instruction to densify
SPARSE_OK = ("PCA", "KMeans")


def _latent_width(est):
    return est.cluster_centers_.shape[0] if isinstance(est, KMeans) else (
        est.n_components_ if isinstance(est, PCA) else est.latent_dim)


@pytest.mark.parametrize("name", NAMES)
def test_every_public_method_validates_its_input(name, X):
    est = MAKE[name]().fit(X)
    methods = [m for m in _METHODS if hasattr(est, m)]
    assert methods
    for m in methods:
        for what, (bad, err, msg) in _BAD_X.items():
            if what == "sparse" and name in SPARSE_OK and m != "impute":
                continue
            if what == "generator":
                bad = (r for r in np.ones((4, 3)))
            with pytest.raises(err, match=msg):
                getattr(est, m)(bad)
    if not hasattr(est, "inverse_transform"):
        return
    k = _latent_width(est)
    Z = np.asarray(est.transform(X))
    # float32 codes give float32 reconstructions, as transform keeps float32
    out32 = est.inverse_transform(Z.astype(np.float32))
    assert out32.dtype == np.float32
    bad_Z = {
        "NaN": (np.full((4, k), np.nan), ValueError, "NaN"),
        "inf": (np.full((4, k), np.inf), ValueError, "infinity|infinite"),
        "complex": (np.ones((4, k)) + 1j, ValueError, "Complex data not supported"),
        "strings": (np.array([["a"] * k] * 4), ValueError, "convert|integers"),
        "empty": (np.zeros((0, k)), ValueError, "0 sample"),
        "None": (None, TypeError, "Z is None"),
        "width": (np.ones((4, k + 1)), ValueError, f"{k + 1} features"),
    }
    for what, (bad, err, msg) in bad_Z.items():
        with pytest.raises(err, match=msg):
            est.inverse_transform(bad)
    if isinstance(est, KMeans):  # labels, the other form of its codes
        np.testing.assert_array_equal(est.inverse_transform(est.labels_),
                                      est.cluster_centers_[est.labels_])
        for bad in (np.array([0.0, np.nan]), np.array([]), np.array(["0", "1"]),
                    np.array([0.5]), np.array([k])):
            with pytest.raises(ValueError, match="labels|0 sample"):
                est.inverse_transform(bad)


# --- 13: parameters and sizes checked with our wording --------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_random_state_and_n_samples_with_our_wording(name, X):
    for bad in (-1, 2**32, float("nan"), 1.5, "bogus", True):
        est = MAKE[name]().set_params(random_state=bad)
        with pytest.raises(ValueError, match=r"random_state=.* is invalid; use None, an int"):
            est.fit(X)
        assert not hasattr(est, "n_features_in_")
    for good in (None, np.int64(3), 2**32 - 1, np.random.RandomState(0),
                 np.random.default_rng(0)):
        MAKE[name]().set_params(random_state=good).fit(X)
    est = MAKE[name]().fit(X)
    if not hasattr(est, "sample"):
        return
    drawn = est.sample(5)
    drawn = drawn[0] if isinstance(drawn, tuple) else drawn
    assert np.shape(drawn) == (5, 3)
    with pytest.raises(ValueError, match=r"sample\(n_samples=1000000000000\) needs about .* "
                                         r"draw the samples in batches"):
        est.sample(10**12)
    for bad in (0, -3, 2.5, "5", None, True):
        with pytest.raises(ValueError, match="n_samples"):
            est.sample(bad)
    with pytest.raises(ValueError, match="random_state=-1 is invalid"):
        est.sample(2, random_state=-1)


# --- 14: input conversion: numeric converts, the rest is named ------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_input_conversion(name, X):
    ref = _queries(MAKE[name]().fit(X), X)
    converts = {
        "object numbers": X.astype(object),
        "bool": X.astype(bool),
        "int": X.astype(np.int64),
        "float16": X.astype(np.float16),
        "list of lists": X.tolist(),
        "nullable Int64": pd.DataFrame(X.astype(np.int64)).astype("Int64"),
    }
    if name in SPARSE_OK:
        converts["sparse"] = sp.csr_matrix(X)
    for what, data in converts.items():
        est = MAKE[name]().fit(data)
        assert est.n_features_in_ == 3, what
        # float16 is fitted in float32 (eps 1.2e-7): a few ulps from the float64 reference
        tol = max(_tol(name), 1e-6) if what == "float16" else _tol(name)
        _assert_same(_queries(est, np.asarray(X)), ref, tol)
    if hasattr(est, "transform"):  # half precision is read as float32, and stays float32
        assert np.asarray(MAKE[name]().fit(X).transform(X.astype(np.float16))).dtype == np.float32

    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    with_nan = frame.astype("Float64")
    with_nan.iloc[2, 1] = pd.NA
    rejected = {
        "datetime64": (X.astype("datetime64[s]"), TypeError, "datetime64.*convert"),
        "timedelta64": (X.astype("timedelta64[s]"), TypeError, "timedelta64.*convert"),
        "string column": (frame.assign(colour=["red"] * 40), ValueError,
                          r"non-numeric column\(s\) 'colour'.*encode"),
        "category column": (frame.assign(kind=pd.Categorical(["x", "y"] * 20)), ValueError,
                            "'kind'.*encode"),
        "date column": (frame.assign(when=pd.to_datetime(["2020-01-01"] * 40)), TypeError,
                        "'when'"),
        "duplicate columns": (frame.set_axis(["a", "a", "c"], axis=1), ValueError,
                              r"duplicate column names \['a'\]"),
        "pd.NA": (with_nan, ValueError, "NaN"),
        "ragged": ([[0.0, 1.0, 0.0], [1.0, 0.0]] * 20, ValueError, "ragged"),
        "1-D": (X[:, 0], ValueError, "2D array"),
        "3-D": (X[:, :, None], ValueError, "dim 3"),
        "scalar": (1.0, ValueError, "2D array"),
        "None": (None, TypeError, "X is None"),
        "generator": (None, TypeError, "iterator.*list"),
        "str": ("0,1,1", TypeError, "str, not an array"),
        "bytes": (b"\x00\x01", TypeError, "bytes, not an array"),
        "sparse": (sp.csr_matrix(X), TypeError, "Sparse input is not supported yet.*toarray"),
        "sparse tensor": (torch.tensor(X).to_sparse(), TypeError, "not supported yet.*to_dense"),
        "meta tensor": (torch.empty(40, 3, device="meta"), TypeError, "'meta' device"),
    }
    if name in SPARSE_OK:
        del rejected["sparse"]
    for what, (data, err, msg) in rejected.items():
        if what == "generator":
            data = (row for row in X)
        est = MAKE[name]()
        with pytest.raises(err, match=msg):
            est.fit(data)
        assert not hasattr(est, "n_features_in_"), what


def test_sample_weight_goes_through_the_shared_validation(X):
    km = KMeans(2, random_state=0)
    ref = km.fit(X, sample_weight=np.ones(40)).cluster_centers_
    grad = torch.ones(40, dtype=torch.float64, requires_grad=True)
    np.testing.assert_array_equal(KMeans(2, random_state=0).fit(X, sample_weight=grad)
                                  .cluster_centers_, ref)
    rejected = {
        "complex": (np.ones(40) + 1j, ValueError, "Complex data not supported"),
        "strings": (["heavy"] * 40, ValueError, "sample_weight must hold numbers"),
        "dates": (np.ones(40).astype("datetime64[s]"), TypeError, "datetime64"),
        "meta": (torch.empty(40, device="meta"), TypeError, "'meta' device"),
    }
    for what, (w, err, msg) in rejected.items():
        with pytest.raises(err, match=msg):
            KMeans(2, random_state=0).fit(X, sample_weight=w)
