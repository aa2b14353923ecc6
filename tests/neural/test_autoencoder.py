"""Autoencoders against their oracles: the linear one against PCA, the sparse one against its
target ρ, the denoising one against a plain autoencoder of the same size."""

import warnings

import numpy as np
import pytest
import torch
from scipy.linalg import subspace_angles
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA

import latentspace
from latentspace.exceptions import ConvergenceWarning
from latentspace.neural import Autoencoder


@pytest.fixture(scope="module")
def digits():
    return load_digits().data / 16.0  # (1797, 64) in [0, 1]


def decoder_columns(ae):
    """Columns of a linear decoder, read through the public API: g(e_i) - g(0)."""
    L = ae.latent_dim
    return (ae.inverse_transform(np.eye(L)) - ae.inverse_transform(np.zeros((1, L)))).T


def test_linear_autoencoder_spans_pca_subspace(digits):
    # with default training settings; more datasets in test_lecture_claims.py
    ae = Autoencoder(5, random_state=0).fit(digits)
    pca = PCA(5).fit(digits)
    angle = subspace_angles(decoder_columns(ae), pca.components_.T).max()
    assert angle <= 0.1
    err_pca = np.mean(((pca.inverse_transform(pca.transform(digits)) - digits) ** 2).sum(1))
    err_ae = -ae.score(digits)
    # the score is the mean squared error of reconstruct, up to float32 arithmetic
    assert err_ae == pytest.approx(np.mean(((ae.reconstruct(digits) - digits) ** 2).sum(1)),
                                   rel=1e-5)
    assert err_pca <= err_ae * (1 + 1e-6) and err_ae <= 1.02 * err_pca


def test_sparse_autoencoder_mean_activations_reach_rho(digits):
    rho = 0.05
    # default training, within a budget of 200 epochs: the penalty has done its work by then,
    # the reconstruction still improves -- and the fit says so
    with pytest.warns(ConvergenceWarning, match="max_epochs=200"):
        sae = Autoencoder(25, sparsity_target=rho, sparsity_weight=3.0, max_epochs=200,
                          random_state=0).fit(digits)
    assert not sae.converged_ and sae.stop_reason_ == "max_epochs"
    assert sae.mean_activation_.shape == (25,)
    assert np.abs(sae.mean_activation_ - rho).max() <= 0.02
    # the attribute is what the public transform gives
    np.testing.assert_allclose(sae.transform(digits).mean(0), sae.mean_activation_, rtol=1e-5)
    assert "sparsity_kl" in sae.history_[-1]


def test_denoising_beats_plain_autoencoder_on_noisy_digits(digits):
    rng = np.random.default_rng(0)
    order = rng.permutation(len(digits))
    train, test = digits[order[:1400]], digits[order[1400:]]
    noisy = test + 0.3 * rng.standard_normal(test.shape)
    # default training, the same budget of 150 epochs for both (neither has converged then)
    kw = dict(hidden_sizes=(64,), max_epochs=150, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        dae = Autoencoder(16, noise=("gaussian", 0.3), **kw).fit(train)
        ae = Autoencoder(16, **kw).fit(train)
    err = lambda m: ((m.reconstruct(noisy) - test) ** 2).sum(1).mean()  # noqa: E731
    assert err(dae) < err(ae)
    assert err(dae) < ((noisy - test) ** 2).sum(1).mean()  # it does denoise


def test_mask_noise_and_bce_loss_train(digits):
    ae = Autoencoder(8, hidden_sizes=(32,), loss="bce", noise=("mask", 0.25), max_epochs=3,
                     random_state=0).fit(digits[:300])
    rec = ae.inverse_transform(ae.transform(digits[:10]))
    assert rec.min() >= 0 and rec.max() <= 1  # Bernoulli means
    assert np.all(np.isfinite(ae.score_samples(digits[:10])))


def test_types_devices_and_dtypes_follow_the_input(digits):
    ae = Autoencoder(3, hidden_sizes=(16,), max_epochs=2, random_state=0).fit(digits[:200])
    X32 = digits[:7].astype(np.float32)
    assert ae.transform(X32).dtype == np.float32 and ae.transform(digits[:7]).dtype == np.float64
    Zt = ae.transform(torch.from_numpy(X32))
    assert isinstance(Zt, torch.Tensor) and Zt.shape == (7, 3)
    np.testing.assert_allclose(Zt.numpy(), ae.transform(X32))
    assert isinstance(ae.inverse_transform(Zt), torch.Tensor)
    assert ae.inverse_transform(np.zeros((2, 3))).shape == (2, 64)
    with pytest.raises(ValueError, match="expecting 3 latent"):
        ae.inverse_transform(np.zeros((2, 4)))


@pytest.mark.parametrize(
    "params, match",
    [
        ({"noise": ("salt", 0.1)}, "noise"),
        ({"noise": ("gaussian", -1.0)}, "noise std"),
        ({"noise": ("mask", 1.0)}, "mask probability"),
        ({"sparsity_target": 0.05, "code_activation": None}, "code_activation"),
        ({"sparsity_target": 1.5}, "sparsity_target"),
        ({"loss": "l1"}, "loss"),
        ({"hidden_sizes": (8, 0)}, "hidden_sizes"),
        ({"activation": "swish"}, "activation"),
        ({"latent_dim": 0}, "latent_dim"),
        ({"network": "transformer"}, "network"),
        ({"batch_size": "big"}, "batch_size must be 'auto' or a positive integer"),
        ({"batch_size": 0}, "batch_size"),
        ({"learning_rate_schedule": "step"}, "learning_rate_schedule"),
    ],
)
def test_bad_hyperparameters_raise_in_fit(digits, params, match):
    est = Autoencoder(**params)  # construction never validates (sklearn convention)
    with pytest.raises(ValueError, match=match):
        est.fit(digits[:20])


def test_bce_needs_unit_interval_and_conv_needs_28x28(digits):
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        Autoencoder(loss="bce", max_epochs=1).fit(digits * 16)
    with pytest.raises(ValueError, match="784"):
        Autoencoder(network="conv", max_epochs=1).fit(digits)


def test_convolutional_option_on_28x28_images():
    rng = np.random.default_rng(0)
    X = rng.random((40, 784)).astype(np.float32)
    ae = Autoencoder(4, network="conv", loss="bce", max_epochs=2, batch_size=20,
                     random_state=0).fit(X)
    assert ae.transform(X).shape == (40, 4) and ae.reconstruct(X).shape == (40, 784)
    assert isinstance(ae.network_.encoder[1], torch.nn.Conv2d)


def test_save_load_round_trip(tmp_path, digits):
    ae = Autoencoder(4, hidden_sizes=(16,), noise=("gaussian", 0.1), max_epochs=3,
                     random_state=0).fit(digits[:200])
    path = tmp_path / "ae.safetensors"
    ae.save(path)
    back = latentspace.load(path)
    assert type(back) is Autoencoder and back.noise == ("gaussian", 0.1)
    np.testing.assert_array_equal(back.transform(digits[:50]), ae.transform(digits[:50]))
    assert back.history_ == ae.history_
    assert not hasattr(ae, "mean_activation_")  # a figure of sparse autoencoders only
    sparse = Autoencoder(4, sparsity_target=0.1, max_epochs=2, random_state=0).fit(digits[:200])
    sparse.save(path)
    np.testing.assert_array_equal(latentspace.load(path).mean_activation_, sparse.mean_activation_)


def test_early_stopping_holds_out_rows_and_keeps_the_best_epoch(digits):
    # a constant rate: training ends at the first plateau of the validation loss (with the
    # default schedule it would halve the rate there and go on)
    ae = Autoencoder(4, hidden_sizes=(32,), early_stopping=True, validation_fraction=0.2,
                     n_iter_no_change=3, tol=0.0, max_epochs=300, learning_rate=0.05,
                     learning_rate_schedule="constant", random_state=0).fit(digits)
    val = [h["val_loss"] for h in ae.history_]
    assert ae.n_iter_ < 300  # stopped
    best = int(np.argmin(val))
    assert len(val) - 1 - best == 3  # exactly n_iter_no_change epochs without improvement
