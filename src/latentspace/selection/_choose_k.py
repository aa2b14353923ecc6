"""Choosing the number of clusters or components K.

Four criteria, each a curve over the candidate K:

- ``elbow``: the reconstruction error E(K) = Σ_n ‖x_n − x̂_n‖², with x̂_n the centre (or mean)
  of x_n's cluster. E(K) always falls with K; the chosen K is the knee of log E(K), found by
  the Kneedle detector (Satopää et al. 2011, package ``kneed``). On the log scale a drop
  counts by its ratio, so the large early drops (K = 1 → 2 → 3) do not hide a later elbow.
- ``bic`` / ``aic``: −2 log L + p log n (resp. + 2p) of a fitted mixture; the minimum wins.
- ``heldout``: the mean negative log-likelihood per sample on validation folds (K-fold cross
  validation); the minimum wins. K-means has no likelihood of its own; it is scored as the
  equal-weight spherical Gaussian mixture it is the limit of (``GaussianMixture.from_kmeans``).
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import KFold, check_cv

from .._backend import ArrayLike, to_numpy
from .._validation import check_choice
from ..exceptions import ConvergenceWarning

if TYPE_CHECKING:
    from ..plotting import ChooseKDisplay

__all__ = ["ChooseKResult", "choose_k", "reconstruction_error"]

_CRITERIA = ("elbow", "bic", "aic", "heldout")


@dataclass
class ChooseKResult:
    """Scores per K and the chosen K.

    Attributes
    ----------
    ks : ndarray of shape (n_k,)
        The candidate K, increasing.
    scores : ndarray of shape (n_k,)
        The criterion per K (lower is better for every criterion; E(K) is not minimised but
        its knee is taken).
    scores_std : ndarray of shape (n_k,) or None
        Standard deviation over the folds (``heldout`` only).
    best_k : int
        The chosen K.
    criterion : str
        The criterion that chose it.
    estimators : dict
        K -> estimator fitted on all of X (not for ``heldout``).
    """

    ks: np.ndarray
    scores: np.ndarray
    best_k: int
    criterion: str
    scores_std: np.ndarray | None = None
    estimators: dict = field(default_factory=dict)

    @property
    def display(self) -> ChooseKDisplay:
        """A :class:`~latentspace.plotting.ChooseKDisplay` of the curve (call ``.plot()``)."""
        from ..plotting import ChooseKDisplay

        return ChooseKDisplay.from_result(self)


def _k_param(estimator) -> str:
    params = estimator.get_params(deep=False)
    for name in ("n_clusters", "n_components"):
        if name in params:
            return name
    raise ValueError(
        f"{type(estimator).__name__} has neither n_clusters nor n_components; choose_k needs "
        "an estimator whose number of clusters is one of those parameters."
    )


def reconstruction_error(estimator: Any, X: ArrayLike) -> float:
    """E(K) = Σ ‖x − x̂‖² with x̂ the centre or mean of the cluster predicted for x.

    Parameters
    ----------
    estimator : fitted clustering estimator
        With ``predict`` and ``cluster_centers_`` (K-means) or ``means_`` (mixtures).
    X : array-like of shape (n_samples, n_features)
        The data.

    Returns
    -------
    error : float
        The sum of squared distances of the rows to their predicted centres.
    """
    X = np.asarray(X, dtype=np.float64)
    labels = to_numpy(estimator.predict(X))
    centres = getattr(estimator, "cluster_centers_", None)
    if centres is None:
        centres = estimator.means_
    diff = X - np.asarray(centres, dtype=np.float64)[labels]
    return float(np.einsum("ij,ij->", diff, diff))


def _knee(ks: np.ndarray, errors: np.ndarray) -> int:
    """K at the knee of log E(K) (Kneedle; farthest point below the chord if it finds none)."""
    if len(ks) < 3:
        return int(ks[0])
    errors = np.log(np.maximum(errors, np.finfo(np.float64).tiny))
    from kneed import KneeLocator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # kneed warns when it finds no knee
        knee = KneeLocator(ks, errors, curve="convex", direction="decreasing").knee
    if knee is not None:
        return int(knee)
    # farthest point below the chord from the first to the last point (normalised axes)
    x = (ks - ks[0]) / max(ks[-1] - ks[0], 1)
    span = errors[0] - errors[-1]
    y = (errors - errors[-1]) / span if span > 0 else np.zeros_like(errors)
    return int(ks[int(np.argmax((1 - x) - y))])


def _heldout_nll(est, X_val) -> float:
    from ..cluster import KMeans
    from ..mixture import GaussianMixture

    if not hasattr(est, "score_samples") and isinstance(est, KMeans):
        est = GaussianMixture.from_kmeans(est)
    if not hasattr(est, "score_samples"):
        raise ValueError(
            f"criterion='heldout' needs a model with a likelihood (score_samples); "
            f"{type(est).__name__} has none."
        )
    return -float(np.mean(to_numpy(est.score_samples(X_val))))


def choose_k(estimator: Any, X: ArrayLike, ks: Iterable[int], *, criterion: str = "elbow",
             cv: int | Any = 5, random_state: int | None = None,
             verbose: int = 0) -> ChooseKResult:
    """Fit ``estimator`` for each K in ``ks`` and pick K by ``criterion``.

    Parameters
    ----------
    estimator : estimator
        Unfitted template (e.g. ``KMeans(random_state=0)``); cloned for every K, with K set
        through its ``n_clusters`` or ``n_components`` parameter.
    X : array-like of shape (n_samples, n_features)
        The data (a DataFrame is kept as it is for the fits).
    ks : sequence of int
        Candidate values of K, increasing.
    criterion : {"elbow", "bic", "aic", "heldout"}, default="elbow"
        See the module docstring. ``bic``/``aic`` need a mixture (``bic``/``aic`` methods).
    cv : int or cross-validation splitter, default=5
        Folds for ``heldout`` (an int means shuffled ``KFold`` seeded by ``random_state``).
    random_state : int or None
        Seeds the fold split.
    verbose : int, default=0
        > 0 shows a ``tqdm.auto`` progress bar on stderr over the fits (one per K, or per K
        and fold for ``heldout``), the current K in its description.

    Returns
    -------
    result : ChooseKResult
        ``.ks``, ``.scores``, ``.best_k`` and ``.display`` (a Display that draws the curve).

    Examples
    --------
    >>> from latentspace import KMeans, choose_k
    >>> from sklearn.datasets import make_blobs
    >>> X, _ = make_blobs(400, centers=[[0, 0], [0, 10], [10, 0], [10, 10]], random_state=0)
    >>> choose_k(KMeans(random_state=0), X, range(1, 9)).best_k
    4
    """
    check_choice("criterion", criterion, _CRITERIA)
    ks = np.asarray(list(ks))
    if ks.size == 0 or not all(isinstance(k, numbers.Integral) and int(k) >= 1 for k in ks.tolist()):
        raise ValueError(f"ks must be a non-empty sequence of integers >= 1, got {ks.tolist()}.")
    if np.any(np.diff(ks) <= 0):
        raise ValueError("ks must be strictly increasing.")
    name = _k_param(estimator)
    data: Any = to_numpy(X) if not hasattr(X, "iloc") else X  # a DataFrame stays one
    n = len(data)
    if ks[-1] > n:
        raise ValueError(f"the largest K ({ks[-1]}) exceeds the number of samples ({n}).")
    if criterion in ("bic", "aic") and not hasattr(estimator, criterion):
        raise ValueError(
            f"criterion='{criterion}' needs a mixture with a .{criterion}() method; "
            f"{type(estimator).__name__} has none. Use 'elbow' or 'heldout'."
        )
    if criterion == "elbow" and not hasattr(estimator, "predict"):
        raise ValueError(
            f"criterion='elbow' needs a clustering model with predict() and centres or means; "
            f"{type(estimator).__name__} has no predict()."
        )
    bar = None
    if verbose:
        from .._progress import progress_bar

        n_folds: int | None = 1
        if criterion == "heldout":
            n_folds = int(cv) if isinstance(cv, numbers.Integral) else None
        bar = progress_bar(None if n_folds is None else len(ks) * n_folds, "choose_k",
                           unit="fit")

    def advance(k):
        if bar is not None:
            bar.set_description(f"choose_k {name}={int(k)}")
            bar.update(1)

    try:
        return _fit_all(estimator, data, ks, name, criterion, cv, random_state, advance)
    finally:
        if bar is not None:
            bar.close()


def _fit_all(estimator, X, ks, name, criterion, cv, random_state, advance):
    """The fits of :func:`choose_k` and its choice; ``advance(k)`` after each fit."""
    fitted, stds = {}, None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if criterion == "heldout":
            splitter = (KFold(cv, shuffle=True, random_state=random_state)
                        if isinstance(cv, numbers.Integral) else check_cv(cv))
            folds = list(splitter.split(X))
            per_fold = np.empty((len(ks), len(folds)))
            for i, k in enumerate(ks):
                for j, (tr, va) in enumerate(folds):
                    if k > len(tr):
                        raise ValueError(
                            f"K={k} exceeds the {len(tr)} training rows of a fold; use fewer "
                            "folds or smaller K."
                        )
                    est = clone(estimator).set_params(**{name: int(k)}).fit(X[tr])
                    per_fold[i, j] = _heldout_nll(est, X[va])
                    advance(k)
            scores, stds = per_fold.mean(1), per_fold.std(1)
        else:
            scores = np.empty(len(ks))
            for i, k in enumerate(ks):
                est = clone(estimator).set_params(**{name: int(k)}).fit(X)
                advance(k)
                fitted[int(k)] = est
                if criterion == "elbow":
                    scores[i] = reconstruction_error(est, X)
                else:
                    scores[i] = getattr(est, criterion)(X)
    if criterion == "elbow":
        best = _knee(ks.astype(float), scores)
    else:
        best = int(ks[int(np.argmin(scores))])
    return ChooseKResult(ks, scores, int(best), criterion, stds, fitted)
