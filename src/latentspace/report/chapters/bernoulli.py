"""Chapter: a Bernoulli mixture on binarised images; its means are pictures of each cluster.

Images are binarised at 0.5 (``BernoulliMixture(binarize=0.5)``); the mixture is fitted on 80%
of the rows for two values of K, and the held-out log-likelihood of the other 20% compares
them. Means, held-out scores and lower-bound traces are read from the estimators.
"""

from __future__ import annotations

import numpy as np

from ...mixture import BernoulliMixture
from ...plotting import EMTraceDisplay, ImageGridDisplay
from .._chapter import Chapter, Figure, TourContext
from ._shared import chapter_rows, n_classes

KEY = "bernoulli"
TITLE = "Bernoulli mixtures on binary images"
EXPECTED_SECONDS = (1.5, 1.4)  # on digits, one torch thread, 2 cores (full, quick run)

_INTRO = (
    "Binary images call for a Bernoulli model per pixel. A mixture of such models is EM's "
    "second classic: the E-step computes responsibilities from products of pixel "
    "probabilities, and the M-step sets each component's pixel probabilities to the "
    "responsibility-weighted mean image — which we can look at directly."
)
_FORMULA = (
    "p(x) = Σ_k π_k Π_d μ_kd^x_d (1 − μ_kd)^(1−x_d)\n"
    "M-step: μ_kd = (Σ_n r_nk x_nd + α) / (N_k + 2α),  π_k = N_k / N"
)


def _ordering_note(small, big, train) -> str:
    """Why the larger mixture's curve ends where it does relative to the smaller one's."""
    ks, kb = small.n_components, big.n_components
    if big.lower_bound_ >= small.lower_bound_:
        return f"K={kb} ends above K={ks}, as its extra components allow."
    ll_small, ll_big = small.score(train), big.score(train)
    if ll_big >= ll_small:
        d = train.shape[1]
        return (
            f"K={kb} ends below K={ks} although its training log-likelihood is higher "
            f"({ll_big:.2f} against {ll_small:.2f} per image): the log prior is a sum of "
            f"α log μ(1 − μ) over components and pixels, every term negative, {kb}×{d} terms "
            f"against {ks}×{d}, so the larger mixture's objective carries the larger penalty "
            f"({big.lower_bound_ - ll_big:.2f} against {small.lower_bound_ - ll_small:.2f} "
            "per image): the order comes from the prior, not from a poorer local optimum."
        )
    return (
        f"K={kb} ends below K={ks}, in log-likelihood too ({ll_big:.2f} against "
        f"{ll_small:.2f} per image): EM only finds a local optimum from its own k-means++ "
        f"start, and a larger mixture is sure to do at least as well only when started "
        "from the smaller fit."
    )


def run(ctx: TourContext) -> Chapter:
    """Means as images, held-out log-likelihood for two K, lower-bound traces, samples."""
    X, y = chapter_rows(ctx, n_max=20000, n_quick=2000)
    rng = np.random.RandomState(ctx.random_state)
    order = rng.permutation(len(X))
    cut = int(0.8 * len(X))
    train, test = X[order[:cut]], X[order[cut:]]
    k_small = n_classes(y)
    k_big = 50 if ctx.name in ("mnist", "fashion_mnist") else 3 * k_small
    if ctx.quick:
        k_big = 2 * k_small
    models = {}
    for k in (k_small, k_big):
        ctx.progress(f"Bernoulli mixture, K={k}")
        models[k] = BernoulliMixture(
            k, binarize=0.5, init_params="k-means++", random_state=ctx.random_state,
            max_iter=50 if ctx.quick else 100, device=ctx.device,
        ).fit(train)
    figures, numbers = [], {}
    for k, m in models.items():
        numbers[f"held-out log-likelihood per image (K={k})"] = float(m.score(test))
        numbers[f"training log-likelihood per image (K={k})"] = float(m.score(train))
        numbers[f"training lower bound with the Beta prior, per image (K={k})"] = float(
            m.lower_bound_)
        numbers[f"EM iterations (K={k})"] = int(m.n_iter_)
    trace = EMTraceDisplay.from_estimators(list(models.values()), [f"K={k}" for k in models])
    numbers["lower bound never decreased"] = bool(all(trace.monotone))
    small = models[k_small]
    order = np.argsort(-small.weights_)
    grid = ImageGridDisplay(
        small.means_[order].reshape(-1, *ctx.image_shape), n_cols=min(k_small, 10), cmap="gray",
        vmin=0.0, vmax=1.0, titles=[f"π={w:.2f}" for w in small.weights_[order]],
    ).plot()
    figures.append(Figure(
        grid.figure_,
        caption=(
            f"Means μ_k of a {k_small}-component Bernoulli mixture on binarised {ctx.name}: each "
            "pixel is the probability that it is on in that cluster (weights π above)."
        ),
        alt=f"Grid of {k_small} grey images of the Bernoulli mixture means.",
    ))
    big = models[k_big]
    order = np.argsort(-big.weights_)[:30]
    grid = ImageGridDisplay(big.means_[order].reshape(-1, *ctx.image_shape), n_cols=10,
                            cmap="gray", vmin=0.0, vmax=1.0).plot()
    figures.append(Figure(
        grid.figure_,
        caption=(
            f"The {len(order)} heaviest means of the K={k_big} mixture: more components pick "
            "up styles within a class. Held-out log-likelihood per image: "
            f"{numbers[f'held-out log-likelihood per image (K={k_small})']:.1f} (K={k_small}) vs "
            f"{numbers[f'held-out log-likelihood per image (K={k_big})']:.1f} (K={k_big})."
        ),
        alt="Grid of Bernoulli mixture means for the larger K.",
    ))
    figures.append(Figure(
        trace.plot(ylabel="training log-likelihood + log prior, per image").figure_,
        caption=(
            "EM's objective on the training images after each iteration: the log-likelihood "
            "plus the log of the Beta prior on every pixel probability, per image. It never "
            "decreases. " + _ordering_note(models[k_small], models[k_big], train)
        ),
        alt="Increasing lower-bound curves for the two mixtures.",
    ))
    S, _ = big.sample(30, random_state=ctx.random_state)
    grid = ImageGridDisplay.from_data(S, ctx.image_shape, n_cols=10, vmin=0.0, vmax=1.0).plot()
    figures.append(Figure(
        grid.figure_,
        caption=f"Binary images sampled from the K={k_big} mixture (pixels drawn independently).",
        alt="Grid of sampled binary images.",
    ))
    ctx.results["bernoulli"] = big
    return Chapter(KEY, TITLE, _INTRO, _FORMULA, figures, numbers)
