"""Linear latent models: PCA, probabilistic PCA and incremental PCA."""

from ._pca import PCA

__all__ = ["PCA"]
