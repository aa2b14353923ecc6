"""One pass of stepwise online EM (``partial_fit``) against the batch fit, and ``fit``'s speed.

Streams (the ones ``tests/mixture/test_streaming.py`` checks):

* ``gmm-<type>``: 100 chunks of 200 rows drawn from a known, well-separated Gaussian mixture
  (K=4, D=5, full covariances), held-out 10000 rows from the same mixture; GaussianMixture(4)
  of each covariance type;
* ``mnist``: binarised MNIST (threshold 0.5) in 600-row chunks (100 chunks), held out the
  official test split; BernoulliMixture(10). Read from the shared data folder (env
  LATENTSPACE_TEST_DATA, default ../shared/data); skipped without it.

For each stream: the held-out mean log-likelihood of one pass of ``partial_fit`` and of the
batch ``fit`` on all the rows (same hyperparameters, default learning parameters), their
relative gap, and the median seconds of each over interleaved repeats.

``--grid`` instead prints the relative gap over a grid of (learning_decay, learning_offset),
the measurement the defaults were chosen by. ``--fit-speed`` times ordinary ``fit`` (no
weights) of this tree against another copy of the library (``--old-src``, its ``src``
folder), both imported in this process and timed interleaved.

Usage: python bench/stream.py [--repeats 3] [--grid] [--fit-speed --old-src PATH]
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
from _common import interleaved_medians, machine  # noqa: E402

K_GMM, D_GMM, CHUNKS, ROWS = 4, 5, 100, 200
K_MNIST, MNIST_ROWS = 10, 600


def gmm_truth(seed=0):
    """A well-separated Gaussian mixture: (weights, means, covariances)."""
    rng = np.random.default_rng(seed)
    means = rng.standard_normal((K_GMM, D_GMM)) * 6
    A = rng.standard_normal((K_GMM, D_GMM, D_GMM)) * 0.4 + np.eye(D_GMM)
    covs = A @ A.transpose(0, 2, 1)
    weights = np.array([0.4, 0.3, 0.2, 0.1])
    return weights, means, covs


def gmm_draw(n, seed):
    weights, means, covs = gmm_truth()
    rng = np.random.default_rng(seed)
    z = rng.choice(K_GMM, size=n, p=weights)
    eps = rng.standard_normal((n, D_GMM))
    return means[z] + np.einsum("nde,ne->nd", np.linalg.cholesky(covs)[z], eps)


def gmm_stream():
    """(chunks, held-out rows) of the Gaussian stream."""
    X = gmm_draw(CHUNKS * ROWS, seed=1)
    return [X[i * ROWS:(i + 1) * ROWS] for i in range(CHUNKS)], gmm_draw(10000, seed=2)


def mnist_stream(data_home):
    """(chunks, held-out rows) of binarised MNIST, or None without the data."""
    from latentspace import load_dataset

    if not (Path(data_home) / "mnist.npz").is_file():
        return None
    d = load_dataset("mnist", data_home=data_home, return_images=False)
    X = (d.data > 0.5).astype(np.float64)
    Xt = (d.data_test > 0.5).astype(np.float64)
    return [X[i:i + MNIST_ROWS] for i in range(0, X.shape[0], MNIST_ROWS)], Xt


def one_pass(make, chunks):
    est = make()
    for C in chunks:
        est.partial_fit(C)
    return est


def batch(make, chunks):
    return make().fit(np.concatenate(chunks))


def streams(data_home):
    from latentspace import BernoulliMixture, GaussianMixture

    out = {}
    chunks, held = gmm_stream()
    for t in ("full", "tied", "diag", "spherical"):
        out[f"gmm-{t}"] = (lambda t=t, **kw: GaussianMixture(K_GMM, covariance_type=t,
                                                              random_state=0, **kw),
                           chunks, held)
    mn = mnist_stream(data_home)
    if mn is not None:
        out["mnist"] = (lambda **kw: BernoulliMixture(K_MNIST, random_state=0, **kw), *mn)
    return out


def gap(stream_ll, batch_ll):
    return (batch_ll - stream_ll) / abs(batch_ll)


def compare(data_home, repeats):
    print(f"{'stream':<14} {'held-out ll: one pass':>22} {'batch':>10} {'rel. gap':>9} "
          f"{'t pass (s)':>10} {'t batch (s)':>11}")
    for name, (make, chunks, held) in streams(data_home).items():
        res = interleaved_medians({"pass": lambda: one_pass(make, chunks),
                                   "batch": lambda: batch(make, chunks)},
                                  repeats=repeats, warmup=0)
        s, b = res["pass"][1].score(held), res["batch"][1].score(held)
        print(f"{name:<14} {s:>22.4f} {b:>10.4f} {gap(s, b):>9.2%} {res['pass'][0]:>10.2f} "
              f"{res['batch'][0]:>11.2f}")


def grid(data_home):
    decays, offsets = (0.6, 0.7, 0.8, 0.9, 1.0), (0.0, 1.0, 4.0, 16.0, 64.0)
    for name, (make, chunks, held) in streams(data_home).items():
        if name not in ("gmm-full", "gmm-diag", "mnist"):
            continue
        b = batch(make, chunks).score(held)
        print(f"{name}: relative gap of one pass to the batch fit (batch ll {b:.4f})")
        print("  decay \\ offset " + "".join(f"{o:>8g}" for o in offsets))
        for k in decays:
            row = [gap(one_pass(lambda: make(learning_decay=k, learning_offset=o),
                                chunks).score(held), b) for o in offsets]
            print(f"  {k:<15g}" + "".join(f"{g:>8.2%}" for g in row))


def _import_copy(src: Path, tag: str):
    """``latentspace`` imported from ``src`` under another name (both copies in one process)."""
    spec = importlib.util.spec_from_file_location(
        tag, src / "latentspace" / "__init__.py", submodule_search_locations=[str(src / "latentspace")])
    mod = importlib.util.module_from_spec(spec)
    sys.modules[tag] = mod
    spec.loader.exec_module(mod)
    # the package's lazy top-level names import "latentspace.*": take the submodule itself
    return importlib.import_module(f"{tag}.mixture")


def fit_speed(old_src: Path, repeats: int):
    new = _import_copy(REPO / "src", "latentspace_new")
    old = _import_copy(old_src, "latentspace_old")
    rng = np.random.default_rng(0)
    X = gmm_draw(100000, seed=3)
    Xb = (rng.random((20000, 200)) < 0.3).astype(np.float64)
    cases = {"gmm full": lambda m: m.GaussianMixture(K_GMM, random_state=0, max_iter=20, tol=0).fit(X),
             "gmm diag": lambda m: m.GaussianMixture(K_GMM, covariance_type="diag", random_state=0,
                                                     max_iter=20, tol=0).fit(X),
             "bmm": lambda m: m.BernoulliMixture(8, random_state=0, max_iter=20, tol=0).fit(Xb)}
    print(f"{'fit (no weights)':<18} {'this tree (s)':>13} {'other copy (s)':>14} {'ratio':>7}")
    for name, case in cases.items():
        res = interleaved_medians({"new": lambda: case(new), "old": lambda: case(old)},
                                  repeats=repeats, warmup=1)
        a, b = res["new"][0], res["old"][0]
        print(f"{name:<18} {a:>13.3f} {b:>14.3f} {a / b:>7.3f}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--grid", action="store_true")
    p.add_argument("--fit-speed", action="store_true")
    p.add_argument("--old-src", type=Path, default=None)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    data_home = os.environ.get("LATENTSPACE_TEST_DATA", str(REPO.parent / "shared" / "data"))
    print(machine())
    if args.fit_speed:
        if args.old_src is None:
            p.error("--fit-speed needs --old-src (the src folder of the copy to compare with)")
        fit_speed(args.old_src, args.repeats)
        return
    if str(REPO / "src") not in sys.path:
        sys.path.insert(0, str(REPO / "src"))
    if args.grid:
        grid(data_home)
    else:
        compare(data_home, args.repeats)


if __name__ == "__main__":
    main()
