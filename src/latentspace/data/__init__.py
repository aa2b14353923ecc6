"""Datasets and data files.

:func:`load_dataset` returns image datasets (digits, MNIST, Fashion-MNIST, LFW people, Frey
Face, Olivetti faces) as float32 pixels in [0, 1] from a local data folder, downloading them
there when allowed; :func:`read_data` / :func:`write_data` move data matrices between
``.npy``, ``.npz``, ``.csv`` and ``.parquet`` files for the command line.

The sources are how the models read data too large or too scattered for one array: a
:class:`Source` hands out :class:`Chunk` s of rows (:class:`InMemorySource`,
:class:`ChunkedSource` for memory-mapped files and re-iterable chunk factories,
:class:`DaskSource` for Dask arrays), and every EM model and PCA fit through it.
"""

from ._dask import DaskSource
from ._datasets import get_data_home, list_datasets, load_dataset
from ._files import SUPPORTED_SUFFIXES, read_data, write_data
from ._source import Chunk, ChunkedSource, InMemorySource, Source

__all__ = ["SUPPORTED_SUFFIXES", "Chunk", "ChunkedSource", "DaskSource", "InMemorySource",
           "Source", "get_data_home", "list_datasets", "load_dataset", "read_data", "write_data"]
