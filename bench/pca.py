"""PCA fit time: latentspace against scikit-learn's solvers, side by side in one process.

For each shape and dtype: the median fit time of every scikit-learn solver that finishes in
reasonable time, the best of them, our ``auto`` (and the solver it chose), the ratio
best-sklearn / ours (> 1 means we are faster), and each result's largest relative deviation
in explained variance from an exact float64 reference.

With ``--sparse``: scipy.sparse CSR input instead, against scikit-learn's sparse routes
(``covariance_eigh`` and ``arpack``; it has no sparse ``randomized``), on 20000×2000 at 1 %
density and a TF-IDF-like 100000×50000 at 0.1 %; the reference is scikit-learn's exact
route (``covariance_eigh``, or ``arpack`` at machine precision for the wide one).

Usage: python bench/pca.py [--repeats 5] [--quick] [--sparse]
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
from sklearn.decomposition import PCA as SkPCA

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from _common import interleaved_medians, machine  # noqa: E402

from latentspace import PCA  # noqa: E402

SETTLE = 0.3  # seconds of idle before each timed fit (see _common.interleaved_medians)
SHAPES = [((200_000, 100), 10), ((20_000, 1000), 50), ((1348, 2914), 150)]


def data(n, d, seed=0):
    """Low-rank signal plus noise with a decaying spectrum (PCA's use case)."""
    rng = np.random.default_rng(seed)
    r = min(d, 60)
    W = rng.standard_normal((r, d)) * (1.0 / np.arange(1, r + 1))[:, None] * 5
    return rng.standard_normal((n, r)) @ W + 0.5 * rng.standard_normal((n, d)) + 3.0


def lfw_or_synthetic():
    for folder in [Path(__file__).resolve().parents[2] / "shared" / "data"]:
        f = folder / "lfw_people_min60.npz"
        if f.exists():
            imgs = np.load(f, allow_pickle=False)["images"]
            return imgs.reshape(len(imgs), -1).astype(np.float64), "LFW faces"
    return data(1348, 2914), "synthetic"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="one repeat, for a smoke run")
    ap.add_argument("--sparse", action="store_true", help="the sparse-input rows")
    args = ap.parse_args()
    repeats = 1 if args.quick else args.repeats
    if args.sparse:
        return sparse_rows(repeats)
    print(f"# PCA fit, medians of {repeats} runs in random order, each after {SETTLE} s idle; "
          f"{machine()}")
    print("| shape, k | dtype | sklearn solver: median s (max rel. dev. of explained variance) | "
          "sklearn best | latentspace auto (solver) | dev. | ratio best/ours |")
    print("|---|---|---|---|---|---|---|")
    for (n, d), k in SHAPES:
        if (n, d) == (1348, 2914):
            X64, label = lfw_or_synthetic()
        else:
            X64, label = data(n, d), "synthetic"
        ref = SkPCA(k, svd_solver="covariance_eigh" if n >= d else "full").fit(X64).explained_variance_
        for dtype in (np.float64, np.float32):
            X = X64.astype(dtype)
            fns = {}
            for solver in ["auto", "covariance_eigh", "randomized", "full"]:
                if solver == "covariance_eigh" and d > n:
                    continue
                if solver == "full" and n * d * min(n, d) > 5e9:
                    continue  # a full SVD of this shape takes tens of seconds; never the best
                fns[solver] = lambda s=solver: SkPCA(k, svd_solver=s, random_state=0).fit(X)
            fns["ours"] = lambda: PCA(k, random_state=0).fit(X)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = interleaved_medians(fns, repeats, settle=SETTLE)
            sk_rows = []
            for solver, (t, est) in res.items():
                if solver == "ours":
                    continue
                dev = np.max(np.abs(est.explained_variance_ / ref - 1))
                name = solver if solver != "auto" else f"auto={est._fit_svd_solver}"
                sk_rows.append((t, name, dev))
            t_ours, ours = res["ours"]
            dev_ours = np.max(np.abs(ours.explained_variance_ / ref - 1))
            best = min(sk_rows)
            cells = "; ".join(f"{nm} {t:.3f} ({dv:.1e})" for t, nm, dv in sk_rows)
            print(f"| {n}×{d} ({label}), k={k} | {np.dtype(dtype).name} | {cells} | {best[1]} {best[0]:.3f} | "
                  f"{t_ours:.3f} ({ours.fit_svd_solver_}) | {dev_ours:.1e} | {best[0] / t_ours:.2f}× |",
                  flush=True)


def tfidf_like(n, d, density, seed=0):
    """CSR data shaped like TF-IDF: Zipf-popular columns, log-normal weights, unit rows."""
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    nnz = int(n * d * density)
    popularity = 1.0 / np.arange(1, d + 1) ** 0.8
    cols = rng.choice(d, size=nnz, p=popularity / popularity.sum())
    rows = rng.integers(0, n, nnz)
    X = sp.csr_matrix((rng.lognormal(0.0, 1.0, nnz), (rows, cols)), shape=(n, d))
    X.sum_duplicates()
    norms = np.sqrt(np.asarray(X.multiply(X).sum(1)).ravel())
    return sp.diags(1.0 / np.where(norms > 0, norms, 1.0)) @ X


def sparse_rows(repeats):
    print(f"# PCA fit on scipy.sparse CSR input, medians of {repeats} runs in random order, "
          f"each after {SETTLE} s idle; {machine()}")
    print("| data, k | solver | sklearn median s | latentspace median s | ratio sklearn/ours | "
          "max rel. dev. of explained variance: sklearn, ours |")
    print("|---|---|---|---|---|---|")
    cases = [((20_000, 2000), 0.01, 10, ["covariance_eigh", "arpack", "randomized"],
              "covariance_eigh"),
             ((100_000, 50_000), 0.001, 10, ["arpack", "randomized"], "arpack")]
    for (n, d), density, k, solvers, exact in cases:
        X = tfidf_like(n, d, density)
        label = f"{n}×{d} at {density:.1%} (TF-IDF-like), k={k}"
        ref = SkPCA(k, svd_solver=exact, random_state=0).fit(X).explained_variance_
        for solver in solvers:
            sk_solver = solver if solver != "randomized" else "arpack"
            fns = {"sklearn": lambda s=sk_solver: SkPCA(k, svd_solver=s, random_state=0).fit(X),
                   "ours": lambda s=solver: PCA(k, svd_solver=s, random_state=0).fit(X)}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = interleaved_medians(fns, repeats, warmup=0 if n * d > 1e9 else 1,
                                          settle=SETTLE)
            (t_sk, sk), (t_us, us) = res["sklearn"], res["ours"]
            dev_sk = np.max(np.abs(sk.explained_variance_ / ref - 1))
            dev_us = np.max(np.abs(us.explained_variance_ / ref - 1))
            name = solver if solver != "randomized" else "randomized (sklearn: arpack)"
            print(f"| {label} | {name} | {t_sk:.3f} | {t_us:.3f} | {t_sk / t_us:.2f}× | "
                  f"{dev_sk:.1e}, {dev_us:.1e} |", flush=True)


if __name__ == "__main__":
    main()
