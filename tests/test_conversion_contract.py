"""Input conversion and array hyperparameters: every refusal is ours, typed, and says where.

RELIABILITY rows 9, 19 and 23: strings, bytes, mappings and objects in the data are refused
with a ``ValueError`` (strings) or ``TypeError`` (other objects) naming the first offending
element's position and value and how to fix it, never numpy's "could not convert" words;
array hyperparameters given non-arrays name the parameter and the shape it needs; results
come back as the caller's kind of array; an unfitted mixture says so before sampling.
"""

import errno
import re
import warnings

import numpy as np
import pytest
import torch

from latentspace import (
    GAN,
    PCA,
    VAE,
    Autoencoder,
    BernoulliMixture,
    GaussianMixture,
    KMeans,
)
from latentspace.exceptions import NotFittedError

torch.set_num_threads(1)

_NEURAL = dict(max_epochs=1, batch_size=16, random_state=0)
FACTORIES = {
    "PCA": lambda: PCA(2),
    "KMeans": lambda: KMeans(2, n_init=1, random_state=0),
    "GaussianMixture": lambda: GaussianMixture(2, random_state=0),
    "BernoulliMixture": lambda: BernoulliMixture(2, random_state=0),
    "Autoencoder": lambda: Autoencoder(hidden_sizes=(4,), latent_dim=2, **_NEURAL),
    "VAE": lambda: VAE(hidden_sizes=(4,), latent_dim=2, **_NEURAL),
    "GAN": lambda: GAN(generator_sizes=(4,), discriminator_sizes=(4,), latent_dim=2,
                       **_NEURAL),
}
# methods that take data after a fit, per estimator
QUERIES = {
    "PCA": ("transform", "score_samples", "score"),
    "KMeans": ("transform", "predict", "score"),
    "GaussianMixture": ("predict", "predict_proba", "score_samples", "score", "bic", "aic"),
    "BernoulliMixture": ("predict", "predict_proba", "score_samples", "score", "bic", "aic"),
    "Autoencoder": ("transform", "score_samples"),
    "VAE": ("transform", "score_samples"),
    "GAN": ("discriminate",),
}
THIRD_PARTY = re.compile(r"could not convert|float\(\) argument|np\.str_|np\.bytes_")


def _X(n=24, d=3):
    """Binary data, so that every estimator (the Bernoulli mixture too) accepts it."""
    return (np.random.default_rng(0).uniform(size=(n, d)) > 0.5).astype(np.float64)


def _with(X, value, row, col):
    """``X`` as an object array with one element replaced."""
    out = X.astype(object)
    out[row, col] = value
    return out


@pytest.fixture(scope="module")
def fitted():
    X = _X()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {name: make().fit(X) for name, make in FACTORIES.items()}


def _refused(call, kind, *needles):
    with pytest.raises(kind) as info:
        call()
    msg = str(info.value)
    assert not THIRD_PARTY.search(msg), msg
    for needle in needles:
        assert needle in msg, msg
    return msg


# ----------------------------------------------------------------------------- data
BAD_DATA = {
    # name -> (build(X), error type, words the message must hold)
    "strings": (lambda X: np.full(X.shape, "a"), ValueError, ("row 0, column 0", "'a'",
                                                              "OneHotEncoder")),
    "bytes": (lambda X: np.full(X.shape, b"a"), ValueError, ("row 0, column 0", "b'a'")),
    "object_mixed": (lambda X: _with(X, "red", 5, 2), ValueError,
                     ("row 5, column 2", "'red'", "np.asarray(X, dtype=float)")),
    "list_mixed": (lambda X: _with(X, "blue", 3, 1).tolist(), ValueError,
                   ("row 3, column 1", "'blue'")),
    "object_dict": (lambda X: _with(X, {"k": 1}, 4, 0), TypeError,
                    ("row 4, column 0", "dict", "not a number")),
    "mapping": (lambda X: {"a": X[:, 0]}, TypeError, ("dict", "pandas.DataFrame")),
}


@pytest.mark.parametrize("case", BAD_DATA)
@pytest.mark.parametrize("est", FACTORIES)
def test_fit_refuses_non_numbers_naming_the_element(est, case):
    build, kind, needles = BAD_DATA[case]
    _refused(lambda: FACTORIES[est]().fit(build(_X())), kind, *needles)


def test_a_long_value_is_shown_truncated():
    msg = _refused(lambda: PCA(2).fit(_with(_X(), "z" * 10_000, 1, 1)), ValueError,
                   "row 1, column 1")
    assert len(msg) < 400, msg


@pytest.mark.parametrize("est", FACTORIES)
def test_queries_refuse_non_numbers_naming_the_element(fitted, est):
    model = fitted[est]
    for method in QUERIES[est]:
        for case in ("strings", "object_mixed", "object_dict"):
            build, kind, needles = BAD_DATA[case]
            _refused(lambda: getattr(model, method)(build(_X(6))), kind, *needles)


@pytest.mark.parametrize("est", ["PCA", "KMeans"])
def test_partial_fit_refuses_non_numbers(est):
    build, kind, needles = BAD_DATA["object_mixed"]
    _refused(lambda: FACTORIES[est]().partial_fit(build(_X())), kind, *needles)


@pytest.mark.parametrize("est", ["PCA", "Autoencoder", "VAE"])
def test_inverse_transform_refuses_strings_naming_z(fitted, est):
    _refused(lambda: fitted[est].inverse_transform(np.full((3, 2), "a")), ValueError,
             "Z holds a string", "row 0, column 0")


def test_numeric_strings_and_objects_still_convert():
    """The refusal is only for what cannot be a number: numeric text and Python numbers in
    an object array fit exactly as the float array does."""
    X = np.random.default_rng(1).normal(size=(30, 3))
    ref = PCA(2).fit(X)
    for same in (X.astype(str), X.astype(object)):
        got = PCA(2).fit(same)
        np.testing.assert_allclose(got.explained_variance_, ref.explained_variance_,
                                   rtol=1e-12)


# ----------------------------------------------------------------------------- hyperparameters
class _Opaque:
    pass


BAD_ARRAYS = {"bogus": "bogus", "empty": "", "huge": "x" * 100_000, "bytes": b"auto",
              "dict": {"a": 1}, "object": _Opaque()}


ARRAY_PARAMS = [
    ("GaussianMixture", "weights_init", "(n_components,)"),
    ("GaussianMixture", "means_init", "(n_components, n_features)"),
    ("GaussianMixture", "precisions_init", "(2, 3, 3)"),
    ("BernoulliMixture", "weights_init", "(n_components,)"),
    ("BernoulliMixture", "means_init", "(n_components, n_features)"),
]
# KMeans's init also names a method ('k-means++'), so a string or an object gets its own
# message there; what is left are the values numpy was answering for
ARRAY_CASES = [(e, p, s, v) for e, p, s in ARRAY_PARAMS for v in BAD_ARRAYS] + [
    ("KMeans", "init", "(n_clusters, n_features)", "bytes"),
    ("KMeans", "init", "(n_clusters, n_features)", "dict"),
    ("KMeans", "init", "choose one of", "huge"),
]


@pytest.mark.parametrize("est, param, shape, value", ARRAY_CASES)
def test_array_hyperparameters_name_the_parameter_and_shape(est, param, shape, value):
    model = FACTORIES[est]().set_params(**{param: BAD_ARRAYS[value]})
    msg = _refused(lambda: model.fit(_X()), ValueError, param, shape)
    assert len(msg) < 400, msg


@pytest.mark.parametrize("est, param", [
    ("GaussianMixture", "means_init"), ("BernoulliMixture", "means_init"), ("KMeans", "init"),
])
def test_complex_initial_means_are_refused_not_truncated(est, param):
    """numpy would drop the imaginary part with a warning and fit on the real part."""
    value = np.full((2, 3), 0.5) + 0.1j
    model = FACTORIES[est]().set_params(**{param: value})
    _refused(lambda: model.fit(_X()), ValueError, param, "complex")


def test_gan_reference_modes_that_are_no_array_name_the_parameter():
    model = FACTORIES["GAN"]().set_params(reference_modes="bogus", reference_std=0.1)
    _refused(lambda: model.fit(_X()), ValueError, "reference_modes=", "(n_modes, 3)")


# ----------------------------------------------------------------------------- output kinds
def test_kmeans_fit_predict_hands_back_a_tensor_like_predict():
    X = torch.as_tensor(np.random.default_rng(2).normal(size=(40, 2)))
    km = KMeans(3, n_init=1, random_state=0)
    labels = km.fit_predict(X)
    assert isinstance(labels, torch.Tensor) and labels.device == X.device
    assert torch.equal(labels, km.predict(X))
    assert isinstance(km.fit_predict(X.numpy()), np.ndarray)


# ----------------------------------------------------------------------------- unfitted
@pytest.mark.parametrize("est", ["GaussianMixture", "BernoulliMixture"])
def test_sample_on_an_unfitted_mixture_is_not_fitted_error(est):
    with pytest.raises(NotFittedError):
        FACTORIES[est]().sample(3)


# ----------------------------------------------------------------------------- checkpoints
@pytest.mark.parametrize("est", ["Autoencoder", "VAE", "GAN"])
@pytest.mark.parametrize("path, needle", [
    ("", "empty"),
    ("x" * 5000, "bytes"),
    ("FOLDER", "folder"),
    ("FILE/run.ckpt", "not a folder"),
])
def test_unusable_checkpoint_paths_are_refused_before_training(est, path, needle, tmp_path):
    (tmp_path / "file").write_text("")
    path = path.replace("FOLDER", str(tmp_path)).replace("FILE", str(tmp_path / "file"))
    model = FACTORIES[est]().set_params(checkpoint_path=path)
    msg = _refused(lambda: model.fit(_X()), ValueError, "checkpoint_path", needle)
    assert len(msg) < 400, msg
    assert not hasattr(model, "n_features_in_")  # refused before anything was fitted


def test_a_missing_checkpoint_folder_is_created(tmp_path):
    path = tmp_path / "new" / "sub" / "run.ckpt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        FACTORIES["Autoencoder"]().set_params(checkpoint_path=path).fit(_X())
    assert path.is_file()


def test_a_failed_checkpoint_write_names_the_path(tmp_path, monkeypatch):
    from latentspace import _atomic

    def full_disk(path, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_atomic, "atomic_write_bytes", full_disk)
    path = tmp_path / "run.ckpt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(OSError) as info:
            FACTORIES["Autoencoder"]().set_params(checkpoint_path=path).fit(_X())
    assert info.value.errno == errno.ENOSPC
    assert str(path) in str(info.value) and "checkpoint" in str(info.value)
