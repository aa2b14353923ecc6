"""Training throughput (samples/s) of our trainer against a bare PyTorch loop, same process.

Both sides train the same network on the same rows with the same batch size, optimizer and loss:
- VAE: 784-200-200-50 (tanh), Bernoulli decoder, one reparameterised sample, Adam lr 1e-3;
- AE: 784-256-32 (ReLU) with a mirrored decoder, squared error, Adam lr 1e-3.
The bare loop is what one writes by hand: shuffle with randperm, index a batch, forward,
loss, zero_grad, backward, step, and ``loss.item()`` for the running mean, with torch's default
Adam (on the CPU: the per-parameter loop). Our trainer uses the fused Adam kernel, so the loop
is also run with ``Adam(fused=True)``: that ratio isolates the trainer's own overhead. Our side
is the full ``fit`` call (validation of X, network construction, the trainer with its
non-finite guard, history and per-epoch monitoring). Runs alternate; medians are reported.

Run:  python bench/neural_throughput.py [--rows 10000] [--epochs 3] [--repeats 3] [--threads 1] [--write]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _common import machine  # noqa: E402
from _neural import fixed_binarisation, mnist_intensities, write_block  # noqa: E402

from latentspace.neural import VAE, Autoencoder  # noqa: E402
from latentspace.neural import _nets  # noqa: E402

# the same number of epochs as the bare loops, at a constant rate: no convergence stop
FIXED_EPOCHS = dict(learning_rate_schedule="constant", n_iter_no_change=10**9)


def bare_vae(X: torch.Tensor, epochs: int, batch: int, seed: int, fused: bool = False) -> float:
    gen = torch.Generator().manual_seed(seed)
    enc = _nets.mlp((784, 200, 200, 100), "tanh")
    dec = _nets.mlp((50, 200, 200, 784), "tanh")
    params = list(enc.parameters()) + list(dec.parameters())
    opt = torch.optim.Adam(params, lr=1e-3, fused=fused or None)
    t0 = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(len(X), generator=gen)
        total = 0.0
        for i in range(0, len(X), batch):
            x = X[order[i : i + batch]]
            mu, log_var = enc(x).chunk(2, -1)
            z = mu + torch.exp(0.5 * log_var) * torch.randn(mu.shape, generator=gen)
            rec = F.binary_cross_entropy_with_logits(dec(z), x, reduction="none").sum(-1)
            kl = 0.5 * (mu.square() + log_var.exp() - 1 - log_var).sum(-1)
            loss = (rec + kl).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
    return time.perf_counter() - t0


def bare_ae(X: torch.Tensor, epochs: int, batch: int, seed: int, fused: bool = False) -> float:
    gen = torch.Generator().manual_seed(seed)
    enc = _nets.mlp((784, 256, 32), "relu")
    dec = _nets.mlp((32, 256, 784), "relu")
    params = list(enc.parameters()) + list(dec.parameters())
    opt = torch.optim.Adam(params, lr=1e-3, fused=fused or None)
    t0 = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(len(X), generator=gen)
        total = 0.0
        for i in range(0, len(X), batch):
            x = X[order[i : i + batch]]
            loss = (dec(enc(x)) - x).square().sum(-1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
    return time.perf_counter() - t0


def ours(est, X: np.ndarray) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a fixed 3 epochs: "still improving" by design
        t0 = time.perf_counter()
        est.fit(X)
        return time.perf_counter() - t0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=10000)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--write", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    x_train = mnist_intensities()[0][: args.rows]
    xb = fixed_binarisation(x_train, seed=0)
    cases = {
        "VAE 784-200-200-50": (
            lambda s, fused: bare_vae(torch.from_numpy(xb), args.epochs, args.batch, s, fused),
            lambda s: ours(VAE(50, hidden_sizes=(200, 200), activation="tanh",
                               batch_size=args.batch, max_epochs=args.epochs, random_state=s,
                               **FIXED_EPOCHS), xb),
        ),
        "AE 784-256-32": (
            lambda s, fused: bare_ae(torch.from_numpy(x_train), args.epochs, args.batch, s, fused),
            lambda s: ours(Autoencoder(32, hidden_sizes=(256,), batch_size=args.batch,
                                       max_epochs=args.epochs, random_state=s, **FIXED_EPOCHS),
                               x_train),
        ),
    }
    rows = []
    n = args.rows * args.epochs
    for name, (bare, mine) in cases.items():
        bare(0, False), bare(0, True), mine(0)  # warm-up
        tb, tf, tm = [], [], []
        for r in range(args.repeats):  # alternate so that machine load hits all alike
            tb.append(bare(r, False))
            tf.append(bare(r, True))
            tm.append(mine(r))
        b, f, m = (statistics.median(t) for t in (tb, tf, tm))
        rows.append((name, n / b, n / f, n / m, b / m, f / m))
        print(f"{name}: bare {n / b:,.0f} samples/s, bare+fused Adam {n / f:,.0f}, ours "
              f"{n / m:,.0f}; ours/bare {b / m:.3f}, ours/bare-fused {f / m:.3f}", flush=True)
    if args.write:
        table = "\n".join(
            f"| {name} | {sb:,.0f} | {sf:,.0f} | {sm:,.0f} | **{r1:.2f}×** | **{r2:.2f}×** |"
            for name, sb, sf, sm, r1, r2 in rows)
        write_block("neural_throughput", (
            "### Trainer throughput vs a bare PyTorch loop (`bench/neural_throughput.py`)\n"
            f"{args.rows} MNIST rows × {args.epochs} epochs, batch {args.batch}, Adam, "
            f"{args.threads} thread(s), median of {args.repeats} alternating runs; ours = the "
            "whole `fit` call. Our trainer uses fused Adam; the loop is timed with torch's "
            "default Adam and with the fused one (the second ratio is the trainer's own "
            "overhead).\n\n"
            "| network | bare loop (samples/s) | bare loop, fused Adam | our trainer | "
            "ours / bare | ours / bare fused |\n|---|---|---|---|---|---|\n" + table + "\n\n"
            f"Target ≥ 0.9×. Machine: {machine()}."
        ))

if __name__ == "__main__":
    main()
