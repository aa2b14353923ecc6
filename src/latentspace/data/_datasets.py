"""Image datasets for the tour, the tests and the CLI, read from one local data folder.

Every dataset comes back as a :class:`sklearn.utils.Bunch` with ``data`` of shape
(n_samples, h * w), float32 in [0, 1], ``images`` (n_samples, h, w), ``target`` (int64 or None),
``target_names``, ``image_shape``, ``name`` and ``DESCR``. MNIST and Fashion-MNIST also carry
their official test split (``data_test``, ``target_test``, ``images_test``).

Where the files are looked for, in order: the ``data_home`` argument, the ``LATENTSPACE_DATA``
environment variable, ``~/latentspace_data``. Inside that folder each dataset is read from

- its ``.npz`` file (``mnist.npz``, ``fashion_mnist_train.npz`` + ``fashion_mnist_test.npz``,
  ``lfw_people_min60.npz``, ``frey_faces.npz``, ``olivetti_faces.npz``), always with
  ``allow_pickle=False``;
- or its original format where that is simple: MNIST / Fashion-MNIST IDX files (optionally
  gzipped, in ``mnist/`` or ``fashion_mnist/``; MNIST also at the top level), Roweis'
  ``frey_rawface.mat`` and ``olivettifaces.mat``;
- or, if allowed, it is downloaded: through scikit-learn's fetchers (``fetch_openml``,
  ``fetch_lfw_people``, ``fetch_olivetti_faces``, all told to keep their cache inside the data
  folder) or, for Frey Face, from Roweis' page. A download is saved in the ``.npz`` layout so
  that the next load is a plain file read. Anything that fails ends in
  :class:`~latentspace.exceptions.DatasetNotFoundError` saying what to put where.

``digits`` is bundled with scikit-learn and needs no folder at all.
"""

from __future__ import annotations

import gzip
import io
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from sklearn.utils import Bunch

from ..exceptions import DatasetNotFoundError

__all__ = ["load_dataset", "list_datasets", "get_data_home"]

ENV_VAR = "LATENTSPACE_DATA"
_DEFAULT_HOME = "~/latentspace_data"
FREY_URL = "https://cs.nyu.edu/~roweis/data/frey_rawface.mat"
_FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)


@dataclass(frozen=True)
class _Spec:
    """What a dataset is and what to tell a user who does not have it."""

    descr: str
    expected: tuple[str, ...]  # file layouts accepted in the data folder, for error messages
    how: str  # how to fill the folder by hand ({folder} is filled in)
    # local(folder) -> raw dict or None; fetch(folder, download) -> raw dict or None (None:
    # nothing to try); both return {"images", "target", "target_names", "source", ...}
    local: Callable[[Path], dict | None]
    fetch: Callable[[Path, bool], dict | None] | None = None
    aliases: tuple[str, ...] = ()  # other names load_dataset accepts


def list_datasets() -> list[str]:
    """Names accepted by :func:`load_dataset`, in a fixed order.

    Returns
    -------
    names : list of str
    """
    return list(_SPECS)


def get_data_home(data_home=None) -> Path:
    """The data folder: ``data_home``, else ``$LATENTSPACE_DATA``, else ``~/latentspace_data``.

    The folder is neither created nor checked here.

    Parameters
    ----------
    data_home : str, os.PathLike or None

    Returns
    -------
    folder : pathlib.Path, with ``~`` expanded
    """
    if data_home is None:
        data_home = os.environ.get(ENV_VAR) or _DEFAULT_HOME
    return Path(os.fspath(data_home)).expanduser()


def _canonical(name) -> str:
    key = name.strip().lower().replace("-", "_") if isinstance(name, str) else None
    key = next((k for k, spec in _SPECS.items() if key in spec.aliases), key)
    if key not in _SPECS:
        raise ValueError(
            f"unknown dataset {name!r}; choose one of {list_datasets()}."
        )
    return key


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
        out = {}
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


# ----------------------------------------------------------------------------- local loaders
# each returns a dict (images float32 (n, h, w), target, target_names, source[, *_test])
# or None when the folder holds none of the dataset's files
def _local_digits(folder):
    from sklearn.datasets import load_digits

    d = load_digits()
    return {
        "images": d.images.astype(np.float32) / np.float32(16.0),
        "target": d.target.astype(np.int64),
        "target_names": np.array([str(t) for t in d.target_names]),
        "source": "sklearn.datasets.load_digits",
    }


def _mnist_like(folder: Path, npz_files, idx_folders, names) -> dict | None:
    paths = [folder / f for f in npz_files]
    if all(p.is_file() for p in paths):
        if len(paths) == 1:  # mnist.npz: the keras layout, both splits in one file
            z = _read_npz(paths[0], ("x_train", "y_train", "x_test", "y_test"))
            parts = {"": (z["x_train"], z["y_train"]), "_test": (z["x_test"], z["y_test"])}
        else:  # one file per split with images/labels
            parts = {}
            for tag, p in zip(("", "_test"), paths):
                z = _read_npz(p, ("images", "labels"))
                parts[tag] = (z["images"], z["labels"])
        out = {}
        for tag, (x, y) in parts.items():
            where = paths[-1] if tag else paths[0]
            out["images" + tag] = _scale(_images(x, where, (28, 28)))
            out["target" + tag] = _labels(y, len(x), where)
        out["source"] = ", ".join(str(p) for p in paths)
    else:
        out = _load_idx_splits(idx_folders)
        if out is None:
            return None
    out["target_names"] = np.array(names)
    return out


def _local_mnist(folder):
    return _mnist_like(folder, ["mnist.npz"], [folder / "mnist", folder],
                       [str(i) for i in range(10)])


def _local_fashion_mnist(folder):
    return _mnist_like(folder, ["fashion_mnist_train.npz", "fashion_mnist_test.npz"],
                       [folder / "fashion_mnist", folder / "fashion"], list(_FASHION_CLASSES))


def _local_lfw_people(folder):
    path = folder / "lfw_people_min60.npz"
    if not path.is_file():
        return None
    z = _read_npz(path, ("images", "target", "target_names"))
    images = _images(z["images"], path)
    return {
        "images": _scale(images),
        "target": _labels(z["target"], len(images), path),
        "target_names": np.asarray(z["target_names"]).astype(str),
        "source": str(path),
    }


def _local_frey_faces(folder):
    npz, mat = folder / "frey_faces.npz", folder / "frey_rawface.mat"
    if npz.is_file():
        images, source = _images(_read_npz(npz, ("images",))["images"], npz, (28, 20)), npz
    elif mat.is_file():
        ff = _loadmat(mat, "ff")  # (560, n): one 28x20 frame per column, row-major pixels
        if ff.ndim != 2 or ff.shape[0] != 560:
            raise ValueError(f"{mat}: variable 'ff' has shape {ff.shape}, expected (560, n).")
        images, source = ff.T.reshape(-1, 28, 20), mat
    else:
        return None
    return {"images": _scale(images), "target": None, "target_names": None, "source": str(source)}


def _local_olivetti_faces(folder):
    npz, mat = folder / "olivetti_faces.npz", folder / "olivettifaces.mat"
    if npz.is_file():
        z = _read_npz(npz, ("images",))
        images, source = _images(z["images"], npz, (64, 64)), npz
        target = z.get("target")
    elif mat.is_file():
        faces = _loadmat(mat, "faces")  # (4096, n): MATLAB column-major 64x64 images
        if faces.ndim != 2 or faces.shape[0] != 4096:
            raise ValueError(
                f"{mat}: variable 'faces' has shape {faces.shape}, expected (4096, n)."
            )
        images, source, target = faces.T.reshape(-1, 64, 64).transpose(0, 2, 1), mat, None
    else:
        return None
    n = len(images)
    target = np.arange(n, dtype=np.int64) // 10 if target is None else _labels(target, n, source)
    return {
        "images": _scale(images, minmax=True),
        "target": target,
        "target_names": np.array([str(i) for i in range(int(target.max()) + 1 if n else 0)]),
        "source": str(source),
    }




# ----------------------------------------------------------------------------- downloads
# each returns the same dict as a local loader, or None when there is nothing to try; what
# was downloaded is also kept in the data folder so that the next load is a file read
def _save_npz(path: Path, **arrays) -> None:
    """Keep a download in the ``.npz`` layout; a read-only folder only costs the next load."""
    from .._atomic import atomic_write_bytes

    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, buf.getvalue())
    except OSError:
        pass


def _fetch_openml_split(name: str, folder: Path, files, names) -> dict:
    from sklearn import datasets

    d = datasets.fetch_openml(name, version=1, as_frame=False, data_home=str(folder))
    # OpenML stores the 0..255 pixels as exact floats; uint8 keeps the cache (and memory) small
    X = np.asarray(d.data).astype(np.uint8).reshape(-1, 28, 28)
    y = np.asarray(d.target).astype(np.int64)
    if len(X) != 70000:
        raise ValueError(f"OpenML {name!r} has {len(X)} rows, expected 70000")
    # OpenML keeps the publishers' order: the 60,000 training rows, then the 10,000 test rows
    (Xtr, Xte), (ytr, yte) = (X[:60000], X[60000:]), (y[:60000], y[60000:])
    if len(files) == 1:
        _save_npz(folder / files[0], x_train=Xtr, y_train=ytr.astype(np.uint8),
                  x_test=Xte, y_test=yte.astype(np.uint8))
    else:
        _save_npz(folder / files[0], images=Xtr, labels=ytr.astype(np.uint8))
        _save_npz(folder / files[1], images=Xte, labels=yte.astype(np.uint8))
    return {"images": _scale(Xtr), "target": ytr, "images_test": _scale(Xte), "target_test": yte,
            "target_names": np.array(names), "source": f"sklearn.datasets.fetch_openml({name!r})"}


def _fetch_mnist(folder, download):
    if download:
        return _fetch_openml_split("mnist_784", folder, ["mnist.npz"],
                                   [str(i) for i in range(10)])
    return None


def _fetch_fashion_mnist(folder, download):
    if download:
        return _fetch_openml_split("Fashion-MNIST", folder,
                                   ["fashion_mnist_train.npz", "fashion_mnist_test.npz"],
                                   list(_FASHION_CLASSES))
    return None


def _fetch_lfw_people(folder, download):
    from sklearn import datasets

    if not download and not (folder / "lfw_home").is_dir():
        return None
    d = datasets.fetch_lfw_people(min_faces_per_person=60, data_home=str(folder),
                                  download_if_missing=download)
    images = np.asarray(d.images, dtype=np.float32)
    target = np.asarray(d.target, dtype=np.int64)
    names = np.asarray(d.target_names).astype(str)
    _save_npz(folder / "lfw_people_min60.npz", images=images, target=target, target_names=names)
    return {"images": _scale(images), "target": target, "target_names": names,
            "source": "sklearn.datasets.fetch_lfw_people(min_faces_per_person=60)"}


def _fetch_olivetti_faces(folder, download):
    from sklearn import datasets

    if not download and not (folder / "olivetti.pkz").is_file():
        return None
    d = datasets.fetch_olivetti_faces(data_home=str(folder), download_if_missing=download)
    images = np.asarray(d.images, dtype=np.float32)  # already min-max scaled by scikit-learn
    target = np.asarray(d.target, dtype=np.int64)
    _save_npz(folder / "olivetti_faces.npz", images=images, target=target)
    return {"images": images, "target": target,
            "target_names": np.array([str(i) for i in range(int(target.max()) + 1)]),
            "source": "sklearn.datasets.fetch_olivetti_faces"}


def _fetch_frey_faces(folder, download):
    if not download:
        return None
    import urllib.request

    from scipy.io import loadmat

    from .._atomic import atomic_write_bytes

    with urllib.request.urlopen(FREY_URL, timeout=60) as resp:
        payload = resp.read()
    try:  # refuse an error page or a truncated file before it gets the real name
        ff = np.asarray(loadmat(io.BytesIO(payload))["ff"])
    except Exception as exc:
        raise ValueError(f"{FREY_URL} did not serve a readable .mat file ({exc})") from None
    if ff.ndim != 2 or ff.shape[0] != 560:
        raise ValueError(f"{FREY_URL} served 'ff' of shape {ff.shape}, expected (560, n)")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(folder / "frey_rawface.mat", payload)
    except OSError:
        pass
    return {"images": _scale(ff.T.reshape(-1, 28, 20)), "target": None, "target_names": None,
            "source": FREY_URL}




# ----------------------------------------------------------------------------- the registry
_SPECS: dict[str, _Spec] = {  # one entry per dataset, in list_datasets() order
    "digits": _Spec(
        descr=(
            "Optical recognition of handwritten digits (E. Alpaydin and C. Kaynak, UCI Machine "
            "Learning Repository, 1998), as bundled with scikit-learn (sklearn.datasets."
            "load_digits): 1797 images of 8x8 pixels with 17 gray levels, 10 classes, scaled "
            "to [0, 1] by /16. Licence: CC BY 4.0."
        ),
        expected=(),
        how="",
        local=_local_digits,
        fetch=None,
    ),
    "mnist": _Spec(
        descr=(
            "MNIST handwritten digits (Y. LeCun, C. Cortes and C. J. C. Burges): 60,000 training "
            "and 10,000 test images of 28x28 pixels, 10 classes, in the original order; pixels "
            "0..255 scaled to [0, 1] by /255. data/target are the official training split, "
            "data_test/target_test the official test split. Source: "
            "http://yann.lecun.com/exdb/mnist/ (also OpenML 'mnist_784'). Licence: CC BY-SA 3.0."
        ),
        expected=(
            "mnist.npz (keys x_train, y_train, x_test, y_test; uint8)",
            "or the four IDX files train-images-idx3-ubyte, train-labels-idx1-ubyte, "
            "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (each optionally .gz) in the "
            "folder itself or in its mnist/ subfolder",
        ),
        how=(
            "copy the four MNIST IDX .gz files into {folder}/mnist/, or run "
            "load_dataset('mnist') once on a machine with internet access and copy "
            "{folder}/mnist.npz over"
        ),
        local=_local_mnist,
        fetch=_fetch_mnist,
    ),
    "fashion_mnist": _Spec(
        descr=(
            "Fashion-MNIST (H. Xiao, K. Rasul and R. Vollgraf, Zalando Research, 2017): 60,000 "
            "training and 10,000 test images of 28x28 pixels of clothing in 10 classes, in the "
            "original order; pixels 0..255 scaled to [0, 1] by /255. data/target are the "
            "official training split, data_test/target_test the official test split. Source: "
            "https://github.com/zalandoresearch/fashion-mnist (also OpenML 'Fashion-MNIST'). "
            "Licence: MIT."
        ),
        expected=(
            "fashion_mnist_train.npz and fashion_mnist_test.npz (keys images, labels; uint8)",
            "or the four IDX files train-images-idx3-ubyte, train-labels-idx1-ubyte, "
            "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (each optionally .gz) in its "
            "fashion_mnist/ subfolder",
        ),
        how=(
            "copy the four IDX .gz files from https://github.com/zalandoresearch/fashion-mnist "
            "(data/fashion/) into {folder}/fashion_mnist/"
        ),
        local=_local_fashion_mnist,
        fetch=_fetch_fashion_mnist,
        aliases=("fashion",),
    ),
    "lfw_people": _Spec(
        descr=(
            "Labeled Faces in the Wild (G. B. Huang, M. Ramesh, T. Berg and E. Learned-Miller, "
            "UMass Amherst, 2007), the people with at least 60 pictures, as in scikit-learn's "
            "fetch_lfw_people(min_faces_per_person=60): 1348 grayscale faces of 62x47 pixels "
            "of 8 people, values in [0, 1]. Source: http://vis-www.cs.umass.edu/lfw/. "
            "Licence: provided for research use by UMass Amherst, no formal licence."
        ),
        expected=(
            "lfw_people_min60.npz (keys images float32 (1348, 62, 47), target, target_names)",
            "or scikit-learn's LFW cache (an lfw_home/ subfolder)",
        ),
        how=(
            "run sklearn.datasets.fetch_lfw_people(min_faces_per_person=60, "
            "data_home='{folder}') on a machine with internet access and copy {folder}/lfw_home "
            "over"
        ),
        local=_local_lfw_people,
        fetch=_fetch_lfw_people,
        aliases=("lfw",),
    ),
    "frey_faces": _Spec(
        descr=(
            "Frey Face (B. Frey), the data set of Kingma and Welling's VAE paper: 1965 video "
            "frames of one face, 28x20 pixels, no labels; pixels 0..255 scaled to [0, 1] by "
            "/255. Source: S. Roweis' data page, https://cs.nyu.edu/~roweis/data.html. "
            "Licence: none stated; distributed for research."
        ),
        expected=(
            "frey_faces.npz (key images, uint8 (1965, 28, 20))",
            "or Roweis' frey_rawface.mat (variable ff, (560, 1965))",
        ),
        how=f"curl -o {{folder}}/frey_rawface.mat {FREY_URL}",
        local=_local_frey_faces,
        fetch=_fetch_frey_faces,
        aliases=("frey",),
    ),
    "olivetti_faces": _Spec(
        descr=(
            "Olivetti / AT&T faces (AT&T Laboratories Cambridge, 1992-1994), S. Roweis' 64x64 "
            "version as used by scikit-learn's fetch_olivetti_faces: 400 images, 10 each of 40 "
            "people, min-max scaled to [0, 1] (0..242 -> /242); target is the person, i // 10. "
            "Source: https://cs.nyu.edu/~roweis/data.html. Licence: free for research use, "
            "crediting AT&T Laboratories Cambridge."
        ),
        expected=(
            "olivetti_faces.npz (keys images (400, 64, 64), target)",
            "or Roweis' olivettifaces.mat (variable faces, (4096, 400))",
        ),
        how=(
            "curl -o {folder}/olivettifaces.mat https://cs.nyu.edu/~roweis/data/olivettifaces.mat"
        ),
        local=_local_olivetti_faces,
        fetch=_fetch_olivetti_faces,
        aliases=("olivetti",),
    ),
}


def _not_found(name: str, folder: Path, why: str) -> DatasetNotFoundError:
    spec = _SPECS[name]
    expected = "; ".join(spec.expected)
    return DatasetNotFoundError(
        f"dataset {name!r} was not found in the data folder {folder} ({why}). Expected there: "
        f"{expected}. To fill it: {spec.how.format(folder=folder)}; or point data_home=... or "
        f"the {ENV_VAR} environment variable at a folder that holds these files."
    )


# ----------------------------------------------------------------------------- public
def load_dataset(name, *, data_home=None, download_if_missing=True, return_images=True) -> Bunch:
    """Load one of the image datasets of :func:`list_datasets` as float32 pixels in [0, 1].

    Parameters
    ----------
    name : str
        ``'digits'``, ``'mnist'``, ``'fashion_mnist'``, ``'lfw_people'``, ``'frey_faces'`` or
        ``'olivetti_faces'`` (case and ``-``/``_`` do not matter).
    data_home : str, os.PathLike or None
        The data folder. None means ``$LATENTSPACE_DATA``, else ``~/latentspace_data``.
        Not used for ``digits``, which ships with scikit-learn.
    download_if_missing : bool, default=True
        When the folder lacks the dataset, download it into the folder (scikit-learn's
        fetchers, or Roweis' page for Frey Face). Nothing is cached elsewhere.
    return_images : bool, default=True
        Also return ``images`` (and ``images_test``), views of ``data`` reshaped to images.

    Returns
    -------
    dataset : sklearn.utils.Bunch
        ``data`` : ndarray (n_samples, h * w), float32 in [0, 1];
        ``images`` : ndarray (n_samples, h, w), only if ``return_images``;
        ``target`` : ndarray (n_samples,) int64, or None for ``frey_faces``;
        ``target_names`` : ndarray of str (n_classes,), or None;
        ``image_shape`` : tuple (h, w); ``name`` : str; ``DESCR`` : str (source and licence);
        ``source`` : str, where the arrays were read from.
        For ``mnist`` and ``fashion_mnist``, ``data``/``target`` are the official training
        split and ``data_test``, ``target_test`` (and ``images_test``) the official test split.

    Raises
    ------
    ValueError
        Unknown ``name``, or a file in the folder that is damaged or not in the layout.
    DatasetNotFoundError
        The folder lacks the dataset and it could not be (or was not allowed to be)
        downloaded; the message names the folder, the files expected and how to get them.
    """
    key = _canonical(name)
    folder = get_data_home(data_home)
    spec = _SPECS[key]
    raw = spec.local(folder)
    if raw is None and spec.fetch is not None:
        try:
            raw = spec.fetch(folder, bool(download_if_missing))
        except Exception as exc:  # offline, HTTP errors, a missing PIL, ...: one typed error
            raise _not_found(key, folder, f"download failed: {type(exc).__name__}: {exc}") from exc
    if raw is None:
        raise _not_found(key, folder, "download_if_missing=False" if spec.fetch is not None
                         else "it cannot be downloaded")
    return _bunch(key, raw, return_images)


def _bunch(name: str, raw: dict, return_images: bool) -> Bunch:
    images = np.ascontiguousarray(raw["images"], dtype=np.float32)
    n, h, w = images.shape
    out = Bunch(
        data=images.reshape(n, h * w),
        target=raw["target"],
        target_names=raw["target_names"],
        image_shape=(h, w),
        name=name,
        DESCR=_SPECS[name].descr,
        source=raw["source"],
    )
    if return_images:
        out.images = images
    if "images_test" in raw:
        test = np.ascontiguousarray(raw["images_test"], dtype=np.float32)
        out.data_test = test.reshape(len(test), h * w)
        out.target_test = raw["target_test"]
        if return_images:
            out.images_test = test
    return out
