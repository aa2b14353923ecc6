"""Datasets and data files.

:func:`load_dataset` returns image datasets (digits, MNIST, Fashion-MNIST, LFW people, Frey
Face, Olivetti faces) as float32 pixels in [0, 1] from a local data folder, downloading them
there when allowed; :func:`read_data` / :func:`write_data` move data matrices between
``.npy``, ``.npz``, ``.csv`` and ``.parquet`` files for the command line.

The sources are how the models read data too large or too scattered for one array: a
:class:`Source` hands out :class:`Chunk` s of rows (:class:`InMemorySource`,
:class:`ChunkedSource` for memory-mapped files and re-iterable chunk factories,
:class:`DaskSource` for Dask arrays), and every EM model and PCA fit through it. For model code: :class:`SourceInput` turns a
``fit`` argument into a validated source, :func:`scaled` reads a source in working units.
"""

from ._dask import DaskSource, is_dask_array
from ._datasets import get_data_home, list_datasets, load_dataset
from ._files import SUPPORTED_SUFFIXES, read_data, write_data
from ._input import Prepare, SourceInput, check_sample_weight, split_rows
from ._source import Chunk, ChunkedSource, InMemorySource, ScaledSource, Source, scaled

__all__ = ["SUPPORTED_SUFFIXES", "Chunk", "ChunkedSource", "DaskSource", "InMemorySource",
           "Prepare", "ScaledSource", "Source", "SourceInput", "check_sample_weight",
           "get_data_home", "is_dask_array", "list_datasets", "load_dataset", "read_data",
           "scaled", "split_rows", "write_data"]
