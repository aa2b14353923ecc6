"""Mixture of multivariate Bernoulli distributions, for binary vectors (Bishop 2006, §9.3.3).

p(x) = Σ_k π_k Π_d μ_kd^x_d (1 − μ_kd)^(1−x_d). In log space, for all components at once,

    log p(x | μ_k) = Σ_d x_d (log μ_kd − log(1 − μ_kd)) + Σ_d log(1 − μ_kd)             (1)

is one matrix product plus a bias, with log(1 − μ) computed as ``log1p(−μ)``. Values in
[0, 1] are accepted as soft counts (the same formula; e.g. grey levels).

The statistics are N_k = Σ r_nk and S_k = Σ r_nk x_n. The M-step is the MAP estimate under
a symmetric Beta(α+1, α+1) prior on each μ_kd, i.e. ``alpha`` pseudo-counts of each value:

    μ_kd = (S_kd + α) / (N_k + 2α),   π_k = N_k / N,                                      (2)

clipped into [1e-10, 1 − 1e-10]; α > 0 keeps empty pixels (always 0 in a cluster) from
giving log 0. EM then climbs the penalised log-likelihood log p(X) + α Σ_kd log μ_kd(1 − μ_kd),
which is what ``lower_bounds_`` reports per sample.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from .._backend import ArrayLike, ArrayOrTensor, RandomStateLike
from .._validation import check_float, check_missing
from . import _missing
from ._stream import DEFAULT_LEARNING_DECAY, DEFAULT_LEARNING_OFFSET
from ._base import Family, MixtureBase, MixtureStats, check_means_init, check_weights_init

__all__ = ["BernoulliMixture"]

_CLIP = 1e-10
_EPS10 = 10 * float(np.finfo(np.float64).eps)


@dataclass(frozen=True)
class BernoulliParams:
    weights: torch.Tensor  # (K,)
    probs: torch.Tensor  # (K, D), in [_CLIP, 1 − _CLIP]
    logit: torch.Tensor  # (K, D) log μ − log(1 − μ)
    bias: torch.Tensor  # (K,) Σ_d log(1 − μ_kd) + log π_k

    @staticmethod
    def of(weights: torch.Tensor, probs: torch.Tensor) -> "BernoulliParams":
        probs = probs.clamp(_CLIP, 1 - _CLIP)
        log1m = torch.log1p(-probs)
        return BernoulliParams(
            weights, probs, torch.log(probs) - log1m, log1m.sum(1) + torch.log(weights)
        )


@dataclass(frozen=True)
class BernoulliStats(MixtureStats):
    sums: torch.Tensor = None  # type: ignore[assignment]  # always given; (K, D) Σ w r x


class _BernoulliFamily(Family):
    """The Bernoulli mixture's math for one fit (data in [0, 1]: no working scale).

    Parameters
    ----------
    n_components : int
    alpha : float
        Pseudo-counts of the Beta prior (eq. 2).
    user : dict
        User initial ``weights`` (K,) and ``means`` (K, D).
    missing : bool
        NaN entries are missing values: the product of eq. (1) runs over a row's observed
        features, and a missing x_d counts as its expectation μ_kd in S_k
        (:mod:`._missing`).
    """

    def __init__(self, n_components: int, alpha: float, user: dict, missing: bool = False):
        self.n_components, self.alpha, self.user = n_components, alpha, user
        self.missing = missing

    def log_weighted(self, X: torch.Tensor, P: BernoulliParams) -> torch.Tensor:
        """eq. (1) + log π for X (n, D): (n, K), one matrix product (over the observed
        features of rows with NaN, when missing values are allowed)."""
        if self.missing and bool(torch.isnan(X).any()):
            return _missing.bernoulli_log_weighted(X, P, ~torch.isnan(X))
        return torch.addmm(P.bias[None, :], X, P.logit.T)

    def resp_stats(self, X, resp, w, P) -> BernoulliStats:
        """N_k (K,) and S_k = Σ w r x (K, D) (with E[x_d | k] = μ_kd for a missing x_d)."""
        Rw = resp if w is None else resp * w[:, None]
        nk = Rw.sum(0)
        n = float(nk.sum()) if w is None else float(w.sum())
        if self.missing and bool(torch.isnan(X).any()):
            sums = _missing.bernoulli_sums(X, Rw, P, ~torch.isnan(X))
            return BernoulliStats(n=n, loglik=0.0, nk=nk, sums=sums)
        return BernoulliStats(n=n, loglik=0.0, nk=nk, sums=Rw.T @ X)

    def conditional_means(self, X: torch.Tensor, P: BernoulliParams) -> torch.Tensor:
        """E[x | x_o, k] (n, K, D): μ_kd where x_d is missing."""
        return _missing.bernoulli_conditional(X, P, ~torch.isnan(X))

    def m_step(  # type: ignore[override]  # each family receives its own statistics
        self, S: BernoulliStats, P: BernoulliParams | None
    ) -> BernoulliParams:
        """The MAP update, eq. (2)."""
        a = self.alpha
        nk = S.nk + _EPS10
        probs = (S.sums + a) / (nk[:, None] + 2 * a)
        return BernoulliParams.of(nk / nk.sum(), probs)

    def lower_bound(self, stats, P: BernoulliParams) -> float:
        """The penalised log-likelihood per sample: (log p(X) + α Σ log μ(1 − μ)) / N."""
        a = self.alpha
        prior = 0.0 if a == 0 else a * float((torch.log(P.probs) + torch.log1p(-P.probs)).sum())
        return (stats.loglik + prior) / stats.n

    def init_given(self) -> bool:
        return len(self.user) == 2

    def with_user_init(self, P, base):
        u = self.user
        if not u:
            return P
        w = u["weights"] if "weights" in u else P.weights
        m = u["means"] if "means" in u else P.probs
        return BernoulliParams.of(w, m)


class BernoulliMixture(MixtureBase):
    """Mixture of Bernoulli distributions for binary data, fitted by EM.

    Parameters
    ----------
    n_components : int, default=1
    binarize : float or None, default=None
        Threshold for binarising the input (x > binarize becomes 1, else 0), as in
        scikit-learn's ``BernoulliNB``. None uses X as given, which must then lie in [0, 1]
        (soft counts are allowed).
    alpha : float, default=1.0
        Pseudo-counts of a symmetric Beta(α+1, α+1) prior on each probability (eq. 2);
        0 is maximum likelihood (probabilities then clipped to [1e-10, 1 − 1e-10]).
    tol : float, default=1e-3
        Convergence threshold on the change of the per-sample lower bound.
    max_iter : int, default=100
    n_init : int, default=1
    init_params : {"kmeans", "k-means++", "random", "random_from_data"}, default="kmeans"
    weights_init : array of shape (n_components,) or None
    means_init : array of shape (n_components, n_features) or None
        Initial probabilities μ, in (0, 1).
    hard : bool, default=False
        Classification EM (each point wholly to its most probable component).
    random_state : int, RandomState or None, default=None
    warm_start : bool, default=False
    verbose : int, default=0
    device : {"cpu", "cuda", "auto"}, default="cpu"
    learning_decay : float in (0.5, 1], default=0.7
        κ of :meth:`partial_fit`'s step sizes η_t = (learning_offset + t)^(−κ) (stepwise
        online EM, Cappé & Moulines 2009): Σ η_t = ∞ and Σ η_t² < ∞ on this range. Lower
        values forget old chunks faster. The default was the best of a grid on the
        benchmark streams (``bench/stream.py --grid``; docs/decisions.md): on binarised
        MNIST, chunks seen early were E-stepped under poor parameters and are best forgotten
        quickly (κ = 0.7: 0.3 % from the batch fit, κ = 1: 0.8 %).
    learning_offset : float >= 0, default=1.0
        τ₀ of the step sizes; larger values damp the first steps (and keep the first chunk's
        statistics longer). Only :meth:`partial_fit` uses these two.

    missing : {"raise", "marginalize"}, default="raise"
        What a NaN entry of X means. "raise": an error. "marginalize": a value missing at
        random; a row's likelihood is the product of eq. (1) over its observed features,
        and EM counts a missing x_d as its expectation μ_kd. The queries marginalise the
        same way, and :meth:`impute` fills the missing entries in.

    Use :meth:`fit` (exact batch EM, in memory, chunked or Dask, with ``sample_weight``)
    when the data can be read several times, and :meth:`partial_fit` for one pass over a
    stream or for data that drift.

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
    means_ : ndarray of shape (n_components, n_features)
        Probability of a 1 in each feature, per component.
    converged_ : bool
    n_iter_ : int
    lower_bounds_ : ndarray of shape (``n_iter_`` + 1,)
        Per-sample penalised log-likelihood at the initial parameters and after each step;
        each ``partial_fit`` call appends one entry (its chunk's, before the update, with the
        prior weighed for the total weight seen), the first call on an unfitted model one.
    lower_bound_ : float
    n_features_in_ : int
    n_samples_seen_ : float
        Total sample weight fitted: that of ``fit``, or summed over the ``partial_fit``
        calls since the model was started (N_t).
    n_steps_ : int
        Updates of the running statistics: 1 after ``fit`` or the first ``partial_fit``,
        then one per ``partial_fit`` call (the t of η_t).
    running_nk_, running_sums_ : ndarray
        ``partial_fit``'s running sufficient statistics per unit weight (N_k/N and the
        component sums, in the fit's working units), from the final E-step of ``fit``
        and updated by each ``partial_fit``; saved with the model so that a loaded model
        continues identically.
    running_scale_ : float
        The working scale (1.0: binary data keep their units).

    Examples
    --------
    >>> import numpy as np
    >>> from latentspace import BernoulliMixture
    >>> X = np.array([[1, 1, 0, 0]] * 20 + [[0, 0, 1, 1]] * 20)
    >>> bm = BernoulliMixture(2, random_state=0).fit(X)
    >>> bm.predict(X[[0, -1]]).tolist() in ([0, 1], [1, 0])
    True
    """

    # fitted attributes a saved file may hold: kind, symbolic shape (see latentspace._schema)
    _fitted_schema = {
        "weights_": ("float", ("n_components",)),
        "means_": ("float", ("n_components", "n_features_in_")),
        "lower_bounds_": ("float", ("*",), "nonfinite"), "lower_bound_": ("float", None),
        "n_iter_": ("int", None), "converged_": ("bool", None),
        # partial_fit's running statistics (per unit weight, working units; see _stream.py)
        "running_nk_": ("float", ("n_components",), "optional"),
        "running_sums_": ("float", ("n_components", "n_features_in_"), "optional"),
        "running_scale_": ("float", None, "optional"),
        "n_samples_seen_": ("float", None, "optional"), "n_steps_": ("int", None, "optional"),
    }

    def __init__(
        self,
        n_components: int = 1,
        *,
        binarize: float | None = None,
        alpha: float = 1.0,
        tol: float = 1e-3,
        max_iter: int = 100,
        n_init: int = 1,
        init_params: Literal["kmeans", "k-means++", "random", "random_from_data"] = "kmeans",
        weights_init: ArrayLike | None = None,
        means_init: ArrayLike | None = None,
        hard: bool = False,
        random_state: RandomStateLike = None,
        warm_start: bool = False,
        verbose: int = 0,
        device: str | torch.device = "cpu",
        learning_decay: float = DEFAULT_LEARNING_DECAY,
        learning_offset: float = DEFAULT_LEARNING_OFFSET,
        missing: Literal["raise", "marginalize"] = "raise",
    ) -> None:
        self.n_components = n_components
        self.binarize = binarize
        self.alpha = alpha
        self.tol = tol
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.hard = hard
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.device = device
        self.learning_decay = learning_decay
        self.learning_offset = learning_offset
        self.missing = missing

    # --- input and parameters ------------------------------------------------------------
    def _prepare_X(self, X: torch.Tensor) -> torch.Tensor:
        if self.binarize is not None:
            B = (X > float(self.binarize)).to(X.dtype)
            if getattr(self, "missing", "raise") == "marginalize":
                B = torch.where(torch.isnan(X), X, B)  # a missing entry stays missing
            return B
        if X.numel() and (bool((X < 0).any()) or bool((X > 1).any())):
            seen = X[~torch.isnan(X)]
            raise ValueError(
                f"BernoulliMixture needs values in [0, 1] (binary data, or soft counts); X has "
                f"values in [{float(seen.min()):.6g}, {float(seen.max()):.6g}]. Binarise it "
                "(e.g. binarize=threshold) or rescale it to [0, 1]."
            )
        return X

    _scaled = False  # values in [0, 1] need no working scale

    # --- the family and its parameters ---------------------------------------------------
    def _family(self, n_features: int, scale: float, *, fit: bool = True) -> "_BernoulliFamily":
        check_float("alpha", self.alpha, low=0)
        missing = check_missing(getattr(self, "missing", "raise")) == "marginalize"
        if self.binarize is not None:
            check_float("binarize", self.binarize)
        K, dev = self.n_components, self._device()
        user = {}
        if fit and self.weights_init is not None:
            user["weights"] = torch.as_tensor(check_weights_init(self.weights_init, K), device=dev)
        if fit and self.means_init is not None:
            m = check_means_init(self.means_init, K, n_features, low=0, high=1,
                                 what="probabilities")
            user["means"] = torch.as_tensor(m, device=dev)
        return _BernoulliFamily(K, float(self.alpha), user, missing)

    def _attributes(self, P: BernoulliParams, scale: float) -> dict:
        return {"weights_": P.weights, "means_": P.probs}

    def _parameters(self, scale: float) -> BernoulliParams:
        dev = self._device()
        return BernoulliParams.of(torch.as_tensor(self.weights_, device=dev, dtype=torch.float64),
                                  torch.as_tensor(self.means_, device=dev, dtype=torch.float64))

    def _n_parameters(self) -> int:
        K, D = self.means_.shape
        return int(K * D + K - 1)

    def sample(self, n_samples: int = 1,
               random_state: RandomStateLike = None) -> tuple[ArrayOrTensor, ArrayOrTensor]:
        """Draw binary vectors from the fitted mixture.

        Components are drawn per sample, so rows come in random order (not grouped).

        Parameters
        ----------
        n_samples : int, default=1
        random_state : int, RandomState or None
            None uses the estimator's ``random_state``.

        Returns
        -------
        X : ndarray or tensor of shape (n_samples, n_features)
            In the container, device and float dtype of the data the model was fitted on
            (numpy float64 for a model loaded from a file), values 0.0 or 1.0
        labels : ndarray or tensor of shape (n_samples,)
        """
        self._check_fitted()  # before the fitted attributes are read
        D = self.means_.shape[1]
        # the label, the uniforms, the comparison and the output per row
        n_samples, labels, rng = self._sample_labels(n_samples, random_state, 8 * (1 + 2 * D) + D)
        u = rng.uniform(size=(n_samples, self.means_.shape[1]))
        return self._drawn_out((u < self.means_[labels]).astype(np.float64)), self._drawn_out(labels)
