"""Chapter: Gaussian mixtures fitted by EM, compared with K-means, and choosing K.

On a 2-D PCA projection a full-covariance mixture and K-means are drawn side by side with
their covariance ellipses (K-means as its equal-weight spherical mixture). In the whitened PCA
space that keeps 99% of the variance (the Python Data Science Handbook's experiment, 41
dimensions on digits; at most 50, for images with many more pixels) the chapter shows the EM lower-bound trace, BIC, AIC and held-out NLL
against K, the Handbook's AIC curve over 50–200 components, and new images sampled from the
mixture and mapped back through the PCA. At the dataset's number of classes, a mixture of
probabilistic PCA analysers (Tipping & Bishop 1999) is compared on held-out rows of the same
space with the full and the diagonal Gaussian mixtures, with each model's parameter count.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import adjusted_rand_score

from ...cluster import KMeans
from ...decomposition import PCA
from ...mixture import GaussianMixture, PPCAMixture
from ...plotting import (
    ChooseKDisplay,
    EllipsesDisplay,
    EMTraceDisplay,
    ImageGridDisplay,
)
from ...plotting import pyplot, settle_legends
from ...selection import choose_k
from .._chapter import Chapter, Figure, Table, TourContext
from ._shared import chapter_rows, n_classes

KEY = "mixtures"
TITLE = "Gaussian mixtures and the EM algorithm"
EXPECTED_SECONDS = (15.8, 6.4)  # on digits, one torch thread, 2 cores (full, quick run)

_HANDBOOK_KS = tuple(range(50, 201, 10))
_HANDBOOK_QUICK = (50, 100, 150, 200)

_INTRO = (
    "A Gaussian mixture explains each point by a hidden component z: p(x) = Σ_k π_k N(x | μ_k, "
    "Σ_k). EM alternates the E-step (responsibilities, the posterior of z) and the M-step "
    "(weighted means, covariances and weights); each step raises the lower bound, which equals "
    "the log-likelihood after the E-step. Unlike K-means, clusters may be elongated and overlap."
)
_FORMULA = (
    "E: r_nk = π_k N(x_n|μ_k,Σ_k) / Σ_j π_j N(x_n|μ_j,Σ_j)\n"
    "M: N_k = Σ_n r_nk,  μ_k = Σ_n r_nk x_n / N_k,  Σ_k = Σ_n r_nk (x_n−μ_k)(x_n−μ_k)ᵀ / N_k,  π_k = N_k/N\n"
    "ELBO: log p(X) ≥ Σ_n Σ_k r_nk log(π_k N(x_n|μ_k,Σ_k) / r_nk);  BIC = −2 log L + p log N"
)


def _ellipses_figure(ctx, X, k):
    pca2 = PCA(2, random_state=ctx.random_state, device=ctx.device).fit(X)
    Z = pca2.transform(X)
    gm = GaussianMixture(k, covariance_type="full", random_state=ctx.random_state,
                         device=ctx.device).fit(Z)
    km = KMeans(k, random_state=ctx.random_state, device=ctx.device).fit(Z)
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5), layout="constrained")
    EllipsesDisplay.from_estimator(gm, Z, title="Gaussian mixture (full covariances)").plot(axes[0])
    EllipsesDisplay.from_estimator(km, Z, title="K-means (as a spherical mixture)").plot(axes[1])
    numbers = {
        "2-D projection: ARI between mixture and K-means labels":
            float(adjusted_rand_score(gm.predict(Z), km.predict(Z))),
        "2-D projection: mixture log-likelihood per sample": float(gm.score(Z)),
        "2-D projection: K-means' spherical mixture log-likelihood per sample":
            float(GaussianMixture.from_kmeans(km).score(Z)),
    }
    return Figure(
        fig,
        caption=(
            f"{ctx.name} projected on its first two principal components; {k} clusters by a "
            "full-covariance Gaussian mixture (left) and by K-means (right), with 2σ ellipses. "
            "K-means can only draw equal circles."
        ),
        alt="Two scatter plots of the 2-D projection with cluster colours and ellipses.",
    ), numbers


_MAX_DIMS = 50  # whitened PCA dimensions for the mixtures (digits keeps its 41)
_FLAT = 0.1  # share of an AIC curve's drop within which it counts as flat


def _edge_notes(displays) -> dict[str, str]:
    """{name: sentence} for the selection curves whose minimum is at an end of the K range."""
    return {name: d.edge_note for name, d in displays.items() if d.edge_note is not None}


def _flat_from(ks, scores):
    """The smallest K from which every score lies within ``_FLAT`` of the curve's drop
    (max − min) of its minimum; None when that stretch is the last K alone."""
    ks, scores = np.asarray(ks), np.asarray(scores, dtype=np.float64)
    near = scores <= scores.min() + _FLAT * (scores.max() - scores.min())
    i = len(near)
    while i > 0 and near[i - 1]:
        i -= 1
    return int(ks[i]) if i < len(ks) - 1 else None


_PPCA_LATENT = ((2, 5, 10, 20), (5, 10))  # latent dimensions q compared (full, quick run)
_HELDOUT_SHARE = 0.25


def _ppca_table(ctx, Z, k):
    """Held-out log-likelihood per sample of PPCAMixture (a few q) against GaussianMixture
    full and diag at the same K, all fitted on the same training rows -> (Table, numbers,
    the verdict sentence)."""
    rng = np.random.RandomState(ctx.random_state)
    perm = rng.permutation(len(Z))
    n_test = int(round(_HELDOUT_SHARE * len(Z)))
    test, train = Z[perm[:n_test]], Z[perm[n_test:]]
    d = Z.shape[1]
    qs = [q for q in _PPCA_LATENT[1 if ctx.quick else 0] if q < d]
    full, diag = "GaussianMixture(full)", "GaussianMixture(diag)"
    models = {
        full: GaussianMixture(k, random_state=ctx.random_state, device=ctx.device),
        diag: GaussianMixture(k, covariance_type="diag", random_state=ctx.random_state,
                              device=ctx.device),
        **{f"PPCAMixture(n_latent={q})": PPCAMixture(k, n_latent=q, random_state=ctx.random_state,
                                                     device=ctx.device) for q in qs},
    }
    rows, scores, params = [], {}, {}
    for name, est in models.items():
        est.fit(train)
        scores[name] = float(est.score(test))
        params[name] = int(est._n_parameters())
        rows.append((name, [scores[name], params[name]]))
    best = max((n for n in models if n.startswith("PPCA")), key=scores.get)
    gap = scores[best] - scores[full]
    verdict = (
        f"The best mixture of PPCA, {best}, {'beats' if gap > 0 else 'does not beat'} "
        f"GaussianMixture(full) at K = {k}: {scores[best]:.2f} against {scores[full]:.2f} nats "
        f"per held-out sample ({'+' if gap > 0 else '−'}{abs(gap):.2f}), with "
        f"{params[best]} free parameters against {params[full]}"
        + (f"; it beats the diagonal mixture ({scores[diag]:.2f}) by "
           f"{scores[best] - scores[diag]:.2f}." if scores[best] > scores[diag]
           else f"; the diagonal mixture does better still ({scores[diag]:.2f}).")
    )
    table = Table(
        caption=(f"Held-out log-likelihood per sample on {len(test)} of the {len(Z)} rows in the "
                 f"{d}-dimensional whitened PCA space (higher is better); every mixture has "
                 f"K = {k} components and is fitted on the other {len(train)} rows. Free "
                 "parameters as BIC counts them."),
        columns=["held-out log-likelihood per sample", "free parameters"],
        rows=rows,
        notes=verdict,
    )
    numbers = {f"held-out log-likelihood per sample, {best} − GaussianMixture(full), K={k}": gap}
    ctx.results["mixtures_heldout"] = {"models": models, "test": test, "best": best}
    return table, numbers, verdict


def run(ctx: TourContext) -> Chapter:
    """Ellipses, EM trace, K selection curves, the Handbook's AIC curve and sampled images."""
    X, y = chapter_rows(ctx, n_max=5000, n_quick=1500)
    k = n_classes(y)
    figures: list[Figure] = []
    numbers: dict[str, Any] = {}
    measures: dict[str, float] = {}
    ctx.progress("mixture vs K-means in 2-D")
    fig, nums = _ellipses_figure(ctx, X, k)
    figures.append(fig)
    numbers.update(nums)

    ctx.progress("whitened PCA space")
    pca = PCA(0.99, whiten=True, random_state=ctx.random_state, device=ctx.device).fit(X)
    numbers["PCA dimensions keeping 99% variance (whitened)"] = int(pca.n_components_)
    if pca.n_components_ > _MAX_DIMS:
        # full covariances in hundreds of dimensions (MNIST needs 330 for 99%) would make the
        # dozens of fits below take many minutes and need more rows than the chapter uses
        pca = PCA(_MAX_DIMS, whiten=True, random_state=ctx.random_state,
                  device=ctx.device).fit(X)
        numbers[f"PCA dimensions used (at most {_MAX_DIMS})"] = _MAX_DIMS
        numbers["share of variance in them"] = float(pca.explained_variance_ratio_.sum())
    Z = pca.transform(X)

    ctx.progress("EM lower-bound trace")
    traces = [
        GaussianMixture(k, covariance_type=t, random_state=ctx.random_state, max_iter=200,
                        device=ctx.device).fit(Z)
        for t in ("full", "diag")
    ]
    trace = EMTraceDisplay.from_estimators(traces, ["full covariances", "diagonal covariances"])
    figures.append(Figure(
        trace.plot().figure_,
        caption=(
            f"EM on the {pca.n_components_}-dimensional whitened data with K = {k}: the lower "
            "bound on the log-likelihood, per sample, at the initial parameters and after "
            "every iteration. It never decreases."
        ),
        alt="Increasing curves of the EM lower bound against the iteration.",
    ))
    for est, name in zip(traces, ("full", "diag")):
        numbers[f"EM iterations ({name}, K={k})"] = int(est.n_iter_)
    numbers["lower bound never decreased"] = bool(all(trace.monotone))

    ks = [1, 2, 4, 8, 12] if ctx.quick else [1, 2, 3, 4, 6, 8, 10, 12, 15, 20]
    ks = [q for q in ks if q < len(Z) // 3]
    template = GaussianMixture(covariance_type="full", random_state=ctx.random_state,
                               device=ctx.device)
    ctx.progress("BIC and AIC against K")
    bic = choose_k(template, Z, ks, criterion="bic")
    aic_scores = np.array([bic.estimators[q].aic(Z) for q in ks])
    aic_best = int(ks[int(np.argmin(aic_scores))])
    ctx.progress("held-out NLL against K")
    held = choose_k(template, Z, ks, criterion="heldout", cv=2 if ctx.quick else 3,
                    random_state=ctx.random_state)
    plt = pyplot()
    f, axes = plt.subplots(1, 3, figsize=(13, 3.8), layout="constrained")
    curves = {"BIC": bic.display, "AIC": ChooseKDisplay(ks, aic_scores, aic_best, "aic"),
              "held-out NLL": held.display}
    for ax, disp in zip(axes, curves.values()):
        disp.plot(ax)
    settle_legends(f)
    edges = _edge_notes(curves)
    figures.append(Figure(
        f,
        caption=(
            f"Choosing K for a full-covariance mixture in the whitened PCA space: BIC (K = "
            f"{bic.best_k}), AIC (K = {aic_best}) and the held-out negative log-likelihood per "
            f"sample over {2 if ctx.quick else 3} folds (K = {held.best_k})."
            + "".join(f" {name}: {note}." for name, note in edges.items())
        ),
        alt="Three curves against K: BIC, AIC and held-out NLL, each with its minimum marked.",
    ))
    numbers["K chosen by BIC"] = bic.best_k
    numbers[f"K chosen by AIC (K ≤ {max(ks)})"] = aic_best
    numbers["K chosen by held-out NLL"] = held.best_k
    for name, note in edges.items():
        numbers[f"{name}: minimum at an end of the K range tried"] = note

    sampler = bic.estimators[bic.best_k]
    if ctx.name == "digits":
        hk = _HANDBOOK_QUICK if ctx.quick else _HANDBOOK_KS
        hk = tuple(q for q in hk if q <= len(Z))
        ctx.progress("the Handbook's AIC over 50–200 components")
        handbook = choose_k(GaussianMixture(covariance_type="full", random_state=0,
                                            device=ctx.device), Z, hk, criterion="aic")
        edge = _edge_notes({"Handbook experiment, AIC": handbook.display})
        flat_from = _flat_from(handbook.ks, handbook.scores)
        figures.append(Figure(
            handbook.display.plot().figure_,
            caption=(
                f"The Python Data Science Handbook's experiment: AIC of full-covariance mixtures "
                f"with {hk[0]}–{hk[-1]} components on digits in the {pca.n_components_}-"
                f"dimensional whitened PCA space. The minimum is at {handbook.best_k} "
                "components (the Handbook finds about 110)"
                + (f"; from {flat_from} components on, the curve stays within "
                   f"{100 * _FLAT:g}% of its drop of the minimum, so where in that stretch the "
                   "minimum falls depends on each fit's random start"
                   if flat_from is not None and flat_from < handbook.best_k else "")
                + "".join(f"; {note}" for note in edge.values()) + "."
            ),
            alt="AIC against the number of components with its minimum marked.",
        ))
        numbers["Handbook experiment: components at the AIC minimum"] = handbook.best_k
        measures["handbook_aic_components"] = int(handbook.best_k)
        for name, note in edge.items():
            numbers[f"{name}: minimum at an end of the K range tried"] = note
        sampler = handbook.estimators[handbook.best_k]

    ctx.progress("mixtures of probabilistic PCA against full and diagonal covariances")
    ppca_table, nums, _ = _ppca_table(ctx, Z, k)
    numbers.update(nums)

    ctx.progress("sampling new images")
    Zs, _ = sampler.sample(40, random_state=ctx.random_state)
    images = np.clip(pca.inverse_transform(Zs), 0.0, 1.0)
    grid = ImageGridDisplay.from_data(images, ctx.image_shape, n_cols=10, vmin=0.0, vmax=1.0).plot()
    figures.append(Figure(
        grid.figure_,
        caption=(
            f"New images drawn from the {sampler.n_components}-component mixture in the "
            "whitened PCA space and mapped back to pixels by the inverse PCA (undoing the "
            "whitening, adding the mean image), clipped to [0, 1]."
        ),
        alt="Grid of 40 images sampled from the Gaussian mixture.",
    ))
    ctx.results["gmm"] = sampler
    return Chapter(KEY, TITLE, _INTRO, _FORMULA, figures, numbers, measures=measures,
                   tables=[ppca_table])
