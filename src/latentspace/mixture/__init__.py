"""Finite mixtures fitted by EM: Gaussian (four covariance types) and Bernoulli.

``anneal_variance`` demonstrates K-means as the small-variance limit of a Gaussian mixture.
"""

from ._anneal import AnnealingPath, anneal_variance
from ._bernoulli import BernoulliMixture
from ._gaussian import GaussianMixture

__all__ = ["AnnealingPath", "BernoulliMixture", "GaussianMixture", "anneal_variance"]
