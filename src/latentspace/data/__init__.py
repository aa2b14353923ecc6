"""Datasets and data files.

:func:`load_dataset` returns image datasets (digits, MNIST, Fashion-MNIST, LFW people, Frey
Face, Olivetti faces) as float32 pixels in [0, 1] from a local data folder, downloading them
there when allowed; :func:`read_data` / :func:`write_data` move data matrices between
``.npy``, ``.npz``, ``.csv`` and ``.parquet`` files for the command line.
"""

from ._datasets import get_data_home, list_datasets, load_dataset
from ._files import read_data, write_data

__all__ = ["get_data_home", "list_datasets", "load_dataset", "read_data", "write_data"]
