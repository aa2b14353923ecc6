"""Displays for the neural models: training curves, decoded latent grids, sample grids.

Latent-space scatters use :class:`ProjectionDisplay` (any model with ``transform``); the data
for every display here is prepared in numpy by the classmethods, only ``plot`` draws.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ._images import ImageGridDisplay, _hide_frame, as_images
from ._mpl import gutter_color, place_legend, pyplot

if TYPE_CHECKING:  # matplotlib is imported lazily, when a plot is drawn
    from matplotlib.axes import Axes
    from typing_extensions import Self

__all__ = ["LossCurveDisplay", "LatentGridDisplay", "MeanActivationDisplay", "SampleGridDisplay"]

# history keys that are bookkeeping, not curves
_NOT_CURVES = {"epoch", "n_skipped", "seconds", "restored_epoch"}
# what the history's keys measure, in words (a key not listed is shown as it is)
CURVE_NAMES = {
    "loss": "training loss",
    "val_loss": "validation loss",
    "reconstruction": "reconstruction error",
    "kl": "KL(q(z|x) ‖ p(z))",
    "elbo": "ELBO",
    "sparsity_kl": "sparsity penalty Σⱼ KL(ρ ‖ ρ̂ⱼ)",
    "learning_rate": "learning rate",
    "active_units": "active latent units",
    "loss_d": "discriminator loss",
    "loss_g": "generator loss",
    "modes_covered": "modes covered",
}


def _relation(a, b) -> int:
    """+1 if curve ``b`` equals ``a`` at every epoch, −1 if it equals −a, else 0."""
    if a.shape != b.shape:
        return 0
    if np.array_equal(a, b, equal_nan=True):
        return 1
    return -1 if np.array_equal(a, -b, equal_nan=True) else 0


class LossCurveDisplay:
    """Training curves from a neural model's ``history_`` (one panel per quantity).

    Parameters
    ----------
    epochs : ndarray of shape (n_epochs,)
        The x values (epoch numbers).
    curves : dict of name -> ndarray of shape (n_epochs,)
        NaN where an epoch did not record the quantity.
    title : str, optional
        The figure's title.

    Attributes
    ----------
    panels : list of (title, list of str)
        One panel per distinct curve: curves equal at every epoch, or equal up to sign (the
        loss of a model without a penalty is its reconstruction error; a VAE's loss is
        −ELBO), share one panel, titled e.g. "training loss = reconstruction error"; names
        in words from :data:`CURVE_NAMES`. The panel draws its first curve.
    figure_, axes_ : set by :meth:`plot`; one axes per panel.
    """

    def __init__(self, epochs: npt.ArrayLike, curves: Mapping[str, npt.ArrayLike], *,
                 title: str | None = None):
        self.epochs = np.asarray(epochs, dtype=np.float64)
        self.curves = {str(k): np.asarray(v, dtype=np.float64) for k, v in curves.items()}
        if not self.curves:
            raise ValueError("no curves to draw; the history holds no numeric quantities.")
        for k, v in self.curves.items():
            if v.shape != self.epochs.shape:
                raise ValueError(f"curve {k!r} has {v.shape[0]} points for {len(self.epochs)} epochs.")
        self.title = title
        groups: list[list[tuple[str, int]]] = []  # [(key, sign relative to the first)]
        for k, v in self.curves.items():
            for g in groups:
                sign = _relation(self.curves[g[0][0]], v)
                if sign:
                    g.append((k, sign))
                    break
            else:
                groups.append([(k, 1)])
        self.panels = [
            (" = ".join(("" if sign > 0 else "−") + CURVE_NAMES.get(k, k) for k, sign in g),
             [k for k, _ in g])
            for g in groups
        ]

    @classmethod
    def from_history(cls, history: Sequence[Mapping[str, Any]], *,
                     keys: Sequence[str] | None = None, title: str | None = None) -> Self:
        """Build from a list of per-epoch dicts.

        Parameters
        ----------
        history : list of dict
            One dict per epoch, e.g. a neural model's ``history_``.
        keys : sequence of str, optional
            Quantities to draw; by default every numeric key except bookkeeping
            (``epoch``, ``n_skipped``, ``seconds``), in first-seen order.
        title : str, optional
            The figure's title.

        Returns
        -------
        display : LossCurveDisplay
            Ready to :meth:`plot`.
        """
        if not history:
            raise ValueError("history is empty; fit the model first.")
        if keys is None:
            found: list[str] = []
            for rec in history:
                for k, v in rec.items():
                    if k not in _NOT_CURVES and k not in found and isinstance(v, (int, float)):
                        found.append(k)
            keys = found
        epochs = [rec.get("epoch", i + 1) for i, rec in enumerate(history)]
        curves = {k: [float(rec.get(k, np.nan)) for rec in history] for k in keys}
        return cls(epochs, curves, title=title)

    @classmethod
    def from_estimator(cls, estimator: Any, *, keys: Sequence[str] | None = None,
                       title: str | None = None) -> Self:
        """Use ``estimator.history_``.

        Parameters
        ----------
        estimator : fitted neural model
            With ``history_`` (Autoencoder, VAE, GAN).
        keys : sequence of str, optional
            Quantities to draw (see :meth:`from_history`).
        title : str, optional
            The figure's title.

        Returns
        -------
        display : LossCurveDisplay
            Ready to :meth:`plot`.
        """
        history = getattr(estimator, "history_", None)
        if history is None:
            raise ValueError(f"{type(estimator).__name__} has no history_; fit it first.")
        return cls.from_history(history, keys=keys, title=title)

    def plot(self, *, axes: Any = None, figsize: tuple[float, float] | None = None) -> Self:
        """Draw one line plot per distinct curve against the epoch.

        Parameters
        ----------
        axes : array of matplotlib Axes or None, default=None
            At least one axes per panel; None makes a new figure (up to 3 panels a row).
        figsize : tuple of float or None, default=None
            Size in inches of a new figure; None sizes it from the panels.

        Returns
        -------
        display : LossCurveDisplay
            ``self``, with ``figure_`` and ``axes_`` set.
        """
        n = len(self.panels)
        if axes is None:
            plt = pyplot()
            n_cols = min(n, 3)
            n_rows = -(-n // n_cols)
            fig, axes = plt.subplots(n_rows, n_cols, figsize=figsize or (3.4 * n_cols, 2.6 * n_rows),
                                     squeeze=False, layout="constrained")
        axes = np.asarray(axes, dtype=object)
        flat = axes.ravel()
        for ax, (name, keys) in zip(flat, self.panels):
            values = self.curves[keys[0]]
            ax.plot(self.epochs, values, marker="." if len(values) < 30 else None)
            ax.set_title(name, fontsize=9)
            ax.set_xlabel("epoch")
            ax.grid(alpha=0.3)
        for ax in flat[n:]:
            ax.set_visible(False)
        if self.title:
            flat[0].figure.suptitle(self.title)
        self.figure_, self.axes_ = flat[0].figure, axes
        return self


class LatentGridDisplay:
    """Images decoded from a regular grid on a 2-D latent plane (Kingma & Welling, Fig. 4).

    Parameters
    ----------
    images : ndarray of shape (n, n, height, width)
        ``images[i, j]`` decodes latent point (z1[j], z2[i]).
    z1, z2 : ndarray of shape (n,)
        Grid coordinates along the two latent axes.
    title : str, optional
        The plot's title.
    gutter : int, optional
        Pixels of gutter around every tile; by default ``max(1, round(min(h, w) / 8))``.
        Without gutters, neighbouring decoded images fuse into stripes.

    Attributes
    ----------
    mosaic : ndarray of shape (n * height, n * width)
        The tiles side by side (first row at the top = largest z2).
    padded_mosaic : ndarray of shape (n * (height + g) + g, n * (width + g) + g)
        What ``plot`` shows: the tiles with NaN gutters of ``g = gutter`` pixels, drawn in a
        colour that no image pixel takes (``gutter_color_``).
    figure_, ax_, gutter_color_ : set by :meth:`plot`.
    """

    def __init__(self, images: npt.ArrayLike, z1: Sequence[float] | np.ndarray,
                 z2: Sequence[float] | np.ndarray, *,
                 title: str | None = None, gutter: int | None = None):
        images = np.asarray(images, dtype=np.float64)
        if images.ndim != 4 or images.shape[0] != len(z2) or images.shape[1] != len(z1):
            raise ValueError(f"images must have shape (len(z2), len(z1), h, w), got {images.shape}.")
        self.images, self.z1, self.z2 = images, np.asarray(z1, float), np.asarray(z2, float)
        self.title = title
        n2, n1, h, w = images.shape
        g = max(1, round(min(h, w) / 8)) if gutter is None else int(gutter)
        if g < 0:
            raise ValueError(f"gutter={gutter} must be a number of pixels >= 0.")
        self.gutter = g
        rows = images[::-1]  # largest z2 on top, as on a plot's y axis
        self.mosaic = np.concatenate([np.concatenate(list(r), axis=1) for r in rows], axis=0)
        padded = np.full((n2 * (h + g) + g, n1 * (w + g) + g), np.nan)
        for i in range(n2):
            for j in range(n1):
                y0, x0 = g + i * (h + g), g + j * (w + g)
                padded[y0:y0 + h, x0:x0 + w] = rows[i, j]
        self.padded_mosaic = padded

    @classmethod
    def from_estimator(cls, estimator: Any, image_shape: tuple[int, int], *, n: int = 15,
                       X: npt.ArrayLike | None = None,
                       quantiles: tuple[float, float] = (0.05, 0.95),
                       title: str | None = None) -> Self:
        """Decode an ``n``×``n`` grid with ``estimator.inverse_transform``.

        Parameters
        ----------
        estimator : fitted model with ``latent_dim == 2`` and ``inverse_transform``
            The decoder to draw.
        image_shape : tuple (height, width)
            Shape of one decoded image.
        n : int, default=15
            Grid points per latent axis.
        X : array-like, optional
            Without it the grid spans the ``quantiles`` of a standard normal (the VAE prior,
            as in Kingma & Welling); with it, the same quantiles of the codes of ``X`` (for
            autoencoders, whose codes have no prior).
        quantiles : tuple of two float, default=(0.05, 0.95)
            The grid's range on each axis, as quantiles.
        title : str, optional
            The plot's title.

        Returns
        -------
        display : LatentGridDisplay
            Ready to :meth:`plot`.
        """
        L = getattr(estimator, "latent_dim", None)
        if L != 2:
            raise ValueError(f"a latent grid needs latent_dim=2, {type(estimator).__name__} has {L}.")
        n = int(n)
        q = np.linspace(quantiles[0], quantiles[1], n)
        if X is None:
            from scipy.stats import norm

            z1 = z2 = norm.ppf(q)
        else:
            Z = np.asarray(estimator.transform(np.asarray(X)), dtype=np.float64)
            z1, z2 = np.quantile(Z[:, 0], q), np.quantile(Z[:, 1], q)
        g1, g2 = np.meshgrid(z1, z2)  # (n, n): row i has z2[i]
        codes = np.column_stack([g1.ravel(), g2.ravel()])
        decoded = np.asarray(estimator.inverse_transform(codes))
        h, w = image_shape
        return cls(as_images(decoded, image_shape).reshape(n, n, h, w), z1, z2, title=title)

    def plot(self, ax: Axes | None = None, *, figsize: tuple[float, float] = (6, 6),
             cmap: str = "gray") -> Self:
        """Draw the mosaic with latent coordinates on the axes.

        Parameters
        ----------
        ax : matplotlib Axes or None, default=None
            Where to draw; None makes a new figure of size ``figsize``.
        figsize : tuple of float, default=(6, 6)
            Size in inches of a new figure.
        cmap : str, default="gray"
            Colour map of the images.

        Returns
        -------
        display : LatentGridDisplay
            ``self``, with ``figure_``, ``ax_`` and ``gutter_color_`` set.
        """
        if ax is None:
            plt = pyplot()
            fig, ax = plt.subplots(figsize=figsize, layout="constrained")
        import matplotlib

        n2, n1, h, w = self.images.shape
        g = self.gutter
        cm = matplotlib.colormaps[cmap].with_extremes(bad=gutter_color(cmap))
        finite = self.images[np.isfinite(self.images)]
        ax.imshow(np.ma.masked_invalid(self.padded_mosaic), cmap=cm, interpolation="nearest",
                  vmin=finite.min() if finite.size else 0.0,
                  vmax=finite.max() if finite.size else 1.0)
        _hide_frame(ax)
        ticks = [0, n1 // 2, n1 - 1]
        fmt = lambda v: f"{0.0 if abs(v) < 1e-9 else v:.2g}"  # noqa: E731 (no "-1.4e-16" for 0)
        centre = lambda t, size: g + t * (size + g) + size / 2 - 0.5  # noqa: E731 (pixel centres)
        ax.set_xticks([centre(t, w) for t in ticks], [fmt(self.z1[t]) for t in ticks])
        ax.set_yticks([centre(t, h) for t in [0, n2 // 2, n2 - 1]],
                      [fmt(self.z2[::-1][t]) for t in [0, n2 // 2, n2 - 1]])
        ax.set_xlabel("latent 1")
        ax.set_ylabel("latent 2")
        if self.title:
            ax.set_title(self.title)
        self.figure_, self.ax_, self.gutter_color_ = ax.figure, ax, gutter_color(cmap)
        return self


class SampleGridDisplay(ImageGridDisplay):
    """A grid of samples drawn from a generative model (VAE or GAN)."""

    @classmethod
    # samples replace the parameter rows of ImageGridDisplay.from_estimator: other options
    def from_estimator(  # type: ignore[override]
        cls, estimator: Any, image_shape: Sequence[int], *, n_samples: int = 32,
        n_cols: int = 8, random_state: int | np.random.RandomState | None = None,
        title: str | None = None,
    ) -> Self:
        """Draw ``n_samples`` with ``estimator.sample`` and show them on a shared grey scale.

        Parameters
        ----------
        estimator : fitted generative model
            With ``sample(n, random_state=...)`` (VAE, GAN, mixtures).
        image_shape : tuple (height, width)
            Shape of one sample as an image.
        n_samples : int, default=32
            How many to draw.
        n_cols : int, default=8
            Images per row of the grid.
        random_state : int, RandomState or None, default=None
            Passed to ``sample``.
        title : str, optional
            The figure's title.

        Returns
        -------
        display : SampleGridDisplay
            Ready to :meth:`plot`.
        """
        S = np.asarray(estimator.sample(int(n_samples), random_state=random_state))
        return cls.from_data(S, image_shape, n_cols=n_cols, title=title)


class MeanActivationDisplay:
    """Mean activation of each code unit against the sparsity target ρ.

    Parameters
    ----------
    mean_activation : array-like of shape (n_units,)
        ρ̂_j, the mean activation of each code unit.
    target : float or None
        ρ, drawn as a horizontal line.
    title : str, optional
        The plot's title.

    Attributes
    ----------
    max_deviation : float or None
        ``max_j |ρ̂_j − ρ|``.
    figure_, ax_ : set by :meth:`plot`.
    """

    def __init__(self, mean_activation: npt.ArrayLike, *, target: float | None = None,
                 title: str | None = None):
        self.mean_activation = np.asarray(mean_activation, dtype=np.float64).ravel()
        if self.mean_activation.size == 0:
            raise ValueError("mean_activation is empty.")
        self.target = None if target is None else float(target)
        self.max_deviation = (None if target is None
                              else float(np.abs(self.mean_activation - float(target)).max()))
        self.title = title

    @classmethod
    def from_estimator(cls, estimator: Any, *, title: str | None = None) -> Self:
        """Use ``mean_activation_`` and ``sparsity_target`` of a fitted autoencoder.

        Parameters
        ----------
        estimator : fitted sparse Autoencoder
            With ``mean_activation_``.
        title : str, optional
            The plot's title.

        Returns
        -------
        display : MeanActivationDisplay
            Ready to :meth:`plot`.
        """
        if not hasattr(estimator, "mean_activation_"):
            raise ValueError(f"{type(estimator).__name__} has no mean_activation_; fit it first.")
        return cls(estimator.mean_activation_, target=getattr(estimator, "sparsity_target", None),
                   title=title)

    def plot(self, ax: Axes | None = None, *,
             figsize: tuple[float, float] = (6.5, 3)) -> Self:
        """Bars per unit, the target as a dashed line.

        Parameters
        ----------
        ax : matplotlib Axes or None, default=None
            Where to draw; None makes a new figure of size ``figsize``.
        figsize : tuple of float, default=(6.5, 3)
            Size in inches of a new figure.

        Returns
        -------
        display : MeanActivationDisplay
            ``self``, with ``figure_`` and ``ax_`` set.
        """
        if ax is None:
            plt = pyplot()
            fig, ax = plt.subplots(figsize=figsize, layout="constrained")
        units = np.arange(1, self.mean_activation.size + 1)
        ax.bar(units, self.mean_activation, color="tab:blue", label="mean activation ρ̂ⱼ")
        if self.target is not None:
            ax.axhline(self.target, color="tab:red", ls="--", label=f"target ρ = {self.target:g}")
        ax.set_xlabel("code unit j")
        ax.set_ylabel("mean activation")
        if self.title:
            ax.set_title(self.title)
        place_legend(ax, fontsize=8)
        self.figure_, self.ax_ = ax.figure, ax
        return self
