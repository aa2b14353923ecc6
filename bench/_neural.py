"""Helpers of the neural benchmark scripts: the data folder, binarised MNIST, and writing a
script's block of figures into bench/RESULTS.md (between its own markers, nothing else)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "RESULTS.md"
SECTION = "## Neural models (autoencoders, VAE, GAN)"


def data_dir() -> Path:
    path = Path(os.environ.get("LATENTSPACE_TEST_DATA", REPO.parent / "shared" / "data"))
    if not (path / "mnist.npz").is_file():
        raise SystemExit(f"mnist.npz not found in {path}; set LATENTSPACE_TEST_DATA")
    return path


def mnist_intensities():
    """-> (x_train, y_train, x_test, y_test) with x as float32 in [0, 1], shape (n, 784)."""
    d = np.load(data_dir() / "mnist.npz", allow_pickle=False)
    f = lambda a: a.reshape(len(a), -1).astype(np.float32) / 255.0  # noqa: E731
    return f(d["x_train"]), d["y_train"], f(d["x_test"]), d["y_test"]


def fixed_binarisation(x: np.ndarray, seed: int) -> np.ndarray:
    """One stochastic binarisation x_b ~ Bernoulli(x), fixed by ``seed`` (the usual protocol)."""
    return (np.random.default_rng(seed).random(x.shape, dtype=np.float32) < x).astype(np.float32)


def write_block(name: str, markdown: str) -> None:
    """Replace (or append) the block ``name`` inside this project's neural section of RESULTS.md."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    block = f"{begin}\n{markdown.strip()}\n{end}"
    if begin in text and end in text:
        text = re.sub(re.escape(begin) + r".*?" + re.escape(end), lambda m: block, text, flags=re.S)
    else:
        if SECTION not in text:
            text = text.rstrip() + f"\n\n{SECTION}\n"
        head, _, tail = text.partition(SECTION)
        # insert at the end of our section (before the next top-level '## ' heading)
        m = re.search(r"\n## ", tail)
        cut = m.start() if m else len(tail)
        tail = tail[:cut].rstrip() + f"\n\n{block}\n" + tail[cut:]
        text = head + SECTION + tail
    RESULTS.write_text(text if text.endswith("\n") else text + "\n")
