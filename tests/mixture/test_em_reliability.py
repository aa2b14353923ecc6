"""Bad input and faults (rows 1–10 of the reliability matrix) for the three EM models."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from latentspace.cluster import KMeans
from latentspace.exceptions import ConvergenceWarning
from latentspace.mixture import BernoulliMixture, GaussianMixture

MODELS = {
    "kmeans": lambda k=3, **kw: KMeans(k, **{"random_state": 0, **kw}),
    "gmm": lambda k=3, **kw: GaussianMixture(k, **{"random_state": 0, **kw}),
    "bmm": lambda k=3, **kw: BernoulliMixture(k, **{"random_state": 0, **kw}),
}
NAMES = {"kmeans": "KMeans", "gmm": "GaussianMixture", "bmm": "BernoulliMixture"}


def _data(name, n=90, d=3, seed=0):
    X, _ = make_blobs(n_samples=n, n_features=d, centers=3, random_state=seed)
    if name == "bmm":
        X = (X > np.median(X, axis=0)).astype(np.float64)
    return X


def _queries(est):
    out = [est.predict]
    if hasattr(est, "transform"):
        out.append(est.transform)
    if hasattr(est, "score_samples"):
        out += [est.score_samples, est.predict_proba]
    return out


class _quiet(warnings.catch_warnings):
    def __enter__(self):
        out = super().__enter__()
        warnings.simplefilter("ignore", ConvergenceWarning)
        return out


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("bad, word", [(np.nan, "NaN"), (np.inf, "infinity"), (-np.inf, "infinity")])
def test_rows_1_2_nan_and_inf_are_named_and_an_earlier_fit_survives(name, bad, word):
    X = _data(name)
    est = MODELS[name]().fit(X)
    before = est.predict(X)
    Xb = X.copy()
    Xb[5, 1] = bad
    with pytest.raises(ValueError, match=word):
        est.fit(Xb)
    for query in _queries(est):
        with pytest.raises(ValueError, match=word):
            query(Xb)
    np.testing.assert_array_equal(est.predict(X), before)
    with pytest.raises(ValueError, match=word):
        MODELS[name]().fit(torch.as_tensor(Xb))


@pytest.mark.parametrize("name", MODELS)
def test_row_3_empty_input(name):
    with pytest.raises(ValueError, match="0 sample"):
        MODELS[name]().fit(np.empty((0, 3)))
    with pytest.raises(ValueError, match="0 feature"):
        MODELS[name]().fit(np.empty((5, 0)))
    with pytest.raises(ValueError, match="0 sample"):
        MODELS[name]().fit(torch.empty(0, 3))


@pytest.mark.parametrize("name", MODELS)
def test_row_4_one_row_and_one_feature(name):
    one = np.array([[0.0, 1.0, 1.0]])
    est = MODELS[name](1).fit(one)
    assert est.predict(one).tolist() == [0]
    col = _data(name, d=1)
    est = MODELS[name](2).fit(col)
    assert set(np.unique(est.predict(col))) <= {0, 1}
    with pytest.raises(ValueError, match="n_samples"):
        MODELS[name](2).fit(one)


def _fitted_floats(est):
    return {k: v for k, v in vars(est).items() if k.endswith("_") and not k.startswith("_")
            and isinstance(v, (float, np.ndarray)) and np.asarray(v).dtype.kind == "f"}


@pytest.mark.parametrize("name", MODELS)
def test_row_5_constant_feature_and_constant_data(name):
    X = _data(name)
    X[:, 1] = 1.0
    est = MODELS[name]().fit(X)
    for key, value in _fitted_floats(est).items():
        assert np.all(np.isfinite(value)), key
    const = np.ones((20, 3))
    with _quiet():
        est = MODELS[name](2).fit(const)
    for key, value in _fitted_floats(est).items():
        assert np.all(np.isfinite(value)), key
    assert np.all(np.isfinite(est.score_samples(const) if hasattr(est, "score_samples")
                              else est.transform(const)))


@settings(max_examples=15, deadline=None)
@given(
    name=st.sampled_from(sorted(MODELS)),
    n_distinct=st.integers(1, 3),
    repeats=st.integers(2, 6),
    k=st.integers(2, 5),
    seed=st.integers(0, 1000),
)
def test_row_6_duplicates_fewer_distinct_points_than_k(name, n_distinct, repeats, k, seed):
    rng = np.random.RandomState(seed)
    base = rng.randint(0, 2, size=(n_distinct, 4)).astype(float)
    X = np.repeat(base, repeats, axis=0)
    if len(X) < k:
        return
    distinct = len(np.unique(X, axis=0))
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        est = MODELS[name](k, random_state=seed).fit(X)
    if distinct < k:
        assert any(issubclass(r.category, ConvergenceWarning) for r in rec)
    with _quiet():
        labels = est.labels_ if hasattr(est, "labels_") else est.fit_predict(X)
    np.testing.assert_array_equal(labels, est.predict(X))
    assert est.n_iter_ <= est.max_iter


@pytest.mark.parametrize("name", MODELS)
def test_row_7_more_clusters_than_samples_names_both_numbers(name):
    X = _data(name, n=4)
    with pytest.raises(ValueError, match=r"(?=.*\b4\b)(?=.*\b5\b)"):
        MODELS[name](5).fit(X)


@pytest.mark.parametrize("name", MODELS)
def test_row_8_wrong_number_of_features(name):
    X = _data(name)
    est = MODELS[name]().fit(X)
    msg = f"X has 2 features, but {NAMES[name]} is expecting 3 features as input."
    for query in _queries(est):
        with pytest.raises(ValueError, match=msg):
            query(X[:, :2])
        with pytest.raises(ValueError, match=msg):
            query(torch.as_tensor(X[:, :2]))


@pytest.mark.parametrize("name", MODELS)
def test_row_9_element_types(name):
    X = _data(name)
    est = MODELS[name]()
    with pytest.raises((ValueError, TypeError)):
        est.fit(X.astype(str).astype(object) + "x")
    with pytest.raises((ValueError, TypeError), match="[Cc]omplex"):
        est.fit(X + 1j)
    ref = MODELS[name]().fit(X).predict(X)
    if name == "kmeans":  # K-means takes sparse input, with the dense fit's result
        np.testing.assert_array_equal(MODELS[name]().fit(sp.csr_matrix(X)).predict(X), ref)
    else:
        with pytest.raises(TypeError, match="[Ss]parse"):
            est.fit(sp.csr_matrix(X))
    for converted in (X.astype(object), X.astype(np.float16), X.astype(np.float32)):
        np.testing.assert_array_equal(MODELS[name]().fit(converted).predict(converted), ref)
    Xi = np.rint(X).astype(np.int64)
    assert MODELS[name]().fit(Xi).predict(Xi).shape == (len(X),)
    if name == "bmm":
        Xb = X.astype(bool)
        assert MODELS[name]().fit(Xb).predict(Xb).shape == (len(X),)
    # float32 stays float32 in transforms
    X32 = X.astype(np.float32)
    est = MODELS[name]().fit(X32)
    if hasattr(est, "transform"):
        assert est.transform(X32).dtype == np.float32
    if hasattr(est, "predict_proba"):
        assert est.predict_proba(X32).dtype == np.float32
        assert est.score_samples(X32).dtype == np.float32


@pytest.mark.parametrize("name", ["kmeans", "gmm"])
@pytest.mark.parametrize("factor", [1e154, 1e200, 1e300, 1e-300, 2.0**-1000])
def test_row_10_huge_and_tiny_values(name, factor):
    X = _data(name, n=150)
    ref = MODELS[name]().fit(X)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)  # no overflow in the arithmetic
            est = MODELS[name]().fit(X * factor)
    except ValueError as exc:
        assert "rescale" in str(exc).lower()
        return
    labels = est.predict(X * factor)
    assert len(np.unique(labels)) == 3  # never a silent one-cluster answer
    assert adjusted_rand_score(labels, ref.predict(X)) == 1.0
    centres = est.cluster_centers_ if name == "kmeans" else est.means_
    ref_centres = ref.cluster_centers_ if name == "kmeans" else ref.means_
    order = np.argsort(centres[:, 0])
    np.testing.assert_allclose(centres[order] / factor, ref_centres[np.argsort(ref_centres[:, 0])],
                               rtol=1e-6)
    if name == "kmeans":
        assert np.isfinite(est.inertia_)
    else:
        assert np.all(np.isfinite(est.score_samples(X * factor)))


def test_row_10_bernoulli_tiny_soft_counts_and_huge_values():
    X = _data("bmm")
    BernoulliMixture(2, random_state=0).fit(X * 1e-300)  # soft counts near zero are fine
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        BernoulliMixture(2).fit(X * 1e300 + 2)


@pytest.mark.parametrize("name", MODELS)
def test_row_19_unfitted_and_bad_hyperparameters(name):
    from sklearn.exceptions import NotFittedError

    X = _data(name)
    with pytest.raises(NotFittedError):
        MODELS[name]().predict(X)
    bad = {"max_iter": -1, "tol": -1.0}
    for param, value in bad.items():
        with pytest.raises(ValueError, match=param):
            MODELS[name]().set_params(**{param: value}).fit(X)
