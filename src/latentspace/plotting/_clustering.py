"""Displays for clustering and mixtures: K-selection curves, EM traces, covariance ellipses,
and the variance-annealing path from a Gaussian mixture to K-means.

Constructors and classmethods only prepare numbers (plain numpy, testable without drawing);
``plot`` imports matplotlib.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ._mpl import new_axes, place_legend

if TYPE_CHECKING:  # matplotlib is imported lazily, when a plot is drawn
    from matplotlib.axes import Axes
    from typing_extensions import Self

    from ..selection import ChooseKResult

__all__ = [
    "AnnealingDisplay",
    "ChooseKDisplay",
    "EMTraceDisplay",
    "EllipsesDisplay",
    "covariance_ellipses",
]


class ChooseKDisplay:
    """A criterion against K, with the chosen K marked.

    Parameters
    ----------
    ks : array-like of shape (n_k,)
        The candidate K.
    scores : array-like of shape (n_k,)
        The criterion at each K.
    best_k : int
        The chosen K, one of ``ks``.
    criterion : str
        "elbow", "bic", "aic" or "heldout" (sets the axis label).
    scores_std : array-like of shape (n_k,) or None
        Drawn as a band (held-out folds).

    Attributes
    ----------
    ylabel : str
    best_score : float
    best_at_edge : {"smallest", "largest"} or None
        For the criteria that are minimised ("bic", "aic", "heldout"): whether the minimum is
        at the smallest or the largest K tried. The true minimum may then lie outside the
        range; the plot says so.
    figure_, ax_ : set by :meth:`plot`
    """

    _MINIMISED = ("bic", "aic", "heldout")

    _LABELS = {
        "elbow": "reconstruction error E(K)",
        "bic": "BIC (lower is better)",
        "aic": "AIC (lower is better)",
        "heldout": "held-out NLL per sample",
    }

    def __init__(self, ks: npt.ArrayLike, scores: npt.ArrayLike, best_k: int, criterion: str, *,
                 scores_std: npt.ArrayLike | None = None):
        self.ks = np.asarray(ks, dtype=np.float64)
        self.scores = np.asarray(scores, dtype=np.float64)
        if self.ks.shape != self.scores.shape or self.ks.ndim != 1:
            raise ValueError(f"ks {self.ks.shape} and scores {self.scores.shape} must be 1-D, same length.")
        self.best_k = int(best_k)
        if self.best_k not in self.ks:
            raise ValueError(f"best_k={best_k} is not one of ks.")
        self.criterion = criterion
        self.scores_std = None if scores_std is None else np.asarray(scores_std, dtype=np.float64)
        self.ylabel = self._LABELS.get(criterion, str(criterion))
        self.best_score = float(self.scores[np.flatnonzero(self.ks == self.best_k)[0]])
        self.best_at_edge: str | None = None
        if criterion in self._MINIMISED and self.ks.size > 1:
            if self.best_k == self.ks.min():
                self.best_at_edge = "smallest"
            elif self.best_k == self.ks.max():
                self.best_at_edge = "largest"

    @property
    def edge_note(self) -> str | None:
        """A sentence for captions when the minimum is at an end of the K range, else None."""
        if self.best_at_edge is None:
            return None
        beyond = "smaller" if self.best_at_edge == "smallest" else "larger"
        return (f"the minimum is at the {self.best_at_edge} K tried (K = {self.best_k}), so the "
                f"true minimum may lie at a {beyond} K, outside the range")

    @classmethod
    def from_result(cls, result: ChooseKResult) -> Self:
        """From the result of :func:`latentspace.choose_k`.

        Parameters
        ----------
        result : ChooseKResult
            Its ``ks``, ``scores``, ``best_k``, ``criterion`` and ``scores_std``.

        Returns
        -------
        display : ChooseKDisplay
            Ready to :meth:`plot`.
        """
        return cls(result.ks, result.scores, result.best_k, result.criterion,
                   scores_std=result.scores_std)

    def plot(self, ax: Axes | None = None, *, color: str = "C0") -> Self:
        """Draw the curve, the chosen K as a dashed line and a note when it is at an edge.

        Parameters
        ----------
        ax : matplotlib Axes or None, default=None
            Where to draw; None makes a new figure.
        color : str, default="C0"
            The curve's colour.

        Returns
        -------
        display : ChooseKDisplay
            ``self``, with ``figure_`` and ``ax_`` set.
        """
        fig, ax = new_axes(ax)
        ax.plot(self.ks, self.scores, "o-", color=color, ms=3)
        if self.scores_std is not None:
            ax.fill_between(self.ks, self.scores - self.scores_std, self.scores + self.scores_std,
                            color=color, alpha=0.2, lw=0)
        ax.axvline(self.best_k, color="C3", ls="--", lw=1)
        label = f"chosen K = {self.best_k}"
        if self.best_at_edge is not None:
            beyond = "smaller" if self.best_at_edge == "smallest" else "larger"
            label += f"\n({self.best_at_edge} K tried: the true\nminimum may be at a {beyond} K)"
        ax.plot([self.best_k], [self.best_score], "o", color="C3", ms=7, label=label)
        ax.set_xlabel("K")
        ax.set_ylabel(self.ylabel)
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # K is a count
        place_legend(ax)
        self.figure_, self.ax_ = fig, ax
        return self


class EMTraceDisplay:
    """The EM objective after each iteration (it never decreases).

    Parameters
    ----------
    traces : list of array-like
        One ``lower_bounds_`` array per model.
    labels : list of str
        One legend entry per trace.
    """

    def __init__(self, traces: Sequence[npt.ArrayLike], labels: Sequence[str]):
        self.traces = [np.asarray(t, dtype=np.float64) for t in traces]
        if len(labels) != len(self.traces):
            raise ValueError(f"got {len(labels)} labels for {len(self.traces)} traces.")
        self.labels = [str(s) for s in labels]
        self.monotone = [bool(np.all(np.diff(t) >= -1e-9 * max(1.0, np.abs(t).max())))
                         for t in self.traces]

    @classmethod
    def from_estimators(cls, estimators: Iterable[Any],
                        labels: Sequence[str] | None = None) -> Self:
        """From fitted EM models (their ``lower_bounds_``).

        Parameters
        ----------
        estimators : iterable of fitted EM models
            Each with ``lower_bounds_``.
        labels : sequence of str or None, default=None
            Legend entries; None uses the class names.

        Returns
        -------
        display : EMTraceDisplay
            Ready to :meth:`plot`.
        """
        estimators = list(estimators)
        labels = labels or [type(e).__name__ for e in estimators]
        return cls([e.lower_bounds_ for e in estimators], labels)

    def plot(self, ax: Axes | None = None, *, ylabel: str = "lower bound per sample") -> Self:
        """Draw each trace against the iteration.

        Parameters
        ----------
        ax : matplotlib Axes or None, default=None
            Where to draw; None makes a new figure.
        ylabel : str, default="lower bound per sample"
            The y axis label.

        Returns
        -------
        display : EMTraceDisplay
            ``self``, with ``figure_`` and ``ax_`` set.
        """
        fig, ax = new_axes(ax)
        for i, (t, lab) in enumerate(zip(self.traces, self.labels)):
            ax.plot(np.arange(len(t)), t, "o-", ms=2, color=f"C{i}", label=lab)
        ax.set_xlabel("EM iteration (0 = initial parameters)")
        ax.set_ylabel(ylabel)
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # iterations are counts
        place_legend(ax)
        self.figure_, self.ax_ = fig, ax
        return self


def covariance_ellipses(means: npt.ArrayLike, covariances: npt.ArrayLike,
                        covariance_type: str = "full", n_std: float = 2.0) -> np.ndarray:
    """Ellipses of constant Mahalanobis distance ``n_std`` for 2-D Gaussian components.

    Parameters
    ----------
    means : array-like of shape (K, 2)
        The components' means.
    covariances : array-like
        Shape by type: full (K, 2, 2), tied (2, 2), diag (K, 2), spherical (K,).
    covariance_type : {"full", "tied", "diag", "spherical"}, default="full"
        How ``covariances`` is laid out.
    n_std : float, default=2.0
        The Mahalanobis radius of the ellipses.

    Returns
    -------
    ellipses : ndarray of shape (K, 5)
        (centre x, centre y, width, height, angle in degrees) for matplotlib's ``Ellipse``.
    """
    means = np.asarray(means, dtype=np.float64)
    K = len(means)
    if means.ndim != 2 or means.shape[1] != 2:
        raise ValueError(f"ellipses need 2-D means, got shape {means.shape}; project the data first.")
    cov = np.asarray(covariances, dtype=np.float64)
    full = {
        "full": lambda: cov,
        "tied": lambda: np.broadcast_to(cov, (K, 2, 2)),
        "diag": lambda: np.stack([np.diag(c) for c in cov]),
        "spherical": lambda: cov[:, None, None] * np.eye(2)[None],
    }[covariance_type]()
    out = np.empty((K, 5))
    for k in range(K):
        vals, vecs = np.linalg.eigh(full[k])  # ascending
        vals = np.clip(vals, 0, None)
        major = vecs[:, 1]
        out[k] = (*means[k], 2 * n_std * np.sqrt(vals[1]), 2 * n_std * np.sqrt(vals[0]),
                  np.degrees(np.arctan2(major[1], major[0])))
    return out


class EllipsesDisplay:
    """2-D points coloured by cluster, with each component's covariance ellipse.

    Parameters
    ----------
    X : array-like of shape (n_samples, 2)
        The points.
    labels : array-like of int of shape (n_samples,)
        Their clusters (colours).
    ellipses : array-like of shape (K, 5)
        From :func:`covariance_ellipses`.
    title : str, default=""
        The plot's title.
    """

    def __init__(self, X: npt.ArrayLike, labels: npt.ArrayLike, ellipses: npt.ArrayLike, *,
                 title: str = ""):
        self.X = np.asarray(X, dtype=np.float64)
        self.labels = np.asarray(labels)
        self.ellipses = np.asarray(ellipses, dtype=np.float64)
        self.title = title

    @classmethod
    def from_estimator(cls, estimator: Any, X: npt.ArrayLike, *, n_std: float = 2.0,
                       title: str | None = None) -> Self:
        """From a fitted 2-D GaussianMixture, or a KMeans (drawn as its equivalent mixture).

        Parameters
        ----------
        estimator : fitted GaussianMixture or KMeans
            On 2 features.
        X : array-like of shape (n_samples, 2)
            The points to draw, coloured by ``estimator.predict``.
        n_std : float, default=2.0
            The Mahalanobis radius of the ellipses.
        title : str or None, default=None
            The plot's title; None uses the class name.

        Returns
        -------
        display : EllipsesDisplay
            Ready to :meth:`plot`.
        """
        from ..cluster import KMeans
        from ..mixture import GaussianMixture

        model = GaussianMixture.from_kmeans(estimator) if isinstance(estimator, KMeans) else estimator
        ell = covariance_ellipses(model.means_, model.covariances_, model.covariance_type, n_std)
        return cls(X, estimator.predict(X), ell, title=title or type(estimator).__name__)

    def plot(self, ax: Axes | None = None) -> Self:
        """Draw the points and one ellipse and centre per component.

        Parameters
        ----------
        ax : matplotlib Axes or None, default=None
            Where to draw; None makes a new figure.

        Returns
        -------
        display : EllipsesDisplay
            ``self``, with ``figure_`` and ``ax_`` set.
        """
        from matplotlib.patches import Ellipse

        fig, ax = new_axes(ax, figsize=(5, 4.5))
        ax.scatter(self.X[:, 0], self.X[:, 1], c=self.labels % 10, cmap="tab10", s=5, alpha=0.6,
                   vmin=0, vmax=9)
        for k, (x, y, w, h, ang) in enumerate(self.ellipses):
            ax.add_patch(Ellipse((x, y), w, h, angle=ang, fill=False, lw=1.5, color=f"C{k % 10}"))
            ax.plot([x], [y], "k+", ms=8)
        ax.set_title(self.title)
        ax.set_aspect("equal", adjustable="datalim")
        self.figure_, self.ax_ = fig, ax
        return self


class AnnealingDisplay:
    """Agreement of the annealed mixture's labels with K-means' against σ².

    Parameters
    ----------
    variances : array-like of shape (n_steps,)
        σ² at each step of the path.
    agreement : array-like of shape (n_steps,)
        The fraction of labels equal to K-means' at each step.
    """

    def __init__(self, variances: npt.ArrayLike, agreement: npt.ArrayLike):
        self.variances = np.asarray(variances, dtype=np.float64)
        self.agreement = np.asarray(agreement, dtype=np.float64)

    @classmethod
    def from_path(cls, path: Any, kmeans_labels: npt.ArrayLike) -> Self:
        """From an annealing path and K-means' labels.

        Parameters
        ----------
        path : AnnealingPath
            From :mod:`latentspace.mixture`: ``variances`` and ``agreement(labels)``.
        kmeans_labels : array-like of int of shape (n_samples,)
            The labels to compare with.

        Returns
        -------
        display : AnnealingDisplay
            Ready to :meth:`plot`.
        """
        return cls(path.variances, path.agreement(kmeans_labels))

    def plot(self, ax: Axes | None = None) -> Self:
        """Draw the agreement against σ², decreasing to the right.

        Parameters
        ----------
        ax : matplotlib Axes or None, default=None
            Where to draw; None makes a new figure.

        Returns
        -------
        display : AnnealingDisplay
            ``self``, with ``figure_`` and ``ax_`` set.
        """
        fig, ax = new_axes(ax)
        ax.semilogx(self.variances, self.agreement, "o-")
        ax.invert_xaxis()
        ax.set_xlabel("σ² of the equal-weight spherical mixture (decreasing →)")
        ax.set_ylabel("fraction of labels equal to K-means'")
        ax.set_ylim(-0.02, 1.02)
        self.figure_, self.ax_ = fig, ax
        return self
