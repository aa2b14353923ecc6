"""Bad input for the neural models: rows 1–9 (and 19) of the reliability matrix, for the
Autoencoder, the VAE and the GAN alike."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.exceptions import NotFittedError

from latentspace.neural import GAN, VAE, Autoencoder

SMALL = dict(max_epochs=2, batch_size=16, random_state=0)


def make(name):
    if name == "Autoencoder":
        return Autoencoder(2, hidden_sizes=(8,), **SMALL)
    if name == "VAE":
        return VAE(2, hidden_sizes=(8,), likelihood="gaussian", **SMALL)
    return GAN(2, generator_sizes=(8,), discriminator_sizes=(8,), **SMALL)


NAMES = ["Autoencoder", "VAE", "GAN"]


def queries(est):
    """The post-fit methods that take data X, by name."""
    out = {}
    for name in ("transform", "score_samples", "discriminate", "reconstruct"):
        if hasattr(est, name):
            out[name] = getattr(est, name)
    return out


@pytest.fixture
def X():
    return np.random.default_rng(0).normal(size=(40, 3))


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="posterior collapse")
        yield


def _fitted_floats_finite(est):
    for p in est.network_.parameters():
        assert torch.isfinite(p).all()
    for rec in est.history_:
        for k, v in rec.items():
            assert np.isfinite(v), (k, v)
    for k, v in vars(est).items():
        if k.endswith("_") and isinstance(v, np.ndarray):
            assert np.all(np.isfinite(v)), k


# ----------------------------------------------------------------------------- rows 1, 2
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("bad, word", [(np.nan, "NaN"), (np.inf, "infinity"), (-np.inf, "infinity")])
def test_non_finite_input_is_refused_and_the_fit_survives(name, bad, word, X):
    est = make(name).fit(X)
    before = {k: f(X) for k, f in queries(est).items()}
    Xbad = X.copy()
    Xbad[3, 1] = bad
    with pytest.raises(ValueError, match=word):
        make(name).fit(Xbad)
    for k, f in queries(est).items():
        with pytest.raises(ValueError, match=word):
            f(Xbad)
        with pytest.raises(ValueError, match=word):
            f(torch.from_numpy(Xbad))
    for k, f in queries(est).items():  # an earlier fit stays usable and unchanged
        np.testing.assert_array_equal(f(X), before[k])


@pytest.mark.parametrize("name", NAMES)
def test_a_failed_refit_leaves_the_earlier_fit_intact(name, X):
    est = make(name).fit(X)
    before = {k: f(X) for k, f in queries(est).items()}
    bad = np.random.default_rng(3).normal(size=(20, 5))
    if name == "GAN":
        est.set_params(reference_modes=np.zeros((2, 7)), reference_std=0.1)  # fails after reset
    else:
        est.set_params(network="conv")  # 5 features cannot be 28×28 images
    with pytest.raises(ValueError):
        est.fit(bad)
    assert est.n_features_in_ == 3
    for k, f in queries(est).items():
        np.testing.assert_array_equal(f(X), before[k])


# ----------------------------------------------------------------------------- row 3
@pytest.mark.parametrize("name", NAMES)
def test_empty_input(name, X):
    with pytest.raises(ValueError, match="0 sample"):
        make(name).fit(np.empty((0, 3)))
    with pytest.raises(ValueError, match="0 feature"):
        make(name).fit(np.empty((5, 0)))
    with pytest.raises(ValueError, match="0 sample"):
        make(name).fit(torch.empty((0, 3)))
    est = make(name).fit(X)
    for f in queries(est).values():
        with pytest.raises(ValueError, match="0 sample"):
            f(np.empty((0, 3)))


# ----------------------------------------------------------------------------- row 4
@pytest.mark.parametrize("name", NAMES)
def test_one_row_and_one_feature(name):
    one_row = make(name).fit(np.array([[0.1, 0.2, 0.3]]))
    one_feat = make(name).fit(np.linspace(0, 1, 30)[:, None])
    for est, Xq in ((one_row, np.array([[0.1, 0.2, 0.3]])), (one_feat, np.array([[0.5]]))):
        _fitted_floats_finite(est)
        for f in queries(est).values():
            assert np.all(np.isfinite(f(Xq)))


# ----------------------------------------------------------------------------- row 5, 6
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("case", ["constant_feature", "all_constant", "duplicates"])
def test_constant_and_duplicate_data(name, case, X):
    if case == "constant_feature":
        X = X.copy()
        X[:, 1] = 7.0
    elif case == "all_constant":
        X = np.full((30, 3), 0.5)
    else:
        X = np.repeat(X[:2], 20, axis=0)  # 40 rows, 2 distinct points
    est = make(name)
    if name == "VAE":
        est.set_params(max_epochs=20)  # let a learned variance shrink towards its floor
    est.fit(X)
    _fitted_floats_finite(est)
    for f in queries(est).values():
        assert np.all(np.isfinite(f(X)))


# ----------------------------------------------------------------------------- row 7
@pytest.mark.parametrize("name", NAMES)
def test_latent_dim_above_features_and_batch_above_samples(name):
    # an overcomplete code is a legitimate (sparse, denoising) design: it must just work
    X = np.random.default_rng(1).normal(size=(5, 2))
    est = make(name).set_params(latent_dim=6, batch_size=64).fit(X)
    _fitted_floats_finite(est)
    if hasattr(est, "transform"):
        assert est.transform(X).shape == (5, 6)


# ----------------------------------------------------------------------------- row 8
@pytest.mark.parametrize("name", NAMES)
def test_wrong_number_of_features(name, X):
    est = make(name).fit(X)
    msg = f"X has 2 features, but {name} is expecting 3 features as input."
    for f in queries(est).values():
        with pytest.raises(ValueError, match=msg):
            f(X[:, :2])
        with pytest.raises(ValueError, match=msg):
            f(torch.from_numpy(X[:, :2]))


# ----------------------------------------------------------------------------- row 9
@pytest.mark.parametrize("name", NAMES)
def test_dtypes_and_containers(name, X):
    est = make(name).fit(X.astype(np.float32))
    X32 = X.astype(np.float32)
    for k, f in queries(est).items():
        if k in ("transform", "reconstruct"):
            assert f(X32).dtype == np.float32  # float32 stays float32
            assert f(X).dtype == np.float64
    make(name).fit(X.astype(np.float16))  # converted
    make(name).fit((X > 0).astype(int))  # converted
    make(name).fit(X > 0)  # bool
    make(name).fit(X.astype(object))  # numeric objects convert
    make(name).fit(X.tolist())  # nested lists
    import pandas as pd

    make(name).fit(pd.DataFrame(X, columns=list("abc")))
    with pytest.raises(ValueError):
        make(name).fit(np.array([["a", "b", "c"]] * 5, dtype=object))
    with pytest.raises((ValueError, TypeError)):
        make(name).fit(X + 1j)
    with pytest.raises(TypeError, match="[Ss]parse"):
        make(name).fit(sp.csr_matrix(X))
    with pytest.raises(ValueError, match="2D"):
        make(name).fit(X[:, 0])


# ----------------------------------------------------------------------------- row 19
@pytest.mark.parametrize("name", NAMES)
def test_unfitted_use_raises_not_fitted(name, X):
    est = make(name)
    for f in queries(est).values():
        with pytest.raises(NotFittedError):
            f(X)
    if hasattr(est, "sample"):
        with pytest.raises(NotFittedError):
            est.sample(3)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    "params, match",
    [
        ({"max_epochs": 0}, "max_epochs"),
        ({"batch_size": 1.5}, "batch_size"),
        ({"optimizer": "lbfgs"}, "optimizer"),
        ({"learning_rate": -1.0}, "learning_rate"),
        ({"learning_rate_schedule": "step"}, "learning_rate_schedule"),
        ({"momentum": 1.0}, "momentum"),
        ({"grad_clip": 0.0}, "grad_clip"),
        ({"checkpoint_every": 0}, "checkpoint_every"),
        ({"device": "tpu"}, "device"),
        ({"latent_dim": 0}, "latent_dim"),
    ],
)
def test_bad_common_hyperparameters_raise_in_fit_naming_them(name, params, match, X):
    est = make(name).set_params(**params)
    with pytest.raises(ValueError, match=match):
        est.fit(X)


def test_gan_specific_hyperparameters(X):
    for params, match in [({"k_steps": 0}, "k_steps"), ({"loss": "wasserstein"}, "loss"),
                          ({"noise": "cauchy"}, "noise"),
                          ({"reference_modes": np.zeros((2, 3))}, "reference_std"),
                          ({"reference_modes": np.zeros((2, 5)), "reference_std": 0.1},
                           "reference_modes")]:
        with pytest.raises(ValueError, match=match):
            make("GAN").set_params(**params).fit(X)


def test_early_stopping_needs_room_for_a_split():
    with pytest.raises(ValueError, match="validation"):
        make("Autoencoder").set_params(early_stopping=True).fit(np.ones((1, 3)))
