"""Imputation benchmark: model-based imputation against scikit-learn's imputers.

On real datasets (scikit-learn's digits, 1797 x 64, Frey faces, 1965 x 560, and the
Olivetti faces, 400 x 4096, pixels in [0, 1]) with 20% and 40% of the entries missing
completely at random (seeded masks, every row keeping one observed entry), the RMSE of the
imputed entries against the true pixels for

- ``PCA(k, missing="marginalize")``: probabilistic PCA by EM on the observed entries, then
  ``impute`` (the conditional mean). The rule for k, never looking at a test mask: on a
  separate validation mask (same rate, its own seed), 5% of the observed entries are held
  out; k is the grid value (4, 8, 16, 32, 48) whose fit on the rest predicts them with the
  lowest RMSE (the scan stops at the first k that does worse than the best so far);
- ``GaussianMixture(K, covariance_type=..., missing="marginalize", reg_covar=r)``
  (``full``, for data of at most 100 features, and ``diag``): first r, a covariance floor
  relative to the mean observed per-feature variance, by the same rule as k over (1e-4,
  1e-3, 1e-2, 1e-1) with K = 4 (on quantised pixels a full covariance otherwise climbs the
  observed-data likelihood into near-singular directions that complete rows contradict);
  then K by the same rule over (1, 2, 4, 8, 16);
- ``SimpleImputer(strategy="mean")`` and ``KNNImputer()`` with their defaults.

For the mixtures it also prints the complete-data log-likelihood of held-out rows (a seeded
20% of the rows, complete) under a GMM fitted on the incomplete training rows and under one
(same K, covariance type and seed) fitted on the mean-imputed training rows.

"Ours" is, per dataset and rate, the model (PCA or a mixture) with the lowest validation
RMSE in those choices. Figures are medians over the seeds; times are fit + impute seconds
(one thread).

Usage: python bench/impute.py [--seeds 3] [--datasets digits frey_faces olivetti_faces]
       [--data-home DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from _common import machine  # noqa: E402

from latentspace import PCA, GaussianMixture, load_dataset  # noqa: E402

RATES = (0.2, 0.4)
K_GRID = (4, 8, 16, 32, 48)
MIX_GRID = (1, 2, 4, 8, 16)
VALIDATION_SEED = 1000  # the validation masks' seeds start here; test masks use 0, 1, ...
HOLDOUT = 0.05  # share of the validation copy's observed entries held out to choose k / K
FULL_MAX_FEATURES = 100  # full-covariance mixtures only up to this many features


def mcar(X, rate, seed):
    """(X with a seeded share ``rate`` of NaN, the mask); every row keeps one observed entry."""
    rng = np.random.RandomState(seed)
    mask = rng.rand(*X.shape) < rate
    mask[np.arange(X.shape[0]), rng.randint(0, X.shape[1], X.shape[0])] = False
    Xm = X.copy()
    Xm[mask] = np.nan
    return Xm, mask


def rmse(filled, X, mask) -> float:
    return float(np.sqrt(np.mean((filled[mask] - X[mask]) ** 2)))


def gmm_has_missing() -> bool:
    return "missing" in GaussianMixture().get_params()


def make_pca(k):
    return PCA(k, missing="marginalize")


REG_GRID = (1e-4, 1e-3, 1e-2, 1e-1)  # covariance floors, relative to the mean variance
REG_K = 4  # components of the fits that choose the floor


def make_gmm(K, covariance_type, missing="marginalize", reg_covar=1e-6):
    return GaussianMixture(K, covariance_type=covariance_type, missing=missing,
                           reg_covar=reg_covar, random_state=0)


def choose_reg(X, rate, covariance_type, seed=VALIDATION_SEED):
    """reg_covar by :func:`choose` (held-out observed entries of a validation copy) over
    ``REG_GRID`` times the mean observed per-feature variance, at ``REG_K`` components."""
    Xv, _ = mcar(X, rate, seed)
    var = float(np.mean(np.nanvar(Xv, axis=0)))
    K = min(REG_K, X.shape[0] - 1)
    r = choose(lambda r: make_gmm(K, covariance_type, reg_covar=r * var), REG_GRID, X, rate,
               seed)
    return r * var


def _fit_impute(make, Xm):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence notes of large grid values
        return make().fit(Xm).impute(Xm)


def choose(make, grid, X, rate, seed=VALIDATION_SEED, with_error=False):
    """The grid value whose model best predicts held-out observed entries of a validation copy.

    The validation copy has its own MCAR mask at ``rate`` (seed ``seed``); a further
    ``HOLDOUT`` share of its observed entries (seed ``seed + 1``) is hidden, each grid value
    is fitted on the rest, and its RMSE on the hidden entries decides. The scan stops at the
    first value that does worse than the best so far. ``with_error``: (value, its RMSE).
    """
    Xv, _ = mcar(X, rate, seed)
    rng = np.random.RandomState(seed + 1)
    observed = ~np.isnan(Xv)
    hold = observed & (rng.rand(*X.shape) < HOLDOUT)
    hold[~(observed & ~hold).any(1)] = False  # every row keeps an observed entry
    Xh = Xv.copy()
    Xh[hold] = np.nan
    best, best_err = None, np.inf
    limit = min(X.shape) - 1
    for g in grid:
        if g > limit:
            break
        err = rmse(_fit_impute(lambda: make(g), Xh), X, hold)
        if err < best_err:
            best, best_err = g, err
        else:
            break
    return (best, best_err) if with_error else best


def choose_k(X, rate, seed=VALIDATION_SEED, with_error=False):
    """n_components for PCA by :func:`choose` over ``K_GRID``."""
    return choose(make_pca, K_GRID, X, rate, seed, with_error)


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def gmm_loglik(X, rate, K, covariance_type, seed, reg_covar):
    """Held-out complete-data log-likelihood per row: GMM on incomplete vs mean-imputed rows."""
    from sklearn.impute import SimpleImputer

    rng = np.random.RandomState(seed + 500)
    test = rng.rand(X.shape[0]) < 0.2
    train, held = X[~test], X[test]
    Xm, _ = mcar(train, rate, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = make_gmm(K, covariance_type, reg_covar=reg_covar).fit(Xm).score(held)
        filled = SimpleImputer(strategy="mean").fit_transform(Xm)
        b = make_gmm(K, covariance_type, missing="raise",
                     reg_covar=reg_covar).fit(filled).score(held)
    return a, b


def run(datasets, seeds, data_home):
    from sklearn.impute import KNNImputer, SimpleImputer

    mixtures = gmm_has_missing()
    rows, ll_rows = [], []
    for name in datasets:
        X = load_dataset(name, data_home=data_home).data.astype(np.float64)
        for rate in RATES:
            ((k, val), t_k) = _timed(lambda: choose_k(X, rate, with_error=True))
            val = {"pca": val}
            cov_types = [c for c in ("full", "diag")
                         if mixtures and (c == "diag" or X.shape[1] <= FULL_MAX_FEATURES)]
            regs = {c: choose_reg(X, rate, c) for c in cov_types}
            Ks = {}
            for c in cov_types:
                Ks[c], val[f"gmm_{c}"] = choose(lambda K, c=c: make_gmm(K, c, reg_covar=regs[c]),
                                                MIX_GRID, X, rate, with_error=True)
            ours = min(val, key=val.get)  # our model for these data: the best on validation
            res = {m: [] for m in ["pca", "mean", "knn"] + [f"gmm_{c}" for c in cov_types]}
            times = {m: [] for m in res}
            for seed in range(seeds):
                Xm, mask = mcar(X, rate, seed)
                methods = {
                    "pca": lambda: _fit_impute(lambda: make_pca(k), Xm),
                    "mean": lambda: SimpleImputer(strategy="mean").fit_transform(Xm),
                    "knn": lambda: KNNImputer().fit_transform(Xm),
                }
                for c in cov_types:
                    methods[f"gmm_{c}"] = lambda c=c: _fit_impute(
                        lambda: make_gmm(Ks[c], c, reg_covar=regs[c]), Xm)
                for m, fn in methods.items():
                    filled, sec = _timed(fn)
                    res[m].append(rmse(filled, X, mask))
                    times[m].append(sec)
                for c in cov_types:
                    ll = gmm_loglik(X, rate, Ks[c], c, seed, regs[c])
                    ll_rows.append((name, rate, c, Ks[c], regs[c], seed, *ll))
            med = {m: statistics.median(v) for m, v in res.items()}
            tmed = {m: statistics.median(v) for m, v in times.items()}
            rows.append((name, X.shape, rate, k, t_k, Ks, med, tmed, ours))
            print(_row(rows[-1]), flush=True)
    return rows, ll_rows


def _row(r):
    name, shape, rate, k, t_k, Ks, med, tmed, ours = r
    best_other = min(med["mean"], med["knn"])
    cells = [f"{name} {shape[0]}x{shape[1]}", f"{rate:.0%}", str(k),
             f"{med['pca']:.4f} ({tmed['pca']:.1f}s)",
             f"{med['mean']:.4f} ({tmed['mean']:.2f}s)", f"{med['knn']:.4f} ({tmed['knn']:.1f}s)"]
    for c in ("full", "diag"):
        key = f"gmm_{c}"
        cells.append(f"{med[key]:.4f} K={Ks[c]} ({tmed[key]:.1f}s)" if key in med else "-")
    label = {"pca": "PCA", "gmm_full": "GMM full", "gmm_diag": "GMM diag"}[ours]
    cells.append(f"{label}: {med[ours]:.4f} " + ("yes" if med[ours] < best_other else "NO"))
    cells.append(f"{t_k:.0f}s")
    return "| " + " | ".join(cells) + " |"


HEADER = ("| data | missing | k (rule) | PCA RMSE (time) | mean | KNN | GMM full | GMM diag | "
          "ours (best on validation) beats both | time to choose k |\n"
          "|---|---|---|---|---|---|---|---|---|---|")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--datasets", nargs="+",
                    default=["digits", "frey_faces", "olivetti_faces"])
    ap.add_argument("--data-home", default=os.environ.get(
        "LATENTSPACE_DATA", str(Path(__file__).resolve().parents[2] / "shared" / "data")))
    args = ap.parse_args(argv)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    print(machine())
    print(f"medians over {args.seeds} seed(s); RMSE of the imputed entries (pixels in [0, 1])\n")
    if not gmm_has_missing():
        print("note: this GaussianMixture has no 'missing' hyperparameter; the mixture columns "
              "are skipped.\n")
    print(HEADER, flush=True)
    _, ll_rows = run(args.datasets, args.seeds, args.data_home)
    if ll_rows:
        print("\nheld-out complete-data log-likelihood per row (GMM fitted on incomplete rows "
              "vs on mean-imputed rows; medians over seeds)\n")
        print("| data | missing | covariance | K | reg_covar | incomplete | mean-imputed |\n"
              "|---|---|---|---|---|---|---|")
        groups = {}
        for name, rate, c, K, reg, _seed, a, b in ll_rows:
            groups.setdefault((name, rate, c, K, reg), []).append((a, b))
        for (name, rate, c, K, reg), v in groups.items():
            a = statistics.median(x for x, _ in v)
            b = statistics.median(y for _, y in v)
            print(f"| {name} | {rate:.0%} | {c} | {K} | {reg:.2g} | {a:.2f} | {b:.2f} |")


if __name__ == "__main__":
    main()
