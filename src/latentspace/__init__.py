"""latentspace: unsupervised learning as one family of latent-variable models.

Every model learns p(x) through a latent z and speaks one scikit-learn-style API:
``fit``, ``transform``, ``inverse_transform``, ``score_samples``/``score``, ``sample``, and
``predict``/``predict_proba`` for clusterings. Names are imported lazily, so
``import latentspace`` stays cheap.
"""

from importlib import import_module

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "PCA": "latentspace.decomposition",
    "KMeans": "latentspace.cluster",
    "GaussianMixture": "latentspace.mixture",
    "BernoulliMixture": "latentspace.mixture",
    "PPCAMixture": "latentspace.mixture",
    "Autoencoder": "latentspace.neural",
    "VAE": "latentspace.neural",
    "GAN": "latentspace.neural",
    "choose_k": "latentspace.selection",
    "load": "latentspace.io",
    "save": "latentspace.io",
    "load_dataset": "latentspace.data",
    "ChunkedSource": "latentspace.data",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'latentspace' has no attribute {name!r}")


def __dir__():
    return __all__
