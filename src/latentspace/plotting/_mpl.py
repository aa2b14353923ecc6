"""Lazy matplotlib import, legend placement and tile frames shared by all displays."""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # matplotlib is imported lazily, when a plot is drawn
    from matplotlib.figure import Figure


def pyplot() -> ModuleType:
    """Import matplotlib.pyplot lazily, on the Agg backend unless one was chosen.

    Returns
    -------
    plt : module
        ``matplotlib.pyplot``.
    """
    import os

    import matplotlib

    if "MPLBACKEND" not in os.environ and matplotlib.get_backend().lower() not in ("agg",):
        try:
            matplotlib.use("Agg")
        except Exception:  # an interactive backend is already running; keep it
            pass
    import matplotlib.pyplot as plt

    return plt


def new_axes(ax=None, figsize=(6, 4)):
    """Return (figure, ax): ``ax``'s figure, or a new figure with one axes."""
    if ax is not None:
        return ax.figure, ax
    plt = pyplot()
    fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    return fig, ax


# ----------------------------------------------------------------------------- legends
_INSIDE = ("upper right", "upper left", "lower left", "lower right", "center right",
           "center left", "upper center", "lower center")


def data_extents(ax, renderer=None, step=2.0):
    """Where an axes' data is drawn, in display pixels.

    Parameters
    ----------
    ax : matplotlib Axes
    renderer : optional; the figure canvas' renderer by default
    step : float
        Line segments are sampled every ``step`` pixels, so a legend cannot sit on a segment
        between two vertices unnoticed.

    Returns
    -------
    points : ndarray of shape (n_points, 2)
        Samples along every line, the points of every scatter and the vertices of every
        filled band.
    boxes : ndarray of shape (n_boxes, 4)
        (x0, y0, x1, y1) of every patch (bars, ellipses) and of every text in the axes.
    """
    renderer = renderer or ax.figure.canvas.get_renderer()
    points, boxes = [np.empty((0, 2))], [np.empty((0, 4))]
    for line in ax.lines:
        if not line.get_visible():
            continue
        xy = line.get_transform().transform(np.asarray(line.get_xydata(), dtype=float))
        xy = xy[np.all(np.isfinite(xy), axis=1)]
        points.append(xy)
        if line.get_linestyle() not in ("None", "none", "", " ") and len(xy) > 1:
            for a, b in zip(xy[:-1], xy[1:]):
                n = int(np.hypot(*(b - a)) // step) + 1
                t = np.linspace(0.0, 1.0, n + 1)[:, None]
                points.append(a + t * (b - a))
    for coll in ax.collections:
        if not coll.get_visible():
            continue
        offsets = np.asarray(coll.get_offsets(), dtype=float)
        if offsets.size and not np.allclose(offsets, 0):
            points.append(coll.get_offset_transform().transform(offsets))
        for path in coll.get_paths():
            if len(coll.get_offsets()) <= 1:  # a filled band or polygon, not scatter markers
                points.append(coll.get_transform().transform(path.vertices))
    for artist in [*ax.patches, *ax.texts]:
        if artist.get_visible():
            bb = artist.get_window_extent(renderer)
            boxes.append([[bb.x0, bb.y0, bb.x1, bb.y1]])
    return np.vstack(points), np.vstack(boxes)


def overlaps_data(bbox, points, boxes, pad=3.0) -> bool:
    """Whether a display-space box (grown by ``pad`` pixels) covers any point or box."""
    x0, y0, x1, y1 = bbox.x0 - pad, bbox.y0 - pad, bbox.x1 + pad, bbox.y1 + pad
    inside = ((points[:, 0] >= x0) & (points[:, 0] <= x1)
              & (points[:, 1] >= y0) & (points[:, 1] <= y1))
    crossed = ((boxes[:, 0] <= x1) & (boxes[:, 2] >= x0)
               & (boxes[:, 1] <= y1) & (boxes[:, 3] >= y0))
    return bool(inside.any() or crossed.any())


def place_legend(ax, **kwargs):
    """Draw the axes' legend where it hides no data.

    The figure is laid out first (so that positions are final); then the first corner or
    side inside the axes whose legend box covers no line, point, band, bar or text is used,
    and when there is none the legend goes outside, to the right of the axes (constrained
    layout makes room for it). matplotlib's ``loc="best"`` only minimises the overlap, which
    on a full axes still hides data.

    Parameters
    ----------
    ax : matplotlib Axes
    **kwargs : passed to ``ax.legend`` (not ``loc`` or ``bbox_to_anchor``)

    Returns
    -------
    legend : matplotlib Legend
    """
    fig = ax.figure
    ax._legend_clear_of_data = dict(kwargs)  # for settle_legends, once the figure is complete
    fig.canvas.draw()  # runs the layout and the autoscaling: positions are final
    renderer = fig.canvas.get_renderer()
    points, boxes = data_extents(ax, renderer)
    for loc in _INSIDE:
        legend = ax.legend(loc=loc, **kwargs)
        if not overlaps_data(legend.get_window_extent(renderer), points, boxes):
            return legend
        legend.remove()
    return ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, **kwargs)


def settle_legends(fig: Figure, max_rounds: int = 4) -> None:
    """Place again the legends of :func:`place_legend` that the final layout moved onto data.

    A legend is placed when its panel is drawn; panels drawn later into the same figure (and
    their legends outside the axes) change every panel's size, so a corner that was clear may
    no longer be. Call this once all panels of a figure are drawn.

    Parameters
    ----------
    fig : matplotlib Figure
        The figure, all its panels drawn.
    max_rounds : int, default=4
        Draw-and-move rounds at most (a moved legend can shift the layout again).
    """
    for _ in range(max_rounds):
        fig.canvas.draw()
        # the canvases the displays draw on (Agg and its kin) have it; the base class does not
        renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
        moved = False
        for ax in fig.axes:
            kwargs = getattr(ax, "_legend_clear_of_data", None)
            legend = ax.get_legend()
            if kwargs is None or legend is None:
                continue
            points, boxes = data_extents(ax, renderer)
            if overlaps_data(legend.get_window_extent(renderer), points, boxes, pad=1.0):
                legend.remove()
                place_legend(ax, **kwargs)
                moved = True
        if not moved:
            return


# ----------------------------------------------------------------------------- image gutters
_GUTTER_CANDIDATES = ("#e69f00", "#009e73", "#56b4e9", "#f0e442", "#cc79a7", "#808080",
                      "#000000")


def colormap_distance(color, cmap) -> float:
    """Smallest RGB distance between ``color`` and the 256 colours of ``cmap`` (in [0, √3])."""
    import matplotlib
    from matplotlib.colors import to_rgb

    cm = matplotlib.colormaps[cmap] if isinstance(cmap, str) else cmap
    rgb = cm(np.linspace(0.0, 1.0, 256))[:, :3]
    return float(np.sqrt(((rgb - np.asarray(to_rgb(color))) ** 2).sum(1)).min())


def gutter_color(cmap) -> str:
    """A colour for the frames between image tiles that no pixel of ``cmap`` can take.

    Among a few colour-blind-safe candidates, the one farthest from every colour of the map:
    with a white background between tiles, white (or black) pixels at a tile's edge would
    otherwise merge with their neighbours (binary images turn into a barcode).
    """
    return max(_GUTTER_CANDIDATES, key=lambda c: colormap_distance(c, cmap))


def frame_tile(ax, color, linewidth=1.5) -> None:
    """No ticks; a frame of ``color`` around the tile (the y label is kept)."""
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(True)
        spine.set_color(color)
        spine.set_linewidth(linewidth)
