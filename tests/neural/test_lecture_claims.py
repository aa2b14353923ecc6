"""The lecture's claims about linear networks, with default training settings.

Only what a student would type is given: ``latent_dim``, ``hidden_sizes=()`` and, for the VAE,
``likelihood="gaussian"`` (plus a seed, so that a failure can be reproduced). Three datasets
of different shapes, none of which the defaults were tuned on alone: the digits (1797×64,
pixels in [0, 1]), the Olivetti faces (400×4096, wider than tall) and a tall synthetic sample
of a probabilistic-PCA model (5000×20). The oracles are scikit-learn's PCA and the closed-form
maximum likelihood of probabilistic PCA (Tipping & Bishop, 1999).
"""

import warnings

import numpy as np
import pytest
from scipy.linalg import subspace_angles
from scipy.stats import multivariate_normal
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA

from latentspace.exceptions import ConvergenceWarning
from latentspace.neural import VAE, Autoencoder

from _ppca import ppca_loglik  # the closed-form oracle, shared with test_vae.py

L = 5  # latent dimension of every claim below


def tall_ppca_sample(n=5000, d=20, seed=0):
    """x = W z + μ + ε with z ~ N(0, I_L), ε ~ N(0, 0.25 I): a PPCA model with L = 5."""
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(d, L)) * np.linspace(3.0, 1.0, L)
    return rng.normal(size=(n, L)) @ W.T + rng.normal(size=d) + 0.5 * rng.normal(size=(n, d))


@pytest.fixture(scope="module", params=["digits", "olivetti", "tall"])
def X(request):
    if request.param == "digits":
        return load_digits().data / 16.0
    if request.param == "olivetti":
        data = request.getfixturevalue("shared_data")
        images = np.load(data / "olivetti_faces.npz")["images"]
        return images.reshape(len(images), -1).astype(np.float64) / 255.0
    return tall_ppca_sample()


def fit_quietly(est, X):
    """Fit and return the ConvergenceWarnings it raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.fit(X)
    return [w for w in caught if issubclass(w.category, ConvergenceWarning)]


def decoder_columns(model):
    """Columns of a linear decoder, read through the public API: g(e_k) − g(0)."""
    zero = model.inverse_transform(np.zeros((1, L)))
    return (model.inverse_transform(np.eye(L)) - zero).T.astype(np.float64)


def test_closed_form_ppca_likelihood_is_the_likelihood_of_the_ppca_mle():
    # the oracle's oracle: the Gaussian N(x̄, V_L (Λ_L − σ²) V_Lᵀ + σ² I), evaluated by scipy
    X = tall_ppca_sample(n=2000)
    n, d = X.shape
    lam, V = np.linalg.eigh(np.cov(X.T, bias=True))
    lam, V = lam[::-1], V[:, ::-1]
    sigma2 = lam[L:].mean()
    cov = V[:, :L] @ np.diag(lam[:L] - sigma2) @ V[:, :L].T + sigma2 * np.eye(d)
    ref = multivariate_normal(X.mean(0), cov).logpdf(X).mean()
    assert ppca_loglik(X, L) == pytest.approx(ref, rel=1e-10)


def test_linear_autoencoder_is_pca(X):
    ae = Autoencoder(latent_dim=L, hidden_sizes=(), random_state=0)
    assert not fit_quietly(ae, X) and ae.converged_ and ae.stop_reason_ == "converged"
    pca = PCA(L).fit(X)
    assert subspace_angles(decoder_columns(ae), pca.components_.T).max() <= 0.1
    err_pca = np.mean(((pca.inverse_transform(pca.transform(X)) - X) ** 2).sum(1))
    err_ae = -ae.score(X)
    # PCA is the optimum of this loss; the network gets within 2% of it
    assert err_pca <= err_ae * (1 + 1e-6) and err_ae <= 1.02 * err_pca


def test_linear_gaussian_vae_elbo_meets_the_ppca_likelihood(X):
    vae = VAE(latent_dim=L, hidden_sizes=(), likelihood="gaussian", random_state=0)
    assert not fit_quietly(vae, X) and vae.converged_
    ll = ppca_loglik(X, L)
    # score_samples draws one z per row: average several draws, and keep their error
    elbos = np.array([vae.score_samples(X, random_state=s).mean() for s in range(5)])
    elbo, elbo_err = elbos.mean(), 3 * elbos.std(ddof=1) / np.sqrt(len(elbos))
    assert abs(ll - elbo) <= 0.02 * abs(ll)
    assert elbo <= ll + elbo_err  # a lower bound of a likelihood that PPCA maximises
    iw = np.array([vae.score_samples(X, n_importance=64, random_state=s).mean()
                   for s in range(2)])
    iw_err = 3 * max(iw.std(ddof=1), 1e-12) / np.sqrt(len(iw))
    assert elbo - elbo_err - iw_err <= iw.mean() <= ll + iw_err  # ELBO ≤ IWAE ≤ log p(x)
