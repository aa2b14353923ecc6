"""The two CPU routes of the covariance eigensolver (scipy's subset solver, torch's full
one after an MKL product) against each other and against PCA through both.

Both are backward stable: each eigenvalue is exact for a matrix within about d·ε·λ_max, so
they agree to a few hundred ε of the largest eigenvalue; the eigenvectors of well-separated
eigenvalues agree to ε·λ_max / gap, up to sign.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from latentspace import PCA
from latentspace._math import eigh_desc
from latentspace.decomposition import _moments

EPS = np.finfo(np.float64).eps


def _matrix(d: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    values = 1.0 / (1.0 + np.arange(d))  # gaps of at least 1/(d+1)² between neighbours
    return (Q * values) @ Q.T


@pytest.mark.parametrize("upper_only", [False, True])
@pytest.mark.parametrize("k", [5, None])
def test_torch_and_scipy_routes_give_the_same_eigenpairs(upper_only, k):
    d = 60
    C = _matrix(d)
    if upper_only:  # the other triangle holds garbage that neither route may read
        C = np.triu(C) + np.tril(np.full((d, d), 7.0), -1)
    T = torch.from_numpy(C)
    w1, v1 = eigh_desc(T, k, upper_only=upper_only)
    w2, v2 = eigh_desc(T, k, upper_only=upper_only, mkl=True)
    m = d if k is None else k
    assert w1.shape == w2.shape == (m,) and v1.shape == v2.shape == (d, m)
    np.testing.assert_allclose(w1.numpy(), w2.numpy(), rtol=0, atol=200 * d * EPS)
    gap = 1.0 / (d + 1) ** 2
    dots = np.abs(np.sum(v1.numpy() * v2.numpy(), axis=0))
    np.testing.assert_allclose(dots, 1.0, atol=200 * d * EPS / gap)


@pytest.mark.skipif(not _moments._MKL, reason="torch has no MKL here")
def test_pca_on_the_mkl_route_matches_scikit_learn():
    from sklearn.decomposition import PCA as SkPCA

    # 20000 × 64: n d² = 8.2e7 multiply-adds, past the MKL route's threshold
    n, d = 20000, 64
    assert _moments.mkl_product(n, d)
    rng = np.random.default_rng(3)
    X = rng.standard_normal((n, d)) / np.sqrt(1.0 + np.arange(d)) + 1.0
    ours = PCA(10, svd_solver="covariance_eigh").fit(X)
    sk = SkPCA(10, svd_solver="covariance_eigh").fit(X)
    # both from a d × d covariance of entries ~1 summed over n rows: n·ε relative at most
    np.testing.assert_allclose(ours.explained_variance_, sk.explained_variance_,
                               rtol=n * EPS)
    dots = np.abs(np.sum(ours.components_ * sk.components_, axis=1))
    np.testing.assert_allclose(dots, 1.0, atol=1e-8)
