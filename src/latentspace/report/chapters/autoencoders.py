"""Chapter: deep, denoising and sparse autoencoders.

Three :class:`~latentspace.neural.Autoencoder` variants on the tour's images: a denoising
autoencoder against a plain one of the same size (both shown noisy inputs they have not been
trained on), and a sparse autoencoder whose code units' mean activations are driven to ρ by
the KL penalty. Every number is read from the fitted estimators.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...neural import Autoencoder
from ...plotting import ImageGridDisplay, MeanActivationDisplay
from .._chapter import Chapter, Figure, TourContext
from ._shared import loss_figure, training_rows

KEY = "autoencoders"
TITLE = "Deep, denoising and sparse autoencoders"
EXPECTED_SECONDS = (5.9, 1.3)  # on digits, one torch thread, 2 cores (full, quick run)

NOISE_STD = 0.3
RHO, BETA = 0.05, 3.0

_INTRO = (
    "Non-linear encoders and decoders reconstruct better than PCA with the same code size. "
    "Corrupting the input while keeping the clean image as the target (denoising) makes the "
    "code capture structure rather than pixels, and a KL penalty on each code unit's mean "
    "activation (sparse autoencoder) makes most units silent for any one input."
)
_FORMULA = (
    "denoising:  min Σᵢ ‖xᵢ − g(f(x̃ᵢ))‖²,  x̃ᵢ = xᵢ + ε,  ε ~ N(0, σ² I)\n"
    "sparse:  min Σᵢ ‖xᵢ − g(f(xᵢ))‖² / n + β Σⱼ KL(ρ ‖ ρ̂ⱼ),  ρ̂ⱼ = (1/n) Σᵢ fⱼ(xᵢ)\n"
    "KL(ρ ‖ ρ̂) = ρ log(ρ/ρ̂) + (1 − ρ) log((1 − ρ)/(1 − ρ̂))"
)


def run(ctx: TourContext) -> Chapter:
    X, _ = training_rows(ctx)
    rng = np.random.RandomState(ctx.random_state)
    order = rng.permutation(len(X))
    n_test = max(1, len(X) // 5)
    train, test = X[order[n_test:]], X[order[:n_test]]
    noisy = test + NOISE_STD * rng.standard_normal(test.shape)
    d = X.shape[1]
    hidden, latent = (min(256, 2 * d),), min(16, d)
    epochs = 10 if ctx.quick else 60
    common: dict[str, Any] = dict(hidden_sizes=hidden, max_epochs=epochs, batch_size=64,
                                  learning_rate=3e-3, device=ctx.device,
                                  random_state=ctx.random_state)

    ctx.progress("train plain autoencoder")
    plain = Autoencoder(latent, **common).fit(train)
    ctx.progress("train denoising autoencoder")
    dae = Autoencoder(latent, noise=("gaussian", NOISE_STD), **common).fit(train)
    ctx.results["autoencoder"], ctx.results["denoising_autoencoder"] = plain, dae
    err = lambda est: float(np.mean(((est.reconstruct(noisy) - test) ** 2).sum(1)))  # noqa: E731
    numbers = {
        "architecture": f"{d}-{hidden[0]}-{latent}-{hidden[0]}-{d}",
        "training / held-out rows": f"{len(train)} / {len(test)}",
        "noise σ": NOISE_STD,
        "held-out error of the noisy input itself": float(np.mean(((noisy - test) ** 2).sum(1))),
        "plain AE: error of g(f(x̃)) against clean x": err(plain),
        "denoising AE: error of g(f(x̃)) against clean x": err(dae),
        "plain AE: error on clean held-out input (sum of squares per sample)":
            -float(plain.score(test)),
        "plain / denoising AE: training stopped by": f"{plain.stop_reason_} / {dae.stop_reason_}",
    }

    ctx.progress("train sparse autoencoder")
    sparse = Autoencoder(25, sparsity_target=RHO, sparsity_weight=BETA,
                         max_epochs=20 if ctx.quick else 100, batch_size=64, learning_rate=3e-3,
                         device=ctx.device, random_state=ctx.random_state).fit(X)
    ctx.results["sparse_autoencoder"] = sparse
    bars = MeanActivationDisplay.from_estimator(sparse)
    numbers["sparse AE: target ρ"] = RHO
    numbers["sparse AE: max |ρ̂ⱼ − ρ| over 25 units"] = bars.max_deviation
    numbers["sparse AE: mean activations ρ̂ⱼ"] = [float(v) for v in sparse.mean_activation_]
    numbers["sparse AE: training stopped by"] = sparse.stop_reason_

    figures = []
    if d == ctx.image_shape[0] * ctx.image_shape[1]:
        k = min(8, len(test))
        stack = np.vstack([noisy[:k], dae.reconstruct(noisy[:k]), plain.reconstruct(noisy[:k]),
                           test[:k]])
        titles = []
        for name in ("noisy", "denoising AE", "plain AE", "clean"):
            titles += [name] + [""] * (k - 1)
        grid = ImageGridDisplay.from_data(np.clip(stack, 0, 1), ctx.image_shape, n_cols=k,
                                          titles=titles, vmin=0.0, vmax=1.0)
        figures.append(Figure(
            grid.plot().figure_,
            caption=f"Held-out images with Gaussian noise (σ = {NOISE_STD}, top), what the "
                    "denoising and the plain autoencoder make of them, and the clean images "
                    "(bottom).",
            alt=f"{k} noisy images, their reconstructions by two autoencoders, and the originals.",
        ))
    figures.append(Figure(
        bars.plot().figure_,
        caption=f"Mean activation of each of the sparse autoencoder's 25 sigmoid code units over "
                f"the data, against the target ρ = {RHO} (β = {BETA}).",
        alt=f"Bar chart of 25 mean activations near {RHO}.",
    ))
    figures.append(loss_figure(dae, "denoising autoencoder"))
    return Chapter(key=KEY, title=TITLE, intro=_INTRO, formula=_FORMULA, figures=figures,
                   numbers=numbers)
