"""Grids of images: data samples, reconstructions, or model parameters seen as pictures.

The data preparation (reshaping, colour limits, grid shape) happens in the constructors and
classmethods and is plain numpy; only ``plot`` imports matplotlib.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ._mpl import frame_tile, gutter_color, pyplot

if TYPE_CHECKING:  # Python 3.10 has no typing.Self
    from typing_extensions import Self

__all__ = ["ImageGridDisplay", "as_images"]


def as_images(X: npt.ArrayLike, image_shape: Sequence[int]) -> np.ndarray:
    """Reshape rows of ``X`` into images.

    Parameters
    ----------
    X : array-like of shape (n_images, height * width) or (n_images, height, width)
        One image per row.
    image_shape : tuple (height, width)
        Shape of one image.

    Returns
    -------
    images : ndarray of shape (n_images, height, width)
        A view of ``X`` where it can be.
    """
    X = np.asarray(X)
    h, w = (int(s) for s in image_shape)
    if X.ndim == 3 and X.shape[1:] == (h, w):
        return X
    if X.ndim != 2 or X.shape[1] != h * w:
        raise ValueError(
            f"cannot show rows of shape {X.shape[1:]} as {h}x{w} images: each row needs "
            f"{h * w} values (height * width); pass the image_shape the data came from."
        )
    return X.reshape(len(X), h, w)


def _grid_shape(n: int, n_cols: int) -> tuple[int, int]:
    n_cols = max(1, min(int(n_cols), n))
    return math.ceil(n / n_cols), n_cols


def _hide_frame(ax) -> None:
    """No ticks or spines, but keep the y label (``ax.axis('off')`` would drop it)."""
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


class ImageGridDisplay:
    """A grid of images with optional titles.

    Parameters
    ----------
    images : ndarray of shape (n_images, height, width)
    titles : list of str, optional
        One title per image.
    n_cols : int, default=8
    cmap : str, default="gray"
        "gray" for data; a diverging map (e.g. "RdBu_r") for signed parameters.
    symmetric : bool, default=False
        Colour limits ±max|image| per image, so that 0 is the middle of a diverging map.
    vmin, vmax : float, optional
        Shared colour limits (when not symmetric); None lets each image use its own range.
    title : str, optional
        A title for the whole figure.

    Attributes
    ----------
    grid_shape : tuple (n_rows, n_cols)
    limits : ndarray of shape (n_images, 2)
        The (vmin, vmax) each image is drawn with.
    figure_, axes_ : set by :meth:`plot`; ``axes_`` has shape ``grid_shape``.
    gutter_color_ : str
        Set by :meth:`plot`: the colour of the frame around each tile, one that no pixel of
        ``cmap`` takes, so that tiles never merge with the background between them.
    """

    def __init__(self, images: npt.ArrayLike, *, titles: Sequence[str] | None = None,
                 n_cols: int = 8, cmap: str = "gray", symmetric: bool = False,
                 vmin: float | None = None, vmax: float | None = None,
                 title: str | None = None):
        images = np.asarray(images, dtype=np.float64)
        if images.ndim != 3 or len(images) == 0:
            raise ValueError(
                f"images must have shape (n_images, height, width) with n_images >= 1, got "
                f"{images.shape}."
            )
        if titles is not None and len(titles) != len(images):
            raise ValueError(f"got {len(titles)} titles for {len(images)} images.")
        self.images = images
        self.titles = None if titles is None else [str(t) for t in titles]
        self.cmap = cmap
        self.symmetric = symmetric
        self.title = title
        self.grid_shape = _grid_shape(len(images), n_cols)
        if symmetric:
            # per image: the sign of a component is arbitrary, its zero is not
            m = np.abs(images).reshape(len(images), -1).max(1)
            m = np.where(m > 0, m, 1.0)
            self.limits = np.stack([-m, m], axis=1)
        else:
            flat = images.reshape(len(images), -1)
            lo = flat.min(1) if vmin is None else np.full(len(images), float(vmin))
            hi = flat.max(1) if vmax is None else np.full(len(images), float(vmax))
            self.limits = np.stack([lo, hi], axis=1)

    @classmethod
    def from_data(cls, X: npt.ArrayLike, image_shape: Sequence[int], *,
                  n_images: int | None = None, titles: Sequence[str] | None = None,
                  n_cols: int = 8, cmap: str = "gray", vmin: float | None = None,
                  vmax: float | None = None, title: str | None = None) -> Self:
        """Show the first ``n_images`` rows of ``X`` as images.

        Data images share the limits ``vmin``/``vmax`` (by default those of the shown rows), so
        that grey levels compare across the grid.

        Parameters
        ----------
        X : array-like of shape (n_samples, height * width)
            One image per row.
        image_shape : tuple (height, width)
            Shape of one image.
        n_images : int or None, default=None
            Show only the first ``n_images`` rows; None shows them all.
        titles : sequence of str or None, default=None
            One title per image.
        n_cols : int, default=8
            Images per row of the grid.
        cmap : str, default="gray"
            Colour map.
        vmin, vmax : float or None, default=None
            The shared grey scale; None takes the shown rows' minimum and maximum.
        title : str or None, default=None
            The figure's title.

        Returns
        -------
        display : ImageGridDisplay
            Ready to :meth:`plot`.
        """
        images = as_images(X, image_shape)
        if n_images is not None:
            images = images[: int(n_images)]
            titles = None if titles is None else list(titles)[: int(n_images)]
        if vmin is None:
            vmin = float(images.min())
        if vmax is None:
            vmax = float(images.max())
        return cls(images, titles=titles, n_cols=n_cols, cmap=cmap, vmin=vmin, vmax=vmax,
                   title=title)

    @classmethod
    def from_estimator(cls, estimator: Any, image_shape: Sequence[int], *,
                       attribute: str = "components_", n_images: int = 24, n_cols: int = 8,
                       cmap: str = "RdBu_r", titles: str | Sequence[str] | None = "auto",
                       title: str | None = None) -> Self:
        """Show rows of a fitted parameter (``components_``, ``cluster_centers_``, ``means_``).

        Parameters
        ----------
        estimator : fitted estimator
            The model whose parameter is shown.
        image_shape : tuple (height, width)
            Shape of one image.
        attribute : str, default ``"components_"``
            Attribute of shape (n_rows, height*width).
        n_images : int, default=24
            Show the first ``n_images`` rows (fewer if the attribute has fewer).
        n_cols : int, default=8
            Images per row of the grid.
        cmap : str, default="RdBu_r"
            Diverging colours with symmetric limits: a component's pixels are signed weights.
            Pass "gray" for non-negative parameters such as cluster means.
        titles : "auto", list of str or None
            "auto": "PC i (r%)" from ``explained_variance_ratio_`` when the estimator has it,
            else "i".
        title : str or None, default=None
            The figure's title.

        Returns
        -------
        display : ImageGridDisplay
            Ready to :meth:`plot`.
        """
        rows = np.asarray(getattr(estimator, attribute))[: int(n_images)]
        if titles == "auto":
            ratio = getattr(estimator, "explained_variance_ratio_", None)
            if attribute == "components_" and ratio is not None:
                titles = [f"PC {i + 1} ({100 * r:.1f}%)" for i, r in enumerate(ratio[: len(rows)])]
            else:
                titles = [str(i + 1) for i in range(len(rows))]
        diverging = cmap not in ("gray", "gray_r", "Greys", "binary")
        if diverging:
            return cls(as_images(rows, image_shape), titles=titles, n_cols=n_cols, cmap=cmap,
                       symmetric=True, title=title)
        return cls.from_data(rows, image_shape, titles=titles, n_cols=n_cols, cmap=cmap,
                             title=title)

    def plot(self, *, axes: Any = None, figsize: tuple[float, float] | None = None) -> Self:
        """Draw the grid.

        Parameters
        ----------
        axes : array of matplotlib Axes, optional
            At least ``n_images`` axes (any shape); a new figure when None.
        figsize : tuple, optional
            Size of a new figure; by default about 1.2 inch per image, keeping the aspect.

        Returns
        -------
        display : ImageGridDisplay
            ``self``, with ``figure_``, ``axes_`` and ``gutter_color_`` set.
        """
        n_rows, n_cols = self.grid_shape
        h, w = self.images.shape[1:]
        if axes is None:
            plt = pyplot()
            if figsize is None:
                cell = 1.25
                figsize = (n_cols * cell * max(w / h, 0.6),
                           n_rows * cell * 1.15 + (0.4 if self.title else 0.0))
            fig, axes = plt.subplots(n_rows, n_cols, figsize=figsize, squeeze=False,
                                     layout="constrained")
        axes = np.asarray(axes, dtype=object)
        flat = axes.ravel()
        gutter = gutter_color(self.cmap)
        if flat.size < len(self.images):
            raise ValueError(f"need {len(self.images)} axes, got {flat.size}.")
        for i, ax in enumerate(flat):
            if i >= len(self.images):
                ax.set_visible(False)
                continue
            lo, hi = self.limits[i]
            ax.imshow(self.images[i], cmap=self.cmap, vmin=lo, vmax=hi, interpolation="nearest")
            frame_tile(ax, gutter)
            if self.titles is not None:
                ax.set_title(self.titles[i], fontsize=8)
        fig = flat[0].figure
        if self.title:
            fig.suptitle(self.title)
        self.figure_, self.axes_, self.gutter_color_ = fig, axes, gutter
        return self
