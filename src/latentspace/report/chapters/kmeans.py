"""Chapter: K-means, its centres as images, and choosing K at the elbow of E(K).

K-means is fitted for each candidate K with :func:`latentspace.choose_k` (the reconstruction
error E(K) is each fit's ``inertia_``), the knee of the curve is marked, and the centres of a
fit with one cluster per class are shown as images. Every number is read from the fitted
estimators.
"""

from __future__ import annotations

from typing import Any

from ...cluster import KMeans
from ...plotting import ImageGridDisplay
from ...selection import choose_k
from .._chapter import Chapter, Figure, TourContext
from ._shared import chapter_rows, label_matched_accuracy, n_classes

KEY = "kmeans"
TITLE = "K-means clustering"
EXPECTED_SECONDS = (1.6, 0.7)  # on digits, one torch thread, 2 cores (full, quick run)

_CLASS_N_INIT = 10  # starts of the fit with one cluster per class (full run)

_INTRO = (
    "K-means splits the data into K groups, each summarised by its centre: it alternates "
    "assigning every point to its nearest centre and moving each centre to the mean of its "
    "points, which never increases the reconstruction error E(K). E(K) keeps falling as K "
    "grows, so K is read off the curve where the fall slows down: the elbow."
)
_FORMULA = (
    "E(K) = Σₙ ‖xₙ − μ_{zₙ}‖²,   zₙ = argmin_k ‖xₙ − μ_k‖²,   μ_k = mean{xₙ : zₙ = k}\n"
    "elbow: the knee of log E(K) (Kneedle)"
)


def run(ctx: TourContext) -> Chapter:
    """Elbow curve, centres as images, and the label-matched accuracy of K-means."""
    X, y = chapter_rows(ctx)
    k_true = n_classes(y)
    ks = range(2, 13) if ctx.quick else range(2, 21)
    n_init = 1 if ctx.quick else 3
    ctx.progress("K-means for each K")
    template = KMeans(n_init=n_init, random_state=ctx.random_state, device=ctx.device)
    elbow = choose_k(template, X, ks, criterion="elbow")
    figures: list[Figure] = []
    numbers: dict[str, Any] = {}
    disp = elbow.display.plot()
    figures.append(Figure(
        disp.figure_,
        caption=(
            f"Reconstruction error E(K) — the sum over the {len(X)} {ctx.name} images of the "
            f"squared distance to their nearest centre — for K = {ks.start}…{ks.stop - 1}; "
            f"the knee of the curve, marked, is K = {elbow.best_k}."
        ),
        alt="Decreasing curve of the K-means reconstruction error against K with the elbow marked.",
    ))
    numbers["K at the elbow"] = elbow.best_k
    # one cluster per class with the Handbook's (and scikit-learn's classic) 10 starts: the
    # best of 3 starts in the elbow curve is a poorer local optimum on digits
    class_n_init = n_init if ctx.quick else _CLASS_N_INIT
    km = elbow.estimators.get(k_true)
    if km is None or km.n_init != class_n_init:
        ctx.progress("K-means with one cluster per class")
        km = KMeans(k_true, n_init=class_n_init, random_state=ctx.random_state,
                    device=ctx.device).fit(X)
    ctx.results["kmeans"] = km
    measures: dict[str, float] = {}
    numbers[f"K-means starts for K={k_true} (best kept)"] = int(km.n_init)
    numbers[f"reconstruction error E({k_true})"] = float(km.inertia_)
    numbers[f"Lloyd iterations (K={k_true})"] = int(km.n_iter_)
    if y is not None:
        accuracy = label_matched_accuracy(km.labels_, y)
        numbers[f"label-matched accuracy (K={k_true})"] = accuracy
        measures["accuracy_one_cluster_per_class"] = accuracy
    grid = ImageGridDisplay.from_estimator(
        km, ctx.image_shape, attribute="cluster_centers_", n_images=k_true, n_cols=min(k_true, 10),
        cmap="gray", titles=[f"{int(c)} pts" for c in km.counts_],
    ).plot()
    figures.append(Figure(
        grid.figure_,
        caption=(
            f"The {k_true} K-means centres (best of {km.n_init} starts) shown as "
            f"{ctx.image_shape[0]}×{ctx.image_shape[1]} images, with the number of points in "
            "each cluster: each centre is the mean image of its cluster."
        ),
        alt=f"Grid of {k_true} cluster-centre images.",
    ))
    return Chapter(KEY, TITLE, _INTRO, _FORMULA, figures, numbers, measures=measures)
