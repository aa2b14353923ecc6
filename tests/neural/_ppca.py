"""The exact log-likelihood of probabilistic PCA's maximum-likelihood fit, an oracle for the
linear-Gaussian VAE (imported by the tests of this folder)."""

import numpy as np


def ppca_loglik(X, n_components):
    """Mean log-likelihood of the PPCA maximum-likelihood fit, in closed form: with λ_j the
    eigenvalues of the sample covariance and σ² = Σ_{j>L} λ_j / (d − L),
    -½ [d log 2π + Σ_{j≤L} log λ_j + (d − L) log σ² + d] (Tipping & Bishop, 1999, eq. 4 at
    the maximum)."""
    n, d = X.shape
    s = np.linalg.svd(X - X.mean(0), compute_uv=False)
    lam = np.zeros(d)
    lam[: len(s)] = s**2 / n
    sigma2 = lam[n_components:].sum() / (d - n_components)
    logdet = np.log(lam[:n_components]).sum() + (d - n_components) * np.log(sigma2)
    return -0.5 * (d * np.log(2 * np.pi) + logdet + d)
