"""The neural tour chapters on digits (quick mode): their numbers come from the estimators
they leave in ``ctx.results``, checked against independent computations."""

import numpy as np
import pytest
from scipy.linalg import subspace_angles
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA as SkPCA

from latentspace.report import TourContext
from latentspace.report.chapters import available_chapters
from latentspace.report.chapters import _shared, autoencoders, gan, linear_ae, vae

CHAPTERS = {"linear_ae": linear_ae, "autoencoders": autoencoders, "vae": vae, "gan": gan}


@pytest.fixture(scope="module")
def ctx():
    d = load_digits()
    return TourContext(name="digits", X=d.data / 16.0, y=d.target, image_shape=(8, 8),
                       target_names=[str(i) for i in range(10)], quick=True, random_state=0)


@pytest.fixture(scope="module")
def chapters(ctx):
    import matplotlib.pyplot as plt

    out = {key: mod.run(ctx) for key, mod in CHAPTERS.items()}
    plt.close("all")
    return out


def test_chapters_are_registered_in_order():
    keys = [k for k, _ in available_chapters()]
    assert [k for k in keys if k in CHAPTERS] == ["linear_ae", "autoencoders", "vae", "gan"]


def test_chapter_contract(chapters):
    for key, ch in chapters.items():
        assert ch.key == key == CHAPTERS[key].KEY and ch.title == CHAPTERS[key].TITLE
        assert ch.intro and ch.formula and ch.figures and ch.numbers
        for fig in ch.figures:
            assert fig.caption and fig.alt and fig.figure.axes


def test_linear_ae_numbers_match_sklearn_pca(chapters, ctx):
    nums, ae = chapters["linear_ae"].numbers, ctx.results["linear_ae"]
    X, _ = _shared.training_rows(ctx)
    sk = SkPCA(5).fit(X)
    angle = subspace_angles(_shared.decoder_columns(ae), sk.components_.T).max()
    assert nums["largest principal angle (rad)"] == pytest.approx(angle, abs=1e-6)
    assert angle <= 0.05
    assert nums["linear AE reconstruction error (sum of squares per sample)"] == pytest.approx(-ae.score(X))
    err_sk = np.mean(((sk.inverse_transform(sk.transform(X)) - X) ** 2).sum(1))
    assert nums["PCA reconstruction error (sum of squares per sample)"] == pytest.approx(err_sk, rel=1e-6)


def test_autoencoder_numbers(chapters, ctx):
    nums = chapters["autoencoders"].numbers
    sparse = ctx.results["sparse_autoencoder"]
    np.testing.assert_allclose(nums["sparse AE: mean activations ρ̂ⱼ"], sparse.mean_activation_)
    assert nums["sparse AE: max |ρ̂ⱼ − ρ| over 25 units"] == pytest.approx(
        np.abs(sparse.mean_activation_ - 0.05).max())
    assert (nums["denoising AE: error of g(f(x̃)) against clean x"]
            < nums["held-out error of the noisy input itself"])


def test_vae_and_gan_numbers(chapters, ctx):
    v = ctx.results["vae"]
    assert chapters["vae"].numbers["active latent units (of 2)"] == v.active_units_
    assert chapters["vae"].numbers["epochs"] == len(v.history_)
    nums, ring = chapters["gan"].numbers, ctx.results["gan_ring"]
    assert nums["ring: modes covered, epoch by epoch"] == [h["modes_covered"] for h in ring.history_]
    assert 0 <= nums["ring: modes covered (of 8)"] <= 8
    assert np.isfinite(nums["images: Parzen log-likelihood on test rows (nats)"])
    image_gan = ctx.results["gan"]
    assert (nums["images: sample diversity, last epoch (1 = as varied as the data)"]
            == image_gan.history_[-1]["diversity"])
