"""The scoreboard's own models: a Gaussian mixture that is a density in pixel space, and the
feature maps of its sample-based scores (a small classifier trained on the labels, or whitened
principal coordinates for unlabelled data)."""

from __future__ import annotations

import math

import numpy as np
import torch
from sklearn.utils import check_random_state

from ..decomposition import PCA
from ..mixture import GaussianMixture
from ..neural import make_mlp

__all__ = ["FeatureClassifier", "PCAGaussianMixture", "WhitenedPCAFeatures"]


class PCAGaussianMixture:
    """A Gaussian mixture on the top-L whitened principal coordinates, times an isotropic
    Gaussian on their orthogonal complement: a proper density in pixel space.

    With V (L, d) the principal axes of the training rows, λ (L,) their variances, μ the mean
    and σ² the mean discarded variance (as in PPCA),

        z = Λ^-½ V (x − μ),   r = (I − VᵀV)(x − μ)
        log p(x) = log Σ_k π_k N(z; m_k, S_k) − ½ Σ_i log λ_i
                   − ½ (d − L) log 2πσ² − ‖r‖² / 2σ²

    (the second term is the Jacobian of the whitening). It is the Gaussian mixture in pixel
    space with means μ + Vᵀ Λ^½ m_k and covariances Vᵀ Λ^½ S_k Λ^½ V + σ² (I − VᵀV).

    Parameters
    ----------
    n_components : int, default=10
        Mixture components K.
    n_pcs : int, default=20
        Principal coordinates L (at most ``min(n_samples, n_features)``).
    reg_covar : float, default=1e-2
        Ridge added to the mixture's covariances, in whitened units.
    random_state : int or None

    Attributes
    ----------
    pca_ : PCA
        The L-component PCA of the training rows (``noise_variance_`` is σ²).
    mixture_ : GaussianMixture
        The full-covariance mixture of the whitened coordinates.
    noise_variance_ : float
        σ², floored at 1e-12 of the mean variance so the density stays finite.
    """

    def __init__(self, n_components=10, *, n_pcs=20, reg_covar=1e-2, random_state=None):
        self.n_components = n_components
        self.n_pcs = n_pcs
        self.reg_covar = reg_covar
        self.random_state = random_state

    def fit(self, X):
        """Fit the PCA, then the mixture on the whitened coordinates of ``X`` (n, d)."""
        X = np.asarray(X, dtype=np.float64)
        pca = PCA(self.n_pcs, random_state=self.random_state).fit(X)
        lam = pca.explained_variance_
        if np.any(lam <= 0):
            raise ValueError(
                f"the data have {int(np.sum(lam > 0))} direction(s) of positive variance, fewer "
                f"than n_pcs={self.n_pcs}; lower n_pcs."
            )
        self.pca_ = pca
        total = float(np.var(X, axis=0, ddof=1).mean())
        self.noise_variance_ = max(float(pca.noise_variance_), 1e-12 * total if total > 0
                                   else 1e-300)
        self.mixture_ = GaussianMixture(
            self.n_components, covariance_type="full", reg_covar=self.reg_covar,
            init_params="k-means++", random_state=self.random_state,
        ).fit(self._codes(X)[0])
        return self

    def _codes(self, X):
        """Whitened coordinates z (n, L) and squared residual norms ‖r‖² (n,)."""
        Xc = np.asarray(X, dtype=np.float64) - self.pca_.mean_
        P = Xc @ self.pca_.components_.T  # (n, L)
        R = Xc - P @ self.pca_.components_  # (n, d), outside the principal subspace
        return P / np.sqrt(self.pca_.explained_variance_), np.einsum("nd,nd->n", R, R)

    def score_samples(self, X):
        """log p(x) of each row of ``X`` (n, d) -> (n,), nats."""
        Z, r2 = self._codes(X)
        d, L = self.pca_.n_features_in_, self.pca_.n_components_
        s2 = self.noise_variance_
        ll = np.asarray(self.mixture_.score_samples(Z), dtype=np.float64)
        ll = ll - 0.5 * float(np.log(self.pca_.explained_variance_).sum())
        if d > L:
            ll = ll - 0.5 * (d - L) * math.log(2 * math.pi * s2) - r2 / (2 * s2)
        return ll

    def score(self, X):
        """Mean log-likelihood of the rows of ``X`` (float)."""
        return float(np.mean(self.score_samples(X)))

    def sample(self, n_samples=1, random_state=None):
        """Draw from the density -> (X (n_samples, d), component labels (n_samples,))."""
        rng = check_random_state(self.random_state if random_state is None else random_state)
        Z, labels = self.mixture_.sample(n_samples, random_state=rng)
        V = self.pca_.components_
        X = self.pca_.mean_ + (Z * np.sqrt(self.pca_.explained_variance_)) @ V
        if self.pca_.n_features_in_ > self.pca_.n_components_:
            eps = rng.standard_normal((n_samples, V.shape[1]))
            X = X + math.sqrt(self.noise_variance_) * (eps - (eps @ V.T) @ V)
        return X, labels


class FeatureClassifier:
    """A small MLP classifier trained on labelled rows; its last hidden layer is the feature
    space of the sample-based scores and its argmax the class of a sample.

    Parameters
    ----------
    hidden : tuple of int
    n_steps : int
        Adam steps (batches of 128, learning rate 1e-3).
    random_state : int
        Seeds the initialisation and the batches (a generator of its own).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    network_ : torch.nn.Sequential
    dim_ : int
        Width of the feature space.
    """

    def __init__(self, hidden=(256, 64), *, n_steps=1000, random_state=0):
        self.hidden = hidden
        self.n_steps = n_steps
        self.random_state = random_state

    def fit(self, X, y):
        """Train on ``X`` (n, d) with labels ``y`` (n,)."""
        self.classes_, codes = np.unique(np.asarray(y), return_inverse=True)
        Xt = torch.as_tensor(np.asarray(X), dtype=torch.float32)
        yt = torch.as_tensor(codes, dtype=torch.long)
        gen = torch.Generator().manual_seed(int(self.random_state))
        sizes = [Xt.shape[1], *self.hidden, len(self.classes_)]
        net = make_mlp(sizes, "relu", generator=gen)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        batch = min(128, Xt.shape[0])
        order, pos = torch.randperm(Xt.shape[0], generator=gen), 0
        for _ in range(int(self.n_steps)):
            if pos + batch > Xt.shape[0]:  # a new epoch: reshuffle
                order, pos = torch.randperm(Xt.shape[0], generator=gen), 0
            idx = order[pos:pos + batch]
            pos += batch
            loss = torch.nn.functional.cross_entropy(net(Xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        self.network_ = net.eval()
        self.dim_ = int(self.hidden[-1])
        return self

    @torch.no_grad()
    def _run(self, X, layers):
        Xt = torch.as_tensor(np.asarray(X), dtype=torch.float32)
        return np.concatenate([layers(Xt[i:i + 4096]).double().numpy()
                               for i in range(0, Xt.shape[0], 4096)])

    def features(self, X):
        """Last hidden layer (after its ReLU) -> (n, dim_), float64."""
        return self._run(X, self.network_[:-1])

    def predict(self, X):
        """Class index (into ``classes_``) of each row -> (n,) int."""
        return self._run(X, self.network_).argmax(1)

    def accuracy(self, X, y):
        """Share of rows of ``X`` whose predicted class is ``y``."""
        return float(np.mean(self.classes_[self.predict(X)] == np.asarray(y)))


class WhitenedPCAFeatures:
    """Unlabelled data: the top principal coordinates of the training rows, whitened."""

    def __init__(self, n_components, *, random_state=0):
        self.n_components = n_components
        self.random_state = random_state

    def fit(self, X):
        self.pca_ = PCA(self.n_components, whiten=True, random_state=self.random_state).fit(X)
        self.dim_ = int(self.pca_.n_components_)
        return self

    def features(self, X):
        return np.asarray(self.pca_.transform(np.asarray(X, dtype=np.float64)), dtype=np.float64)
