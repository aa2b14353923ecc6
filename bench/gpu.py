"""Checks and timings on a CUDA GPU, in one run: the GPU tests, then PCA, K-means, Gaussian
mixtures and the VAE against the same estimators on the host's CPU and against scikit-learn.

Every figure is a median of repeated runs in one process; GPU work is synchronised before a
clock is read. Per-iteration EM times are differences of fits at 1 and 1 + N iterations, as in
``bench/kmeans.py``. Each part is independent: one that fails prints its error and the rest
go on. Results go to stdout (a Markdown table per part) and to ``--json``.

Run:  python bench/gpu.py [--json gpu.json] [--mnist DIR] [--vae-checkpoint FILE] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import traceback
import warnings
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

from kmeans import data as blobs  # noqa: E402
from pca import data as low_rank  # noqa: E402

from latentspace import PCA, GaussianMixture, KMeans  # noqa: E402

RESULTS: dict = {}
# another device only for a dry run of the script itself on a machine without a GPU
DEV = os.environ.get("LATENTSPACE_BENCH_DEVICE", "cuda")


def sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def median_time(fn, repeats=3, warmup=1):
    out = None
    for _ in range(warmup):
        out = fn()
        sync()
    times = []
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        out = fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def part(name):
    def wrap(f):
        def run(*a, **k):
            t0 = time.perf_counter()
            print(f"\n## {name}", flush=True)
            try:
                RESULTS[name] = f(*a, **k)
            except Exception as exc:  # report and go on with the next part
                traceback.print_exc()
                RESULTS[name] = {"error": f"{type(exc).__name__}: {exc}"}
            print(f"({name}: {time.perf_counter() - t0:.0f} s)", flush=True)
        return run
    return wrap


@part("tests")
def run_tests():
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "gpu",
           "tests/test_gpu.py", "tests/decomposition/test_pca.py", "-W", "ignore"]
    r = subprocess.run(cmd, cwd=HERE.parent, capture_output=True, text=True, timeout=240)
    tail = (r.stdout + r.stderr).strip().splitlines()[-25:]
    print("\n".join(tail))
    return {"returncode": r.returncode, "tail": tail}


@part("pca")
def run_pca(quick):
    from sklearn.decomposition import PCA as SkPCA

    shapes = [((200_000, 100), 10), ((20_000, 1000), 50), ((1348, 2914), 150)]
    if quick:
        shapes = [((20_000, 100), 10), ((2000, 300), 20), ((300, 900), 30)]
    rows = []
    print("| shape, k | dtype | GPU, data on GPU (solver) | GPU, from numpy | CPU ours | "
          "sklearn best | dev. GPU vs CPU | sklearn / GPU |")
    print("|---|---|---|---|---|---|---|---|")
    for (n, d), k in shapes:
        X64 = low_rank(n, d)
        for dtype in (np.float64, np.float32):
            X = X64.astype(dtype)
            Xg = torch.as_tensor(X, device=DEV)
            t_gd, g = median_time(lambda: PCA(k, random_state=0, device=DEV).fit(Xg))
            t_gn, _ = median_time(lambda: PCA(k, random_state=0, device=DEV).fit(X))
            t_c, c = median_time(lambda: PCA(k, random_state=0).fit(X))
            sk = {}
            for solver in ("covariance_eigh", "randomized") if n >= d else ("randomized", "full"):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    sk[solver] = median_time(
                        lambda s=solver: SkPCA(k, svd_solver=s, random_state=0).fit(X))[0]
            best = min(sk, key=sk.get)
            dev = float(np.max(np.abs(g.explained_variance_ / c.explained_variance_ - 1)))
            row = dict(shape=f"{n}×{d}", k=k, dtype=np.dtype(dtype).name, gpu_device=t_gd,
                       gpu_numpy=t_gn, cpu=t_c, sklearn=sk, sklearn_best=best,
                       solver=g.fit_svd_solver_, dev=dev)
            rows.append(row)
            print(f"| {n}×{d}, k={k} | {row['dtype']} | {1e3 * t_gd:.1f} ms ({g.fit_svd_solver_}) | "
                  f"{1e3 * t_gn:.1f} ms | {1e3 * t_c:.1f} ms | {best} {1e3 * sk[best]:.1f} ms | "
                  f"{dev:.1e} | {sk[best] / t_gd:.1f}× |", flush=True)
    return rows


def per_iteration(make, X, iters, repeats=3):
    """(seconds per iteration, fitted estimator) from fits at 1 and 1 + iters iterations."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t1, _ = median_time(lambda: make(1).fit(X), repeats)
        tn, est = median_time(lambda: make(1 + iters).fit(X), repeats)
    return (tn - t1) / iters, est


@part("kmeans")
def run_kmeans(quick):
    from sklearn.cluster import KMeans as SkKMeans

    shapes = [(200_000, 32, 64), (1_000_000, 16, 16)] if not quick else [(20_000, 32, 64)]
    rows = []
    print("| shape, K | dtype | GPU ms/iter | CPU ours ms/iter | sklearn ms/iter | "
          "inertia rel. diff GPU vs sklearn | sklearn / GPU |")
    print("|---|---|---|---|---|---|---|")
    for n, d, K in shapes:
        for dtype in (np.float64, np.float32):
            X = blobs(n, d, K).astype(dtype)
            C0 = X[np.random.default_rng(1).choice(n, K, replace=False)].copy()
            Xg = torch.as_tensor(X, device=DEV)
            tg, g = per_iteration(
                lambda it: KMeans(K, init=C0, max_iter=it, tol=0, device=DEV), Xg, 10)
            tc, _ = per_iteration(lambda it: KMeans(K, init=C0, max_iter=it, tol=0), X, 10)
            ts, s = per_iteration(
                lambda it: SkKMeans(K, init=C0, n_init=1, max_iter=it, tol=0), X, 10)
            diff = abs(g.inertia_ - s.inertia_) / s.inertia_
            rows.append(dict(shape=f"{n}×{d}", K=K, dtype=np.dtype(dtype).name, gpu=tg, cpu=tc,
                             sklearn=ts, inertia_diff=diff))
            print(f"| {n}×{d}, K={K} | {np.dtype(dtype).name} | {1e3 * tg:.2f} | {1e3 * tc:.2f} | "
                  f"{1e3 * ts:.2f} | {diff:.1e} | {ts / tg:.1f}× |", flush=True)
    return rows


@part("gmm")
def run_gmm(quick):
    from sklearn.mixture import GaussianMixture as SkGMM

    n, d, K = (100_000, 16, 16) if not quick else (10_000, 8, 4)
    X = blobs(n, d, K)
    rows = []
    print("| covariance | GPU ms/iter | CPU ours ms/iter | sklearn ms/iter | "
          "Δ mean log-lik GPU vs CPU | sklearn / GPU |")
    print("|---|---|---|---|---|---|")
    Xg = torch.as_tensor(X, device=DEV)
    for cov in ("full", "diag"):
        init = GaussianMixture(K, covariance_type=cov, max_iter=0, random_state=0).fit(X)
        kw = dict(covariance_type=cov, tol=0, means_init=init.means_,
                  weights_init=init.weights_, precisions_init=init.precisions_)
        tg, g = per_iteration(lambda it: GaussianMixture(K, max_iter=it, device=DEV, **kw), Xg, 5)
        tc, c = per_iteration(lambda it: GaussianMixture(K, max_iter=it, **kw), X, 5)
        ts, _ = per_iteration(lambda it: SkGMM(K, max_iter=it, **kw), X, 5)
        dl = abs(float(g.score(X)) - float(c.score(X)))
        rows.append(dict(cov=cov, shape=f"{n}×{d}", K=K, gpu=tg, cpu=tc, sklearn=ts, dloglik=dl))
        print(f"| {cov} ({n}×{d}, K={K}) | {1e3 * tg:.2f} | {1e3 * tc:.2f} | {1e3 * ts:.2f} | "
              f"{dl:.1e} | {ts / tg:.1f}× |", flush=True)
    return rows


@part("vae_throughput")
def run_vae_throughput(quick):
    from latentspace.neural import VAE

    n = 60_000 if not quick else 6_000
    rng = np.random.default_rng(0)
    X = (rng.random((n, 784)) < 0.13).astype(np.float32)
    epochs = 3

    def ours():
        return VAE(50, hidden_sizes=(200, 200), activation="tanh", batch_size=100,
                   max_epochs=epochs, random_state=0, device=DEV,
                   learning_rate_schedule="constant", n_iter_no_change=10**9).fit(X)

    def bare():
        torch.manual_seed(0)
        dev = torch.device(DEV)
        enc = torch.nn.Sequential(torch.nn.Linear(784, 200), torch.nn.Tanh(),
                                  torch.nn.Linear(200, 200), torch.nn.Tanh(),
                                  torch.nn.Linear(200, 100)).to(dev)
        dec = torch.nn.Sequential(torch.nn.Linear(50, 200), torch.nn.Tanh(),
                                  torch.nn.Linear(200, 200), torch.nn.Tanh(),
                                  torch.nn.Linear(200, 784)).to(dev)
        opt = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=1e-3)
        Xt = torch.as_tensor(X, device=dev)
        for _ in range(epochs):
            for idx in torch.randperm(n, device=dev).split(100):
                x = Xt[idx]
                mu, logvar = enc(x).chunk(2, dim=1)
                z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
                logits = dec(z)
                rec = torch.nn.functional.binary_cross_entropy_with_logits(
                    logits, x, reduction="sum")
                kl = -0.5 * torch.sum(1 + logvar - mu * mu - logvar.exp())
                loss = (rec + kl) / x.shape[0]
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        return float(loss.detach())

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random binary data: no latent structure to find
        t_ours, vae = median_time(ours, repeats=2)
    t_bare, _ = median_time(bare, repeats=2)
    out = dict(rows=n, epochs=epochs, ours_s_per_epoch=t_ours / epochs,
               bare_s_per_epoch=t_bare / epochs, ratio=t_bare / t_ours,
               last_loss=float(vae.history_[-1]["loss"]))
    print("| model | ours s/epoch | bare PyTorch loop s/epoch | bare / ours |")
    print("|---|---|---|---|")
    print(f"| VAE 784-200-200-50, batch 100, {n} rows | {out['ours_s_per_epoch']:.2f} | "
          f"{out['bare_s_per_epoch']:.2f} | {out['ratio']:.2f} |", flush=True)
    return out


@part("vae_long_checkpoint")
def run_vae_eval(mnist_dir, ckpt, k, budget_s):
    """Test NLL (IWAE, K importance samples) of a VAE checkpoint trained by bench/vae_mnist.py."""
    from _neural import fixed_binarisation

    from latentspace.neural import VAE, load_checkpoint

    d = np.load(Path(mnist_dir) / "mnist.npz", allow_pickle=False)
    x_test = d["x_test"].reshape(len(d["x_test"]), -1).astype(np.float32) / 255.0
    x_test_b = fixed_binarisation(x_test, seed=123)
    state = load_checkpoint(ckpt)
    epoch = int(state["epoch"])
    spent = sum(h["seconds"] for h in state["history"])
    vae = VAE(50, hidden_sizes=(200, 200), activation="tanh", likelihood="bernoulli",
              learning_rate=1e-3, max_epochs=epoch, checkpoint_path=str(ckpt), random_state=0,
              device=DEV, learning_rate_schedule="constant", n_iter_no_change=10**9)
    vae.fit(x_test_b[:100], resume=ckpt)  # loads the weights; no epoch is left to run
    assert len(vae.history_) == epoch, "the checkpoint was trained further"
    t0 = time.perf_counter()
    elbo = float(np.mean(vae.score_samples(x_test_b, random_state=1)))
    parts, done = [], 0
    for start in range(0, len(x_test_b), 1000):
        parts.append(vae.score_samples(x_test_b[start : start + 1000], n_importance=k,
                                       random_state=2 + start))
        done = start + 1000
        if time.perf_counter() - t0 > budget_s:
            break
    iw = np.concatenate(parts)
    out = dict(epochs=epoch, train_minutes=spent / 60, test_rows=int(len(iw)), k=k,
               nll=float(-iw.mean()), nll_se=float(iw.std(ddof=1) / np.sqrt(len(iw))),
               elbo=elbo, eval_seconds=time.perf_counter() - t0)
    print(f"VAE checkpoint after {epoch} epochs ({spent / 60:.0f} min of CPU training): "
          f"test NLL {out['nll']:.2f} ± {out['nll_se']:.2f} (IWAE K={k}, {len(iw)} images), "
          f"ELBO {elbo:.2f}; {out['eval_seconds']:.0f} s on the GPU", flush=True)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", default=None)
    ap.add_argument("--mnist", default=None, help="folder with mnist.npz (VAE checkpoint part)")
    ap.add_argument("--vae-checkpoint", default=None)
    ap.add_argument("--k", type=int, default=5000)
    ap.add_argument("--vae-budget-s", type=float, default=120.0)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--skip", default="", help="comma-separated parts to skip")
    args = ap.parse_args()
    if DEV == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device")
    RESULTS["device"] = torch.cuda.get_device_name(0) if DEV == "cuda" else DEV
    RESULTS["machine"] = (f"{RESULTS['device']}; host {platform.machine()}, {os.cpu_count()} CPU "
                          f"cores; torch {torch.__version__}, numpy {np.__version__}")
    import sklearn

    RESULTS["machine"] += f", scikit-learn {sklearn.__version__}"
    print("#", RESULTS["machine"], flush=True)
    skip = set(filter(None, args.skip.split(",")))
    steps = [("tests", lambda: run_tests()), ("pca", lambda: run_pca(args.quick)),
             ("kmeans", lambda: run_kmeans(args.quick)), ("gmm", lambda: run_gmm(args.quick)),
             ("vae_throughput", lambda: run_vae_throughput(args.quick))]
    if args.vae_checkpoint and args.mnist:
        steps.append(("vae_long_checkpoint",
                      lambda: run_vae_eval(args.mnist, args.vae_checkpoint, args.k,
                                           args.vae_budget_s)))
    for name, step in steps:
        if name not in skip:
            step()
            if args.json:
                Path(args.json).write_text(json.dumps(RESULTS, indent=1, default=str))


if __name__ == "__main__":
    main()
