"""Properties of the drawn figures, checked on the figure objects and their rendered pixels.

Each test states what a reader must be able to see: legends hide no data, counts get integer
ticks, a minimum at the end of the range tried is flagged, image tiles are separated by a
colour no pixel takes, two panels never show the same curve, originals keep the data's grey
scale. The checks are written here from matplotlib's public artists, independently of the
helpers the displays use.
"""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from sklearn.datasets import load_digits

from latentspace.decomposition import PCA
from latentspace.plotting import (
    ChooseKDisplay,
    EMTraceDisplay,
    ExplainedVarianceDisplay,
    ImageGridDisplay,
    LatentGridDisplay,
    LossCurveDisplay,
    MeanActivationDisplay,
    ProjectionDisplay,
    ReconstructionDisplay,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


# ----------------------------------------------------------------------------- helpers
def _segment_points(xy, step=1.0):
    """Points every ``step`` pixels along a polyline in display space."""
    out = [xy]
    for a, b in zip(xy[:-1], xy[1:]):
        n = int(np.hypot(*(b - a)) / step) + 1
        out.append(a + np.linspace(0, 1, n + 1)[:, None] * (b - a))
    return np.vstack(out)


def _covered_data(ax):
    """Display-space data of ``ax`` that its legend covers: (points inside, patches crossed)."""
    fig = ax.figure
    fig.canvas.draw()
    legend = ax.get_legend()
    assert legend is not None
    bb = legend.get_window_extent(fig.canvas.get_renderer())
    pts = []
    for line in ax.lines:
        xy = line.get_transform().transform(line.get_xydata())
        xy = xy[np.isfinite(xy).all(1)]
        pts.append(_segment_points(xy) if line.get_linestyle() not in ("None", "") else xy)
    for coll in ax.collections:
        off = np.asarray(coll.get_offsets(), float)
        if len(off) > 1:
            pts.append(coll.get_offset_transform().transform(off))
        else:  # a band: its outline
            for path in coll.get_paths():
                pts.append(_segment_points(coll.get_transform().transform(path.vertices)))
    pts = np.vstack(pts)
    inside = ((pts[:, 0] > bb.x0) & (pts[:, 0] < bb.x1) & (pts[:, 1] > bb.y0) & (pts[:, 1] < bb.y1))
    crossed = [p for p in ax.patches if bb.overlaps(p.get_window_extent())]
    return int(inside.sum()), len(crossed)


def _colour_distance(rgb, cmap):
    """Distance of each RGB pixel (..., 3) to the nearest of the 256 colours of ``cmap``."""
    lut = matplotlib.colormaps[cmap](np.linspace(0, 1, 256))[:, :3]
    flat = rgb.reshape(-1, 3)
    d = np.sqrt(((flat[:, None, :] - lut[None]) ** 2).sum(-1)).min(1)
    return d.reshape(rgb.shape[:-1])


def _pixels_between(fig, p, q):
    """RGB pixels of the rendered figure on the segment between display points p and q."""
    fig.canvas.draw()
    img = np.asarray(fig.canvas.buffer_rgba())[..., :3] / 255.0
    H = img.shape[0]
    n = int(np.hypot(*(np.subtract(q, p)))) + 1
    xs = np.linspace(p[0], q[0], n).astype(int)
    ys = (H - 1 - np.linspace(p[1], q[1], n)).astype(int)  # display y grows upwards
    return img[ys, xs]


def _centre(ax):
    bb = ax.get_window_extent()
    return ((bb.x0 + bb.x1) / 2, (bb.y0 + bb.y1) / 2)


def _assert_neighbours_separated(fig, axes, cmap, min_distance=0.25):
    """Between the centres of horizontally and vertically adjacent tiles, some pixel has a
    colour that no pixel of ``cmap`` can take."""
    axes = np.asarray(axes, dtype=object)
    n_rows, n_cols = axes.shape
    fig.canvas.draw()  # the layout places the axes
    pairs = [(axes[r, c], axes[r, c + 1]) for r in range(n_rows) for c in range(n_cols - 1)]
    pairs += [(axes[r, c], axes[r + 1, c]) for r in range(n_rows - 1) for c in range(n_cols)]
    for a, b in pairs:
        if not (a.get_visible() and b.get_visible()):
            continue
        between = _pixels_between(fig, _centre(a), _centre(b))
        assert _colour_distance(between, cmap).max() >= min_distance


def _binary_images(n, h=8, w=8, seed=0):
    """Random binary images whose border pixels are all on (white on a grey scale)."""
    imgs = (np.random.default_rng(seed).random((n, h, w)) < 0.5).astype(float)
    imgs[:, 0, :] = imgs[:, -1, :] = imgs[:, :, 0] = imgs[:, :, -1] = 1.0
    return imgs


@pytest.fixture(scope="module")
def digits():
    d = load_digits()
    return d.data / 16.0, d.target


# ----------------------------------------------------------------------------- legends
def test_em_trace_legend_hides_no_curve():
    # a short high curve and a long low flat one (full against diagonal covariances): the
    # lower right corner, where the legend used to be, is on the low curve
    full = -37.2 - 2.0 * np.exp(-np.arange(14) / 2.0)
    diag = -54.3 - 0.8 * np.exp(-np.arange(25) / 6.0)
    ax = EMTraceDisplay([full, diag], ["full covariances", "diagonal covariances"]).plot().ax_
    assert _covered_data(ax) == (0, 0)


def test_mean_activation_legend_hides_no_bar():
    rng = np.random.default_rng(0)
    disp = MeanActivationDisplay(0.055 + 0.003 * rng.random(25), target=0.05).plot()
    assert _covered_data(disp.ax_) == (0, 0)


@pytest.mark.parametrize("scores", [np.linspace(10, 1, 19), np.r_[np.linspace(9, 1, 10),
                                                                   np.linspace(1.5, 9, 9)]])
def test_choose_k_legend_hides_no_point(scores):
    ax = ChooseKDisplay(np.arange(2, 21), scores, 2 + int(np.argmin(scores)), "aic").plot().ax_
    assert _covered_data(ax) == (0, 0)


def test_projection_and_variance_legends_hide_no_data(digits):
    X, y = digits
    pca = PCA(random_state=0).fit(X)
    ax = ProjectionDisplay.from_estimator(pca, X, y).plot().ax_
    assert _covered_data(ax) == (0, 0)
    ax = ExplainedVarianceDisplay.from_estimator(pca).plot().ax_
    assert _covered_data(ax) == (0, 0)


# ----------------------------------------------------------------------------- axes of counts
def _visible_ticks(axis, lo, hi):
    return [t for t in axis.get_major_locator()() if lo - 1e-9 <= t <= hi + 1e-9]


def test_k_and_iteration_axes_have_integer_ticks():
    disp = ChooseKDisplay(np.arange(2, 21), np.linspace(10, 1, 19) ** 2, 9, "elbow").plot()
    disp.figure_.canvas.draw()
    ticks = _visible_ticks(disp.ax_.xaxis, *disp.ax_.get_xlim())
    assert len(ticks) >= 3 and all(float(t).is_integer() for t in ticks)
    trace = EMTraceDisplay([np.linspace(-3, -1, 6)], ["a"]).plot()
    trace.figure_.canvas.draw()
    ticks = _visible_ticks(trace.ax_.xaxis, *trace.ax_.get_xlim())
    assert len(ticks) >= 2 and all(float(t).is_integer() for t in ticks)


# ----------------------------------------------------------------------------- minimum at an edge
@pytest.mark.parametrize("criterion", ["aic", "bic", "heldout"])
def test_minimum_at_either_end_of_the_range_is_flagged(criterion):
    ks = np.arange(1, 21)
    falling = 100.0 - ks  # minimum at the largest K tried
    disp = ChooseKDisplay(ks, falling, 20, criterion)
    assert disp.best_at_edge == "largest" and "larger K" in disp.edge_note
    text = disp.plot().ax_.get_legend().get_texts()[0].get_text()
    assert "largest K tried" in text and "true\nminimum" in text
    disp = ChooseKDisplay(ks, ks.astype(float), 1, criterion)
    assert disp.best_at_edge == "smallest" and "smaller K" in disp.edge_note
    inner = ChooseKDisplay(ks, (ks - 8.0) ** 2, 8, criterion)
    assert inner.best_at_edge is None and inner.edge_note is None
    assert "minimum" not in inner.plot().ax_.get_legend().get_texts()[0].get_text()


def test_elbow_is_not_a_minimum_and_is_not_flagged():
    assert ChooseKDisplay([2, 3, 4], [3.0, 2.0, 1.0], 4, "elbow").best_at_edge is None


# ----------------------------------------------------------------------------- image tiles
@pytest.mark.parametrize("cmap", ["gray", "RdBu_r"])
def test_image_grid_tiles_are_separated_by_a_colour_no_pixel_takes(cmap):
    imgs = _binary_images(12)
    if cmap == "RdBu_r":
        imgs = 2 * imgs - 1
    disp = ImageGridDisplay(imgs, n_cols=6, cmap=cmap, vmin=imgs.min(), vmax=imgs.max()).plot()
    _assert_neighbours_separated(disp.figure_, disp.axes_, cmap)


def test_reconstruction_grid_tiles_are_separated():
    imgs = _binary_images(4)
    disp = ReconstructionDisplay(imgs, np.stack([imgs, 1 - imgs]), [1, 2]).plot()
    _assert_neighbours_separated(disp.figure_, disp.axes_, "gray")


def test_latent_grid_tiles_are_separated_by_gutters():
    n, h, w = 5, 8, 8
    tiles = np.ones((n, n, h, w))  # all pixels on: without gutters one white block
    disp = LatentGridDisplay(tiles, np.linspace(-1, 1, n), np.linspace(-1, 1, n)).plot()
    img = disp.ax_.images[0]
    arr = img.get_array()
    g = disp.gutter
    assert g >= 1 and np.ma.is_masked(arr)
    for t in range(n + 1):  # the gutter rows and columns around every tile are masked
        assert arr.mask[t * (h + g):t * (h + g) + g, :].all()
        assert arr.mask[:, t * (w + g):t * (w + g) + g].all()
    # on the rendered figure: between the centres of neighbouring tiles lies a pixel of a
    # colour that the grey scale never takes
    to_display = disp.ax_.transData.transform
    centre = lambda i, j: to_display((g + j * (w + g) + w / 2 - 0.5,  # noqa: E731
                                      g + i * (h + g) + h / 2 - 0.5))
    for i, j, di, dj in [(0, 0, 0, 1), (2, 3, 1, 0), (4, 3, 0, 1)]:
        between = _pixels_between(disp.figure_, centre(i, j), centre(i + di, j + dj))
        assert _colour_distance(between, "gray").max() >= 0.25


# ----------------------------------------------------------------------------- loss panels
def test_equal_curves_share_one_panel():
    loss = [5.0, 3.0, 2.5, 2.4]
    history = [{"epoch": i + 1, "loss": v, "reconstruction": v, "learning_rate": 1e-3 / (i + 1)}
               for i, v in enumerate(loss)]
    disp = LossCurveDisplay.from_history(history).plot()
    visible = [ax for ax in disp.axes_.ravel() if ax.get_visible()]
    assert len(visible) == len(disp.panels) == 2
    assert disp.panels[0] == ("training loss = reconstruction error", ["loss", "reconstruction"])
    ys = [tuple(ax.lines[0].get_ydata()) for ax in visible]
    assert len(set(ys)) == len(ys)  # no two panels draw the same values
    # a curve equal to another up to sign (a VAE's ELBO and its loss) is drawn once too
    for rec in history:
        rec["elbo"] = -rec["loss"]
    panels = LossCurveDisplay.from_history(history).panels
    assert panels[0] == ("training loss = reconstruction error = −ELBO",
                         ["loss", "reconstruction", "elbo"])
    # distinct curves keep their own panels
    history[1]["reconstruction"] = 2.9
    assert len(LossCurveDisplay.from_history(history).panels) == 3


# ----------------------------------------------------------------------------- grey scales
def test_reconstruction_originals_keep_the_data_grey_scale():
    rng = np.random.default_rng(0)
    originals = rng.random((3, 8, 8))
    originals[0, 0, 0], originals[1, 0, 0] = 0.0, 1.0
    recon = np.stack([originals * 1.6 - 0.3])  # overshoots the data range on both sides
    disp = ReconstructionDisplay(originals, recon, [5]).plot()
    for ax in disp.axes_.ravel():
        assert ax.images[0].get_clim() == (0.0, 1.0)


def test_legends_of_panels_drawn_into_one_figure_hide_no_data():
    # three selection curves side by side: the later panels' legends (one outside its axes)
    # resize the earlier panels, whose legend corners must then be chosen again
    from latentspace.plotting._mpl import pyplot, settle_legends

    ks = np.array([1, 2, 3, 4, 6, 8, 10, 12, 15, 20])
    v_shape = np.array([216, 210, 200, 201, 190, 197, 201, 209, 221, 233]) * 1e3
    falling = np.array([211, 200, 186, 181, 160, 157, 152, 149, 146, 134]) * 1e3
    rising = np.array([58.7, 54.8, 53.5, 53.2, 51.0, 51.8, 53.6, 54.7, 61.4, 82.7])
    fig, axes = pyplot().subplots(1, 3, figsize=(13, 3.8), layout="constrained")
    for ax, scores, crit in zip(axes, (v_shape, falling, rising), ("bic", "aic", "heldout")):
        ChooseKDisplay(ks, scores, ks[int(np.argmin(scores))], crit).plot(ax)
    settle_legends(fig)
    for ax in axes:
        assert _covered_data(ax) == (0, 0)
