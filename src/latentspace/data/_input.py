"""User input -> a validated data source.

``SourceInput`` sits beside :class:`latentspace.base.LatentModel`. It turns whatever ``fit``
receives (array, DataFrame, tensor, memory-mapped file, :class:`ChunkedSource`, Dask array)
into a validated source; ``Prepare`` is the per-block validation against the fitted input
that Dask workers run; ``check_sample_weight`` and ``split_rows`` are the small helpers
around them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .._backend import InputKind
from ._dask import DaskSource, is_dask_array
from ._source import ChunkedSource, InMemorySource

__all__ = ["Prepare", "SourceInput", "check_sample_weight", "split_rows"]


def split_rows(chunk_X: torch.Tensor, rows: int) -> Iterator[tuple[int, torch.Tensor]]:
    """Consecutive blocks of at most ``rows`` rows of ``chunk_X``.

    Parameters
    ----------
    chunk_X : tensor of shape (n, n_features)
        The rows to split.
    rows : int
        The largest block.

    Yields
    ------
    start : int
        Index of the block's first row in ``chunk_X``.
    block : tensor of shape (<= rows, n_features)
        A view of the rows.
    """
    n = chunk_X.shape[0]
    if n <= rows:
        yield 0, chunk_X
        return
    for start in range(0, n, rows):
        yield start, chunk_X[start : start + rows]


def check_sample_weight(sample_weight: Any, n_samples: int) -> np.ndarray:
    """``sample_weight`` checked: finite, non-negative, at least one positive.

    Parameters
    ----------
    sample_weight : array-like or tensor of shape (n_samples,), or a scalar
        The weights; a scalar gives every sample that weight.
    n_samples : int
        The number of samples they weigh.

    Returns
    -------
    w : ndarray of shape (n_samples,)
        A float64 copy.
    """
    from .._validation import check_container, check_tensor_storage

    if isinstance(sample_weight, torch.Tensor):
        sample_weight = check_tensor_storage(sample_weight, "sample_weight").cpu().numpy()
    sample_weight = check_container(sample_weight, "sample_weight")
    try:
        w = np.asarray(sample_weight, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"sample_weight must hold numbers, one weight per sample; got "
            f"{type(sample_weight).__name__} values that do not convert to float."
        ) from None
    if w.ndim == 0:
        w = np.full(n_samples, float(w))
    if w.shape != (n_samples,):
        raise ValueError(
            f"sample_weight.shape == {w.shape}, expected {(n_samples,)}: one weight per sample."
        )
    if not np.all(np.isfinite(w)):
        raise ValueError("sample_weight contains NaN or infinity; give finite weights.")
    if np.any(w < 0):
        raise ValueError("sample_weight must be non-negative; got negative weights.")
    if n_samples and not np.any(w > 0):
        raise ValueError(
            "sample_weight must have at least one positive weight; all weights are zero."
        )
    return w.copy()


class Prepare:
    """Validation of one block against the fitted input (a picklable callable for workers);
    ``finite=False`` leaves NaN/inf to a pass that finds them anyway."""

    def __init__(self, est: Any, finite: bool = True):
        self.est, self.finite = est, finite

    def __call__(self, raw) -> torch.Tensor:
        return self.est._check_X(raw, reset=False, finite=self.finite)[0]


class SourceInput:
    """Input handling of estimators that read their data as a source (EM models, PCA)."""

    if TYPE_CHECKING:  # supplied by LatentModel, which every user of this mixin also is
        def _check_X(self, X: Any, *, reset: bool, **kwargs: Any
                     ) -> tuple[torch.Tensor, InputKind]: ...

    def _make_source(self, X, sample_weight=None, *, block_rows: int):
        """Validate the input and wrap it as a source.

        Returns
        -------
        source : InMemorySource or ChunkedSource
        kind : InputKind
        """
        if is_dask_array(X):
            if sample_weight is not None and not is_dask_array(sample_weight):
                sample_weight = check_sample_weight(sample_weight, int(X.shape[0]))
            # the first block sets n_features_in_; every block is then checked against it,
            # inside Dask's tasks
            source = DaskSource(X, sample_weight, prepare=Prepare(self),
                                prepare_first=lambda raw: self._check_X(raw, reset=True)[0])
            return source, InputKind("numpy")
        if isinstance(X, ChunkedSource) or isinstance(X, np.memmap):
            if sample_weight is not None:
                raise ValueError(
                    "sample_weight cannot be combined with chunked input; pass each chunk "
                    "as a pair (X_chunk, sample_weight_chunk) instead."
                )
            if isinstance(X, np.memmap):
                if X.ndim != 2:
                    raise ValueError(
                        f"Expected a 2D memory-mapped array, got shape {X.shape}; reshape it "
                        "on disk or pass X.reshape(-1, 1)."
                    )
                X = ChunkedSource.from_array(X, block_rows)
            first = [True]

            def prepare(raw):
                reset = first[0]
                first[0] = False
                return self._check_X(raw, reset=reset)[0]

            source = X.with_prepare(prepare)
            source.first_chunk()  # validates the first chunk and sets n_features_in_
            return source, InputKind("numpy")
        Xt, kind = self._check_X(X, reset=True)
        w = None
        if sample_weight is not None:
            w = torch.as_tensor(check_sample_weight(sample_weight, Xt.shape[0]), device=Xt.device)
        return InMemorySource(Xt, w, chunk_rows=block_rows), kind
