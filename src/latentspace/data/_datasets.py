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

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from sklearn.utils import Bunch

from ..exceptions import DatasetNotFoundError
from ._downloads import (
    FASHION_CLASSES as _FASHION_CLASSES,
    FREY_URL,
    _fetch_fashion_mnist,
    _fetch_frey_faces,
    _fetch_lfw_people,
    _fetch_mnist,
    _fetch_olivetti_faces,
)
from ._readers import (
    _find_idx,
    _images,
    _labels,
    _load_idx_splits,
    _loadmat,
    _read_npz,
    _scale,
)

__all__ = ["load_dataset", "list_datasets", "get_data_home", "dataset_status"]

ENV_VAR = "LATENTSPACE_DATA"
_DEFAULT_HOME = "~/latentspace_data"


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
    # files whose presence means the dataset is there, without reading them: each entry is
    # one layout, a tuple of paths relative to the folder that must all exist ("IDX:sub"
    # stands for the four MNIST-style IDX files, gzipped or not, in folder/sub)
    present: tuple[tuple[str, ...], ...] = ()
    download_size: str | None = None  # what a download fetches, where known


def list_datasets() -> list[str]:
    """Names accepted by :func:`load_dataset`, in a fixed order.

    Returns
    -------
    names : list of str
    """
    return list(_SPECS)


def get_data_home(data_home: str | os.PathLike | None = None) -> Path:
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


def _data_home_origin(data_home: str | os.PathLike | None) -> str:
    """Where :func:`get_data_home` took the folder from, in words."""
    if data_home is not None:
        return "data_home / --data-home"
    if os.environ.get(ENV_VAR):
        return f"${ENV_VAR}"
    return f"default ({_DEFAULT_HOME}; set ${ENV_VAR} or --data-home to change it)"


def _canonical(name: object) -> str:
    key = name.strip().lower().replace("-", "_") if isinstance(name, str) else None
    key = next((k for k, spec in _SPECS.items() if key in spec.aliases), key)
    if key is None or key not in _SPECS:
        import difflib

        spellings = [*_SPECS, *(a for spec in _SPECS.values() for a in spec.aliases)]
        close = difflib.get_close_matches(str(key), spellings, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(
            f"unknown dataset {name!r}{hint}; choose one of {list_datasets()}."
        )
    return key


def _present_files(folder: Path, layout: tuple[str, ...]) -> list[Path] | None:
    """The files of one layout when all of them are in ``folder``, else None."""
    found: list[Path] = []
    for rel in layout:
        if rel.startswith("IDX:"):
            sub = folder / rel[4:] if rel[4:] else folder
            files = [_find_idx(sub, s, w) for s in ("train", "t10k") for w in ("images", "labels")]
            if not all(files):
                return None
            found += [Path(f) for f in files if f is not None]
        else:
            path = folder / rel
            if not path.exists():
                return None
            found.append(path)
    return found


def dataset_status(name: str, data_home: str | os.PathLike | None = None) -> dict:
    """Whether a dataset is in the local data folder, without reading or downloading it.

    Parameters
    ----------
    name : str
        A name of :func:`list_datasets` (or an alias such as ``'fashion'``).
    data_home : str, os.PathLike or None
        The data folder, as for :func:`load_dataset`.

    Returns
    -------
    status : dict
        ``name`` (str); ``present`` (bool: its files are there, or it ships with
        scikit-learn); ``files`` (list of str, the files found); ``folder`` (str, the folder
        searched, or None for ``digits``); ``folder_from`` (str: the argument, the
        environment variable or the default); ``expected`` (list of str, the layouts looked
        for); ``downloadable`` (bool) and ``download_size`` (str or None, where known).
    """
    key = _canonical(name)
    spec = _SPECS[key]
    if key == "digits":
        return {"name": key, "present": True, "files": [], "folder": None,
                "folder_from": "bundled with scikit-learn", "expected": [],
                "downloadable": False, "download_size": None}
    folder = get_data_home(data_home)
    files: list[Path] = []
    for layout in spec.present:
        got = _present_files(folder, layout)
        if got is not None:
            files = got
            break
    return {"name": key, "present": bool(files), "files": [str(f) for f in files],
            "folder": str(folder), "folder_from": _data_home_origin(data_home),
            "expected": list(spec.expected), "downloadable": spec.fetch is not None,
            "download_size": spec.download_size}


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
        out: dict = {}
        for tag, (x, y) in parts.items():
            where = paths[-1] if tag else paths[0]
            out["images" + tag] = _scale(_images(x, where, (28, 28)))
            out["target" + tag] = _labels(y, len(x), where)
        out["source"] = ", ".join(str(p) for p in paths)
    else:
        idx = _load_idx_splits(idx_folders)
        if idx is None:
            return None
        out = idx
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
        present=(("mnist.npz",), ("IDX:mnist",), ("IDX:",)),
        download_size="about 11 MB as the original IDX .gz files",
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
        present=(("fashion_mnist_train.npz", "fashion_mnist_test.npz"), ("IDX:fashion_mnist",),
                 ("IDX:fashion",)),
        download_size="about 30 MB as the original IDX .gz files",
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
        present=(("lfw_people_min60.npz",), ("lfw_home",)),
        download_size="about 230 MB (scikit-learn's LFW archive)",
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
        present=(("frey_faces.npz",), ("frey_rawface.mat",)),
        download_size="about 1 MB",
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
        present=(("olivetti_faces.npz",), ("olivettifaces.mat",)),
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
def load_dataset(name: str, *, data_home: str | os.PathLike[str] | None = None,
                 download_if_missing: bool = True, return_images: bool = True) -> Bunch:
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
