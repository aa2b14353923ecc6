"""A Dask array as an EM source: one task per block of rows, a tree sum, one compute per pass.

The engine and the models see the same three methods as for the other sources
(``map_reduce``, ``map_chunks``, ``take``); each block of rows becomes a :class:`Chunk` inside
its task (validated there by the estimator's ``prepare``), so the data never leave the workers
except for the additive statistics and whatever ``map_chunks`` asks for. Whatever scheduler is
active runs the tasks: Dask's threads by default, or a ``dask.distributed`` cluster when a
``Client`` exists. Dask is an optional dependency (``pip install latentspace[dask]``).
"""

from __future__ import annotations

import operator
import sys
from typing import Any, Callable

import numpy as np
import torch

from ._source import _MAP_CHUNKS_DOC, _MAP_REDUCE_DOC, _TAKE_DOC, _TAKE_WEIGHTS_DOC, Chunk, _doc

__all__ = ["DaskSource", "is_dask_array"]


def is_dask_array(X: Any) -> bool:
    """Whether ``X`` is a ``dask.array.Array`` (without importing Dask when it is not in use).

    Parameters
    ----------
    X : object
        Anything.

    Returns
    -------
    is_dask : bool
        False whenever Dask has not been imported (then no object can be a Dask array).
    """
    da = sys.modules.get("dask.array")
    return da is not None and isinstance(X, da.Array)


def _rows_only(X):
    """One block across the columns: each task sees whole rows."""
    return X if X.numblocks[1] == 1 else X.rechunk({1: -1})


def _as_chunk(prepare, raw, w, offset) -> Chunk:
    X = prepare(raw)
    wt = None if w is None else torch.as_tensor(np.asarray(w, dtype=np.float64), device=X.device)
    return Chunk(X, wt, int(offset))


def _apply(f, prepare, raw, w, offset):
    return f(_as_chunk(prepare, raw, w, offset))


def _tree_sum(parts):
    """Pairwise sums of delayed values (depth log₂ of the number of blocks)."""
    from dask import delayed

    while len(parts) > 1:
        parts = [delayed(operator.add)(parts[i], parts[i + 1]) if i + 1 < len(parts) else parts[i]
                 for i in range(0, len(parts), 2)]
    return parts[0]


class DaskSource:
    """A 2-D ``dask.array`` (and optional per-row weights) visited block by block.

    Parameters
    ----------
    X : dask.array.Array of shape (n_samples, n_features)
        Chunked along the rows any way; blocks across columns are merged.
    sample_weight : dask.array.Array, array-like or None
        One weight per row, aligned to X's row blocks.
    prepare : callable
        Raw block -> float tensor (the estimator's input validation); runs inside the tasks,
        so it must be picklable for a distributed cluster.
    prepare_first : callable or None
        Used instead of ``prepare`` on the first block, which is read here to fix ``dtype``
        and ``device`` (an estimator sets ``n_features_in_`` with it).
    """

    def __init__(self, X: Any, sample_weight: Any = None, *, prepare: Callable,
                 prepare_first: Callable | None = None):
        from dask import delayed

        if X.ndim != 2:
            raise ValueError(
                f"Expected a 2D dask array, got shape {X.shape}; reshape it with "
                "X.reshape(-1, 1) for a single feature."
            )
        if any(np.isnan(c) for c in X.chunks[0]):
            raise ValueError(
                "the dask array's row chunks have unknown sizes; call "
                "X.compute_chunk_sizes() first."
            )
        X = _rows_only(X)
        self._X = X
        self.n_samples, self.n_features = int(X.shape[0]), int(X.shape[1])
        self._prepare = prepare
        self._offsets = np.concatenate([[0], np.cumsum(X.chunks[0])[:-1]]).astype(np.int64)
        self._blocks = list(X.to_delayed().ravel())
        if sample_weight is None:
            self._weights = [None] * len(self._blocks)
        else:
            if is_dask_array(sample_weight):
                w = sample_weight.reshape(-1).rechunk((X.chunks[0],))
                self._weights = list(w.to_delayed().ravel())
            else:
                w = np.asarray(sample_weight, dtype=np.float64).reshape(-1)
                self._weights = [delayed(w[o : o + n]) for o, n in zip(self._offsets, X.chunks[0])]
            if w.shape[0] != self.n_samples:
                raise ValueError(
                    f"sample_weight has {w.shape[0]} entries for {self.n_samples} samples."
                )
        first = _as_chunk(prepare_first or prepare, X.blocks[0].compute(), None, 0)
        self.dtype, self.device = first.X.dtype, first.X.device

    def _tasks(self, f):
        from dask import delayed

        return [delayed(_apply)(f, self._prepare, b, w, o)
                for b, w, o in zip(self._blocks, self._weights, self._offsets)]

    @_doc(_MAP_REDUCE_DOC.replace("over the chunks.", "over the blocks: one task each, summed "
                                  "pairwise, one ``compute``."))
    def map_reduce(self, f: Callable[[Chunk], Any]) -> Any:
        import dask

        (total,) = dask.compute(_tree_sum(self._tasks(f)))
        return total

    @_doc(_MAP_CHUNKS_DOC)
    def map_chunks(self, f: Callable[[Chunk], Any]) -> list:  # one ``compute``
        import dask

        return list(dask.compute(*self._tasks(f)))

    def map_blocks(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> Any:
        """A dask array of ``fn(prepared block)`` with the same row blocks (lazy).

        Parameters
        ----------
        fn : callable(tensor of shape (n, n_features)) -> tensor of shape (n, ...)
            Applied to every validated block, inside its task.

        Returns
        -------
        out : dask.array.Array
            The blocks' results, float32 for float32 data, else float64; nothing computed.
        """
        from .._backend import to_numpy

        prepare = self._prepare

        def block(raw):
            return to_numpy(fn(prepare(raw)))

        dtype = np.float32 if self.dtype == torch.float32 else np.float64
        return self._X.map_blocks(block, dtype=dtype)

    def _gather(self, index, what):
        index = np.asarray(index, dtype=np.int64).reshape(-1)
        if index.size == 0:
            return what(np.zeros(1, dtype=np.int64))[:0]
        if (index.min() < 0 or index.max() >= self.n_samples):
            raise IndexError(f"row index out of range for {self.n_samples} rows")
        order = np.argsort(index, kind="stable")
        sorted_idx = index[order]
        uniq, inverse = np.unique(sorted_idx, return_inverse=True)
        rows = what(uniq)
        picked = rows[torch.as_tensor(inverse, device=rows.device)]
        back = torch.as_tensor(np.argsort(order, kind="stable"), device=rows.device)
        return picked[back]

    @_doc(_TAKE_DOC)
    def take(self, index: np.ndarray) -> torch.Tensor:
        return self._gather(index, lambda idx: self._prepare(self._X[idx].compute()))

    @_doc(_TAKE_WEIGHTS_DOC)
    def take_weights(self, index: np.ndarray) -> torch.Tensor | None:
        if self._weights[0] is None:
            return None
        import dask

        w = np.concatenate(dask.compute(*self._weights))
        return self._gather(index, lambda idx: torch.as_tensor(w[idx], device=self.device))
