"""Chapter: the generative adversarial network (Goodfellow et al., 2014, Algorithm 1).

Two :class:`~latentspace.neural.GAN` fits: on the 8-Gaussians ring, where mode coverage can be
counted exactly per epoch, and on the tour's training images with the library's defaults,
whose samples are shown with their diversity per epoch and scored by the Parzen-window
estimate of the paper (σ chosen on the validation rows, scored on the test rows).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ...metrics import make_ring_of_gaussians, mode_coverage, parzen_window_score
from ...neural import COLLAPSE_DIVERSITY, GAN
from ...plotting import LossCurveDisplay, ProjectionDisplay, SampleGridDisplay
from .._chapter import Chapter, Figure, TourContext

KEY = "gan"
TITLE = "Generative adversarial network"
EXPECTED_SECONDS = (30.5, 12.3)  # on digits, one torch thread, 2 cores (full, quick run)

RING_STD = 0.02
_QUICK_EPOCHS = 40  # a quick run's image GAN: the defaults, fewer epochs

_INTRO = (
    "A GAN learns to generate without ever writing down p(x): a generator G turns noise into "
    "samples and a discriminator D learns to tell them from data; G is trained to fool D. "
    "Algorithm 1 alternates k steps on D with one on G; we use the non-saturating generator "
    "loss that the paper recommends. Without a likelihood, quality is judged by samples: modes "
    "covered on a toy mixture; on images, how varied the samples are compared with the data "
    "(a collapsed generator repeats one image) and a Parzen-window estimate."
)
_FORMULA = (
    "min_G max_D V(D, G) = E_x[log D(x)] + E_z[log(1 − D(G(z)))]\n"
    "D step: ascend V with G(z) detached;  G step (non-saturating): descend −E_z[log D(G(z))]\n"
    "Parzen: log p̂(x) = logsumexp_i(−‖x − G(z_i)‖²/2σ²) − log m − (d/2) log(2πσ²)"
)


def run(ctx: TourContext) -> Chapter:
    numbers, figures = {}, []

    ctx.progress("GAN on the ring")
    n_ring = 8000
    R, _, modes = make_ring_of_gaussians(n_ring, std=RING_STD, random_state=ctx.random_state)
    # ReLU in G and no R1 penalty: the modes are 100 times narrower than the ring, and the
    # penalty (in the data's units) would keep D too smooth to resolve them
    ring = GAN(2, generator_sizes=(128, 128), discriminator_sizes=(128, 128), activation="relu",
               r1_penalty=0.0, learning_rate=1e-3, learning_rate_schedule="cosine", batch_size=64,
               max_epochs=15 if ctx.quick else 30, reference_modes=modes, reference_std=RING_STD,
               device=ctx.device, random_state=ctx.random_state).fit(R)
    ctx.results["gan_ring"] = ring
    S = ring.sample(2500, random_state=ctx.random_state)
    cov = mode_coverage(S, modes, RING_STD)
    numbers["ring: modes covered (of 8)"] = cov["modes_covered"]
    numbers["ring: samples within 3σ of a mode"] = cov["high_quality"]
    numbers["ring: modes covered, epoch by epoch"] = [h["modes_covered"] for h in ring.history_]
    pts = np.vstack([R[:1000], S[:1000]])
    labels = np.array(["data"] * min(1000, len(R)) + ["GAN samples"] * min(1000, len(S)))
    figures.append(Figure(
        ProjectionDisplay.from_data(pts, labels, xlabel="x₁", ylabel="x₂").plot(s=4).figure_,
        caption=f"8-Gaussians ring (σ = {RING_STD}) and GAN samples: {cov['modes_covered']} of 8 "
                f"modes covered, {100 * cov['high_quality']:.0f}% of samples within 3σ of a mode.",
        alt="Scatter of ring data and GAN samples in the plane.",
    ))

    ctx.progress("GAN on images")
    hold = ctx.holdout()
    train, val, test = hold.train, hold.val, hold.test
    d = train.shape[1]
    latent = min(16, d)
    # the library's defaults; a quick run only trains for fewer epochs
    quick: dict[str, Any] = {"max_epochs": _QUICK_EPOCHS} if ctx.quick else {}
    gan = GAN(latent, device=ctx.device, random_state=ctx.random_state, **quick)
    t0 = time.perf_counter()
    gan.fit(train)
    fit_s = time.perf_counter() - t0
    ctx.results["gan"] = gan
    last = gan.history_[-1]
    numbers["images: training rows"] = len(train)
    numbers["images: noise dimension"] = latent
    numbers["images: epochs (passes over the training rows)"] = gan.n_iter_
    numbers["images: training seconds"] = round(fit_s, 1)
    numbers["images: sample diversity, last epoch (1 = as varied as the data)"] = \
        last.get("diversity")
    numbers["images: mode collapse flagged"] = "yes" if gan.mode_collapse_ else "no"
    numbers["images: mean D(x) on test rows"] = float(np.mean(gan.discriminate(test)))
    ctx.progress("Parzen window")
    samples = gan.sample(2000 if ctx.quick else 5000, random_state=ctx.random_state)
    pz = parzen_window_score(samples, val, test)
    numbers["images: Parzen σ (chosen on validation rows)"] = pz["sigma"]
    numbers["images: Parzen log-likelihood on test rows (nats)"] = pz["mean"]
    numbers["images: its standard error"] = pz["se"]
    if d == ctx.image_shape[0] * ctx.image_shape[1]:
        grid = SampleGridDisplay.from_estimator(gan, ctx.image_shape, n_samples=32,
                                                random_state=ctx.random_state)
        figures.append(Figure(
            grid.plot().figure_,
            caption=f"GAN samples G(z), z ~ N(0, I), {latent} noise dimensions, after "
                    f"{gan.n_iter_} epochs; diversity {last.get('diversity', float('nan')):.2f} "
                    "of the data's.",
            alt="32 images generated by the GAN.",
        ))
    figures.append(_training_figure(gan))
    return Chapter(key=KEY, title=TITLE, intro=_INTRO, formula=_FORMULA, figures=figures,
                   numbers=numbers)


def _training_figure(gan) -> Figure:
    """The game's curves and the sample diversity, one value per epoch, with readable names."""
    h = gan.history_
    names = {"loss_d": "discriminator loss", "loss_g": "generator loss",
             "d_real": "mean D(x), real rows", "d_fake": "mean D(G(z)), samples",
             "diversity": "sample diversity (1 = as varied as the data)"}
    curves = {label: [float(r.get(k, np.nan)) for r in h] for k, label in names.items()
              if any(k in r for r in h)}
    disp = LossCurveDisplay([r["epoch"] for r in h], curves).plot()
    if "diversity" in {k for r in h for k in r}:
        ax = disp.axes_.ravel()[list(curves).index(names["diversity"])]
        ax.axhline(COLLAPSE_DIVERSITY, color="grey", ls="--", lw=1)
    return Figure(
        disp.figure_,
        caption=f"Training of the image GAN, one value per epoch ({len(h)} epochs): the two "
                "losses, the discriminator's mean output on real rows and on samples (½ when it "
                "cannot tell them apart), and the diversity of a fixed batch of 256 samples — "
                "their mean pairwise distance over that of 256 training images; below the "
                f"dashed line at {COLLAPSE_DIVERSITY} the fit reports mode collapse.",
        alt="Line plots of the GAN's losses, discriminator outputs and sample diversity "
            "against the epoch.",
    )
