"""K-means as the small-variance limit of a Gaussian mixture, by variance annealing.

Take a mixture with equal weights 1/K and one fixed spherical covariance σ²I. Its EM updates
only the means; the responsibilities are a softmax of −‖x − μ_k‖² / (2σ²) (Bishop 2006,
§9.3.2). As σ² → 0 the softmax becomes an argmin, the E-step becomes K-means' assignment and
the M-step its centroid update: EM turns into Lloyd's algorithm. ``anneal_variance`` runs this
EM on the shared engine for a decreasing list of σ², each from the same initial means, so the
labels can be compared with those of K-means from the same centres.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from .._backend import to_numpy
from .._validation import check_int, check_float
from ..data import InMemorySource
from ..em import run_em
from ._base import MixtureStats

__all__ = ["AnnealingPath", "anneal_variance"]


@dataclass(frozen=True)
class _MeanStats(MixtureStats):
    sums: torch.Tensor = None  # type: ignore[assignment]  # always given; (K, D) Σ r x


class _FixedVarianceMixture:
    """Equal weights, covariance σ²I fixed: EM on the means only (engine model)."""

    def __init__(self, means_init: torch.Tensor, var: float):
        self.means_init = means_init
        self.var = var

    def _init_params(self, source, rng):
        return self.means_init

    def _e_step_stats(self, chunk, means):
        X = chunk.X.to(torch.float64)
        K, D = means.shape
        d2 = torch.cdist(X, means, compute_mode="donot_use_mm_for_euclid_dist").pow_(2)  # (n, K)
        # log π_k N(x | μ_k, σ²I) with π_k = 1/K
        wlp = -0.5 * d2 / self.var - 0.5 * D * math.log(2 * math.pi * self.var) - math.log(K)
        log_norm = torch.logsumexp(wlp, 1)
        resp = torch.exp(wlp - log_norm[:, None])
        return _MeanStats(
            n=float(X.shape[0]), loglik=float(log_norm.sum()), nk=resp.sum(0), sums=resp.T @ X
        )

    def _m_step(self, stats, means):
        new = means.clone()
        full = stats.nk > 0
        new[full] = stats.sums[full] / stats.nk[full, None]
        return new


@dataclass
class AnnealingPath:
    """What :func:`anneal_variance` found for each variance.

    Attributes
    ----------
    variances : ndarray of shape (n_steps,)
    means : list of ndarray of shape (n_components, n_features)
    labels : list of ndarray of shape (n_samples,)
        Most probable component of each row at the fitted means (equal weights and variances,
        so this is the nearest mean).
    lower_bounds : list of ndarray
        The EM trace (mean log-likelihood, non-decreasing) of each run.
    n_iter : list of int
    """

    variances: np.ndarray
    means: list = field(default_factory=list)
    labels: list = field(default_factory=list)
    lower_bounds: list = field(default_factory=list)
    n_iter: list = field(default_factory=list)

    def agreement(self, labels) -> np.ndarray:
        """Fraction of rows whose label equals ``labels`` (e.g. K-means'), per variance."""
        labels = np.asarray(labels)
        return np.array([np.mean(lab == labels) for lab in self.labels])


def anneal_variance(X, means_init, variances, *, max_iter=300, tol=1e-10):
    """EM for the equal-weight, fixed-σ² Gaussian mixture, for each σ² in ``variances``.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    means_init : array-like of shape (n_components, n_features)
        Starting means of every run (the K-means initial centres to compare with).
    variances : sequence of float
        σ² values, typically decreasing geometrically towards 0.
    max_iter : int, default=300
    tol : float, default=1e-10
        Convergence threshold on the per-sample log-likelihood change.

    Returns
    -------
    AnnealingPath
    """
    X = torch.as_tensor(np.asarray(X, dtype=np.float64))
    C0 = torch.as_tensor(np.asarray(means_init, dtype=np.float64))
    if X.ndim != 2 or C0.ndim != 2 or C0.shape[1] != X.shape[1]:
        raise ValueError(
            f"X {tuple(X.shape)} and means_init {tuple(C0.shape)} must be 2-D with the same "
            "number of columns."
        )
    check_int("max_iter", max_iter, low=1)
    check_float("tol", tol, low=0)
    variances = np.asarray(variances, dtype=np.float64)
    for v in variances:
        check_float("variance", float(v), low=0, low_open=True)
    path = AnnealingPath(variances)
    source = InMemorySource(X)
    for var in variances:
        model = _FixedVarianceMixture(C0, float(var))
        res = run_em(model, source, max_iter=max_iter, tol=tol, warn=False)
        means = res.params
        path.means.append(to_numpy(means))
        path.labels.append(to_numpy(torch.cdist(X, means, compute_mode="donot_use_mm_for_euclid_dist").argmin(1)))
        path.lower_bounds.append(np.asarray(res.lower_bounds))
        path.n_iter.append(res.n_iter)
    return path
