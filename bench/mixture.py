"""Mixture EM per-iteration time: latentspace against scikit-learn and a NumPy EM, same init.

GaussianMixture (full and diag, 100000×16, K=16): both libraries start from the same
weights, means and precisions with the convergence test off; each fit is timed at 1 and at
``1 + ITERS`` iterations and the difference divided by ITERS is one EM iteration. The agreement
column is the difference in mean log-likelihood per sample after ``1 + ITERS`` iterations.

BernoulliMixture (binarised MNIST, 60000×784, K=50): the same protocol against a
straightforward NumPy EM (the textbook E- and M-steps of Bishop 2006 §9.3.3, written with
numpy matrix products), from the same initial parameters. MNIST is read from the shared data
folder (env LATENTSPACE_TEST_DATA, default ../shared/data); without it the row is skipped.

Usage: python bench/mixture.py [--repeats 3] [--iters 3] [--quick] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

import numpy as np
from scipy.special import logsumexp
from sklearn.mixture import GaussianMixture as SkGaussianMixture

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from _common import interleaved_medians, machine  # noqa: E402

from latentspace import BernoulliMixture, GaussianMixture  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def gaussian_data(n, d, k, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((k, d)) * 3
    scales = rng.standard_normal((k, d, d)) * 0.5 + np.eye(d)
    z = rng.integers(k, size=n)
    return centres[z] + np.einsum("nd,nde->ne", rng.standard_normal((n, d)), scales[z])


def bench_gaussian(args):
    n, d, k = (20_000, 16, 16) if args.quick else (100_000, 16, 16)
    X = gaussian_data(n, d, k)
    for cov in ("full", "diag"):
        sk0 = SkGaussianMixture(k, covariance_type=cov, max_iter=1, random_state=0).fit(X)
        init = dict(weights_init=sk0.weights_, means_init=sk0.means_,
                    precisions_init=sk0.precisions_)

        def make(cls, m):
            return lambda: cls(k, covariance_type=cov, max_iter=m, tol=0, **init).fit(X).score(X)

        fns = {
            "scikit-learn/1": make(SkGaussianMixture, 1),
            "latentspace/1": make(GaussianMixture, 1),
            "scikit-learn/N": make(SkGaussianMixture, 1 + args.iters),
            "latentspace/N": make(GaussianMixture, 1 + args.iters),
        }
        res = interleaved_medians(fns, repeats=args.repeats, warmup=1, settle=0.3)
        per = {lib: (res[f"{lib}/N"][0] - res[f"{lib}/1"][0]) / args.iters
               for lib in ("scikit-learn", "latentspace")}
        diff = abs(res["latentspace/N"][1] - res["scikit-learn/N"][1])
        print(f"| GaussianMixture {cov} | {n}×{d}, K={k} | {1e3 * per['scikit-learn']:.1f} | "
              f"{1e3 * per['latentspace']:.1f} | {per['scikit-learn'] / per['latentspace']:.2f} | "
              f"Δ mean log-lik {diff:.1e} |", flush=True)


def numpy_bernoulli_em(X, weights, probs, n_iter, alpha=1.0):
    """Textbook EM for a Bernoulli mixture in NumPy (float64), the reference implementation."""
    for _ in range(n_iter):
        logp = X @ (np.log(probs) - np.log1p(-probs)).T + np.log1p(-probs).sum(1) + np.log(weights)
        resp = np.exp(logp - logsumexp(logp, axis=1, keepdims=True))
        nk = resp.sum(0) + 10 * np.finfo(float).eps
        weights = nk / nk.sum()
        probs = np.clip((resp.T @ X + alpha) / (nk[:, None] + 2 * alpha), 1e-10, 1 - 1e-10)
    logp = X @ (np.log(probs) - np.log1p(-probs)).T + np.log1p(-probs).sum(1) + np.log(weights)
    return float(logsumexp(logp, axis=1).mean())


def bench_bernoulli(args):
    folder = Path(os.environ.get("LATENTSPACE_TEST_DATA", REPO.parent / "shared" / "data"))
    if not (folder / "mnist.npz").is_file():
        print(f"| BernoulliMixture | skipped: mnist.npz not found in {folder} | | | | |")
        return
    d = np.load(folder / "mnist.npz")
    n = 10_000 if args.quick else 60_000
    X = (d["x_train"][:n].reshape(n, -1) >= 128).astype(np.float64)
    k = 50
    rng = np.random.RandomState(0)
    w0 = np.full(k, 1.0 / k)
    p0 = np.clip(X[rng.choice(n, k, replace=False)] * 0.5 + 0.25, 0.05, 0.95)

    def ours(m):
        return lambda: BernoulliMixture(k, weights_init=w0, means_init=p0, max_iter=m,
                                        tol=0).fit(X).score(X)

    fns = {
        "numpy/1": lambda: numpy_bernoulli_em(X, w0, p0, 1),
        "latentspace/1": ours(1),
        "numpy/N": lambda: numpy_bernoulli_em(X, w0, p0, 1 + args.iters),
        "latentspace/N": ours(1 + args.iters),
    }
    res = interleaved_medians(fns, repeats=args.repeats, warmup=1, settle=0.3)
    per = {lib: (res[f"{lib}/N"][0] - res[f"{lib}/1"][0]) / args.iters
           for lib in ("numpy", "latentspace")}
    diff = abs(res["latentspace/N"][1] - res["numpy/N"][1])
    print(f"| BernoulliMixture (vs NumPy EM) | binarised MNIST {n}×784, K={k} | "
          f"{1e3 * per['numpy']:.1f} | {1e3 * per['latentspace']:.1f} | "
          f"{per['numpy'] / per['latentspace']:.2f} | Δ mean log-lik {diff:.1e} |", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="smaller shapes (smoke run)")
    ap.add_argument("--threads", type=int, default=None,
                    help="limit every library (torch, BLAS, OpenMP) to this many threads")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    if args.threads:
        import torch
        from threadpoolctl import threadpool_limits

        torch.set_num_threads(args.threads)
        threadpool_limits(args.threads)
    print(f"# Mixture EM per iteration, {machine()}")
    print("| model | data | peer ms / iteration | ours ms / iteration | speed-up | agreement |")
    print("|---|---|---|---|---|---|")
    bench_gaussian(args)
    bench_bernoulli(args)


if __name__ == "__main__":
    main()
