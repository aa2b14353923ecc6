"""The lecture's claims with default training settings, and what default fits cost.

For each dataset and seed: a linear autoencoder ``Autoencoder(5, hidden_sizes=())`` against
PCA (largest principal angle between the decoder's column space and PCA's subspace,
reconstruction error over PCA's), and a linear-Gaussian VAE ``VAE(5, hidden_sizes=(),
likelihood="gaussian")`` against the exact log-likelihood of the PPCA maximum-likelihood fit
(ELBO averaged over 5 draws, importance-weighted bound with K = 64), with epochs, stopping
reason and wall time. Then a default ``Autoencoder()`` on 2000×560 data, on all cores.

    python bench/neural_defaults.py [--seeds 3] [--write]

``--write`` puts the tables into bench/RESULTS.md. Run it under another checkout's ``src``
(``PYTHONPATH=...``) to measure that version's defaults the same way.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from scipy.linalg import subspace_angles
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "neural"))
from _common import machine  # noqa: E402
from _neural import data_dir, write_block  # noqa: E402
from _ppca import ppca_loglik  # noqa: E402

from latentspace.neural import VAE, Autoencoder  # noqa: E402

L = 5


def tall(n=5000, d=20, seed=0):
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(d, L)) * np.linspace(3.0, 1.0, L)
    return rng.normal(size=(n, L)) @ W.T + rng.normal(size=d) + 0.5 * rng.normal(size=(n, d))


def datasets():
    oli = np.load(data_dir() / "olivetti_faces.npz")["images"]
    return {
        "digits 1797×64": load_digits().data / 16.0,
        "Olivetti 400×4096": oli.reshape(len(oli), -1).astype(np.float64) / 255.0,
        "tall PPCA sample 5000×20": tall(),
    }


def fit(est, X):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0 = time.perf_counter()
        est.fit(X)
        seconds = time.perf_counter() - t0
    n_warn = sum("ConvergenceWarning" in w.category.__name__ for w in caught)
    return seconds, n_warn


def decoder_columns(model):
    zero = model.inverse_transform(np.zeros((1, L)))
    return (model.inverse_transform(np.eye(L)) - zero).T.astype(np.float64)


def linear_ae(X, seed):
    ae = Autoencoder(L, hidden_sizes=(), random_state=seed)
    seconds, n_warn = fit(ae, X)
    pca = PCA(L).fit(X)
    err_pca = np.mean(((pca.inverse_transform(pca.transform(X)) - X) ** 2).sum(1))
    return {"angle": float(subspace_angles(decoder_columns(ae), pca.components_.T).max()),
            "ratio": float(-ae.score(X) / err_pca), "epochs": ae.n_iter_,
            "stop": getattr(ae, "stop_reason_", "n/a"), "warnings": n_warn, "seconds": seconds}


def linear_vae(X, seed):
    vae = VAE(L, hidden_sizes=(), likelihood="gaussian", random_state=seed)
    seconds, n_warn = fit(vae, X)
    ll = ppca_loglik(X, L)
    elbo = np.mean([vae.score_samples(X, random_state=s).mean() for s in range(5)])
    iw = vae.score_samples(X, n_importance=64, random_state=0).mean()
    return {"gap": float((ll - elbo) / abs(ll)), "ll": float(ll), "elbo": float(elbo),
            "iw": float(iw), "epochs": vae.n_iter_, "stop": getattr(vae, "stop_reason_", "n/a"),
            "warnings": n_warn, "seconds": seconds}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args(argv)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the claims, one thread per fit
    ae_rows, vae_rows = [], []
    for name, X in datasets().items():
        for seed in range(args.seeds):
            a = linear_ae(X, seed)
            v = linear_vae(X, seed)
            print(f"{name} seed {seed}: AE {a}  VAE {v}", flush=True)
            ae_rows.append(f"| {name} | {seed} | {a['angle']:.4f} | {a['ratio']:.5f} | "
                           f"{a['epochs']} ({a['stop']}) | {a['warnings']} | {a['seconds']:.1f} s |")
            slack = 1e-3 * abs(v["ll"])  # Monte-Carlo error of the two bounds, generously
            between = "yes" if v["elbo"] - slack <= v["iw"] <= v["ll"] + slack else "no"
            vae_rows.append(f"| {name} | {seed} | {v['ll']:.3f} | {v['elbo']:.3f} | "
                            f"**{100 * v['gap']:.2f}%** | {v['iw']:.3f} ({between}) | "
                            f"{v['epochs']} ({v['stop']}) | {v['warnings']} | {v['seconds']:.1f} s |")

    torch.set_num_threads(threads)
    frey = np.load(data_dir() / "frey_faces.npz")["images"]
    rng = np.random.default_rng(0)
    timing = {
        "Frey faces 1965×560": frey.reshape(len(frey), -1).astype(np.float32) / 255.0,
        "synthetic rank-10 + noise 2000×560": (rng.normal(size=(2000, 10)) @ rng.normal(
            size=(10, 560)) + rng.normal(size=(2000, 560))).astype(np.float32),
    }
    time_rows = []
    for name, X in timing.items():
        for seed in range(args.seeds):
            ae = Autoencoder(random_state=seed)
            seconds, n_warn = fit(ae, X)
            print(f"default Autoencoder() on {name}, seed {seed}: {seconds:.1f} s, "
                  f"{ae.n_iter_} epochs", flush=True)
            time_rows.append(f"| {name} | {seed} | {ae.n_iter_} "
                             f"({getattr(ae, 'stop_reason_', 'n/a')}) | {seconds:.1f} s |")

    md = "\n".join([
        "### Lecture claims with default training (`bench/neural_defaults.py`)",
        "Only the obvious arguments given: `Autoencoder(5, hidden_sizes=())` and "
        "`VAE(5, hidden_sizes=(), likelihood=\"gaussian\")`, seeds 0..; targets: angle ≤ 0.1 rad, "
        "error ≤ 1.02 × PCA's, ELBO within 2% of the exact PPCA log-likelihood (closed form), "
        "IWAE bound between the two. One torch thread per fit.",
        "",
        "| data | seed | largest angle to PCA (rad) | AE error / PCA error | epochs (stopped by) "
        "| convergence warnings | time |",
        "|---|---|---|---|---|---|---|",
        *ae_rows,
        "",
        "| data | seed | PPCA log-lik. (nats) | mean ELBO | below PPCA | IWAE K=64 (between?) "
        "| epochs (stopped by) | convergence warnings | time |",
        "|---|---|---|---|---|---|---|---|---|",
        *vae_rows,
        "",
        f"A default `Autoencoder()` (latent_dim 2, linear), {threads} torch threads:",
        "",
        "| data | seed | epochs (stopped by) | time |",
        "|---|---|---|---|",
        *time_rows,
        "",
        f"Machine: {machine()}.",
    ])
    print(md)
    if args.write:
        write_block("neural_defaults", md)


if __name__ == "__main__":
    main()
