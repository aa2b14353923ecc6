"""Reading and writing data matrices for the command line.

Supported forms: ``.npy``, ``.npz``, ``.csv``, ``.parquet`` files, or the name of a dataset of
:func:`~latentspace.data.list_datasets`. Writes are atomic (temporary file, fsync,
``os.replace``), so an interrupted write never leaves a half-written file behind.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import os
from pathlib import Path
from typing import Any

import numpy as np

from ._datasets import list_datasets, load_dataset

__all__ = ["read_data", "write_data", "SUPPORTED_SUFFIXES"]

SUPPORTED_SUFFIXES = (".npy", ".npz", ".csv", ".parquet")
_X_KEYS = ("X", "data")
_Y_KEYS = ("y", "target", "labels", "y_train")


def _forms() -> str:
    return (
        f"a file ending in {', '.join(SUPPORTED_SUFFIXES)}, or a dataset name "
        f"({', '.join(list_datasets())})"
    )


def _as_2d(X: np.ndarray, where: str) -> np.ndarray:
    """Numeric 2-D float array: images (n, h, w, ...) are flattened to (n, h * w * ...)."""
    if X.dtype.kind not in "biuf":
        raise ValueError(
            f"{where} holds {X.dtype} values; only numbers (bool, int, float) can be used."
        )
    if X.ndim < 2:
        raise ValueError(
            f"{where} holds an array of shape {X.shape}; a 2-D array (n_samples, n_features) "
            "is needed. Save one feature as X.reshape(-1, 1), one sample as X.reshape(1, -1)."
        )
    if X.ndim > 2:
        X = X.reshape(len(X), -1)
    if X.dtype.kind != "f" or X.dtype == np.float16:
        X = X.astype(np.float64 if X.dtype.kind != "f" else np.float32)
    return X


def _read_npz(path: Path):
    try:
        z = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise ValueError(f"could not read {path}: {type(exc).__name__}: {exc}") from None
    if not isinstance(z, np.lib.npyio.NpzFile):  # an .npy payload saved under .npz
        return z, None
    with z:
        if not z.files:
            raise ValueError(f"{path} is an empty .npz archive; it holds no array.")
        try:
            x_key = next((k for k in _X_KEYS if k in z.files), z.files[0])
            X = z[x_key]
            y_key = next((k for k in _Y_KEYS if k in z.files and k != x_key), None)
            y = z[y_key] if y_key is not None else None
        except ValueError as exc:  # object arrays are refused rather than unpickled
            raise ValueError(f"could not read {path}: {exc}") from None
    if y is not None and (y.ndim != 1 or len(y) != len(X)):
        y = None  # not labels of X's rows
    return X, y


def _read_csv(path: Path) -> np.ndarray:
    import pandas as pd

    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            first = f.readline()
            second = f.readline()
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not UTF-8 text; a CSV of numbers is needed.") from None
    if not first.strip():
        raise ValueError(f"{path} is empty; a CSV of numbers (one row per sample) is needed.")
    try:
        sep = csv.Sniffer().sniff(first + second, delimiters=",;\t").delimiter
    except csv.Error:
        sep = ","
    # a first row that does not parse as numbers is a header
    header = None
    for field in next(csv.reader([first], delimiter=sep)):
        try:
            float(field)
        except ValueError:
            header = 0
            break
    try:
        df = pd.read_csv(path, sep=sep, header=header, encoding="utf-8-sig")
    except Exception as exc:  # ragged rows, bad quoting
        raise ValueError(f"could not parse {path} as CSV: {exc}") from None
    return _frame_to_array(df, path)


def _frame_to_array(df, path) -> np.ndarray:
    import pandas as pd

    bad = [c for c in df.columns if not (pd.api.types.is_numeric_dtype(df[c])
                                        or pd.api.types.is_bool_dtype(df[c]))]
    if bad:
        first = df[bad[0]].dropna()
        sample = f" (e.g. {first.iloc[0]!r})" if len(first) else ""
        raise ValueError(
            f"{path}: column(s) {[str(c) for c in bad][:5]} are not numeric{sample}; encode or "
            "drop them first."
        )
    # one float dtype for all columns (mixed bool/int/float would give an object array);
    # nullable integer columns carry pd.NA, which becomes NaN
    all32 = len(df.columns) > 0 and all(t == np.float32 for t in df.dtypes)
    dtype = np.float32 if all32 else np.float64
    return df.to_numpy(dtype=dtype, na_value=np.nan)


def _read_parquet(path: Path) -> np.ndarray:
    if importlib.util.find_spec("pyarrow") is None:
        raise ImportError(
            f"reading {path} needs pyarrow, which is not installed; "
            "pip install 'latentspace[parquet]' (or pip install pyarrow)."
        )
    import pandas as pd

    try:
        df = pd.read_parquet(path, engine="pyarrow")
    except Exception as exc:
        raise ValueError(f"could not read {path} as Parquet: {type(exc).__name__}: {exc}") from None
    return _frame_to_array(df, path)


def read_data(source: str | os.PathLike[str], *,
              data_home: str | os.PathLike[str] | None = None
              ) -> tuple[np.ndarray, np.ndarray | None]:
    """Read a data matrix from a file or a dataset name.

    Parameters
    ----------
    source : str or os.PathLike
        ``.npy``; ``.npz`` (the array ``X`` or ``data`` if present, else the first one; labels
        from ``y``, ``target``, ``labels`` or ``y_train`` when their length matches); ``.csv``
        (numbers only, delimiter and header detected); ``.parquet`` (needs pyarrow); or a
        name from :func:`list_datasets`, which returns that dataset's ``data`` and ``target``.
        Arrays with more than two dimensions (images) are flattened per sample.
    data_home : str, os.PathLike or None
        Data folder for dataset names (see :func:`load_dataset`).

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
        Float32 if stored as float32, else float64.
    y : ndarray of shape (n_samples,) or None
        The labels, when the file or dataset has them.

    Raises
    ------
    FileNotFoundError
        ``source`` is neither an existing file nor a dataset name.
    ValueError
        Unsupported file type, non-numeric content or a damaged file.
    ImportError
        A ``.parquet`` file without pyarrow installed.
    """
    if isinstance(source, str) and source.strip().lower().replace("-", "_") in list_datasets():
        ds = load_dataset(source, data_home=data_home, return_images=False)
        return ds.data, ds.target
    path = Path(os.fspath(source)).expanduser()
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise ValueError(f"cannot read {str(source)!r}: use {_forms()}.")
    if not path.is_file():
        raise FileNotFoundError(f"no data file at {path}; give {_forms()}.")
    y = None
    if suffix == ".npy":
        try:
            X = np.load(path, allow_pickle=False)
        except Exception as exc:
            raise ValueError(f"could not read {path}: {type(exc).__name__}: {exc}") from None
    elif suffix == ".npz":
        X, y = _read_npz(path)
    elif suffix == ".csv":
        X = _read_csv(path)
    else:
        X = _read_parquet(path)
    return _as_2d(np.asarray(X), str(path)), y


def write_data(path: str | os.PathLike[str], array: Any) -> None:
    """Write a matrix to ``.npy``, ``.npz`` (key ``X``), ``.csv`` or ``.parquet``, atomically.

    CSV and Parquet get columns named ``x0``, ``x1``, ...; CSV floats are written with full
    round-trip precision.

    Parameters
    ----------
    path : str or os.PathLike
        Target file; its suffix picks the format. The folder must exist.
    array : array-like or torch.Tensor of shape (n_samples, n_features)
        Any shape for ``.npy``/``.npz``; 1-D or 2-D for ``.csv``/``.parquet``.

    Raises
    ------
    ValueError
        Unsupported suffix, or an array that the format cannot hold.
    FileNotFoundError
        The target folder does not exist.
    ImportError
        ``.parquet`` without pyarrow installed.
    """
    from .._atomic import atomic_write_bytes

    path = Path(os.fspath(path)).expanduser()
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise ValueError(
            f"cannot write {str(path)!r}: the name must end in {', '.join(SUPPORTED_SUFFIXES)}."
        )
    if hasattr(array, "detach"):  # a torch tensor, possibly on a GPU
        array = array.detach().cpu().numpy()
    X = np.asarray(array)
    if X.dtype.kind not in "biuf":
        raise ValueError(f"cannot write {X.dtype} data to {path}; only numeric arrays.")
    buf = io.BytesIO()
    if suffix == ".npy":
        np.save(buf, X, allow_pickle=False)
    elif suffix == ".npz":
        np.savez_compressed(buf, X=X)
    else:
        if X.ndim == 1:
            X = X[:, None]
        if X.ndim != 2:
            raise ValueError(
                f"cannot write an array of shape {X.shape} to {suffix}; reshape it to "
                "(n_samples, n_features) or use .npy/.npz."
            )
        import pandas as pd

        df = pd.DataFrame(X, columns=[f"x{j}" for j in range(X.shape[1])])
        if suffix == ".csv":
            # '%r'-style shortest repr round-trips every float64 exactly
            buf.write(df.to_csv(index=False).encode("utf-8"))
        else:
            if importlib.util.find_spec("pyarrow") is None:
                raise ImportError(
                    f"writing {path} needs pyarrow, which is not installed; "
                    "pip install 'latentspace[parquet]' (or pip install pyarrow)."
                )
            df.to_parquet(buf, engine="pyarrow", index=False)
    atomic_write_bytes(path, buf.getvalue())
