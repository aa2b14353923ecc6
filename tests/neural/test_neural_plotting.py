"""Displays of the neural models: the numbers they prepare, checked against the estimators."""

import warnings

import numpy as np
import pytest
from scipy.stats import norm

from latentspace.neural import VAE, Autoencoder
from latentspace.plotting import (
    LatentGridDisplay,
    LossCurveDisplay,
    MeanActivationDisplay,
    SampleGridDisplay,
)


@pytest.fixture(scope="module")
def vae():
    rng = np.random.default_rng(0)
    X = rng.random((120, 12))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="posterior collapse")  # uniform noise data
        return VAE(2, hidden_sizes=(8,), max_epochs=3, random_state=0).fit(X), X


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


def test_loss_curves_follow_history():
    history = [{"epoch": 1, "loss": 3.0, "kl": 1.0, "n_skipped": 0, "seconds": 0.1},
               {"epoch": 2, "loss": 2.0, "n_skipped": 1, "seconds": 0.1}]
    disp = LossCurveDisplay.from_history(history)
    assert list(disp.curves) == ["loss", "kl"]  # bookkeeping keys are left out
    np.testing.assert_array_equal(disp.curves["loss"], [3.0, 2.0])
    assert np.isnan(disp.curves["kl"][1])
    disp.plot()
    assert disp.axes_.size >= 2 and disp.figure_ is not None
    with pytest.raises(ValueError, match="empty"):
        LossCurveDisplay.from_history([])
    with pytest.raises(ValueError, match="history_"):
        LossCurveDisplay.from_estimator(Autoencoder())


def test_latent_grid_tiles_are_decoded_grid_points(vae):
    est, X = vae
    disp = LatentGridDisplay.from_estimator(est, (3, 4), n=5)
    np.testing.assert_allclose(disp.z1, norm.ppf(np.linspace(0.05, 0.95, 5)))
    i, j = 1, 3  # row i has z2[i], column j has z1[j]
    tile = est.inverse_transform(np.array([[disp.z1[j], disp.z2[i]]])).reshape(3, 4)
    # decoded in a batch of 25 and alone: float32 products of other shapes, so to float32
    # precision rather than bit for bit
    np.testing.assert_allclose(disp.images[i, j], tile, rtol=1e-5, atol=1e-6)
    # the mosaic puts the largest z2 on top
    np.testing.assert_allclose(disp.mosaic[:3, :4], disp.images[-1, 0])
    assert disp.mosaic.shape == (15, 20)
    disp.plot()
    assert disp.ax_ is not None
    by_data = LatentGridDisplay.from_estimator(est, (3, 4), n=3, X=X)
    Z = est.transform(X)
    np.testing.assert_allclose(by_data.z1, np.quantile(Z[:, 0], [0.05, 0.5, 0.95]))
    with pytest.raises(ValueError, match="latent_dim=2"):
        LatentGridDisplay.from_estimator(VAE(3).set_params(), (3, 4))


def test_sample_grid_shows_the_estimators_samples(vae):
    est, _ = vae
    disp = SampleGridDisplay.from_estimator(est, (3, 4), n_samples=6, random_state=3)
    np.testing.assert_allclose(disp.images, est.sample(6, random_state=3).reshape(6, 3, 4))
    disp.plot()


def test_mean_activation_display():
    disp = MeanActivationDisplay([0.04, 0.06, 0.05], target=0.05)
    assert disp.max_deviation == pytest.approx(0.01)
    disp.plot()
    assert disp.ax_.get_xlabel() == "code unit j"
    with pytest.raises(ValueError, match="mean_activation_"):
        MeanActivationDisplay.from_estimator(object())
