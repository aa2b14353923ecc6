"""Speed grid: fit times of latentspace against scikit-learn and scikit-learn-intelex.

Four parts, each a grid of shapes in float64 and float32:

- ``pca``: PCA fit. ``n_components = min(10, d // 2)``. Tall cells (n ≥ 10·d) use
  ``svd_solver="covariance_eigh"`` in every library, the others (including the wide ones,
  d > n) the exact ``"full"``, so that all compute the same thing. Data: Gaussian columns
  scaled by a decaying spectrum (variances 1/(j + 1)) around a mean of 1, so the leading
  eigenvalues are well separated. Agreement: max relative difference of
  ``explained_variance_`` to scikit-learn's (same dtype).
- ``kmeans_iter``: one Lloyd iteration, measured as (fit at 1 + N iterations − fit at 1
  iteration) / N from the same initial centres with tol=0 (one-off costs cancel).
  Overlapping blobs. Agreement: relative difference of the float64 inertia of the final
  centres (computed here the same way for every library) to scikit-learn's.
- ``kmeans_fit``: whole fits, ``init="k-means++"``, n_init 1 and 3, default tol and
  max_iter, ``random_state=0`` in every library, on well-separated blobs with K true
  clusters. Agreement: inertia ours / scikit-learn's, and the iterations of each.
- ``gmm``: one EM iteration of GaussianMixture (full and diag), the same difference of
  fits as for K-means, from the same weights, means and precisions. Agreement: relative
  difference of the mean log-likelihood to scikit-learn's. scikit-learn-intelex has no
  GaussianMixture. scikit-learn keeps float32 input in float32 for all three estimators, so
  float32 cells compare float32 computations; float32 PCA cells also give each library's
  distance to scikit-learn's float64 explained variances (scikit-learn's float32
  ``covariance_eigh`` forms the uncentred Gram matrix, and is the least accurate there).

scikit-learn-intelex (module ``sklearnex``) is used through its own estimator classes (never
``patch_sklearn``), when it is importable; each of its fits is checked for the code path it
took through its log (oneDAL, or a fallback to stock scikit-learn), recorded per cell.
Timings are interleaved medians in one process (3 repeats, 5 for calls under 50 ms, one run
for calls estimated over 15 s), each timed call after a short idle, after one warm-up call
per library on a small array. N = 3 extra iterations for K-means, 2 for EM. Budget rule:
cells whose scikit-learn iteration is estimated over 3 s (K-means) or 1.5 s (EM) are left
out and listed; ``--estimate`` prints every cell's estimated cost without timing anything.

Floors, measured at the start of each run: the peak GEMM rate of the fastest BLAS in the
process (numpy and torch, a square and a tall product) per dtype, and the memory read
bandwidth (the best sum of a 1 GB array). A cell's floor is max(flops / peak, bytes read /
bandwidth), with flops n·d·min(n, d) for PCA (the Gram matrix, as a symmetric product),
2·n·d·K per K-means iteration, 2·n·d²·K per full EM iteration and 6·n·d·K per diag one;
bytes n·d·itemsize.

Results go to ``bench/grid/results.json`` (merged per cell, so a part can be rerun), the
heatmaps to ``bench/grid/<part>.png`` (ratio = peer time / ours, > 1: we are faster), and a
section of ``bench/RESULTS.md`` between the grid markers.

Usage: python bench/grid.py [--part pca|kmeans_iter|kmeans_fit|gmm ...] [--cells TEXT]
                            [--quick] [--out DIR] [--estimate] [--render] [--install-intelex]
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import logging
import math
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))
from _common import interleaved_medians, machine  # noqa: E402

PARTS = ("pca", "kmeans_iter", "kmeans_fit", "gmm")
TITLES = {
    "pca": "PCA fit",
    "kmeans_iter": "K-means, one Lloyd iteration",
    "kmeans_fit": "K-means, whole fits (k-means++)",
    "gmm": "GaussianMixture, one EM iteration",
}
DTYPES = ("float64", "float32")
MARK_BEGIN, MARK_END = "<!-- grid:begin -->", "<!-- grid:end -->"
SETTLE = 0.2  # seconds of idle before each timed call (see _common.interleaved_medians)
KMEANS_ITERS, GMM_ITERS = 3, 2  # the N of "fit at 1 + N iterations"
# cells whose estimated scikit-learn iteration takes longer (seconds) are left out
PRUNE_S = {"kmeans_iter": 3.0, "gmm": 1.5}
LONG_CALL_S = 15.0  # calls estimated longer are timed once
PINNED = ("torch", "numpy", "scipy", "scikit-learn")

# Rough cost of a library's call in multiples of the cell's floor, for the time estimate and
# the pruning rule only (never for a reported figure).
COST_FACTOR = {"pca_tall": 3.0, "pca_wide": 10.0, "kmeans_iter": 2.5, "kmeans_fit": 2.5,
               "gmm_full": 3.0, "gmm_diag": 12.0}


# ------------------------------------------------------------------------------------------
# pure helpers: work counts, floors, agreement, markers, tables, heatmap matrices


def cell_work(part: str, n: int, d: int, k: int, itemsize: int,
              cov: str | None = None) -> tuple[float, float]:
    """Floating-point operations and bytes read of one timed unit of a cell.

    Parameters
    ----------
    part : {"pca", "kmeans_iter", "kmeans_fit", "gmm"}
    n, d : int
        Rows and columns of the data.
    k : int
        Clusters or components (ignored for PCA).
    itemsize : int
        Bytes per element of the data (8 or 4).
    cov : {"full", "diag"} or None
        The covariance type of a ``gmm`` cell.

    Returns
    -------
    flops, nbytes : float
        PCA: n·d·min(n, d) (the symmetric Gram product); one K-means iteration (and the
        unit of a whole fit): 2·n·d·K; one EM iteration: 2·n·d²·K (full) or 6·n·d·K (diag).
        Bytes: one read of the data, n·d·itemsize.
    """
    if part == "pca":
        flops = float(n) * d * min(n, d)
    elif part in ("kmeans_iter", "kmeans_fit"):
        flops = 2.0 * n * d * k
    elif part == "gmm":
        if cov not in ("full", "diag"):
            raise ValueError(f"a gmm cell needs cov='full' or 'diag', got {cov!r}")
        flops = 2.0 * n * d * d * k if cov == "full" else 6.0 * n * d * k
    else:
        raise ValueError(f"unknown part {part!r}; choose one of {', '.join(PARTS)}")
    return flops, float(n) * d * itemsize


def floor_seconds(flops: float, nbytes: float, peak_flops: float, bandwidth: float) -> float:
    """The machine's lower bound on a computation: max(flops / peak, bytes / bandwidth).

    Parameters
    ----------
    flops, nbytes : float
        Work and data read of the computation.
    peak_flops : float
        Peak rate in flop/s (> 0).
    bandwidth : float
        Memory read bandwidth in bytes/s (> 0).

    Returns
    -------
    float
        Seconds.
    """
    if not (peak_flops > 0 and bandwidth > 0):
        raise ValueError(f"the peak rate and bandwidth must be positive, got {peak_flops} "
                         f"and {bandwidth}")
    return max(flops / peak_flops, nbytes / bandwidth)


def _batched(fn: Callable[[], Any], number: int) -> Callable[[], Any]:
    """``fn`` called ``number`` times in a row; the last result."""
    def call():
        out = None
        for _ in range(number):
            out = fn()
        return out
    return call


def repeats_for(estimate: float) -> int:
    """Timed repeats of a cell from the estimated seconds of one call: 5 under 50 ms, 3 up
    to 15 s, 1 beyond (a single call that long varies by a few percent on a quiet machine,
    and three would take most of the grid's budget)."""
    return 5 if estimate < 0.05 else 3 if estimate <= LONG_CALL_S else 1


BATCH_S = 0.25  # a timed sample of a short call runs it back to back for about this long


def batch_for(estimate: float) -> int:
    """Back-to-back calls per timed sample: after the idle pause before each sample, the
    first call pays for waking the machine's idle cores and the libraries' parked threads
    (measured here: 10–80 ms, far more than a small fit), so short calls are timed as a
    batch and the sample divided by its length; calls of BATCH_S or more run alone."""
    if estimate >= BATCH_S or estimate <= 0:
        return 1
    return int(min(100, math.ceil(BATCH_S / estimate)))


def per_iteration(t_short: float, t_long: float, extra_iters: int) -> float:
    """Seconds of one iteration from fits at 1 and at 1 + ``extra_iters`` iterations."""
    if extra_iters < 1:
        raise ValueError(f"extra_iters must be at least 1, got {extra_iters}")
    return (t_long - t_short) / extra_iters


def max_relative_difference(values: Any, reference: Any) -> float:
    """max_j |values_j / reference_j − 1| (the PCA agreement), in float64.

    Parameters
    ----------
    values, reference : array of shape (m,)
        E.g. explained variances; ``reference`` nonzero.

    Returns
    -------
    float
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    r = np.asarray(reference, dtype=np.float64).ravel()
    if v.shape != r.shape:
        raise ValueError(f"values have shape {v.shape}, the reference {r.shape}")
    return float(np.max(np.abs(v / r - 1.0)))


def relative_difference(value: float, reference: float) -> float:
    """|value − reference| / |reference| (the inertia and log-likelihood agreement)."""
    return abs(float(value) - float(reference)) / abs(float(reference))


def inertia_float64(X: np.ndarray, centres: np.ndarray, rows: int = 65536) -> float:
    """Σ_i min_k ‖x_i − c_k‖² in float64, by row blocks: the same number for every library.

    Parameters
    ----------
    X : array of shape (n, d)
    centres : array of shape (K, d)

    Returns
    -------
    float
    """
    C = np.asarray(centres, dtype=np.float64)
    cc = (C * C).sum(1)
    total = 0.0
    for start in range(0, len(X), rows):
        x = np.asarray(X[start:start + rows], dtype=np.float64)
        d2 = (x * x).sum(1)[:, None] - 2.0 * (x @ C.T) + cc[None]
        total += float(np.clip(d2.min(1), 0.0, None).sum())
    return total


def rewrite_between_markers(text: str, body: str) -> str:
    """``text`` with what lies between the grid markers replaced by ``body``.

    Without the markers, they are appended at the end with ``body`` between them; nothing
    outside the markers changes.

    Parameters
    ----------
    text : str
        The whole file.
    body : str
        The new section.

    Returns
    -------
    str
    """
    block = f"{MARK_BEGIN}\n{body.strip()}\n{MARK_END}"
    i = text.find(MARK_BEGIN)
    if i < 0:
        return text.rstrip("\n") + "\n\n" + block + "\n"
    j = text.find(MARK_END, i)
    if j < 0:
        raise ValueError(f"{MARK_BEGIN} has no {MARK_END} after it; fix the file by hand")
    return text[:i] + block + text[j + len(MARK_END):]


def pinned_constraints(names: Iterable[str] = PINNED) -> list[str]:
    """``name==version`` lines for the installed packages ``names`` (a pip constraints file
    that keeps them as they are)."""
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in names]


def _fmt_ms(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "–"
    if seconds <= 0:
        return "below noise"
    ms = 1e3 * seconds
    return f"{ms:.0f}" if ms >= 100 else f"{ms:.1f}" if ms >= 1 else f"{ms:.3f}"


def peer_text(cell: dict, peer: str) -> str:
    """The table text of a cell's ratio against ``peer`` ("scikit-learn" or "intelex")."""
    r = cell.get("ratio", {}).get(peer)
    if r is None:
        return cell.get("missing", {}).get(peer, "–")
    text = f"{r:.2f}"
    if peer == "intelex" and cell.get("intelex_path") not in (None, "oneDAL"):
        text += f" ({cell['intelex_path']})"
    return text


def markdown_table(cells: list[dict]) -> str:
    """The compact table of one part's cells (in their grid order).

    Parameters
    ----------
    cells : list of dict
        Cell records as written to results.json.

    Returns
    -------
    str
        Markdown: shape, dtype, ours ms, scikit-learn ms, ratio, intelex ratio, agreement,
        floor ms, ours / floor.
    """
    head = ("| shape | dtype | ours ms | scikit-learn ms | ratio sk / ours | ratio intelex / ours "
            "| agreement | floor ms | ours / floor |\n|---|---|---|---|---|---|---|---|---|")
    rows = []
    for c in sorted(cells, key=lambda c: (c["row_order"], c["col_order"], c["dtype"] != "float64")):
        ours = c["seconds"].get("latentspace")
        factor = ours / c["floor_s"] if ours and ours > 0 and c.get("floor_s") else None
        once = " (1 run)" if c.get("repeats") == 1 else ""
        rows.append(f"| {c['shape']} | {c['dtype']} | {_fmt_ms(ours)}{once} | "
                    f"{_fmt_ms(c['seconds'].get('scikit-learn'))} | {peer_text(c, 'scikit-learn')} | "
                    f"{peer_text(c, 'intelex')} | {c.get('agreement_text', '–')} | "
                    f"{_fmt_ms(c.get('floor_s'))} | {'–' if factor is None else f'{factor:.1f}'} |")
    return "\n".join([head, *rows])


def heatmap_matrix(cells: list[dict], dtype: str, peer: str) -> tuple[list[str], list[str], np.ndarray]:
    """The ratios of one panel as a matrix, rows and columns in grid order, NaN where no cell.

    Parameters
    ----------
    cells : list of dict
        One part's cell records.
    dtype : str
    peer : {"scikit-learn", "intelex"}

    Returns
    -------
    rows : list of str
    cols : list of str
    ratios : array of shape (len(rows), len(cols))
    """
    sel = [c for c in cells if c["dtype"] == dtype]
    rows = [r for _, r in sorted({(c["row_order"], c["row"]) for c in sel})]
    cols = [k for _, k in sorted({(c["col_order"], c["col"]) for c in sel})]
    M = np.full((len(rows), len(cols)), np.nan)
    for c in sel:
        r = c.get("ratio", {}).get(peer)
        if r is not None:
            M[rows.index(c["row"]), cols.index(c["col"])] = r
    return rows, cols, M


def draw_heatmaps(cells: list[dict], title: str, path: Path, peers: tuple[str, ...]) -> None:
    """One PNG: a panel per dtype and peer, cell text = ratio (peer time / ours), a diverging
    colormap on log2(ratio) centred at 1 (blue: we are faster; red: slower; grey: no cell).

    Parameters
    ----------
    cells : list of dict
        One part's cell records.
    title : str
    path : Path
        The PNG to write.
    peers : tuple of str
        The peers to draw a column of panels for.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dtypes = [dt for dt in DTYPES if any(c["dtype"] == dt for c in cells)]
    panels = [(dt, p) for dt in dtypes for p in peers]
    mats = [heatmap_matrix(cells, dt, p) for dt, p in panels]
    finite = np.concatenate([m[np.isfinite(m) & (m > 0)] for _, _, m in mats] + [np.ones(1)])
    lim = max(1.0, float(np.max(np.abs(np.log2(finite)))))
    n_rows = max(len(r) for r, _, _ in mats)
    n_cols = max(len(c) for _, c, _ in mats)
    fig, axes = plt.subplots(len(dtypes), len(peers), squeeze=False, layout="constrained",
                             figsize=(1.5 + (0.9 * n_cols + 0.6) * len(peers) + 1.0,
                                      0.8 + (0.45 * n_rows + 1.4) * len(dtypes)))
    cmap = plt.get_cmap("RdBu").with_extremes(bad="#dddddd")
    image = None
    for ax, (dt, peer), (rows, cols, M) in zip(axes.ravel(), panels, mats):
        L = np.log2(np.where(np.isfinite(M) & (M > 0), M, np.nan))
        image = ax.imshow(np.ma.masked_invalid(L), cmap=cmap, vmin=-lim, vmax=lim, aspect="auto")
        for i in range(M.shape[0]):
            for j in range(M.shape[1]):
                if np.isfinite(L[i, j]):
                    ax.text(j, i, f"{M[i, j]:.2f}", ha="center", va="center", fontsize=8,
                            color="white" if abs(L[i, j]) > 0.6 * lim else "black")
        ax.set_xticks(range(len(cols)), cols, rotation=35, ha="right", fontsize=8)
        ax.set_yticks(range(len(rows)), rows if ax in axes[:, 0] else [], fontsize=8)
        ax.set_title(f"{dt}: {peer} time / ours", fontsize=9)
    fig.suptitle(f"{title}: ratio > 1 means latentspace is faster", fontsize=10)
    if image is not None:
        bar = fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, label="ratio (log scale)")
        step = 1 if lim <= 4 else 2
        ticks = list(range(-int(lim) // step * step, int(lim) + 1, step))
        bar.set_ticks(ticks, labels=[f"{2.0 ** t:g}" for t in ticks])
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def render(results: dict, out: Path, results_md: Path) -> None:
    """Draw every part's heatmap into ``out`` and rewrite the grid section of ``results_md``."""
    lines = ["## Speed grid against scikit-learn and scikit-learn-intelex", "",
             f"`make grid` (`python bench/grid.py`), last run {results.get('updated', '?')}: "
             f"{results.get('machine', '?')}; scikit-learn-intelex "
             f"{results.get('intelex', 'not installed')}. Ratio = peer time / ours (> 1: "
             "latentspace is faster); medians of 3 interleaved runs (5 under 50 ms; calls "
             "estimated over 15 s are timed once, marked \"1 run\"). Floors "
             "(measured at the start of the run): "
             + "; ".join(f"{k} {v}" for k, v in results.get("floors_text", {}).items()) + ".", "",
             "Protocol and rules: the docstring of bench/grid.py. Intelex column: \"(fallback)\" "
             "marks a cell where scikit-learn-intelex ran stock scikit-learn code."]
    for part in PARTS:
        cells = [c for c in results.get("cells", {}).values() if c["part"] == part]
        if not cells:
            continue
        png = out / f"{part}.png"
        peers = ("scikit-learn",) if part == "gmm" else ("scikit-learn", "intelex")
        draw_heatmaps(cells, TITLES[part], png, peers)
        link = os.path.relpath(png, results_md.parent)
        lines += ["", f"### {TITLES[part]}", "", f"![{TITLES[part]}]({link})", "",
                  markdown_table(cells)]
        notes = results.get("notes", {}).get(part)
        if notes:
            lines += ["", notes]
    text = results_md.read_text() if results_md.exists() else ""
    results_md.write_text(rewrite_between_markers(text, "\n".join(lines)))


# ------------------------------------------------------------------------------------------
# data


def pca_data(n: int, d: int, seed: int = 0) -> np.ndarray:
    """Gaussian rows, column j scaled to variance 1/(j + 1), mean 1 (float64, by row blocks)."""
    rng = np.random.default_rng(seed)
    scale = 1.0 / np.sqrt(np.arange(1, d + 1))
    X = np.empty((n, d))
    step = max(1, (1 << 24) // d)
    for s in range(0, n, step):
        block = X[s:s + step]
        rng.standard_normal(out=block)
        block *= scale
        block += 1.0
    return X


def overlapping_blobs(n: int, d: int, k: int, seed: int = 0) -> np.ndarray:
    """Blobs closer than their spread: Lloyd keeps moving, every timed iteration is full."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((k, d)) * 0.5
    X = rng.standard_normal((n, d))
    X += centres[rng.integers(k, size=n)]
    return X


def separated_blobs(n: int, d: int, k: int, seed: int = 0) -> np.ndarray:
    """K blobs of unit spread whose centres lie far apart: one partition for every library."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-20.0, 20.0, (k, d))
    X = rng.standard_normal((n, d))
    X += centres[rng.integers(k, size=n)]
    return X


def gmm_data(n: int, d: int, k: int, seed: int = 0) -> np.ndarray:
    """K correlated Gaussian components with distinct means (float64)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((k, d)) * 3
    z = rng.integers(k, size=n)
    X = np.empty((n, d))
    for j in range(k):
        rows = np.flatnonzero(z == j)
        A = rng.standard_normal((d, d)) * 0.5 / np.sqrt(d) + np.eye(d)
        X[rows] = centres[j] + rng.standard_normal((len(rows), d)) @ A
    return X


def gmm_init(X: np.ndarray, k: int, cov: str, seed: int = 1) -> dict:
    """The same starting weights, means (random rows) and precisions (of the data's
    covariance) for every library."""
    rng = np.random.default_rng(seed)
    X64 = np.asarray(X[: min(len(X), 200_000)], dtype=np.float64)
    means = X64[rng.choice(len(X64), k, replace=False)].copy()
    if cov == "full":
        P = np.linalg.inv(np.cov(X64, rowvar=False) + 1e-6 * np.eye(X.shape[1]))
        precisions = np.repeat(((P + P.T) / 2)[None], k, axis=0)
    else:
        precisions = np.repeat((1.0 / (X64.var(0) + 1e-6))[None], k, axis=0)
    return dict(weights_init=np.full(k, 1.0 / k), means_init=means, precisions_init=precisions)


def mnist_rows(n: int) -> np.ndarray | None:
    """The first n MNIST training images in [0, 1] (float64), or None without the data."""
    folder = Path(os.environ.get("LATENTSPACE_TEST_DATA", HERE.parents[1] / "shared" / "data"))
    f = folder / "mnist.npz"
    if not f.is_file():
        return None
    x = np.load(f, allow_pickle=False)["x_train"][:n]
    return x.reshape(len(x), -1) / 255.0


# ------------------------------------------------------------------------------------------
# the grid


def _order(n: int) -> str:
    e = int(round(math.log10(n))) if n > 0 else 0
    return f"10^{e}" if 10 ** e == n else str(n)


def grid_cells(part: str, quick: bool) -> list[dict]:
    """The cells of one part (before pruning), each a dict of its parameters and labels."""
    cells: list[dict] = []
    if part == "pca":
        shapes = ([(20_000, 32), (200, 1_000)] if quick else
                  [(n, d) for n in (10_000, 100_000, 1_000_000) for d in (16, 64, 256, 1024)]
                  + [(200_000, 100), (2_000, 10_000), (500, 50_000)])
        for n, d in shapes:
            solver = "covariance_eigh" if n >= 10 * d else "full"
            cells.append(dict(part=part, n=n, d=d, k=min(10, d // 2), solver=solver,
                              shape=f"{n}×{d}, {solver}", row=f"n={_order(n)}", row_order=n,
                              col=f"d={d}", col_order=d))
    elif part == "kmeans_iter":
        ns, ds, ks = ([50_000], [16], [16]) if quick else \
            ([10_000, 100_000, 1_000_000], [16, 64, 256], [16, 256])
        for n in ns:
            for d in ds:
                for k in ks:
                    cells.append(dict(part=part, n=n, d=d, k=k, shape=f"{n}×{d}, K={k}",
                                      row=f"n={_order(n)}", row_order=n,
                                      col=f"d={d}, K={k}", col_order=1000 * d + k))
    elif part == "kmeans_fit":
        fits: list[tuple[int, int, int, str]] = (
            [(20_000, 16, 8, "blobs")] if quick else
            [(200_000, 32, 64, "blobs"), (1_000_000, 16, 16, "blobs"), (20_000, 784, 10, "MNIST")])
        for i, (n, d, k, kind) in enumerate(fits):
            for n_init in (1, 3):
                cells.append(dict(part=part, n=n, d=d, k=k, n_init=n_init, data=kind,
                                  shape=f"{kind} {n}×{d}, K={k}, n_init={n_init}",
                                  row=f"{kind} {n}×{d}, K={k}", row_order=i,
                                  col=f"n_init={n_init}", col_order=n_init))
    elif part == "gmm":
        ns, ds, ks = ([20_000], [8], [4]) if quick else \
            ([10_000, 100_000, 1_000_000], [4, 16, 64], [4, 16])
        for cov in ("full", "diag"):
            for n in ns:
                for d in ds:
                    for k in ks:
                        cells.append(dict(part=part, n=n, d=d, k=k, cov=cov,
                                          shape=f"{cov}, {n}×{d}, K={k}", row=f"n={_order(n)}",
                                          row_order=n, col=f"{cov} d={d} K={k}",
                                          col_order=(cov == "diag") * 10**6 + 1000 * d + k))
    else:
        raise ValueError(f"unknown part {part!r}; choose one of {', '.join(PARTS)}")
    return cells


def library_seconds(cell: dict, dtype: str, floors: dict) -> float:
    """A rough estimate of one library's timed unit (pruning and the time estimate only)."""
    itemsize = np.dtype(dtype).itemsize
    flops, nbytes = cell_work(cell["part"], cell["n"], cell["d"], cell["k"], itemsize,
                              cell.get("cov"))
    floor = floor_seconds(flops, nbytes, floors[f"peak_{dtype}"], floors["bandwidth"])
    part = cell["part"]
    key = (f"pca_{'tall' if cell['solver'] == 'covariance_eigh' else 'wide'}" if part == "pca"
           else f"gmm_{cell['cov']}" if part == "gmm" else part)
    base = 0.002 + 3e-9 * cell["n"] * cell["d"]  # input checks and copies
    if part == "kmeans_fit":  # seeding (local trials of n·d·K each) and the iterations
        seeding = 2e-9 * cell["n"] * cell["d"] * cell["k"] * max(2, math.log(cell["k"]))
        iters = 80 if cell["data"] == "MNIST" else 5  # blobs converge in a few; MNIST in ~70
        return base + cell["n_init"] * (seeding + iters * COST_FACTOR[key] * floor)
    if part == "gmm":  # per-entry work on the responsibilities and on the centred rows
        base += 30e-9 * cell["n"] * cell["k"] + 3e-9 * cell["n"] * cell["k"] * cell["d"]
    return base + COST_FACTOR[key] * floor


def call_seconds(cell: dict, dtype: str, floors: dict) -> float:
    """A rough estimate of one timed call (for per-iteration parts, the longer fit)."""
    t = library_seconds(cell, dtype, floors)
    if cell["part"] in ("kmeans_iter", "gmm"):
        t *= 2 + (KMEANS_ITERS if cell["part"] == "kmeans_iter" else GMM_ITERS)
    return t


def estimate_cell(cell: dict, floors: dict, n_libs: int, settle: float = SETTLE) -> float:
    """Seconds a cell takes in both dtypes: data generation, warm-up and the timed calls."""
    total = 2e-8 * cell["n"] * cell["d"]
    for dtype in DTYPES:
        t = library_seconds(cell, dtype, floors)
        libs = n_libs - 1 if cell["part"] == "gmm" else n_libs
        repeats = repeats_for(call_seconds(cell, dtype, floors))
        if cell["part"] in ("kmeans_iter", "gmm"):
            iters = KMEANS_ITERS if cell["part"] == "kmeans_iter" else GMM_ITERS
            t = (2 + iters + 2) * t  # fits at 1 and at 1 + N iterations, each with its extras
        total += libs * repeats * (t + settle) + libs * 0.2
    return total


def prune(cell: dict, floors: dict) -> str | None:
    """Why a cell is left out of the grid (its estimated scikit-learn iteration is too slow)."""
    limit = PRUNE_S.get(cell["part"])
    if limit is not None:
        t = library_seconds(cell, "float64", floors)
        if t > limit:
            return f"estimated {t:.1f} s per iteration for scikit-learn (> {limit:g} s)"
    return None


# ------------------------------------------------------------------------------------------
# measurement


def measure_floors(quick: bool) -> dict:
    """Peak GEMM rate per dtype (best of numpy and torch, square and tall products) and the
    memory read bandwidth (best sum of a 1 GB array, numpy and torch)."""
    import torch

    def best(fn, repeats):
        fn()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times)

    reps = 2 if quick else 5
    floors = {}
    rng = np.random.default_rng(0)
    for dtype in DTYPES:
        m, rows = (1024, 50_000) if quick else (2048, 200_000)
        floors[f"peak_{dtype}"] = _gemm_rate(rng.standard_normal((m, m)).astype(dtype),
                                             rng.standard_normal((rows, 128)).astype(dtype),
                                             reps, best)
    big = np.ones((1 << 24) if quick else (1 << 27))  # 128 MB or 1 GB
    tb = torch.from_numpy(big)
    floors["bandwidth"] = max(big.nbytes / best(big.sum, reps), big.nbytes / best(tb.sum, reps))
    del big, tb
    gc.collect()
    return floors


def _gemm_rate(square: np.ndarray, tall: np.ndarray, reps: int, best) -> float:
    """The best flop rate of numpy's and torch's products a·a and tallᵀ·tall."""
    import torch

    ts, tt = torch.from_numpy(square), torch.from_numpy(tall)
    m, rows, cols = square.shape[0], tall.shape[0], tall.shape[1]
    cases = [(lambda: square @ square, 2.0 * m**3), (lambda: torch.mm(ts, ts), 2.0 * m**3),
             (lambda: tall.T @ tall, 2.0 * rows * cols**2),
             (lambda: torch.mm(tt.T, tt), 2.0 * rows * cols**2)]
    return max(flops / best(fn, reps) for fn, flops in cases)


def floors_text(floors: dict) -> dict:
    return {"float64 GEMM": f"{floors['peak_float64'] / 1e9:.0f} GFLOP/s",
            "float32 GEMM": f"{floors['peak_float32'] / 1e9:.0f} GFLOP/s",
            "read bandwidth": f"{floors['bandwidth'] / 1e9:.1f} GB/s"}


class _IntelexLog(logging.Handler):
    """Collects scikit-learn-intelex's messages on which code path each call took."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def load_intelex() -> tuple[dict | None, str, _IntelexLog | None]:
    """(classes, version text, log) of scikit-learn-intelex, or (None, reason, None)."""
    try:
        from importlib.metadata import version

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from sklearnex.cluster import KMeans as ExKMeans
            from sklearnex.decomposition import PCA as ExPCA
        text = version("scikit-learn-intelex")
    except Exception as exc:  # any import failure means: run without it
        return None, f"not installed ({type(exc).__name__})", None
    logger = logging.getLogger("sklearnex")
    for h in logger.handlers:
        h.setLevel(logging.WARNING)  # its own stderr handler stays quiet
    log = _IntelexLog()
    logger.addHandler(log)
    logger.setLevel(logging.INFO)
    return {"PCA": ExPCA, "KMeans": ExKMeans}, text, log


def path_of(messages: list[str]) -> str:
    """"oneDAL", "fallback" or "unknown" from the log messages of one call."""
    if any("fallback" in m for m in messages):
        return "fallback"
    if any("running accelerated version" in m for m in messages):
        return "oneDAL"
    return "unknown"


class Runner:
    """Times the cells of a run and collects their records."""

    def __init__(self, floors: dict, intelex: dict | None, intelex_log: _IntelexLog | None,
                 quick: bool) -> None:
        self.floors, self.intelex, self.log, self.quick = floors, intelex, intelex_log, quick
        self.paths: set[str] = set()
        self.settle = 0.02 if quick else SETTLE
        self.repeats = 0
        self.number = 1

    def traced(self, fn: Callable[[], Any]) -> Callable[[], Any]:
        """``fn`` with the code path of each of its scikit-learn-intelex calls recorded."""
        log = self.log
        assert log is not None

        def call():
            start = len(log.messages)
            out = fn()
            self.paths.add(path_of(log.messages[start:]))
            return out

        return call

    def time(self, fns: dict, small_fns: dict, estimate: float) -> dict:
        """Warm each callable up on the small array, then interleaved medians of the big."""
        for fn in small_fns.values():
            try:  # a library that fails on the small array still gets its turn on the big one
                fn()
            except Exception:  # noqa: BLE001 - a warm-up only
                pass
        gc.collect()
        repeats = self.repeats = repeats_for(estimate)
        number = self.number = batch_for(estimate)
        if number > 1:
            fns = {name: _batched(fn, number) for name, fn in fns.items()}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = interleaved_medians(fns, repeats=repeats, warmup=0, settle=self.settle)
        return {name: (t / number, out) for name, (t, out) in res.items()}

    def record(self, cell: dict, dtype: str, seconds: dict, agreement: float,
               agreement_text: str) -> dict:
        flops, nbytes = cell_work(cell["part"], cell["n"], cell["d"], cell["k"],
                                  np.dtype(dtype).itemsize, cell.get("cov"))
        # a whole fit has no fixed work count (seeding, iterations): no floor
        floor: float | None = None if cell["part"] == "kmeans_fit" else floor_seconds(
            flops, nbytes, self.floors[f"peak_{dtype}"], self.floors["bandwidth"])
        ours = seconds["latentspace"]
        # a difference of two fits can come out at or below zero when an iteration is far
        # shorter than the timing noise: no ratio then, and the table says so
        ratio = {p: seconds[p] / ours for p in ("scikit-learn", "intelex")
                 if p in seconds and ours > 0 and seconds[p] > 0}
        rec = dict(cell, dtype=dtype, seconds=seconds, ratio=ratio, agreement=agreement,
                   agreement_text=agreement_text, floor_s=floor, flops=flops, bytes=nbytes,
                   repeats=self.repeats, batch=self.number)
        missing = {p: "below timing noise" for p in ("scikit-learn", "intelex")
                   if p in seconds and p not in ratio}
        if "intelex" not in seconds:
            missing["intelex"] = ("no GaussianMixture" if cell["part"] == "gmm" else
                                  "not installed" if self.intelex is None else "failed")
        rec["missing"] = missing
        if self.paths:
            rec["intelex_path"] = "oneDAL" if self.paths == {"oneDAL"} else "/".join(sorted(self.paths))
        self.paths = set()
        return rec

    # --- parts -----------------------------------------------------------------------------

    def pca(self, cell: dict, X: np.ndarray, dtype: str) -> dict:
        from sklearn.decomposition import PCA as SkPCA

        from latentspace import PCA

        k, solver = cell["k"], cell["solver"]
        classes = {"latentspace": PCA, "scikit-learn": SkPCA}
        if self.intelex:
            classes["intelex"] = self.intelex["PCA"]
        small = X[: min(len(X), max(200, 2 * X.shape[1]))] if solver == "covariance_eigh" else X[:100]

        def make(cls, A):
            fn = lambda: cls(k, svd_solver=solver).fit(A)  # noqa: E731
            return self.traced(fn) if cls is classes.get("intelex") else fn

        fns = {name: make(cls, X) for name, cls in classes.items()}
        small_fns = {name: make(cls, small) for name, cls in classes.items()}
        self.paths = set()
        res = self.time(fns, small_fns, call_seconds(cell, dtype, self.floors))
        ref = res["scikit-learn"][1].explained_variance_
        devs = {name: max_relative_difference(r[1].explained_variance_, ref)
                for name, r in res.items() if name != "scikit-learn"}
        text = f"{devs['latentspace']:.1e}" + (f" (intelex {devs['intelex']:.1e})" if "intelex" in devs else "")
        if dtype == "float64":
            self.pca_ref64 = ref  # float32 cells also say how far each is from float64
        elif getattr(self, "pca_ref64", None) is not None and len(self.pca_ref64) == len(ref):
            far = {name: max_relative_difference(r[1].explained_variance_, self.pca_ref64)
                   for name, r in res.items()}
            short = {"latentspace": "ours", "scikit-learn": "sk", "intelex": "intelex"}
            text += "; vs float64 sk: " + ", ".join(f"{short[nm]} {v:.1e}" for nm, v in far.items())
        return self.record(cell, dtype, {n: r[0] for n, r in res.items()}, devs["latentspace"], text)

    def kmeans_iter(self, cell: dict, X: np.ndarray, dtype: str) -> dict:
        from sklearn.cluster import KMeans as SkKMeans

        from latentspace import KMeans

        k = cell["k"]
        C0 = X[np.random.default_rng(1).choice(len(X), k, replace=False)].copy()
        classes = {"latentspace": KMeans, "scikit-learn": SkKMeans}
        if self.intelex:
            classes["intelex"] = self.intelex["KMeans"]

        def make(cls, A, m):
            fn = lambda: cls(k, init=C0, n_init=1, max_iter=m, tol=0, algorithm="lloyd").fit(A)  # noqa: E731
            return self.traced(fn) if cls is classes.get("intelex") else fn

        small = X[: max(2 * k, 2000)]
        fns, small_fns = {}, {}
        for name, cls in classes.items():
            for m in (1, 1 + KMEANS_ITERS):
                fns[f"{name}/{m}"] = make(cls, X, m)
                small_fns[f"{name}/{m}"] = make(cls, small, m)
        self.paths = set()
        res = self.time(fns, small_fns, call_seconds(cell, dtype, self.floors))
        m = 1 + KMEANS_ITERS
        seconds = {name: per_iteration(res[f"{name}/1"][0], res[f"{name}/{m}"][0], KMEANS_ITERS)
                   for name in classes}
        inert = {name: inertia_float64(X, res[f"{name}/{m}"][1].cluster_centers_) for name in classes}
        iters = {name: int(res[f"{name}/{m}"][1].n_iter_) for name in classes}
        diffs = {name: relative_difference(inert[name], inert["scikit-learn"]) for name in classes}
        text = f"{diffs['latentspace']:.1e}"
        if "intelex" in diffs:
            text += f" (intelex {diffs['intelex']:.1e})"
        if any(v != m for v in iters.values()):
            text += " iterations " + "/".join(str(iters[nm]) for nm in classes) + f" (asked {m})"
        return self.record(cell, dtype, seconds, diffs["latentspace"], text)

    def kmeans_fit(self, cell: dict, X: np.ndarray, dtype: str) -> dict:
        from sklearn.cluster import KMeans as SkKMeans

        from latentspace import KMeans

        k, n_init = cell["k"], cell["n_init"]
        classes = {"latentspace": KMeans, "scikit-learn": SkKMeans}
        if self.intelex:
            classes["intelex"] = self.intelex["KMeans"]

        def make(cls, A):
            fn = lambda: cls(k, init="k-means++", n_init=n_init, random_state=0).fit(A)  # noqa: E731
            return self.traced(fn) if cls is classes.get("intelex") else fn

        small = X[: max(4 * k, 2000)]
        fns = {name: make(cls, X) for name, cls in classes.items()}
        small_fns = {name: make(cls, small) for name, cls in classes.items()}
        self.paths = set()
        res = self.time(fns, small_fns, call_seconds(cell, dtype, self.floors))
        inert = {name: inertia_float64(X, r[1].cluster_centers_) for name, r in res.items()}
        iters = "/".join(str(int(res[name][1].n_iter_)) for name in classes)
        ratio = inert["latentspace"] / inert["scikit-learn"]
        text = f"inertia ours/sk {ratio:.6f}"
        if "intelex" in inert:
            text += f", intelex/sk {inert['intelex'] / inert['scikit-learn']:.6f}"
        text += f"; iterations {iters}"
        return self.record(cell, dtype, {n: r[0] for n, r in res.items()}, abs(ratio - 1.0), text)

    def gmm(self, cell: dict, X: np.ndarray, dtype: str) -> dict:
        from sklearn.mixture import GaussianMixture as SkGM

        from latentspace import GaussianMixture

        k, cov = cell["k"], cell["cov"]
        init = gmm_init(X, k, cov)
        classes = {"latentspace": GaussianMixture, "scikit-learn": SkGM}

        def make(cls, A, m):
            # every starting parameter is given, so init_params only picks the cheapest route
            return lambda: cls(k, covariance_type=cov, max_iter=m, tol=0,
                               init_params="random_from_data", random_state=0, **init).fit(A)

        small = X[: max(20 * k, 2000)]
        fns, small_fns = {}, {}
        for name, cls in classes.items():
            for m in (1, 1 + GMM_ITERS):
                fns[f"{name}/{m}"] = make(cls, X, m)
                small_fns[f"{name}/{m}"] = make(cls, small, m)
        res = self.time(fns, small_fns, call_seconds(cell, dtype, self.floors))
        m = 1 + GMM_ITERS
        seconds = {name: per_iteration(res[f"{name}/1"][0], res[f"{name}/{m}"][0], GMM_ITERS)
                   for name in classes}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ll = {name: float(res[f"{name}/{m}"][1].score(X)) for name in classes}
        diff = relative_difference(ll["latentspace"], ll["scikit-learn"])
        return self.record(cell, dtype, seconds, diff, f"{diff:.1e}")


def cell_data(cell: dict) -> np.ndarray:
    """The float64 data of a cell."""
    n, d, k = cell["n"], cell["d"], cell["k"]
    if cell["part"] == "pca":
        return pca_data(n, d)
    if cell["part"] == "kmeans_iter":
        return overlapping_blobs(n, d, k)
    if cell["part"] == "gmm":
        return gmm_data(n, d, k)
    if cell.get("data") == "MNIST":
        X = mnist_rows(n)
        if X is not None:
            return X
        cell["data"], cell["shape"] = "synthetic", cell["shape"].replace("MNIST", "synthetic")
    return separated_blobs(n, d, k)


def cell_key(cell: dict) -> str:
    return f"{cell['part']}|{cell['shape']}"


def run(args: argparse.Namespace, out: Path, results_md: Path) -> None:
    """Measure the floors and the selected cells, merge them into results.json, render."""
    import torch

    warnings.simplefilter("ignore")
    t_start = time.perf_counter()
    floors = measure_floors(args.quick)
    intelex, intelex_text, log = load_intelex()
    print(f"# speed grid, {machine_line()}; scikit-learn-intelex {intelex_text}")
    print("# floors: " + "; ".join(f"{k} {v}" for k, v in floors_text(floors).items()), flush=True)
    n_libs = 3 if intelex else 2
    selected: list[dict] = []
    pruned: dict[str, list[str]] = {}
    for part in args.part:
        for cell in grid_cells(part, args.quick):
            if args.cells and not any(s in cell_key(cell) for s in args.cells):
                continue
            why = None if args.no_prune else prune(cell, floors)
            if why:
                pruned.setdefault(part, []).append(f"{cell['shape']}: {why}")
                continue
            selected.append(cell)
    estimates = [estimate_cell(c, floors, n_libs, 0.02 if args.quick else SETTLE) for c in selected]
    for part, items in pruned.items():
        print(f"# pruned from {part}: " + "; ".join(items))
    print(f"# {len(selected)} cells, estimated {sum(estimates) / 60:.1f} min in all", flush=True)
    if args.estimate:
        for c, e in zip(selected, estimates):
            print(f"{cell_key(c)}: ~{e:.0f} s")
        return
    results_path = out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {"cells": {}}
    runner = Runner(floors, intelex, log, args.quick)
    for i, (cell, est) in enumerate(zip(selected, estimates)):
        t_cell = time.perf_counter()
        X64 = cell_data(cell)
        for dtype in DTYPES:
            X = X64 if dtype == "float64" else X64.astype(np.float32)
            if dtype == "float32":
                del X64  # the float64 copy is not needed any more
            try:
                rec = getattr(runner, cell["part"])(cell, X, dtype)
            except Exception as exc:  # noqa: BLE001 - one library failing a cell ends only that cell
                print(f"[{i + 1}/{len(selected)}] {cell['part']} {cell['shape']} {dtype}: "
                      f"failed ({type(exc).__name__}: {str(exc)[:200]})", flush=True)
                continue
            results["cells"][f"{cell_key(cell)}|{dtype}"] = rec
            # saved after every cell, so that a run stopped part way keeps what it measured
            results_path.parent.mkdir(parents=True, exist_ok=True)
            results_path.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
            ours = rec["seconds"]["latentspace"]
            floor = rec["floor_s"]
            print(f"[{i + 1}/{len(selected)} {time.perf_counter() - t_start:6.0f} s] "
                  f"{cell['part']} {cell['shape']} {dtype}: ours {_fmt_ms(ours)} ms, "
                  f"scikit-learn / ours {peer_text(rec, 'scikit-learn')}, intelex / ours "
                  f"{peer_text(rec, 'intelex')}, agreement {rec['agreement_text']}"
                  + (f", ours/floor {ours / floor:.1f}" if floor and ours > 0 else ""), flush=True)
            del X
        gc.collect()
        print(f"    cell took {time.perf_counter() - t_cell:.0f} s (estimated {est:.0f} s)", flush=True)
    notes = results.setdefault("notes", {})
    for part in args.part:
        if part in pruned:
            notes[part] = "Left out: " + "; ".join(pruned[part]) + "."
        elif not args.cells:
            notes.pop(part, None)
    results.update(machine=machine_line(), intelex=intelex_text, floors=floors,
                   floors_text=floors_text(floors), torch_threads=torch.get_num_threads(),
                   updated=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
    out.mkdir(parents=True, exist_ok=True)
    results_path.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    render(results, out, results_md)
    print(f"# wrote {results_path} and the heatmaps; {time.perf_counter() - t_start:.0f} s in all")


def machine_line() -> str:
    """The machine line of _common, with the BLAS / OpenMP thread counts of the process."""
    try:
        from threadpoolctl import threadpool_info

        pools = "; ".join(sorted({f"{p.get('internal_api')} {p.get('num_threads')} threads"
                                  for p in threadpool_info()}))
    except ImportError:
        pools = "thread pools unknown"
    return f"{machine()}; {pools}"


def install_intelex() -> int:
    """Install scikit-learn-intelex when it is missing, with the venv's torch, numpy, scipy and
    scikit-learn pinned; a failure only means the grid runs without it (exit status 0)."""
    import importlib.util

    if importlib.util.find_spec("sklearnex") is not None:
        print("scikit-learn-intelex is installed")
        return 0
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("\n".join(pinned_constraints()) + "\n")
    try:
        proc = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet",
                               "scikit-learn-intelex", "-c", f.name], check=False)
    finally:
        os.unlink(f.name)
    if proc.returncode:
        print("scikit-learn-intelex could not be installed; the grid runs without it")
    return 0


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--part", nargs="+", choices=PARTS, default=list(PARTS))
    ap.add_argument("--cells", nargs="+", default=None,
                    help="only cells whose key (e.g. 'pca|100000×64') contains one of these")
    ap.add_argument("--quick", action="store_true", help="a tiny version of every part")
    ap.add_argument("--out", type=Path, default=None,
                    help="folder of results.json and the PNGs (default bench/grid; a fresh "
                         "temporary folder with --quick)")
    ap.add_argument("--results-md", type=Path, default=None,
                    help="the file whose grid section is rewritten (default bench/RESULTS.md; "
                         "OUT/RESULTS.md when --out or --quick is given)")
    ap.add_argument("--no-prune", action="store_true",
                    help="time the cells the budget rule leaves out too")
    ap.add_argument("--estimate", action="store_true", help="print the cells and their "
                    "estimated cost, time nothing")
    ap.add_argument("--render", action="store_true", help="only redraw from results.json")
    ap.add_argument("--install-intelex", action="store_true",
                    help="install scikit-learn-intelex if missing (versions pinned) and exit")
    args = ap.parse_args(argv)
    if args.install_intelex:
        sys.exit(install_intelex())
    out = args.out or (Path(tempfile.mkdtemp(prefix="grid-quick-")) if args.quick else HERE / "grid")
    results_md = args.results_md or (out / "RESULTS.md" if (args.out or args.quick) else HERE / "RESULTS.md")
    if args.render:
        path = out / "results.json"
        if not path.is_file():
            sys.exit(f"{path} does not exist; run the grid first (python bench/grid.py)")
        render(json.loads(path.read_text()), out, results_md)
        print(f"redrew the heatmaps in {out} and the grid section of {results_md}")
        return
    out.mkdir(parents=True, exist_ok=True)
    run(args, out, results_md)


if __name__ == "__main__":
    main()
