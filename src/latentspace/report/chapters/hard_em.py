"""Chapter: K-means is the hard, small-variance limit of a Gaussian mixture.

From the same k-means++ centres, EM for an equal-weight mixture with a fixed spherical
variance σ² is run for decreasing σ² (:func:`latentspace.mixture.anneal_variance`); the share
of its labels that equal K-means' labels rises to 1. Classification EM
(``GaussianMixture(hard=True)``) is shown beside it.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import adjusted_rand_score

from ...cluster import KMeans, kmeans_plusplus
from ...decomposition import PCA
from ...mixture import GaussianMixture, anneal_variance
from ...plotting import AnnealingDisplay
from .._chapter import Chapter, Figure, TourContext
from ._shared import chapter_rows, n_classes

KEY = "hard_em"
TITLE = "K-means as hard EM"
EXPECTED_SECONDS = (0.6, 0.3)  # on digits, one torch thread, 2 cores (full, quick run)

_INTRO = (
    "Give every component the same weight and the same spherical variance σ². The "
    "responsibilities become a softmax of −‖x − μ_k‖²/2σ²: as σ² shrinks they harden into "
    "nearest-centre assignments, and EM's mean update becomes K-means' centroid update. "
    "K-means is EM for this mixture in the limit σ² → 0."
)
_FORMULA = (
    "r_nk = exp(−‖x_n − μ_k‖²/2σ²) / Σ_j exp(−‖x_n − μ_j‖²/2σ²)  →  1[k = argmin_j ‖x_n − μ_j‖²]  as σ² → 0"
)


def run(ctx: TourContext) -> Chapter:
    """Annealing path from the soft mixture to K-means, and classification EM."""
    X, y = chapter_rows(ctx, n_max=3000, n_quick=1000)
    k = n_classes(y)
    ctx.progress("projection for the annealing path")
    Z = PCA(10, random_state=ctx.random_state, device=ctx.device).fit_transform(X)
    rng = np.random.RandomState(ctx.random_state)
    C0 = kmeans_plusplus(torch.as_tensor(np.asarray(Z, dtype=np.float64)), k, rng)[0].numpy()
    km = KMeans(k, init=C0, tol=0, device=ctx.device).fit(Z)
    spread = float(np.mean(np.var(Z, axis=0)))
    variances = spread * np.geomspace(1.0, 1e-4, 8 if ctx.quick else 14)
    ctx.progress("variance annealing")
    path = anneal_variance(Z, C0, variances)
    disp = AnnealingDisplay.from_path(path, km.labels_).plot()
    figures = [Figure(
        disp.figure_,
        caption=(
            f"Fraction of points whose label under EM for the equal-weight spherical mixture "
            f"(σ² fixed, from the same {k} initial centres) equals K-means' label, on a "
            "10-dimensional PCA projection. At small σ² EM is K-means."
        ),
        alt="Agreement with K-means rising to 1 as the variance decreases.",
    )]
    hard = GaussianMixture(k, covariance_type="spherical", hard=True,
                           random_state=ctx.random_state, device=ctx.device).fit(Z)
    soft = GaussianMixture(k, covariance_type="spherical", random_state=ctx.random_state,
                           device=ctx.device).fit(Z)
    agree = path.agreement(km.labels_)
    numbers = {
        "agreement with K-means at the largest σ²": float(agree[0]),
        "agreement with K-means at the smallest σ²": float(agree[-1]),
        "largest distance between annealed means and K-means centres":
            float(np.abs(path.means[-1] - km.cluster_centers_).max()),
        "classification-EM iterations": int(hard.n_iter_),
        "ARI classification EM vs K-means": float(adjusted_rand_score(hard.predict(Z), km.labels_)),
        "ARI soft EM vs K-means": float(adjusted_rand_score(soft.predict(Z), km.labels_)),
    }
    return Chapter(KEY, TITLE, _INTRO, _FORMULA, figures, numbers)
