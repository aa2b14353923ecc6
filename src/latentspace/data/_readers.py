"""Reading the datasets' files: ``.npz`` archives, IDX files (MNIST's format, optionally
gzipped) and MATLAB ``.mat`` files, checked and scaled to float32 pixels in [0, 1]."""

from __future__ import annotations

import gzip
import struct
from typing import Any
from pathlib import Path

import numpy as np

__all__ = ["read_idx"]


# ----------------------------------------------------------------------------- scaling
def _scale(images: np.ndarray, *, minmax: bool = False) -> np.ndarray:
    """Integer pixels -> float32 in [0, 1]; float pixels are taken as already scaled.

    ``minmax`` rescales by (x - min) / (max - min), which is scikit-learn's Olivetti transform
    (min 0, max 242 there); otherwise integers are divided by 255.
    """
    if images.dtype.kind in "ui":
        x = images.astype(np.float32)  # in-place arithmetic below: one allocation only
        if minmax:
            lo, hi = x.min(), x.max()
            x -= lo
            return np.divide(x, hi - lo, out=x) if hi > lo else x
        return np.divide(x, np.float32(255.0), out=x)
    x = np.asarray(images, dtype=np.float32)
    if x.size and x.max() > 1.0 + 1e-6:  # an old 0..255 float cache
        x = x / np.float32(255.0)
    return x


def _labels(y, n: int, path) -> np.ndarray:
    y = np.asarray(y)
    if y.shape != (n,) or y.dtype.kind not in "ui":
        raise ValueError(
            f"{path}: labels have shape {y.shape} and dtype {y.dtype}, but {n} integer labels "
            "were expected; the file is corrupted or not in the documented layout."
        )
    return y.astype(np.int64)


# ----------------------------------------------------------------------------- file readers
def _read_npz(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Read an ``.npz`` file (no pickles) that must hold ``keys``; errors name the file."""
    try:
        z = np.load(path, allow_pickle=False)
    except Exception as exc:  # not a zip, a pickle refused, an unreadable file
        raise ValueError(
            f"could not read {path}: {type(exc).__name__}: {exc}. The file may be corrupted."
        ) from None
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise ValueError(
            f"{path} is a single .npy array, not an .npz archive with keys {list(keys)}."
        )
    with z:
        missing = [k for k in keys if k not in z.files]
        if missing:
            raise ValueError(
                f"{path} lacks the key(s) {missing} (it has {sorted(z.files)}); replace it with "
                "a file in the documented layout."
            )
        try:
            return {k: z[k] for k in z.files}
        except Exception as exc:  # BadZipFile, zlib errors, object arrays
            raise ValueError(
                f"could not read {path}: {type(exc).__name__}: {exc}. The file may be corrupted."
            ) from None


def _images(arr: np.ndarray, path, shape=None) -> np.ndarray:
    if arr.ndim != 3 or (shape is not None and arr.shape[1:] != shape):
        want = f"(n, {shape[0]}, {shape[1]})" if shape else "(n, height, width)"
        raise ValueError(
            f"{path}: images have shape {arr.shape}, expected {want}; the file is corrupted or "
            "not in the documented layout."
        )
    return arr


_IDX_DTYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path) -> np.ndarray:
    """Read one IDX file (the MNIST container), gzipped or not.

    The format: two zero bytes, a type code, the number of dimensions ``ndim``, then ``ndim``
    big-endian uint32 sizes and the values in C order.

    Parameters
    ----------
    path : str or Path
        ``*-ubyte`` or ``*-ubyte.gz``.

    Returns
    -------
    array : ndarray of the stored shape, e.g. (n, 28, 28) uint8 for images, (n,) for labels
    """
    path = Path(path)
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as exc:
        raise ValueError(f"could not read IDX file {path}: {exc}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file (bad magic number {raw[:4].hex()}).")
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    ndim = raw[3]
    head = 4 + 4 * ndim
    if len(raw) < head:
        raise ValueError(f"{path}: IDX header is truncated.")
    dims = struct.unpack(f">{ndim}I", raw[4:head])
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(raw) - head != expected:
        raise ValueError(
            f"{path}: IDX header announces shape {dims} ({expected} bytes of data) but the file "
            f"holds {len(raw) - head}; it is truncated or corrupted."
        )
    out = np.frombuffer(raw, dtype=dtype, offset=head).reshape(dims)
    return out.astype(dtype.newbyteorder("="))  # native byte order, writable


def _find_idx(folder: Path, split: str, what: str) -> Path | None:
    """``{split}-{what}-idx?-ubyte`` in the usual spellings (dash or dot, gzipped or not)."""
    code = "idx3" if what == "images" else "idx1"
    for stem in (f"{split}-{what}-{code}-ubyte", f"{split}-{what}.{code}-ubyte"):
        for suffix in (".gz", ""):
            p = folder / (stem + suffix)
            if p.is_file():
                return p
    return None


def _load_idx_splits(folders) -> dict | None:
    """Train and test split from the first folder that holds all four IDX files."""
    for folder in folders:
        found = {
            (s, w): _find_idx(folder, s, w) for s in ("train", "t10k") for w in ("images", "labels")
        }
        if not all(found.values()):
            continue
        out: dict[str, Any] = {}
        for split, tag in (("train", ""), ("t10k", "_test")):
            img_path = found[(split, "images")]
            images = _images(read_idx(img_path), img_path)
            out["images" + tag] = _scale(images)
            out["target" + tag] = _labels(read_idx(found[(split, "labels")]), len(images),
                                          found[(split, "labels")])
        out["source"] = str(folder)
        return out
    return None


def _loadmat(path: Path, var: str) -> np.ndarray:
    from scipy.io import loadmat

    try:
        mat = loadmat(path)
    except Exception as exc:  # scipy raises several types for damaged files
        raise ValueError(
            f"could not read {path}: {type(exc).__name__}: {exc}. The file may be corrupted."
        ) from None
    if var not in mat:
        found = sorted(k for k in mat if not k.startswith("__"))
        raise ValueError(f"{path} has no variable {var!r} (it has {found}).")
    return np.asarray(mat[var])
