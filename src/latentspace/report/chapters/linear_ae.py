"""Chapter: the linear autoencoder finds PCA's subspace.

A linear encoder/decoder pair trained on squared error spans the same subspace as the top-L
principal components (Baldi & Hornik, 1989), though not with the same basis. The chapter fits
our PCA and a linear :class:`~latentspace.neural.Autoencoder` on the same rows, and reports
the principal angles between the decoder's column space and PCA's subspace and both
reconstruction errors, all read from the two estimators.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import subspace_angles

from ...decomposition import PCA
from ...neural import Autoencoder
from ...plotting import ImageGridDisplay
from .._chapter import Chapter, Figure, TourContext
from ._shared import decoder_columns, loss_figure, training_rows

KEY = "linear_ae"
TITLE = "The linear autoencoder is PCA"
EXPECTED_SECONDS = (7.0, 6.6)  # on digits, one torch thread, 2 cores (full, quick run)

LATENT = 5

_INTRO = (
    "An autoencoder with one linear layer each way, trained to minimise the squared "
    "reconstruction error, learns the same subspace as PCA: the optimum of the loss is reached "
    "when the decoder's columns span the top principal directions. Its basis is any basis of "
    "that subspace (not orthogonal, not ordered by variance), so we compare subspaces through "
    "their principal angles."
)
_FORMULA = (
    "min_{W_e, W_d, b} (1/n) Σᵢ ‖xᵢ − W_d (W_e xᵢ + b_e) − b_d‖²   ⇒   span(W_d) = span(V_L)\n"
    "principal angles θ_k between span(W_d) and span(V_L): cos θ_k = σ_k(Q_dᵀ Q_V)"
)


def run(ctx: TourContext) -> Chapter:
    X, _ = training_rows(ctx)
    L = int(min(LATENT, X.shape[1], len(X) - 1))
    ctx.progress("fit PCA")
    pca = PCA(L, random_state=ctx.random_state, device=ctx.device).fit(X)
    ctx.progress("train linear autoencoder")
    # the lecture's claim with the library's default training: it stops once converged
    ae = Autoencoder(L, hidden_sizes=(), device=ctx.device,
                     random_state=ctx.random_state).fit(X)
    ctx.results["linear_ae"] = ae

    W = decoder_columns(ae)
    angles = subspace_angles(W, pca.components_.T)
    err_pca = float(np.mean(((pca.inverse_transform(pca.transform(X)) - X) ** 2).sum(1)))
    err_ae = -float(ae.score(X))
    numbers = {
        "latent dimension L": L,
        "training rows": len(X),
        "largest principal angle (rad)": float(angles.max()),
        "principal angles (rad)": [float(a) for a in np.sort(angles)],
        "PCA reconstruction error (sum of squares per sample)": err_pca,
        "linear AE reconstruction error (sum of squares per sample)": err_ae,
        "AE error / PCA error": err_ae / err_pca,
        "epochs": int(ae.n_iter_),
        "training stopped by": ae.stop_reason_,
    }

    figures = []
    if X.shape[1] == ctx.image_shape[0] * ctx.image_shape[1]:
        ctx.progress("reconstructions")
        idx = np.arange(min(8, len(X)))
        stack = np.vstack([X[idx], pca.inverse_transform(pca.transform(X[idx])),
                           ae.reconstruct(X[idx])])
        titles = (["original"] + [""] * (len(idx) - 1) + ["PCA"] + [""] * (len(idx) - 1)
                  + ["linear AE"] + [""] * (len(idx) - 1))
        grid = ImageGridDisplay.from_data(stack, ctx.image_shape, n_cols=len(idx), titles=titles,
                                          vmin=0.0, vmax=1.0)
        figures.append(Figure(
            grid.plot().figure_,
            caption=f"Originals (top), PCA reconstructions with {L} components (middle) and the "
                    f"linear autoencoder's with a {L}-unit code (bottom): the two agree.",
            alt=f"{len(idx)} images reconstructed by PCA and by a linear autoencoder.",
        ))
        ctx.progress("bases")
        Q, _ = np.linalg.qr(W)
        # express the AE's orthonormalised basis in PCA's one: same span, rotated basis
        bases = np.vstack([pca.components_, Q.T])
        grid = ImageGridDisplay(
            bases.reshape(len(bases), *ctx.image_shape), n_cols=L, cmap="RdBu_r", symmetric=True,
            titles=[f"PC {k + 1}" for k in range(L)] + [f"AE {k + 1}" for k in range(L)],
        )
        figures.append(Figure(
            grid.plot().figure_,
            caption="PCA's components (top) and an orthonormal basis of the decoder's columns "
                    "(bottom): different bases of one subspace, hence the near-zero angles "
                    f"(largest {angles.max():.3g} rad).",
            alt="Two rows of basis images: principal components and autoencoder directions.",
        ))
    figures.append(loss_figure(ae, "linear autoencoder"))
    return Chapter(key=KEY, title=TITLE, intro=_INTRO, formula=_FORMULA, figures=figures,
                   numbers=numbers)
