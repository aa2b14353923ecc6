"""Every estimator on a CUDA device against the same fit on the CPU (skipped without a GPU).

The CPU result is the oracle: from the same data, initial parameters and seeds, a fit on the
GPU must reach the same parameters (up to the GPU's different summation order) and hand its
results back in the caller's type and device. ``LATENTSPACE_GPU_TEST_DEVICE`` can point the
module at another device (``cpu`` runs its logic on a machine without a GPU).
"""

import os

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from latentspace import (
    GAN,
    PCA,
    VAE,
    Autoencoder,
    BernoulliMixture,
    GaussianMixture,
    KMeans,
    load,
)

DEVICE = os.environ.get("LATENTSPACE_GPU_TEST_DEVICE", "cuda")

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(
        DEVICE.startswith("cuda") and not torch.cuda.is_available(), reason="needs a CUDA device"
    ),
]


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X.astype(np.float64), y


def _on_device(t):
    return isinstance(t, torch.Tensor) and t.device.type == torch.device(DEVICE).type


@pytest.mark.parametrize("solver", ["full", "covariance_eigh", "gram", "randomized"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_pca(digits, solver, dtype):
    X = digits[0].astype(dtype)
    if solver == "gram":
        X = X[:50]
    cpu = PCA(10, svd_solver=solver, random_state=0).fit(X)
    gpu = PCA(10, svd_solver=solver, random_state=0, device=DEVICE).fit(X)
    rtol = 1e-9 if dtype == np.float64 else 1e-4
    if solver == "randomized":
        rtol = 1e-3  # the device draws its own random test matrix
    np.testing.assert_allclose(gpu.explained_variance_, cpu.explained_variance_, rtol=rtol)
    k = 5  # leading components are well separated on digits
    cos = np.abs(np.sum(gpu.components_[:k] * cpu.components_[:k], axis=1))
    assert cos.min() > 1 - (1e-8 if dtype == np.float64 and solver != "randomized" else 1e-3)
    Xt = torch.as_tensor(X, device=DEVICE)
    Z = gpu.transform(Xt)
    assert _on_device(Z) and Z.dtype == Xt.dtype
    np.testing.assert_allclose(Z.cpu().numpy(), gpu.transform(X), rtol=1e-5, atol=1e-4)
    # randomized: each device draws its own test matrix, so the fitted models differ slightly
    np.testing.assert_allclose(gpu.score_samples(X), cpu.score_samples(X),
                               rtol=2e-3 if solver == "randomized" else 1e-4)
    assert gpu.sample(7, random_state=0).shape == (7, X.shape[1])


def test_pca_gram_float32_small_eigenvalues():
    # wide float32 data with a spectrum spanning four decades, as faces have: the device's
    # eigensolver must keep the small eigenvalues as accurate as the CPU's
    rng = np.random.default_rng(0)
    scales = np.logspace(0, -2, 120)
    X = ((rng.standard_normal((600, 120)) * scales) @ np.linalg.qr(rng.standard_normal((2000, 120)))[0].T
         + 3.0).astype(np.float32)
    cpu = PCA(100, svd_solver="gram").fit(X)
    gpu = PCA(100, svd_solver="gram", device=DEVICE).fit(X)
    np.testing.assert_allclose(gpu.explained_variance_, cpu.explained_variance_, rtol=1e-3)


def test_pca_partial_fit_and_save_load(digits, tmp_path):
    X = digits[0]
    inc = PCA(8, device=DEVICE)
    for start in range(0, len(X), 400):
        inc.partial_fit(X[start : start + 400])
    ref = PCA(8).fit(X)
    np.testing.assert_allclose(inc.explained_variance_, ref.explained_variance_, rtol=1e-8)
    inc.save(tmp_path / "pca.safetensors")
    back = load(tmp_path / "pca.safetensors")
    np.testing.assert_allclose(back.transform(X), inc.transform(X), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_kmeans(digits, dtype):
    X = digits[0].astype(dtype)
    C0 = X[np.random.default_rng(0).choice(len(X), 10, replace=False)].copy()
    cpu = KMeans(10, init=C0, max_iter=50, tol=0).fit(X)
    gpu = KMeans(10, init=C0, max_iter=50, tol=0, device=DEVICE).fit(X)
    tol = 1e-8 if dtype == np.float64 else 1e-3
    np.testing.assert_allclose(gpu.cluster_centers_, cpu.cluster_centers_, rtol=tol, atol=tol)
    np.testing.assert_allclose(gpu.inertia_, cpu.inertia_, rtol=tol)
    assert (gpu.labels_ == gpu.predict(X)).all()
    labels = gpu.predict(torch.as_tensor(X, device=DEVICE))
    assert _on_device(labels)
    seeded = KMeans(10, n_init=3, random_state=0, device=DEVICE).fit(X)
    assert seeded.inertia_ <= 1.05 * cpu.inertia_


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_gaussian_mixture(digits, covariance_type):
    X = PCA(8).fit_transform(digits[0])
    kw = dict(covariance_type=covariance_type, max_iter=20, tol=0, random_state=0)
    # same initial parameters: both start from one k-means initialisation
    init = GaussianMixture(5, covariance_type=covariance_type, max_iter=0, random_state=0).fit(X)
    cpu = GaussianMixture(5, **kw, means_init=init.means_, weights_init=init.weights_,
                          precisions_init=init.precisions_).fit(X)
    gpu = GaussianMixture(5, **kw, means_init=init.means_, weights_init=init.weights_,
                          precisions_init=init.precisions_, device=DEVICE).fit(X)
    np.testing.assert_allclose(gpu.means_, cpu.means_, rtol=1e-7, atol=1e-7)
    np.testing.assert_allclose(gpu.weights_, cpu.weights_, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(gpu.lower_bounds_, cpu.lower_bounds_, rtol=1e-9)
    proba = gpu.predict_proba(torch.as_tensor(X, device=DEVICE))
    assert _on_device(proba)
    np.testing.assert_allclose(proba.sum(1).cpu().numpy(), 1.0, rtol=1e-12)
    assert gpu.sample(11)[0].shape == (11, X.shape[1])


def test_bernoulli_mixture(digits):
    X = (digits[0] > 7).astype(np.float64)
    init = BernoulliMixture(6, max_iter=0, random_state=0).fit(X)
    kw = dict(max_iter=15, tol=0, means_init=init.means_, weights_init=init.weights_)
    cpu = BernoulliMixture(6, **kw).fit(X)
    gpu = BernoulliMixture(6, **kw, device=DEVICE).fit(X)
    np.testing.assert_allclose(gpu.means_, cpu.means_, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(gpu.lower_bounds_, cpu.lower_bounds_, rtol=1e-10)
    assert set(np.unique(gpu.sample(20)[0])) <= {0.0, 1.0}


def test_neural_models_train_and_round_trip(digits, tmp_path):
    X = (digits[0] / 16.0).astype(np.float32)
    ae = Autoencoder(5, hidden_sizes=(64,), max_epochs=30, random_state=0, device=DEVICE).fit(X)
    err = np.mean((ae.inverse_transform(ae.transform(X)) - X) ** 2)
    assert err < np.var(X, axis=0).sum() / X.shape[1]  # better than the mean image
    Xt = torch.as_tensor(X, device=DEVICE)
    assert _on_device(ae.transform(Xt))

    vae = VAE(4, hidden_sizes=(64,), max_epochs=20, random_state=0, device=DEVICE).fit(X)
    elbo = vae.score_samples(X[:200])
    iw = vae.score_samples(X[:200], n_importance=64, random_state=0)
    assert np.isfinite(elbo).all() and np.mean(iw) >= np.mean(elbo) - 0.5
    vae.save(tmp_path / "vae.safetensors")
    back = load(tmp_path / "vae.safetensors")
    np.testing.assert_allclose(back.transform(X[:50]), vae.transform(X[:50]), rtol=1e-5, atol=1e-6)

    gan = GAN(2, generator_sizes=(32,), discriminator_sizes=(32,), max_epochs=3,
              random_state=0, device=DEVICE).fit(X[:512])
    assert gan.sample(9).shape == (9, X.shape[1])
