"""PPCAMixture against GaussianMixture (full and diag) at equal K: fit time and held-out
log-likelihood.

Two shapes:

- digits in the whitened PCA space that keeps 99% of the variance (41 dimensions; the tour's
  mixtures chapter), K = 10, a seeded 75/25 split of the 1797 rows;
- data drawn from a known mixture of PPCA (K = 8 components of latent dimension 8 in 128
  dimensions, noise variance 0.25), 40000 rows to fit and 10000 held out (``--quick``:
  10000 and 2500).

Every model is fitted with its defaults (``init_params="kmeans"``, ``tol=1e-3``, at most 100
iterations) from the same seed; fits are timed in alternation (``interleaved_medians``) and
the median of ``--repeats`` runs is reported, with the iterations taken; one EM iteration is
timed apart, as the difference of fits with 11 and 1 iterations (the same initialisation, the
convergence test off) divided by 10, so that the K-means initialisation is left out. Held-out log-likelihood is the mean ``score`` per test row (nats, higher is
better).

Usage: python bench/mppca.py [--repeats 3] [--quick] [--threads N]
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from _common import interleaved_medians, machine  # noqa: E402

from latentspace import PCA, GaussianMixture, PPCAMixture  # noqa: E402


def digits_data(seed=0):
    X = load_digits().data / 16.0
    Z = PCA(0.99, whiten=True, random_state=0).fit_transform(X)
    perm = np.random.RandomState(seed).permutation(len(Z))
    n_test = len(Z) // 4
    return Z[perm[n_test:]], Z[perm[:n_test]]


def mppca_data(n_train, n_test, d=128, q=8, k=8, noise=0.5, seed=0):
    rng = np.random.default_rng(seed)
    means = rng.standard_normal((k, d)) * 0.5
    Ws = rng.standard_normal((k, d, q))
    n = n_train + n_test
    z = rng.integers(k, size=n)
    X = means[z] + np.einsum("ndq,nq->nd", Ws[z], rng.standard_normal((n, q))) \
        + noise * rng.standard_normal((n, d))
    return X[:n_train], X[n_train:]


def bench(name, train, test, k, qs, repeats, iters=10):
    models = {
        "GaussianMixture(full)": lambda **kw: GaussianMixture(k, random_state=0, **kw),
        "GaussianMixture(diag)": lambda **kw: GaussianMixture(k, covariance_type="diag",
                                                              random_state=0, **kw),
        **{f"PPCAMixture(n_latent={q})": (lambda q=q, **kw: PPCAMixture(k, n_latent=q,
                                                                        random_state=0, **kw))
           for q in qs},
    }
    fns = {}
    for label, make in models.items():
        fns[label] = lambda make=make: make().fit(train)
        # one EM iteration: the difference of fits with 1 + iters and 1 iterations (the same
        # initialisation, the convergence test off) divided by iters
        fns[label + "/1"] = lambda make=make: make(max_iter=1, tol=0).fit(train)
        fns[label + "/N"] = lambda make=make: make(max_iter=1 + iters, tol=0).fit(train)
    res = interleaved_medians(fns, repeats=repeats, warmup=0, settle=0.2)
    for label in models:
        sec, est = res[label]
        per = (res[label + "/N"][0] - res[label + "/1"][0]) / iters
        print(f"| {name} | {label} | {sec:.3f} | {est.n_iter_} | {1e3 * per:.1f} | "
              f"{est.score(test):.3f} | {est._n_parameters()} |", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
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
    print(f"# PPCAMixture vs GaussianMixture at equal K, {machine()}")
    print("| data | model | fit s (median) | iterations | ms / iteration | held-out "
          "log-lik / row | free parameters |")
    print("|---|---|---:|---:|---:|---:|---:|")
    train, test = digits_data()
    bench(f"digits, whitened PCA {train.shape[1]}-d, {len(train)}/{len(test)} rows, K=10",
          train, test, 10, (2, 5, 10, 20), args.repeats)
    n_train, n_test = (10_000, 2_500) if args.quick else (40_000, 10_000)
    train, test = mppca_data(n_train, n_test)
    bench(f"MPPCA draw 128-d (q=8), {n_train}/{n_test} rows, K=8", train, test, 8, (4, 8, 16),
          args.repeats)


if __name__ == "__main__":
    main()
