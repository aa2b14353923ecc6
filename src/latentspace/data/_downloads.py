"""Downloading the datasets into the data folder, when that is allowed.

Each fetcher returns the same dict as a local loader (images float32 (n, h, w), target,
target_names, source[, *_test]), or None when there is nothing to try; what was downloaded is
also kept in the data folder in the ``.npz`` layout so that the next load is a file read.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from ._readers import _scale

__all__ = ["FREY_URL"]

FREY_URL = "https://cs.nyu.edu/~roweis/data/frey_rawface.mat"
FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)


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
                                   list(FASHION_CLASSES))
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
