"""K-means per-iteration time: latentspace against scikit-learn's Lloyd (and faiss), same init.

For each shape and dtype every library starts from the same initial centres with the
convergence test off, and its fit is timed at 1 and at ``1 + ITERS`` iterations; the difference
divided by ITERS is the time of one Lloyd iteration (one-off costs such as input checks and the
final labelling cancel). Timings are interleaved medians in one process. The agreement column
is the relative inertia difference to scikit-learn after ``1 + ITERS`` iterations. faiss
(``faiss-cpu``, float32 only) is skipped when it is not installed; it is run on all rows (no
training subsample).

A second table times whole fits (k-means++ seeding, n_init=3, Lloyd to convergence, final
labelling) on 20000 MNIST images and ``predict`` on 1000000×16 rows.

``--part sparse-elkan`` times instead whole fits from the same explicit initial centres on
CSR data (50000×5000 at 1% density, K=16; lloyd) and Elkan's algorithm on one dense shape,
each against scikit-learn's fit of the same data from the same centres (interleaved medians
in one process; ratio = scikit-learn time / ours; inertia agreement as a relative difference).

Usage: python bench/kmeans.py [--repeats 3] [--iters 5] [--quick] [--threads N] [--no-whole]
       python bench/kmeans.py --part sparse-elkan [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
from sklearn.cluster import KMeans as SkKMeans

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from _common import interleaved_medians, machine  # noqa: E402

from latentspace import KMeans  # noqa: E402

SETTLE = 0.3  # seconds of idle before each timed fit (see _common.interleaved_medians)
SHAPES = [(200_000, 32, 64), (1_000_000, 16, 16)]


def data(n, d, k, seed=0):
    """Overlapping Gaussian blobs: Lloyd keeps moving for many iterations, so no library stops
    early on unchanged labels and every timed iteration is a full one."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((k, d)) * 0.5
    return centres[rng.integers(k, size=n)] + rng.standard_normal((n, d))


def inertia(X, C, rows=65536):
    """Σ min_k ‖x − c_k‖² in float64 (the same number for every library's centres)."""
    C = C.astype(np.float64)
    total = 0.0
    for start in range(0, len(X), rows):
        x = X[start : start + rows].astype(np.float64)
        d2 = (x * x).sum(1)[:, None] - 2 * x @ C.T + (C * C).sum(1)[None]
        total += float(np.clip(d2.min(1), 0, None).sum())
    return total


def runners(X, C0, n_iter):
    """name -> callable fitting ``n_iter`` Lloyd iterations from C0, returning the inertia."""
    out = {
        "scikit-learn": lambda: SkKMeans(C0.shape[0], init=C0, n_init=1, max_iter=n_iter, tol=0,
                                         algorithm="lloyd").fit(X).inertia_,
        "latentspace": lambda: KMeans(C0.shape[0], init=C0, max_iter=n_iter, tol=0).fit(X).inertia_,
    }
    if X.dtype == np.float32:
        try:
            import faiss
        except ImportError:
            return out

        def fit_faiss():
            km = faiss.Kmeans(X.shape[1], C0.shape[0], niter=n_iter, nredo=1, seed=0,
                              max_points_per_centroid=len(X), min_points_per_centroid=1)
            km.train(X, init_centroids=C0)
            return inertia(X, km.centroids)

        out["faiss"] = fit_faiss
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="smaller shapes (smoke run)")
    ap.add_argument("--no-whole", action="store_true",
                    help="skip the whole-fit and predict timings")
    ap.add_argument("--part", choices=["lloyd", "sparse-elkan"], default="lloyd",
                    help="lloyd: per-iteration and whole-fit tables; sparse-elkan: sparse "
                         "and Elkan fits")
    ap.add_argument("--threads", type=int, default=None,
                    help="limit every library (torch, BLAS, OpenMP) to this many threads")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    if args.threads:
        import torch
        from threadpoolctl import threadpool_limits

        torch.set_num_threads(args.threads)
        threadpool_limits(args.threads)
        try:
            import faiss

            faiss.omp_set_num_threads(args.threads)
        except ImportError:
            pass
    if args.part == "sparse-elkan":
        sparse_elkan(args)
        return
    print(f"# K-means per Lloyd iteration, {machine()}")
    print("| shape (n×d, K) | dtype | library | ms / iteration | ratio vs ours | inertia rel. diff vs scikit-learn |")
    print("|---|---|---|---|---|---|")
    shapes = [(20_000, 32, 64), (100_000, 16, 16)] if args.quick else SHAPES
    for n, d, k in shapes:
        for dtype in (np.float64, np.float32):
            X = data(n, d, k).astype(dtype)
            C0 = X[np.random.default_rng(1).choice(n, k, replace=False)].copy()
            short, long_ = runners(X, C0, 1), runners(X, C0, 1 + args.iters)
            fns = {f"{name}/1": fn for name, fn in short.items()}
            fns.update({f"{name}/N": fn for name, fn in long_.items()})
            res = interleaved_medians(fns, repeats=args.repeats, warmup=1, settle=SETTLE)
            per = {name: (res[f"{name}/N"][0] - res[f"{name}/1"][0]) / args.iters for name in short}
            ref = res["scikit-learn/N"][1]
            for name in short:
                diff = abs(res[f"{name}/N"][1] - ref) / ref
                print(f"| {n}×{d}, K={k} | {np.dtype(dtype).name} | {name} | {1e3 * per[name]:.1f} | "
                      f"{per[name] / per['latentspace']:.2f} | {diff:.1e} |", flush=True)

    if not args.no_whole:
        whole(args)


def _mnist_rows(n):
    """The first n MNIST training images in [0, 1] (float32), or None without the data."""
    f = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist.npz"
    if not f.exists():
        return None
    x = np.load(f, allow_pickle=False)["x_train"][:n]
    return (x.reshape(len(x), -1) / 255.0).astype(np.float32)


def whole(args):
    """Whole fits (k-means++ seeding, n_init, iterations to convergence, labelling) and predict."""
    X = _mnist_rows(5_000 if args.quick else 20_000)
    label = "MNIST"
    if X is None:
        X, label = data(20_000, 784, 10).astype(np.float32), "synthetic"
    n_big = 100_000 if args.quick else 1_000_000
    Xp = data(n_big, 16, 16)
    ours_km = KMeans(16, init=Xp[:16].copy(), max_iter=5, tol=0).fit(Xp)
    sk_km = SkKMeans(16, init=Xp[:16].copy(), n_init=1, max_iter=5, tol=0).fit(Xp)
    fns = {
        "fit/latentspace": lambda: KMeans(10, n_init=3, random_state=0).fit(X),
        "fit/scikit-learn": lambda: SkKMeans(10, n_init=3, random_state=0).fit(X),
        "predict/latentspace": lambda: ours_km.predict(Xp),
        "predict/scikit-learn": lambda: sk_km.predict(Xp),
    }
    res = interleaved_medians(fns, repeats=args.repeats, warmup=1, settle=SETTLE)
    print(f"\n# Whole K-means fits and predict, {machine()}")
    print("| task | scikit-learn s | latentspace s | scikit-learn / ours | agreement |")
    print("|---|---|---|---|---|")
    t_s, sk = res["fit/scikit-learn"]
    t_o, ours = res["fit/latentspace"]
    print(f"| fit, {label} {len(X)}×{X.shape[1]} float32, K=10, k-means++, n_init=3 | {t_s:.2f} | "
          f"{t_o:.2f} | {t_s / t_o:.2f} | inertia ours / scikit-learn {ours.inertia_ / sk.inertia_:.4f} |")
    t_s, p_s = res["predict/scikit-learn"]
    t_o, p_o = res["predict/latentspace"]
    print(f"| predict, {n_big}×16 float64, K=16 | {t_s:.3f} | {t_o:.3f} | {t_s / t_o:.2f} | "
          f"labels equal on {np.mean(p_o == p_s):.6f} of rows |", flush=True)


def sparse_elkan(args):
    """Whole fits from the same initial centres: sparse lloyd, and dense elkan."""
    import scipy.sparse as sp

    rng = np.random.default_rng(0)
    n, d, k = (10_000, 2_000, 16) if args.quick else (50_000, 5_000, 16)
    Xs = sp.random(n, d, density=0.01, format="csr", random_state=rng, dtype=np.float64)
    # a cluster structure in the sparse pattern: each row's values grow on one block of columns
    group = rng.integers(k, size=n)
    cols = Xs.indices // (d // k)
    Xs.data *= 1.0 + 4.0 * (cols == np.repeat(group, np.diff(Xs.indptr)))
    Cs = Xs[rng.choice(n, k, replace=False)].toarray()
    Xd = data(*((20_000, 32, 32) if args.quick else (100_000, 32, 32)), seed=1)
    Cd = Xd[np.random.default_rng(2).choice(len(Xd), 32, replace=False)].copy()
    cases = {
        f"sparse CSR {n}×{d}, 1% density, K={k}, lloyd": (Xs, Cs, "lloyd"),
        f"dense {len(Xd)}×32 float64, K=32, elkan": (Xd, Cd, "elkan"),
    }
    fns = {}
    for label, (X, C0, algo) in cases.items():
        fns[f"{label}/latentspace"] = (lambda X=X, C0=C0, a=algo: KMeans(
            len(C0), init=C0, n_init=1, max_iter=100, algorithm=a).fit(X))
        fns[f"{label}/scikit-learn"] = (lambda X=X, C0=C0, a=algo: SkKMeans(
            len(C0), init=C0, n_init=1, max_iter=100, algorithm=a).fit(X))
    res = interleaved_medians(fns, repeats=args.repeats, warmup=1, settle=SETTLE)
    print(f"# K-means on sparse data and Elkan's algorithm, whole fits from the same init, "
          f"{machine()}")
    print("| case | scikit-learn s | latentspace s | scikit-learn / ours | iterations ours / "
          "scikit-learn | inertia rel. diff |")
    print("|---|---|---|---|---|---|")
    for label in cases:
        t_s, sk = res[f"{label}/scikit-learn"]
        t_o, ours = res[f"{label}/latentspace"]
        diff = abs(ours.inertia_ - sk.inertia_) / sk.inertia_
        print(f"| {label} | {t_s:.3f} | {t_o:.3f} | {t_s / t_o:.2f} | {ours.n_iter_} / "
              f"{sk.n_iter_} | {diff:.1e} |", flush=True)


if __name__ == "__main__":
    main()
