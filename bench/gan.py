"""GAN quality runs: mode coverage on the 8-Gaussians ring (3 seeds) and the Parzen-window
log-likelihood on MNIST (Goodfellow et al., 2014, Table 1 protocol).

Ring: 8 modes on a circle of radius 2, std 0.02; 20 000 training points; G 2-128-128-2 (ReLU),
D 2-128-128-1 (leaky ReLU, minibatch standard deviation, no R1 penalty: the modes are 100 times
narrower than the data's spread), non-saturating loss, Adam (β₁ = 0.5), cosine-annealed
learning rate. A mode is covered when ≥ 1 % of 2 500 samples are within 3σ of it; "high quality" is the
fraction of samples within 3σ of some mode. Medians over the seeds are reported.

MNIST (``--architecture paper``, the default and the reproduction table's row): networks of the
paper's sizes, G 100-1200-1200-784 (tanh output on data scaled to [-1, 1], uniform noise) and
D 784-240-240-1, batch 100; ``--architecture defaults``: ``GAN(latent_dim=16)`` with the
library's defaults (MLPs 16-256-512-784 and 784-512-256-1, leaky ReLU, sigmoid output,
minibatch standard deviation and R1 penalty in D, Adam 2e-4, β₁ 0.5, batch 64), logged as
``gan_mnist_defaults``. Both train on the first 50 000 training images; ``--mnist-epochs`` sets the epochs,
or ``--budget-min`` trains for a wall-clock budget instead (in chunks of epochs, each resumed
exactly from the last one's checkpoint, until the next chunk would overrun). Parzen σ chosen on
the last 10 000 training images (held out from training), log-likelihood of the 10 000 test
images under 10 000 samples; the same estimator on 10 000 real training images is reported as
the protocol's ceiling; the samples' diversity relative to the training images is reported too.

Run:  python bench/gan.py [--part ring|mnist|both] [--threads 1] [--mnist-epochs 100]
                          [--budget-min 60] [--architecture paper|defaults] [--write]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _common import machine  # noqa: E402
from _neural import REPO, mnist_intensities, write_block  # noqa: E402

from latentspace.metrics import make_ring_of_gaussians, mode_coverage, parzen_window_score  # noqa: E402
from latentspace.neural import GAN  # noqa: E402

RING_STD = 0.02


def ring_gan(seed: int, epochs: int) -> GAN:
    return GAN(2, generator_sizes=(128, 128), discriminator_sizes=(128, 128),
               activation="relu", r1_penalty=0.0, loss="non_saturating", learning_rate=1e-3, learning_rate_schedule="cosine",
               momentum=0.5, batch_size=128, max_epochs=epochs, random_state=seed)


def run_ring(seeds=(0, 1, 2), epochs=60) -> dict:
    X, _, modes = make_ring_of_gaussians(20000, std=RING_STD, random_state=1234)
    rows = []
    for seed in seeds:
        t0 = time.perf_counter()
        gan = ring_gan(seed, epochs).set_params(reference_modes=modes, reference_std=RING_STD)
        gan.fit(X)
        cov = mode_coverage(gan.sample(2500, random_state=10 + seed), modes, RING_STD)
        rows.append({"seed": seed, "modes": cov["modes_covered"], "high_quality": cov["high_quality"],
                     "seconds": time.perf_counter() - t0})
        print(json.dumps(rows[-1]), flush=True)
    return {
        "rows": rows,
        "median_modes": statistics.median(r["modes"] for r in rows),
        "median_high_quality": statistics.median(r["high_quality"] for r in rows),
        "epochs": epochs,
    }


def _fit_for_budget(gan: GAN, X: np.ndarray, budget_s: float) -> int:
    """Train ``gan`` on ``X`` for about ``budget_s`` seconds of wall clock -> epochs run.

    One epoch measures the pace; then chunks of epochs are added, each fit resuming exactly
    from the previous checkpoint (``max_epochs`` may change on resume), while the next chunk
    fits in the budget left.
    """
    import tempfile

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(tmp) / "gan.ckpt"
        gan.set_params(checkpoint_path=str(ckpt), max_epochs=1).fit(X)
        per_epoch = time.perf_counter() - t0
        epochs = 1
        while True:
            left = budget_s - (time.perf_counter() - t0)
            chunk = int(min(max(left / per_epoch, 0), max(1, epochs)))
            if chunk < 1:
                break
            epochs += chunk
            t1 = time.perf_counter()
            gan.set_params(max_epochs=epochs).fit(X, resume=str(ckpt))
            per_epoch = (time.perf_counter() - t1) / chunk
        gan.set_params(checkpoint_path=None)
    return epochs


def _paper_gan(seed: int) -> GAN:
    """Networks of the size of Goodfellow et al.'s MNIST model: G 100-1200-1200-784 with a tanh
    output on data scaled to [-1, 1] and uniform noise, D 784-240-240-1, batch 100; no
    minibatch feature and no R1 penalty (the paper's D used maxout and dropout instead)."""
    return GAN(100, generator_sizes=(1200, 1200), discriminator_sizes=(240, 240),
               activation="leaky_relu", output_activation="tanh", noise="uniform",
               minibatch_std=False, r1_penalty=0.0, learning_rate=2e-4, momentum=0.5,
               batch_size=100, random_state=seed)


def run_mnist(epochs=None, seed=0, n_samples=10000, budget_min=None, architecture="paper") -> dict:
    from latentspace.metrics import relative_diversity

    x_train, _, x_test, _ = mnist_intensities()
    x_fit, x_val = x_train[:50000], x_train[50000:]
    if architecture == "paper":  # G sees [-1, 1] and ends in tanh; samples mapped back
        gan, fit_rows, back = _paper_gan(seed), 2.0 * x_fit - 1.0, (lambda S: (S + 1.0) / 2.0)
    else:  # the library's defaults (sigmoid output on data in [0, 1])
        gan, fit_rows, back = GAN(16, random_state=seed), x_fit, (lambda S: S)
    t0 = time.perf_counter()
    if budget_min is not None:
        epochs = _fit_for_budget(gan, fit_rows, 60.0 * budget_min)
    else:
        gan.set_params(max_epochs=epochs).fit(fit_rows)
    train_s = time.perf_counter() - t0
    samples = back(gan.sample(n_samples, random_state=seed + 1))
    sigmas = np.logspace(-1.3, -0.3, 15)
    t0 = time.perf_counter()
    res = parzen_window_score(samples, x_val, x_test, sigmas=sigmas)
    eval_s = time.perf_counter() - t0
    # the same estimator with real training images in place of samples: its ceiling here
    real = parzen_window_score(x_fit[:n_samples], x_val, x_test, sigmas=sigmas)
    return {"architecture": architecture, "epochs": epochs, "budget_min": budget_min,
            "n_samples": n_samples, "train_minutes": train_s / 60,
            "sigma": res["sigma"], "parzen_mean": res["mean"], "parzen_se": res["se"],
            "eval_minutes": eval_s / 60, "real_parzen_mean": real["mean"],
            "real_parzen_se": real["se"], "real_sigma": real["sigma"],
            "diversity": relative_diversity(samples[:2000], x_fit[:2000]),
            "mode_collapse": gan.mode_collapse_,
            "last": {k: v for k, v in gan.history_[-1].items()}}


def ring_block(ring: dict) -> str:
    cells = "; ".join(f"seed {r['seed']}: {r['modes']}/8, {100 * r['high_quality']:.1f}%"
                      for r in ring["rows"])
    return (
        "### GAN on the 8-Gaussians ring (`bench/gan.py --part ring`)\n"
        "Radius 2, σ = 0.02, 20 000 points; G 2-128-128-2, D 2-128-128-1, non-saturating loss, "
        f"k = 1, Adam β₁ = 0.5, lr 1e-3 cosine-annealed, batch 128, {ring['epochs']} epochs; "
        "2 500 samples per seed; a mode counts when ≥ 1 % of samples lie within 3σ.\n\n"
        "| median modes covered | median high-quality samples | per seed | target |\n"
        "|---|---|---|---|\n"
        f"| **{ring['median_modes']:g} / 8** | **{100 * ring['median_high_quality']:.1f}%** | "
        f"{cells} | ≥ 7/8 and ≥ 80% |\n\n"
        f"Machine: {ring.get('machine', machine())}; "
        f"{sum(r['seconds'] for r in ring['rows']) / 60:.1f} min in all."
    )


def mnist_block(mn: dict) -> str:
    ceiling = ""
    if "real_parzen_mean" in mn:
        ceiling = (f"\n\nThe same estimator with 10 000 real training images in place of the samples "
                   f"gives {mn['real_parzen_mean']:.0f} ± {mn['real_parzen_se']:.0f} nats "
                   f"(σ = {mn['real_sigma']:.3f}): the ceiling of this protocol.")
    last = mn["last"]
    paper = mn.get("architecture", "defaults") == "paper"
    flag = "" if paper else " --architecture defaults"
    nets = (
        "G 100-1200-1200-784 (leaky ReLU, tanh output on data scaled to [-1, 1], uniform noise), "
        "D 784-240-240-1 (leaky ReLU; no minibatch feature, no R1 penalty), non-saturating loss, "
        "k = 1, Adam lr 2e-4 β₁ 0.5, batch 100, "
        if paper else
        "`GAN(latent_dim=16)` with its defaults: G 16-256-512-784 (leaky ReLU, sigmoid output), "
        "D 784-512-256-1 (leaky ReLU, minibatch standard deviation, lazy R1 penalty γ = 10), "
        "non-saturating loss, k = 1, Adam lr 2e-4 β₁ 0.5, batch 64, ")
    return (
        "### GAN on MNIST, Parzen-window log-likelihood "
        + (f"(`bench/gan.py --part mnist{flag} --budget-min {mn['budget_min']:g}`)\n"
           if mn.get("budget_min") is not None else
           f"(`bench/gan.py --part mnist{flag} --mnist-epochs {mn['epochs']}`)\n")
        + nets
        + f"{mn['epochs']} epochs on 50 000 training images; σ chosen on the other 10 000; "
        f"{mn.get('n_samples', 10000):,} samples; test = the 10 000 MNIST test images"
        + (f"; sample diversity {mn['diversity']:.2f} of the data's" if "diversity" in mn else "")
        + ".\n\n"
        + "| Parzen log-likelihood (test) | σ | training | last epoch D(x) / D(G(z)) | reference |\n"
        "|---|---|---|---|---|\n"
        f"| **{mn['parzen_mean']:.0f} ± {mn['parzen_se']:.0f}** nats | {mn['sigma']:.3f} | "
        f"{mn['train_minutes']:.0f} min | {last['d_real']:.2f} / {last['d_fake']:.2f} | "
        "Goodfellow et al. 225 ± 2 (σ by validation) |" + ceiling + "\n\n"
        f"Machine: {mn.get('machine', machine())}."
    )


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--part", choices=("ring", "mnist", "both"), default="both")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--ring-epochs", type=int, default=60)
    p.add_argument("--mnist-epochs", type=int, default=100)
    p.add_argument("--budget-min", type=float, default=None,
                   help="train the MNIST GAN for this many minutes of wall clock instead of "
                        "--mnist-epochs epochs")
    p.add_argument("--architecture", choices=("paper", "defaults"), default="paper",
                   help="MNIST networks: the paper's sizes (the reproduction table's row) or "
                        "GAN(latent_dim=16) with the library's defaults")
    p.add_argument("--write", action="store_true")
    p.add_argument("--mnist-tag", default=None,
                   help="name of the MNIST run's JSON log and RESULTS.md block (default "
                        "gan_mnist, or gan_mnist_defaults with --architecture defaults)")
    p.add_argument("--from-logs", action="store_true",
                   help="only re-render RESULTS.md blocks from bench/logs/gan_*.json")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    logs = REPO / "bench" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    parts = ("ring", "mnist") if args.part == "both" else (args.part,)
    mnist_tag = args.mnist_tag or ("gan_mnist" if args.architecture == "paper"
                                   else "gan_mnist_defaults")
    for part in parts:
        tag = mnist_tag if part == "mnist" else "gan_ring"
        path = logs / f"{tag}.json"
        if args.from_logs:
            res = json.loads(path.read_text())
        else:
            res = run_ring(epochs=args.ring_epochs) if part == "ring" else run_mnist(
                args.mnist_epochs, budget_min=args.budget_min, architecture=args.architecture)
            res["machine"] = machine()
            print(json.dumps(res, indent=1))
            path.write_text(json.dumps(res, indent=1))
        if args.write or args.from_logs:
            write_block(tag, ring_block(res) if part == "ring" else mnist_block(res))

if __name__ == "__main__":
    main()
