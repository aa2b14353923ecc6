"""Where the models read their data: in memory, or chunk by chunk from re-iterable chunks.

The engine reaches data only through ``map_reduce(f)``: ``f`` maps one :class:`Chunk` to an
additive statistics value and the source sums the results. Initialisers additionally use
``map_chunks`` (per-chunk results in row order, e.g. distances for k-means++) and ``take``
(rows by global index). A source for another backend (Dask: one task per block, a tree sum,
one ``compute`` per pass) only needs these three methods; no model changes.

Both sources here give every chunk its global row ``offset``, so that anything depending on
the row (random initial responsibilities, tie-breaking) is the same whatever the chunking.
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Iterator
from typing import Any, Callable, Iterable, Protocol, TypeVar, runtime_checkable

import numpy as np
import torch

from .._backend import to_tensor

__all__ = ["Chunk", "Source", "InMemorySource", "ChunkedSource", "ScaledSource", "scaled"]

T = TypeVar("T")

_MAP_REDUCE_DOC = """``Σ f(chunk)`` over the chunks.

        Parameters
        ----------
        f : callable(Chunk) -> value
            Maps a chunk to an additive value (statistics that support ``+``).

        Returns
        -------
        total : value
            The sum of ``f`` over the chunks, in row order.
        """

_MAP_CHUNKS_DOC = """``[f(chunk) for chunk in chunks]``, in row order.

        Parameters
        ----------
        f : callable(Chunk) -> value
            Applied to every chunk.

        Returns
        -------
        values : list
            One value per chunk, in row order.
        """

_TAKE_DOC = """Rows at the given global indices, in the order asked.

        Parameters
        ----------
        index : array-like of int of shape (n_index,)
            Global row indices.

        Returns
        -------
        rows : tensor of shape (n_index, n_features)
            In the source's dtype and device.
        """

_TAKE_WEIGHTS_DOC = """The sample weights of the rows at the given global indices.

        Parameters
        ----------
        index : array-like of int of shape (n_index,)
            Global row indices.

        Returns
        -------
        weights : float64 tensor of shape (n_index,) or None
            None when the data are unweighted.
        """


def _doc(text: str) -> Callable[[T], T]:
    """Give a method one of the shared docstrings above (every source documents the same
    four methods the same way)."""
    def set_doc(func: T) -> T:
        func.__doc__ = text
        return func
    return set_doc


@dataclass(frozen=True)
class Chunk:
    """Consecutive rows of the data set.

    Attributes
    ----------
    X : (n, d) float tensor
    w : (n,) float64 tensor or None
        Sample weights (None: all ones).
    offset : int
        Global index of the first row.
    """

    X: torch.Tensor
    w: torch.Tensor | None
    offset: int

    def __len__(self) -> int:
        return self.X.shape[0]

    @property
    def weight_sum(self) -> float:
        return float(self.X.shape[0]) if self.w is None else float(self.w.sum())


@runtime_checkable
class Source(Protocol):
    """What the models (the EM engine, the initialisers, PCA's moments) need from data.

    Attributes
    ----------
    n_samples, n_features : int
        The data's shape (a chunked source may read its chunks once to count the rows).
    dtype : torch.dtype
    device : torch.device
        Of the tensors in the chunks (known once the first chunk has been read).
    """

    n_samples: int
    n_features: int
    dtype: torch.dtype
    device: torch.device

    @_doc(_MAP_REDUCE_DOC)
    def map_reduce(self, f: Callable[[Chunk], Any]) -> Any:
        ...

    @_doc(_MAP_CHUNKS_DOC)
    def map_chunks(self, f: Callable[[Chunk], Any]) -> list:
        ...

    @_doc(_TAKE_DOC)
    def take(self, index: np.ndarray) -> torch.Tensor:
        ...

    @_doc(_TAKE_WEIGHTS_DOC)
    def take_weights(self, index: np.ndarray) -> torch.Tensor | None:
        ...


def _sum(values: Iterable):
    total = None
    for v in values:
        total = v if total is None else total + v
    if total is None:
        raise ValueError("the data source yielded no rows; it needs at least one chunk")
    return total


class InMemorySource:
    """A tensor already in memory, visited in row blocks of ``chunk_rows``.

    Parameters
    ----------
    X : (n_samples, n_features) tensor
    sample_weight : (n_samples,) tensor or None
    chunk_rows : int or None
        Rows per block handed to ``f`` (None: all rows at once). Models split blocks further
        to bound their working memory, so this mostly matters for fitting order.
    """

    def __init__(self, X: torch.Tensor, sample_weight: torch.Tensor | None = None, *,
                 chunk_rows: int | None = None):
        self.X = X
        self.w = sample_weight
        self.n_samples, self.n_features = X.shape
        self.dtype = X.dtype
        self.device = X.device
        self.chunk_rows = int(chunk_rows) if chunk_rows else max(self.n_samples, 1)

    def chunks(self) -> Iterator[Chunk]:
        """The blocks of ``chunk_rows`` rows, in order.

        Yields
        ------
        chunk : Chunk
            Rows ``offset`` to ``offset + chunk_rows`` (fewer in the last).
        """
        for start in range(0, self.n_samples, self.chunk_rows):
            stop = start + self.chunk_rows
            w = None if self.w is None else self.w[start:stop]
            yield Chunk(self.X[start:stop], w, start)

    @_doc(_MAP_REDUCE_DOC)
    def map_reduce(self, f: Callable[[Chunk], Any]) -> Any:
        return _sum(f(c) for c in self.chunks())

    @_doc(_MAP_CHUNKS_DOC)
    def map_chunks(self, f: Callable[[Chunk], Any]) -> list:
        return [f(c) for c in self.chunks()]

    @_doc(_TAKE_DOC)
    def take(self, index: np.ndarray) -> torch.Tensor:
        idx = torch.as_tensor(np.asarray(index, dtype=np.int64), device=self.X.device)
        return self.X[idx]

    @_doc(_TAKE_WEIGHTS_DOC)
    def take_weights(self, index: np.ndarray) -> torch.Tensor | None:
        if self.w is None:
            return None
        return self.w[torch.as_tensor(np.asarray(index, dtype=np.int64), device=self.w.device)]


class ChunkedSource:
    """Data that arrives in chunks of rows, read again on every pass.

    Parameters
    ----------
    chunks : sequence, or callable returning an iterable
        Each item is a 2-D array-like (numpy, memmap slice, torch tensor, DataFrame) or a
        pair ``(X_chunk, sample_weight_chunk)``. A list or tuple is re-iterable as is; for
        data produced on the fly (files, databases) pass a function that opens a new iterator
        each time it is called. A one-shot iterator or generator is refused, since EM reads
        the data once per iteration.
    prepare : callable or None
        Applied to every raw chunk: ``prepare(X_chunk) -> tensor``. Estimators install their
        input validation here.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.lib.format.open_memmap("X.npy", mode="w+", dtype="float64", shape=(10, 2))
    >>> src = ChunkedSource.from_array(X, chunk_rows=4)   # three chunks: 4, 4, 2 rows
    """

    def __init__(self, chunks: Any, *, prepare: Callable | None = None):
        if callable(chunks) and not isinstance(chunks, (list, tuple)):
            self._factory = chunks
        elif isinstance(chunks, (list, tuple)):
            self._factory = lambda: iter(chunks)
        elif hasattr(chunks, "__next__"):
            raise TypeError(
                "ChunkedSource needs chunks it can read once per EM iteration, but got a "
                f"one-shot iterator ({type(chunks).__name__}); pass a list of arrays, or a "
                "function that returns a new iterator each time it is called."
            )
        elif isinstance(chunks, Iterable):
            self._factory = lambda: iter(chunks)  # re-iterable container
        else:
            raise TypeError(
                f"ChunkedSource expects a list of arrays or a function returning an iterable "
                f"of arrays, got {type(chunks).__name__}."
            )
        self._prepare = prepare
        self._n_samples: int | None = None
        self._n_features: int | None = None
        self.dtype: torch.dtype | None = None
        self.device: torch.device | None = None

    @classmethod
    def from_array(cls, X: Any, chunk_rows: int, *,
                   prepare: Callable | None = None) -> ChunkedSource:
        """Chunks of ``chunk_rows`` rows sliced lazily from an array (e.g. a ``np.memmap``).

        Only one slice is materialised at a time, so a memory-mapped file larger than memory
        can be fitted.

        Parameters
        ----------
        X : array of shape (n_samples, n_features)
            Anything with ``shape`` and row slicing: a numpy array or memmap, a tensor, an
            HDF5 dataset.
        chunk_rows : int
            Rows per chunk (at least 1).
        prepare : callable or None, default=None
            As in the class: applied to every chunk.

        Returns
        -------
        source : ChunkedSource
            Reads the slices anew on every pass.
        """
        n = X.shape[0]
        chunk_rows = max(1, int(chunk_rows))

        def factory():
            return (X[start : start + chunk_rows] for start in range(0, n, chunk_rows))

        return cls(factory, prepare=prepare)

    def with_prepare(self, prepare: Callable) -> ChunkedSource:
        """The same chunks with ``prepare`` applied to each (a new source).

        Parameters
        ----------
        prepare : callable(raw chunk) -> tensor
            Replaces this source's ``prepare``.

        Returns
        -------
        source : ChunkedSource
            A new source over the same chunks; this one is unchanged.
        """
        src = ChunkedSource(self._factory, prepare=prepare)
        return src

    # --- reading ---------------------------------------------------------------------
    def _convert(self, raw) -> tuple[torch.Tensor, torch.Tensor | None]:
        w = None
        if isinstance(raw, tuple):
            if len(raw) != 2:
                raise ValueError(
                    "a chunk given as a tuple must be (X_chunk, sample_weight_chunk); got a "
                    f"tuple of length {len(raw)}."
                )
            raw, w = raw
        if self._prepare is not None:
            X = self._prepare(raw)
        else:
            X = raw if isinstance(raw, torch.Tensor) else to_tensor(np.asarray(raw), torch.device("cpu"))
        if self.dtype is None:
            self.dtype, self.device = X.dtype, X.device
        elif X.dtype != self.dtype:
            X = X.to(self.dtype)
        if self._n_features is None:
            self._n_features = X.shape[1]
        elif X.shape[1] != self._n_features:
            raise ValueError(
                f"a chunk has {X.shape[1]} features but the first chunk had "
                f"{self._n_features}; all chunks must have the same columns."
            )
        if w is not None:
            w = torch.as_tensor(np.asarray(w, dtype=np.float64), device=X.device).reshape(-1)
            if w.shape[0] != X.shape[0]:
                raise ValueError(
                    f"a chunk has {X.shape[0]} rows but {w.shape[0]} sample weights."
                )
        return X, w

    def chunks(self) -> Iterator[Chunk]:
        """Read the chunks once more, converted and checked.

        Yields
        ------
        chunk : Chunk
            Each non-empty chunk, with its global row offset.
        """
        offset = 0
        for raw in self._factory():
            X, w = self._convert(raw)
            if X.shape[0] == 0:
                continue
            yield Chunk(X, w, offset)
            offset += X.shape[0]
        if self._n_samples is None:
            self._n_samples = offset
        elif offset != self._n_samples:
            raise ValueError(
                f"the chunks held {offset} rows on this pass but {self._n_samples} on an "
                "earlier one; the chunk factory must yield the same data every time."
            )

    def first_chunk(self) -> Chunk:
        """The first non-empty chunk (reads only that far).

        Returns
        -------
        chunk : Chunk
            Its ``X`` fixes the source's dtype, device and number of features.
        """
        for chunk in self.chunks():
            return chunk
        raise ValueError("the data source yielded no rows; it needs at least one chunk")

    @property
    def n_samples(self) -> int:
        """Rows in all chunks (the first call reads them all once)."""
        if self._n_samples is None:
            for _ in self.chunks():
                pass
        assert self._n_samples is not None  # set by a complete pass
        return self._n_samples

    @property
    def n_features(self) -> int:
        """Columns of every chunk (the first call reads the first chunk)."""
        if self._n_features is None:
            self.first_chunk()
        assert self._n_features is not None  # set by the first chunk read
        return self._n_features

    @_doc(_MAP_REDUCE_DOC)
    def map_reduce(self, f: Callable[[Chunk], Any]) -> Any:
        return _sum(f(c) for c in self.chunks())

    @_doc(_MAP_CHUNKS_DOC)
    def map_chunks(self, f: Callable[[Chunk], Any]) -> list:
        return [f(c) for c in self.chunks()]

    def _gather(self, index, what):
        index = np.asarray(index, dtype=np.int64).reshape(-1)
        if index.size == 0:
            first = what(self.first_chunk())
            return first[:0]
        order = np.argsort(index, kind="stable")
        sorted_idx = index[order]
        parts, pos = [], 0
        for chunk in self.chunks():
            stop = chunk.offset + len(chunk)
            end = np.searchsorted(sorted_idx, stop, side="left")
            if end > pos:
                local = torch.as_tensor(sorted_idx[pos:end] - chunk.offset, device=chunk.X.device)
                parts.append(what(chunk)[local])
                pos = end
            if pos == len(sorted_idx):
                break
        if pos != len(sorted_idx):
            raise IndexError(f"row index {int(sorted_idx[pos])} is past the end of the data")
        out = torch.cat(parts) if parts else None
        inverse = torch.as_tensor(np.argsort(order, kind="stable"), device=out.device)
        return out[inverse]

    @_doc(_TAKE_DOC)
    def take(self, index: np.ndarray) -> torch.Tensor:
        return self._gather(index, lambda c: c.X)  # one pass over the chunks

    @_doc(_TAKE_WEIGHTS_DOC)
    def take_weights(self, index: np.ndarray) -> torch.Tensor | None:
        first = self.first_chunk()
        if first.w is None:
            return None
        return self._gather(index, lambda c: c.w)



class ScaledSource:
    """A source whose rows are multiplied by a constant ``scale`` as they are read (in the
    data's own dtype): the working units of a model fitted on extreme data (an exact power of
    two, see :func:`latentspace._math.working_scale`). Use :func:`scaled`, which returns the
    source itself for ``scale == 1``.
    """

    def __init__(self, source: Source, scale: float):
        self.source, self.scale = source, float(scale)
        self.n_samples, self.n_features = source.n_samples, source.n_features
        self.dtype, self.device = source.dtype, source.device

    def _scaled(self, chunk: Chunk) -> Chunk:
        return Chunk(chunk.X * self.scale, chunk.w, chunk.offset)

    @_doc(_MAP_REDUCE_DOC)
    def map_reduce(self, f: Callable[[Chunk], Any]) -> Any:
        return self.source.map_reduce(lambda c: f(self._scaled(c)))

    @_doc(_MAP_CHUNKS_DOC)
    def map_chunks(self, f: Callable[[Chunk], Any]) -> list:
        return self.source.map_chunks(lambda c: f(self._scaled(c)))

    @_doc(_TAKE_DOC)
    def take(self, index: np.ndarray) -> torch.Tensor:
        return self.source.take(index) * self.scale

    @_doc(_TAKE_WEIGHTS_DOC)
    def take_weights(self, index: np.ndarray) -> torch.Tensor | None:
        return self.source.take_weights(index)


def scaled(source: Source, scale: float) -> Source:
    """``source`` read in units of ``scale`` × its own.

    Parameters
    ----------
    source : Source
        Any source.
    scale : float
        The factor every row is multiplied by as it is read.

    Returns
    -------
    source : Source
        ``source`` itself when ``scale == 1``, else a :class:`ScaledSource` over it.
    """
    return source if scale == 1.0 else ScaledSource(source, scale)
