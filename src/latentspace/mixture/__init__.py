"""Finite mixtures fitted by EM: Gaussian (four covariance types), Bernoulli, and mixtures of
probabilistic PCA (``PPCAMixture``).

``anneal_variance`` demonstrates K-means as the small-variance limit of a Gaussian mixture.
"""

from ._anneal import AnnealingPath, anneal_variance
from ._bernoulli import BernoulliMixture
from ._gaussian import GaussianMixture
from ._ppca import PPCAMixture

__all__ = ["AnnealingPath", "BernoulliMixture", "GaussianMixture", "PPCAMixture",
           "anneal_variance"]
