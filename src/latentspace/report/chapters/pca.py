"""Chapter 1: principal component analysis, as projection, reconstruction and a Gaussian model.

One PCA is fitted on the whole dataset (all components; on LFW the eigenfaces experiment keeps
150). Every number in the table is read from that estimator: ``explained_variance_ratio_``,
``fit_svd_solver_``, ``inverse_transform`` for the reconstructions, ``score`` for the
probabilistic-PCA likelihood.
"""

from __future__ import annotations

import numpy as np

from ...decomposition import PCA
from ...plotting import (
    ExplainedVarianceDisplay,
    ImageGridDisplay,
    ProjectionDisplay,
    ReconstructionDisplay,
)
from .._chapter import Chapter, Figure, TourContext

KEY = "pca"
TITLE = "Principal component analysis"
EXPECTED_SECONDS = (2.3, 2.2)  # on digits, one torch thread, 2 cores (full, quick run)

_KS = (5, 10, 20, 50, 150)  # reconstruction sizes shown (clipped to what was fitted)
_VARIANCE_AT = (10, 50, 150)  # cumulative variance reported at these k
_THRESHOLD = 0.9
_EIGENFACES = 150  # Turk & Pentland's experiment as in the Python Data Science Handbook
_MSE_MAX_SAMPLES = 10000  # each k costs one full inverse_transform of these rows

_INTRO = (
    "PCA finds the orthonormal directions of largest variance: the leading eigenvectors of the "
    "covariance. Projecting onto the first k of them gives the best rank-k linear "
    "reconstruction in squared error, and the discarded eigenvalues are exactly that error. "
    "Read as a latent-variable model (probabilistic PCA), the same fit is a Gaussian "
    "x = μ + Wz + ε whose likelihood can be scored."
)
_FORMULA = (
    "S = 1/(n−1) Σᵢ (xᵢ − μ)(xᵢ − μ)ᵀ = V Λ Vᵀ,   z = V_kᵀ (x − μ),   x̂ = μ + V_k z\n"
    "E‖x − x̂‖² = Σ_{j>k} λ_j (per sample, up to the factor (n−1)/n)\n"
    "PPCA: z ~ N(0, I_k),  x | z ~ N(μ + W z, σ² I),  σ² = mean of the discarded λ_j"
)


def _examples(y, n: int = 8) -> np.ndarray:
    """Row indices to show: the first image of each of the first ``n`` classes."""
    if y is None:
        return np.arange(n)
    _, first = np.unique(np.asarray(y), return_index=True)
    idx = np.sort(first)[:n]
    if idx.size < n:  # fewer classes than slots: fill with the next rows not shown yet
        rest = np.setdiff1d(np.arange(min(len(y), 4 * n)), idx)[: n - idx.size]
        idx = np.concatenate([idx, rest])
    return idx


def run(ctx: TourContext) -> Chapter:
    """Fit PCA on ``ctx.X`` and build the chapter's figures and numbers."""
    n, d = ctx.X.shape
    eigenfaces = ctx.name == "lfw_people" and min(n, d) >= _EIGENFACES
    k_fit = _EIGENFACES if eigenfaces else None

    ctx.progress("fit PCA")
    pca = PCA(k_fit, random_state=ctx.random_state, device=ctx.device).fit(ctx.X)
    ctx.results["pca"] = pca
    intro = _INTRO
    if eigenfaces:
        intro += (
            f" This is the eigenfaces experiment: {pca.n_components_} components of the "
            f"{n} faces, each shown as a {ctx.image_shape[0]}×{ctx.image_shape[1]} image, and "
            f"faces rebuilt from their {n}×{pca.n_components_} projections."
        )
    figures, numbers = [], {
        "samples": int(pca.n_samples_),
        "features (pixels)": int(pca.n_features_in_),
        "components fitted": int(pca.n_components_),
        "solver used": str(pca.fit_svd_solver_),
    }

    ctx.progress("explained variance")
    ev = ExplainedVarianceDisplay.from_estimator(pca, threshold=_THRESHOLD)
    for k in _VARIANCE_AT:
        if k <= pca.n_components_:
            numbers[f"variance explained by {k} components"] = float(ev.cumulative[k - 1])
    k90 = ev.n_components_threshold
    measures: dict[str, float] = {"components_90": k90} if k90 is not None else {}
    if 150 <= pca.n_components_:
        measures["variance_150"] = float(ev.cumulative[149])
    numbers[f"components for {100 * _THRESHOLD:g}% variance"] = (
        k90 if k90 is not None else f"not reached with {pca.n_components_}"
    )
    figures.append(Figure(
        ev.plot().figure_,
        caption=(
            "Explained-variance ratio of each component (bars or thin line) and cumulative "
            f"(thick line); the dotted line marks where {100 * _THRESHOLD:g}% is reached"
            + (f" (k = {k90})." if k90 is not None else " (not within the fitted components).")
        ),
        alt=(
            f"Explained variance of {pca.n_components_} principal components of {ctx.name}: "
            f"the cumulative ratio reaches {100 * _THRESHOLD:g}% at k = {k90}."
        ),
    ))

    ctx.progress("eigen-images")
    n_show = min(24, pca.n_components_)
    grid = ImageGridDisplay.from_estimator(pca, ctx.image_shape, n_images=n_show)
    what = "eigenfaces" if eigenfaces else "eigen-images"
    figures.append(Figure(
        grid.plot().figure_,
        caption=(
            f"The first {n_show} principal components shown as {ctx.image_shape[0]}×"
            f"{ctx.image_shape[1]} images ({what}); red is positive, blue negative, each with "
            "its own symmetric scale, titles give the share of variance."
        ),
        alt=f"Grid of the first {n_show} principal components of {ctx.name} as images.",
    ))

    ctx.progress("reconstructions")
    rec = ReconstructionDisplay.from_estimator(
        pca, ctx.X, image_shape=ctx.image_shape, ks=_KS, indices=_examples(ctx.y),
        mse_max_samples=_MSE_MAX_SAMPLES, random_state=ctx.random_state,
    )
    assert rec.mse is not None and rec.mse_n_samples is not None  # from_estimator sets both
    for k, mse in zip(rec.ks, rec.mse):
        numbers[f"reconstruction MSE (k={k})"] = float(mse)
    numbers["samples the reconstruction MSE is averaged over (count)"] = int(rec.mse_n_samples)
    figures.append(Figure(
        rec.plot().figure_,
        caption=(
            "Originals (top row) and their reconstructions from the first k components, "
            f"k = {', '.join(map(str, rec.ks))}, all on the originals' grey scale (darker or "
            "lighter than the data saturates); the mean squared error per pixel is over "
            + ("the whole dataset." if rec.mse_n_samples == n
               else f"a random {rec.mse_n_samples} of the {n} samples.")
        ),
        alt=(
            f"{len(rec.originals)} {ctx.name} images and their PCA reconstructions with "
            f"{', '.join(map(str, rec.ks))} components."
        ),
    ))

    ctx.progress("projection")
    proj = ProjectionDisplay.from_estimator(
        pca, ctx.X, ctx.y, target_names=ctx.target_names, max_points=5000,
        random_state=ctx.random_state,
    )
    figures.append(Figure(
        proj.plot().figure_,
        caption=(
            "Every sample projected on the first two principal components"
            + (", coloured by its label" if ctx.y is not None else "")
            + (f" ({len(proj.Z)} of {n}, chosen at random)" if len(proj.Z) < n else "")
            + ". No label was used to find the axes."
        ),
        alt=f"Scatter plot of {ctx.name} on its first two principal components.",
    ))

    ctx.progress("PPCA likelihood")
    # σ² = 0 (all components kept, or exactly low-rank data) makes the PPCA density degenerate;
    # the likelihood is then reported for the model with the components that explain 90%
    ppca = pca
    if pca.noise_variance_ <= 0 and k90 is not None and k90 < min(n, d):
        ppca = PCA(k90, random_state=ctx.random_state, device=ctx.device).fit(ctx.X)
        ctx.results["ppca"] = ppca
    numbers[f"PPCA mean log-likelihood (nats, k={ppca.n_components_})"] = float(ppca.score(ctx.X))
    numbers["PPCA noise variance σ²" + f" (k={ppca.n_components_})"] = float(ppca.noise_variance_)

    from .._interactive import ppca_sliders

    widgets = [ppca_sliders(ppca, ctx.image_shape)] if np.prod(ctx.image_shape) == d else []
    return Chapter(key=KEY, title=TITLE, intro=intro, formula=_FORMULA, figures=figures,
                   measures=measures,
                   numbers=numbers, widgets=widgets)
