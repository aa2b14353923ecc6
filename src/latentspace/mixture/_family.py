"""A mixture family's math, and the checks of user initial parameters they share.

:class:`Family` is what a new mixture implements (see :mod:`latentspace.mixture._base` for the
whole contract): three pure functions over explicit parameters, in working units, plus
optional pieces with defaults. :func:`e_step_block` is the E-step every family shares.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import cast

import numpy as np
import torch

from .._validation import ParameterError, check_param_array
from ..em import Stats

__all__ = ["Family", "MixtureStats", "check_means_init", "check_weights_init", "e_step_block"]

_BLOCK_ELEMS = 1 << 20  # rows × components × features handled at once


@dataclass(frozen=True)
class MixtureStats(Stats):
    """Statistics shared by the mixtures: Σ_n w_n r_nk (float64, (K,))."""

    nk: torch.Tensor = None  # type: ignore[assignment]  # always given; the default only orders the fields


class Family(ABC):
    """The math of one mixture family for one fit: pure functions over explicit parameters.

    Subclasses hold their constants (covariance type, regularisation, prior, user initial
    parameters, all in working units) as attributes set once at construction.

    Attributes
    ----------
    n_components : int
    """

    n_components: int

    @abstractmethod
    def log_weighted(self, X: torch.Tensor, P) -> torch.Tensor:
        """log π_k + log p(x_n | θ_k) of a block X (n, D) float64: (n, K)."""

    @abstractmethod
    def resp_stats(self, X: torch.Tensor, resp: torch.Tensor, w, P) -> MixtureStats:
        """Additive statistics of X (n, D) for responsibilities resp (n, K), weights w (n,)
        or None; ``loglik`` is left at 0 (the E-step fills it in)."""

    @abstractmethod
    def m_step(self, stats: MixtureStats, P):
        """New parameters from the summed statistics (``P``: current or base parameters)."""

    def base_params(self, summary, shift: torch.Tensor):
        """Parameters known before EM from the data summary (e.g. a centring shift), handed
        to the first M-step; None by default."""
        return None

    def with_user_init(self, P, base):
        """``P`` with the user's initial parameters put in (``P`` is None when
        :meth:`init_given`; ``base`` is :meth:`base_params`); the default has none."""
        return P

    def init_given(self) -> bool:
        """Whether the user gave every initial parameter (no initialisation pass is needed)."""
        return False

    def block_context(self, X: torch.Tensor, P):
        """Work on the block X that both ``log_weighted`` and ``resp_stats`` of one E-step
        need; when not None it is passed to both as ``ctx=``. None by default."""
        return None

    def lower_bound(self, stats: MixtureStats, P) -> float:
        """The objective EM climbs, per sample: the mean log-likelihood by default."""
        return float(stats.loglik / stats.n) if stats.n > 0 else -math.inf

    def conditional_means(self, X: torch.Tensor, P) -> torch.Tensor:
        """E[x | x_o, z = k] of rows X (n, D) float64 with NaN entries missing: (n, K, D),
        observed entries as given (for :meth:`MixtureBase.impute`); families that do not
        take missing values need not supply it."""
        raise NotImplementedError(f"{type(self).__name__} does not impute missing values.")

    def compiled_e_step(self, X: torch.Tensor, w, P, hard: bool) -> MixtureStats | None:
        """The statistics of :func:`e_step_block` for the block X from a compiled pass, with
        their ``loglik``; None (the default) where the family has none for this block."""
        return None

    def block_rows(self, d: int) -> int:
        """Rows per block: (rows × K) log-probabilities and a float64 copy of the rows stay
        within a few MiB; families with (rows × K × D) intermediates override this."""
        K = max(1, self.n_components)
        return max(256, min(_BLOCK_ELEMS // K, (4 * _BLOCK_ELEMS) // max(1, d)))


def e_step_block(family: Family, hard: bool, X: torch.Tensor, w, P) -> MixtureStats:
    """Responsibilities and statistics of one block in working units (eq. 9.23 of Bishop)."""
    fast = family.compiled_e_step(X, w, P, hard)
    if fast is not None:
        return fast
    # what both halves of the E-step share for this block (e.g. the factorisations of its
    # missingness patterns), passed to them only when the family made some
    ctx = family.block_context(X, P)
    extra = {} if ctx is None else {"ctx": ctx}
    wlp = family.log_weighted(X, P, **extra)  # (n, K)
    if hard:
        best, labels = wlp.max(1)
        resp = torch.zeros_like(wlp).scatter_(1, labels[:, None], 1.0)
        per_row = best
    else:
        # log-sum-exp and the responsibilities from one exp pass:
        # r = exp(wlp − m) / Σ exp(wlp − m),  log p(x) = m + log Σ exp(wlp − m)
        # (differences below −700 are clipped there: exp would give subnormal numbers,
        # which are slow on x86 and no larger than 1e-304 anyway)
        m = wlp.amax(1, keepdim=True)
        resp = wlp.sub_(m).clamp_min_(-700.0).exp_()
        total = resp.sum(1, keepdim=True)
        resp /= total
        per_row = (m + torch.log(total)).squeeze(1)
    loglik = float(per_row.sum() if w is None else w @ per_row)
    return cast(MixtureStats, family.resp_stats(X, resp, w, P, **extra).with_loglik(loglik))


def check_weights_init(weights_init, n_components: int) -> np.ndarray:
    """``weights_init`` as float64 (K,): non-negative, summing to 1; else ``ValueError``."""
    w = check_param_array("weights_init", weights_init, f"(n_components,) = {(n_components,)}")
    if w.shape != (n_components,):
        raise ParameterError(
            f"weights_init has shape {w.shape}, but it must be (n_components,) = "
            f"{(n_components,)}."
        )
    if not np.all(np.isfinite(w)) or np.any(w < 0) or np.any(w > 1) or not np.allclose(w.sum(), 1.0):
        raise ParameterError(
            "weights_init must be non-negative and sum to 1; got values in "
            f"[{w.min():.3g}, {w.max():.3g}] summing to {w.sum():.6g}."
        )
    return w


def check_means_init(means_init, n_components: int, n_features: int, *, low=None,
                     high=None, what: str = "values") -> np.ndarray:
    """``means_init`` as float64 (K, D), finite and within [low, high] where given
    (``what`` names the values in the error message)."""
    expected = (n_components, n_features)
    m = check_param_array("means_init", means_init, f"(n_components, n_features) = {expected}")
    if m.shape != expected:
        raise ParameterError(
            f"means_init has shape {m.shape}, but it must be (n_components, n_features) = "
            f"{(n_components, n_features)}."
        )
    if not np.all(np.isfinite(m)):
        raise ParameterError("means_init contains NaN or infinity.")
    if (low is not None and np.any(m < low)) or (high is not None and np.any(m > high)):
        raise ParameterError(f"means_init must hold {what} in [{low}, {high}].")
    return m
