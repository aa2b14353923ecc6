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
SECTION_END = "<!-- neural-section:end -->"


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
    """Replace (or add) the block ``name`` inside this project's neural section of RESULTS.md.

    New blocks go just before the section's end marker, so that they never land inside
    another section's block; nothing outside the section is touched.
    """
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    block = f"{begin}\n{markdown.strip()}\n{end}"
    if begin in text and end in text:
        text = re.sub(re.escape(begin) + r".*?" + re.escape(end), lambda m: block, text, flags=re.S)
    else:
        if SECTION not in text:
            text = text.rstrip() + f"\n\n{SECTION}\n\n{SECTION_END}\n"
        elif SECTION_END not in text:
            # an older layout: close the section right after its heading paragraph
            at = text.index(SECTION) + len(SECTION)
            para = text.find("\n\n", text.find("\n\n", at) + 2)
            para = len(text) if para < 0 else para
            text = text[:para] + f"\n\n{SECTION_END}" + text[para:]
        text = text.replace(SECTION_END, f"{block}\n\n{SECTION_END}", 1)
    RESULTS.write_text(text if text.endswith("\n") else text + "\n")
