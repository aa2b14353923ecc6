"""Displays for linear latent models: explained variance, reconstructions, 2-D projections.

``ProjectionDisplay`` works for any model with ``transform`` (PCA, autoencoders, VAEs), so it
is the one scatter of latent codes the whole library uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ._images import as_images
from ._mpl import frame_tile, gutter_color, new_axes, place_legend, pyplot

if TYPE_CHECKING:  # matplotlib is imported lazily, when a plot is drawn
    from matplotlib.axes import Axes
    from typing_extensions import Self

__all__ = [
    "ExplainedVarianceDisplay",
    "ReconstructionDisplay",
    "ProjectionDisplay",
    "truncated_reconstruction",
]


def _require(estimator, *names):
    missing = [n for n in names if not hasattr(estimator, n)]
    if missing:
        raise ValueError(
            f"{type(estimator).__name__} has no {', '.join(missing)}; fit it first "
            "(or pass an estimator that provides it)."
        )


# ----------------------------------------------------------------------------- variance
class ExplainedVarianceDisplay:
    """Per-component and cumulative explained-variance ratio, marking a threshold.

    Parameters
    ----------
    explained_variance_ratio : array-like of shape (n_components,)
        The fraction of the variance each component explains.
    threshold : float in (0, 1], default=0.9
        The cumulative ratio to mark.
    estimator_name : str, optional
        Shown in the title.

    Attributes
    ----------
    ratio : ndarray of shape (n_components,)
    cumulative : ndarray of shape (n_components,)
        ``np.cumsum(ratio)``.
    n_components_threshold : int or None
        Fewest components whose cumulative ratio reaches ``threshold`` (None if never).
    figure_, ax_ : set by :meth:`plot`.
    """

    def __init__(self, explained_variance_ratio: npt.ArrayLike, *, threshold: float = 0.9,
                 estimator_name: str | None = None):
        ratio = np.asarray(explained_variance_ratio, dtype=np.float64).ravel()
        if ratio.size == 0:
            raise ValueError("explained_variance_ratio is empty; fit at least one component.")
        if not 0 < threshold <= 1:
            raise ValueError(f"threshold={threshold} must be in (0, 1].")
        self.ratio = ratio
        self.cumulative = np.cumsum(ratio)
        self.threshold = float(threshold)
        self.estimator_name = estimator_name
        reached = np.flatnonzero(self.cumulative >= self.threshold)
        self.n_components_threshold = int(reached[0]) + 1 if reached.size else None

    @classmethod
    def from_estimator(cls, estimator: Any, *, threshold: float = 0.9) -> Self:
        """Read ``explained_variance_ratio_`` from a fitted estimator.

        Parameters
        ----------
        estimator : fitted estimator
            With ``explained_variance_ratio_`` (e.g. :class:`latentspace.PCA`).
        threshold : float in (0, 1], default=0.9
            The cumulative ratio to mark.

        Returns
        -------
        display : ExplainedVarianceDisplay
            Ready to :meth:`plot`.
        """
        _require(estimator, "explained_variance_ratio_")
        return cls(estimator.explained_variance_ratio_, threshold=threshold,
                   estimator_name=type(estimator).__name__)

    @classmethod
    def from_data(cls, explained_variance_ratio: npt.ArrayLike, *,
                  threshold: float = 0.9) -> Self:
        """Use a given ratio vector.

        Parameters
        ----------
        explained_variance_ratio : array-like of shape (n_components,)
            The fraction of the variance each component explains.
        threshold : float in (0, 1], default=0.9
            The cumulative ratio to mark.

        Returns
        -------
        display : ExplainedVarianceDisplay
            Ready to :meth:`plot`.
        """
        return cls(explained_variance_ratio, threshold=threshold)

    def plot(self, ax: Axes | None = None, *, figsize: tuple[float, float] = (7, 4)) -> Self:
        """Draw bars (or a line, for many components) of the ratio and the cumulative curve.

        Parameters
        ----------
        ax : matplotlib Axes or None, default=None
            Where to draw; None makes a new figure of size ``figsize``.
        figsize : tuple of float, default=(7, 4)
            Size in inches of a new figure.

        Returns
        -------
        display : ExplainedVarianceDisplay
            ``self``, with ``figure_`` and ``ax_`` set.
        """
        fig, ax = new_axes(ax, figsize=figsize)
        k = np.arange(1, self.ratio.size + 1)
        if self.ratio.size <= 60:
            ax.bar(k, self.ratio, color="tab:blue", alpha=0.6, label="per component")
        else:
            ax.plot(k, self.ratio, color="tab:blue", lw=1, label="per component")
        ax.plot(k, self.cumulative, color="tab:orange", lw=2, label="cumulative")
        ax.axhline(self.threshold, color="gray", ls="--", lw=1)
        if self.n_components_threshold is not None:
            k90 = self.n_components_threshold
            ax.axvline(k90, color="gray", ls=":", lw=1)
            ax.annotate(f"{100 * self.threshold:g}% at k = {k90}", (k90, self.threshold),
                        xytext=(8, -16), textcoords="offset points", fontsize=9)
        else:
            ax.text(0.98, 0.05, f"{100 * self.threshold:g}% not reached with {k.size} components",
                    transform=ax.transAxes, ha="right", fontsize=9)
        ax.set_xlabel("number of components k")
        ax.set_ylabel("explained variance ratio")
        ax.set_ylim(0, 1.02)
        ax.set_xlim(0.5, k.size + 0.5)
        if self.estimator_name:
            ax.set_title(f"{self.estimator_name}: explained variance")
        place_legend(ax)
        self.figure_, self.ax_ = fig, ax
        return self


# ----------------------------------------------------------------------------- reconstruction
def truncated_reconstruction(estimator: Any, Z: npt.ArrayLike, k: int) -> np.ndarray:
    """Rebuild data from the first ``k`` latent codes with the estimator's own inverse map.

    The codes beyond ``k`` are set to 0 and ``estimator.inverse_transform`` is applied, which
    for PCA gives x̂_k = μ + Σ_{j≤k} z_j v_j (times √λ_j when whitening) = μ + Z[:, :k] C[:k].
    Because the leading eigenvectors of the covariance do not depend on how many more are
    computed, this equals the reconstruction of a PCA fitted with ``k`` components for the
    exact solvers (and approximates it for the randomized one); one fit serves every k.

    Parameters
    ----------
    estimator : fitted estimator with ``inverse_transform``
        The model whose inverse map rebuilds the data.
    Z : ndarray of shape (n_samples, n_components)
        Codes from ``estimator.transform``.
    k : int
        How many leading codes to keep.

    Returns
    -------
    X_hat : ndarray of shape (n_samples, n_features)
        The reconstruction from the first ``k`` codes.
    """
    Zk = np.array(Z, copy=True)
    Zk[:, k:] = 0
    return np.asarray(estimator.inverse_transform(Zk))


class ReconstructionDisplay:
    """Originals in the first row, their reconstructions at several sizes k below.

    Parameters
    ----------
    originals : ndarray of shape (n_images, height, width)
    reconstructions : ndarray of shape (n_k, n_images, height, width)
    ks : sequence of int, length n_k
    mse : ndarray of shape (n_k,), optional
        Mean squared reconstruction error per entry at each k.
    mse_n_samples : int, optional
        How many samples the MSE was averaged over.
    cmap : str, default="gray"

    Attributes
    ----------
    grid_shape : tuple (1 + n_k, n_images)
    limits : tuple (vmin, vmax)
        The grey scale of every row: the range of the originals (the data). A reconstruction
        overshooting it saturates instead of stretching the scale, which would wash out the
        originals.
    figure_, axes_, gutter_color_ : set by :meth:`plot`.
    """

    def __init__(self, originals: npt.ArrayLike, reconstructions: npt.ArrayLike,
                 ks: Sequence[int], *, mse: npt.ArrayLike | None = None,
                 mse_n_samples: int | None = None, cmap: str = "gray"):
        originals = np.asarray(originals, dtype=np.float64)
        reconstructions = np.asarray(reconstructions, dtype=np.float64)
        ks = [int(k) for k in ks]
        if originals.ndim != 3 or reconstructions.shape != (len(ks),) + originals.shape:
            raise ValueError(
                f"reconstructions must have shape (len(ks), *originals.shape) = "
                f"{(len(ks),) + originals.shape}, got {reconstructions.shape}."
            )
        self.originals = originals
        self.reconstructions = reconstructions
        self.ks = ks
        self.mse = None if mse is None else np.asarray(mse, dtype=np.float64)
        self.mse_n_samples = mse_n_samples
        self.cmap = cmap
        self.grid_shape = (1 + len(ks), len(originals))
        lo, hi = float(originals.min()), float(originals.max())
        self.limits = (lo, hi) if hi > lo else (lo - 0.5, hi + 0.5)  # constant images

    @classmethod
    def from_estimator(cls, estimator: Any, X: npt.ArrayLike, *, image_shape: tuple[int, int],
                       ks: Sequence[int] = (5, 10, 20, 50, 150),
                       indices: npt.ArrayLike | None = None, n_images: int = 8,
                       mse_max_samples: int | None = None,
                       random_state: int | np.random.RandomState | None = None,
                       batch_size: int = 4096, cmap: str = "gray") -> Self:
        """Reconstruct with the first k components of one fitted estimator, for each k.

        Parameters
        ----------
        estimator : fitted PCA-like estimator (``transform``, ``inverse_transform``,
            ``n_components_``)
        X : ndarray of shape (n_samples, n_features)
            The MSE is averaged over ``X`` (or a subset, see ``mse_max_samples``); the images
            shown are ``X[indices]``.
        image_shape : tuple (height, width)
            Shape of one image; ``n_features == height * width``.
        ks : sequence of int, default=(5, 10, 20, 50, 150)
            Sizes to show, clipped to ``n_components_``; when some requested k exceed it,
            ``n_components_`` itself is shown instead.
        indices : sequence of int, optional
            Rows to show; the first ``n_images`` when None.
        n_images : int, default=8
            How many rows to show when ``indices`` is None.
        mse_max_samples : int, optional
            Average the MSE over a random subset of this many rows (seeded by
            ``random_state``) when ``X`` is larger; every k costs a full ``inverse_transform``.
        random_state : int, RandomState or None, default=None
            Seeds that subset.
        batch_size : int, default=4096
            Rows per pass when computing the MSE, to bound memory.
        cmap : str, default="gray"
            Colour map of the images.

        Returns
        -------
        display : ReconstructionDisplay
            Ready to :meth:`plot`.
        """
        _require(estimator, "n_components_")
        X = np.asarray(X)
        ks = cls.available_ks(ks, estimator.n_components_)
        shown = (np.arange(min(int(n_images), len(X))) if indices is None
                 else np.asarray(indices, dtype=np.intp))
        originals = as_images(X[shown], image_shape)
        Z = np.asarray(estimator.transform(X[shown]))
        recon = np.stack([as_images(truncated_reconstruction(estimator, Z, k), image_shape)
                          for k in ks])
        rows = _subset(len(X), mse_max_samples, random_state)
        sse = np.zeros(len(ks))
        for start in range(0, len(rows), int(batch_size)):
            xb = X[rows[start:start + int(batch_size)]]
            zb = np.asarray(estimator.transform(xb))
            for i, k in enumerate(ks):
                diff = np.asarray(truncated_reconstruction(estimator, zb, k), np.float64) - xb
                sse[i] += np.einsum("ij,ij->", diff, diff)
        mse = sse / (len(rows) * X.shape[1])
        return cls(originals, recon, ks, mse=mse, mse_n_samples=len(rows), cmap=cmap)

    @staticmethod
    def available_ks(ks: Sequence[int], n_components: int) -> list[int]:
        """Requested sizes that exist, plus ``n_components`` if some were too large.

        Parameters
        ----------
        ks : sequence of int
            Requested sizes; those below 1 are dropped.
        n_components : int
            The largest size the model has.

        Returns
        -------
        ks : list of int
            Increasing, each at most ``n_components``.
        """
        req = sorted({int(k) for k in ks if int(k) >= 1})
        out = [k for k in req if k <= n_components]
        if (not out or req[-1] > n_components) and n_components not in out:
            out.append(int(n_components))
        return out

    def plot(self, *, axes: Any = None, figsize: tuple[float, float] | None = None) -> Self:
        """Draw the grid; each row is labelled with its k (and MSE).

        Parameters
        ----------
        axes : array of matplotlib Axes of shape grid_shape, or None, default=None
            Where to draw; None makes a new figure.
        figsize : tuple of float or None, default=None
            Size in inches of a new figure; None sizes it from the grid.

        Returns
        -------
        display : ReconstructionDisplay
            ``self``, with ``figure_``, ``axes_`` and ``gutter_color_`` set.
        """
        n_rows, n_cols = self.grid_shape
        h, w = self.originals.shape[1:]
        if axes is None:
            plt = pyplot()
            if figsize is None:
                figsize = (1.0 + n_cols * 1.1 * max(w / h, 0.6), n_rows * 1.15)
            fig, axes = plt.subplots(n_rows, n_cols, figsize=figsize, squeeze=False,
                                     layout="constrained")
        axes = np.asarray(axes, dtype=object).reshape(n_rows, n_cols)
        # one grey scale, the data's, for the whole grid: a blurred reconstruction shows as
        # such, and the originals keep their contrast
        lo, hi = self.limits
        gutter = gutter_color(self.cmap)
        rows = [self.originals, *self.reconstructions]
        labels = ["original"] + [
            f"k = {k}" + ("" if self.mse is None else f"\nMSE {self.mse[i]:.2g}")
            for i, k in enumerate(self.ks)
        ]
        for r in range(n_rows):
            for c in range(n_cols):
                ax = axes[r, c]
                ax.imshow(rows[r][c], cmap=self.cmap, vmin=lo, vmax=hi, interpolation="nearest")
                frame_tile(ax, gutter)
            axes[r, 0].set_ylabel(labels[r], rotation=0, ha="right", va="center", fontsize=9)
        self.figure_, self.axes_, self.gutter_color_ = axes[0, 0].figure, axes, gutter
        return self


# ----------------------------------------------------------------------------- projection
class ProjectionDisplay:
    """2-D scatter of latent codes, coloured by label.

    Parameters
    ----------
    Z : ndarray of shape (n_samples, 2)
        The codes to draw.
    labels : array-like of shape (n_samples,), optional
        Colours the points.
    label_names : sequence of str, optional
        Names for integer labels 0..n_classes-1 (e.g. a dataset's ``target_names``).
    xlabel, ylabel, title : str, optional
        Axis labels and title.

    Attributes
    ----------
    categorical : bool
        Labels drawn as classes with a legend (at most 20 distinct values), else with a colour
        bar.
    figure_, ax_ : set by :meth:`plot`.
    """

    def __init__(self, Z: npt.ArrayLike, *, labels: npt.ArrayLike | None = None,
                 label_names: Sequence[str] | None = None, xlabel: str = "latent 1",
                 ylabel: str = "latent 2", title: str | None = None):
        Z = np.asarray(Z, dtype=np.float64)
        if Z.ndim != 2 or Z.shape[1] != 2:
            raise ValueError(f"Z must have shape (n_samples, 2), got {Z.shape}.")
        if labels is not None:
            labels = np.asarray(labels)
            if labels.shape != (len(Z),):
                raise ValueError(f"labels must have shape ({len(Z)},), got {labels.shape}.")
        self.Z = Z
        self.labels = labels
        self.label_names = None if label_names is None else [str(n) for n in label_names]
        self.xlabel, self.ylabel, self.title = xlabel, ylabel, title
        self.categorical = labels is not None and (
            labels.dtype.kind in "OUSb" or np.unique(labels).size <= 20
        )

    @classmethod
    def from_estimator(cls, estimator: Any, X: npt.ArrayLike, y: npt.ArrayLike | None = None, *,
                       target_names: Sequence[str] | None = None,
                       dims: Sequence[int] = (0, 1), max_points: int | None = None,
                       random_state: int | np.random.RandomState | None = None,
                       title: str | None = None) -> Self:
        """Project ``X`` with ``estimator.transform`` and keep latent dimensions ``dims``.

        Parameters
        ----------
        estimator : fitted estimator with ``transform``
            PCA, an autoencoder, a VAE, ...
        X : array-like of shape (n_samples, n_features)
            The data to project.
        y : array-like of shape (n_samples,) or None, default=None
            Labels that colour the points.
        target_names : sequence of str or None, default=None
            Names of integer labels 0..n_classes-1.
        dims : pair of int, default=(0, 1)
            The latent dimensions to draw.
        max_points : int or None, default=None
            Draw a seeded random subset of that many points (for large data).
        random_state : int, RandomState or None, default=None
            Seeds that subset.
        title : str or None, default=None
            The plot's title.

        Returns
        -------
        display : ProjectionDisplay
            Ready to :meth:`plot`.
        """
        X = np.asarray(X)
        keep = _subset(len(X), max_points, random_state)
        Z = np.asarray(estimator.transform(X[keep]))
        dims = tuple(int(d) for d in dims)
        if Z.ndim != 2 or max(dims) >= Z.shape[1]:
            raise ValueError(
                f"cannot plot latent dimensions {dims}: {type(estimator).__name__} gives "
                f"{Z.shape[1] if Z.ndim == 2 else 0} of them."
            )
        name = "PC" if hasattr(estimator, "explained_variance_ratio_") else "latent"
        return cls(Z[:, dims], labels=None if y is None else np.asarray(y)[keep],
                   label_names=target_names, xlabel=f"{name} {dims[0] + 1}",
                   ylabel=f"{name} {dims[1] + 1}", title=title)

    @classmethod
    def from_data(cls, Z: npt.ArrayLike, y: npt.ArrayLike | None = None, *,
                  target_names: Sequence[str] | None = None, xlabel: str = "latent 1",
                  ylabel: str = "latent 2", title: str | None = None) -> Self:
        """Use given 2-D codes.

        Parameters
        ----------
        Z : array-like of shape (n_samples, 2)
            The codes to draw.
        y : array-like of shape (n_samples,) or None, default=None
            Labels that colour the points.
        target_names : sequence of str or None, default=None
            Names of integer labels 0..n_classes-1.
        xlabel, ylabel, title : str
            Axis labels and title.

        Returns
        -------
        display : ProjectionDisplay
            Ready to :meth:`plot`.
        """
        return cls(Z, labels=y, label_names=target_names, xlabel=xlabel, ylabel=ylabel,
                   title=title)

    def plot(self, ax: Axes | None = None, *, figsize: tuple[float, float] = (6.5, 5),
             s: float | None = None, alpha: float = 0.7) -> Self:
        """Draw the scatter with a legend (classes) or a colour bar (continuous labels).

        Parameters
        ----------
        ax : matplotlib Axes or None, default=None
            Where to draw; None makes a new figure of size ``figsize``.
        figsize : tuple of float, default=(6.5, 5)
            Size in inches of a new figure.
        s : float or None, default=None
            Marker area; None scales it down with the number of points.
        alpha : float, default=0.7
            Marker opacity.

        Returns
        -------
        display : ProjectionDisplay
            ``self``, with ``figure_`` and ``ax_`` set.
        """
        fig, ax = new_axes(ax, figsize=figsize)
        s = s if s is not None else float(np.clip(15000.0 / max(len(self.Z), 1), 3.0, 30.0))
        if self.labels is None:
            ax.scatter(self.Z[:, 0], self.Z[:, 1], s=s, alpha=alpha, lw=0)
        elif self.categorical:
            classes = np.unique(self.labels)
            cmap = pyplot().get_cmap("tab10" if classes.size <= 10 else "tab20")
            for i, c in enumerate(classes):
                m = self.labels == c
                name = c
                if self.label_names is not None and _is_index(c, len(self.label_names)):
                    name = self.label_names[int(c)]
                ax.scatter(self.Z[m, 0], self.Z[m, 1], s=s, alpha=alpha, lw=0,
                           color=cmap(i % cmap.N), label=str(name))
        else:
            sc = ax.scatter(self.Z[:, 0], self.Z[:, 1], c=self.labels, s=s, alpha=alpha, lw=0,
                            cmap="viridis")
            fig.colorbar(sc, ax=ax)
        ax.set_xlabel(self.xlabel)
        ax.set_ylabel(self.ylabel)
        if self.title:
            ax.set_title(self.title)
        if self.categorical:
            place_legend(ax, markerscale=max(1.0, 20 / s) ** 0.5, fontsize=8,
                         ncols=2 if np.unique(np.asarray(self.labels)).size > 10 else 1)
        self.figure_, self.ax_ = fig, ax
        return self


def _is_index(c, n: int) -> bool:
    """Whether label ``c`` is an integer-valued number in [0, n) (a class index)."""
    if isinstance(c, (bool, np.bool_)) or not isinstance(c, (int, float, np.number)):
        return False
    return float(c).is_integer() and 0 <= int(c) < n


def _subset(n: int, max_points, random_state) -> np.ndarray:
    if max_points is None or n <= int(max_points):
        return np.arange(n)
    from sklearn.utils import check_random_state

    rng = check_random_state(random_state)
    return np.sort(rng.choice(n, size=int(max_points), replace=False))

