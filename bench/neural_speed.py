"""What a default neural fit on 20 000 rows costs: epochs, why training stopped, wall time.

Each estimator is fitted as ``Est(latent_dim=2).fit(X)`` -- only ``latent_dim`` given (and
the likelihood, or the corruption and sparsity of the variants) -- on

- 20 000 rows of the 8-Gaussians ring (2 features, radius 2, σ = 0.02), and
- the first 20 000 MNIST training images (784 features in [0, 1]; binarised once, with a
  fixed seed, for the Bernoulli VAE, whose likelihood needs 0/1 targets).

Every fit runs in its own process with ``torch.set_num_threads(2)`` (``NEURAL_SPEED_THREADS``
sets another number) and a wall-clock limit
(``--limit``, 240 s); a fit that does not finish in it is reported as such, with the epochs it
had completed (a callback writes each finished epoch to a file the parent reads).

    python bench/neural_speed.py [--limit 240] [--only NAME ...] [--save F] [--before F]
                                 [--results F] [--write]

``--write`` puts the table into bench/RESULTS.md; run it once under another checkout's
``src`` (``PYTHONPATH=...``) with ``--save before.json`` and then on this one with
``--before before.json --write`` to show both columns (``--results`` reuses figures saved
earlier and measures only the cases missing from them).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine  # noqa: E402
from _neural import fixed_binarisation, mnist_intensities, write_block  # noqa: E402

N_ROWS = 20000
THREADS = int(os.environ.get("NEURAL_SPEED_THREADS", "2"))  # torch threads of each fit

# epochs the earlier default rules run at least on 20 000 rows: seven plateaus of 20 epochs,
# and the GAN's 100 epochs
OLD_RULE_EPOCHS = {"Autoencoder": 140, "VAE": 140, "GAN": 100}

# name -> (estimator, keyword arguments besides latent_dim, data set)
CASES = {
    "Autoencoder ring": ("Autoencoder", {}, "ring"),
    "Autoencoder MNIST": ("Autoencoder", {}, "mnist"),
    "Autoencoder denoising MNIST": ("Autoencoder", {"noise": ["mask", 0.25]}, "mnist"),
    "Autoencoder sparse MNIST": ("Autoencoder", {"sparsity_target": 0.05}, "mnist"),
    "VAE Gaussian ring": ("VAE", {"likelihood": "gaussian"}, "ring"),
    "VAE Gaussian MNIST": ("VAE", {"likelihood": "gaussian"}, "mnist"),
    "VAE Bernoulli MNIST (binarised)": ("VAE", {}, "mnist_binary"),
    "GAN ring": ("GAN", {}, "ring"),
    "GAN MNIST": ("GAN", {}, "mnist"),
}


def load(name: str) -> np.ndarray:
    if name == "ring":
        from latentspace.metrics import make_ring_of_gaussians

        X, _, _ = make_ring_of_gaussians(N_ROWS, std=0.02, random_state=0)
        return np.asarray(X, dtype=np.float32)
    x = mnist_intensities()[0][:N_ROWS]
    return fixed_binarisation(x, seed=0) if name == "mnist_binary" else x


class _Progress:
    """A callback writing the epochs finished so far (read by the parent after a time-out)."""

    def __init__(self, path: str):
        self.path = path

    def on_epoch_end(self, est, record):
        Path(self.path).write_text(json.dumps({"epochs": int(record["epoch"])}))
        return False


def run_one(name: str, progress: str) -> dict:
    """The fit of case ``name`` in this process -> its figures."""
    import torch

    import latentspace.neural as neural

    torch.set_num_threads(THREADS)
    cls_name, kwargs, data = CASES[name]
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
    X = load(data)
    est = getattr(neural, cls_name)(latent_dim=2, random_state=0, callbacks=[_Progress(progress)],
                                    **kwargs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0 = time.perf_counter()
        est.fit(X)
        seconds = time.perf_counter() - t0
    last = est.history_[-1]
    out = {"epochs": est.n_iter_, "stop": est.stop_reason_, "seconds": seconds,
           "steps_per_epoch": None, "warnings": sorted({str(w.message)[:60] for w in caught})}
    for key in ("loss", "elbo", "diversity"):
        if key in last:
            out[key] = float(last[key])
    if cls_name == "GAN" and data == "ring":  # quality: the modes its samples reach
        from latentspace.metrics import make_ring_of_gaussians, mode_coverage

        modes = make_ring_of_gaussians(8, std=0.02, random_state=0)[2]
        cov = mode_coverage(est.sample(2500, random_state=1), modes, 0.02)
        out["modes_covered"], out["high_quality"] = cov["modes_covered"], cov["high_quality"]
    return out


def measure(name: str, limit: float) -> dict:
    """Case ``name`` in a subprocess, stopped after ``limit`` seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        progress = os.path.join(tmp, "progress.json")
        cmd = [sys.executable, __file__, "--child", name, "--progress", progress]
        t0 = time.perf_counter()
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=limit)
        except subprocess.TimeoutExpired:
            seen = json.loads(Path(progress).read_text())["epochs"] if os.path.exists(progress) \
                else 0
            return {"epochs": seen, "stop": "timeout", "seconds": time.perf_counter() - t0,
                    "limit": limit}
        if done.returncode != 0:
            return {"stop": "error", "error": done.stderr.strip().splitlines()[-1:]}
        return json.loads(done.stdout.strip().splitlines()[-1])


def cell(r: dict | None) -> str:
    if r is None:
        return "–"
    if r["stop"] == "timeout":
        return f"did not finish in {r['limit']:.0f} s ({r['epochs']} epochs done)"
    if r["stop"] == "error":
        return f"error: {r['error']}"
    return f"{r['seconds']:.1f} s, {r['epochs']} epochs ({r['stop']})"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=float, default=240.0)
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--save", default=None, help="write the figures to this JSON file")
    ap.add_argument("--before", default=None, help="figures of the earlier version (JSON)")
    ap.add_argument("--results", default=None,
                    help="figures measured earlier (JSON): only the cases missing are run")
    ap.add_argument("--note", default=None, help="a paragraph to print under the table")
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--progress", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child is not None:
        print(json.dumps(run_one(args.child, args.progress)))
        return

    names = args.only or list(CASES)
    results = json.loads(Path(args.results).read_text()) if args.results else {}
    for name in names:
        if name in results:
            continue
        results[name] = measure(name, args.limit)
        print(f"{name}: {results[name]}", flush=True)
    if args.save:
        Path(args.save).write_text(json.dumps(results, indent=1))
    before = json.loads(Path(args.before).read_text()) if args.before else {}
    rows = []
    for name in names:
        r = results[name]
        need = OLD_RULE_EPOCHS[CASES[name][0]]
        projected = "–"
        if r.get("epochs") and r["stop"] not in ("timeout", "error"):
            projected = f"≥ {need * r['seconds'] / r['epochs']:.0f} s"
        quality = ", ".join(f"{k} {r[k]:.3g}" for k in
                            ("loss", "elbo", "diversity", "modes_covered", "high_quality")
                            if k in r)
        rows.append(f"| {name} | {cell(before.get(name))} | {need}+ epochs, {projected} | "
                    f"**{cell(r)}** | {quality} | "
                    f"{'; '.join(w[:50] for w in r.get('warnings', [])) or 'none'} |")
    import torch

    torch.set_num_threads(THREADS)
    load = os.getloadavg()
    md = "\n".join([
        "### Default neural fits on 20 000 rows (`bench/neural_speed.py`)",
        "`Est(latent_dim=2).fit(X)`, nothing else set (the variants: `noise=(\"mask\", 0.25)`, "
        "`sparsity_target=0.05`; the VAE's `likelihood`), on 20 000 rows of the 8-Gaussians "
        "ring (2-D, σ = 0.02) and on the first 20 000 MNIST training images (784-D in [0, 1], "
        f"binarised once for the Bernoulli VAE); {THREADS} torch thread"
        f"{'s' if THREADS != 1 else ''}, each fit in its own "
        "process with a wall-clock limit. Target: every fit under 2 minutes.",
        "",
        "The earlier rules need at least 140 epochs of the autoencoders and the VAE (seven "
        "plateaus of 20 epochs) and exactly 100 of the GAN; *projected* is that many epochs at "
        "the per-epoch time measured after (an epoch is the same work in both versions).",
        "",
        "| estimator, data | before: measured | before: projected | after: time, epochs "
        "(stopped by) | last epoch | warnings after |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        *([args.note, ""] if args.note else []),
        f"Machine: {machine()}; load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1, "
        "5, 15 min) when the table was written: other jobs shared the cores, and an "
        "oversubscribed core slows torch's intra-op threads most on the smallest networks.",
    ])
    print(md)
    if args.write:
        write_block("neural_speed", md)


if __name__ == "__main__":
    main()
