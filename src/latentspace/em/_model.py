"""What the EM-fitted estimators share: turning input into a source, and a safe scale.

``EMEstimatorMixin`` sits beside :class:`latentspace.base.LatentModel`. It turns whatever
``fit`` receives (array, DataFrame, tensor, memory-mapped file, :class:`ChunkedSource`, Dask
array) into a validated source, and makes the one data-summary pass every initialiser needs.
"""

from __future__ import annotations

import numpy as np
import torch

from .._backend import InputKind
from .._math import pow2_scale
from ._dask import DaskSource, is_dask_array
from ._source import ChunkedSource, InMemorySource
from ._stats import summarize_chunk

__all__ = ["EMEstimatorMixin", "check_sample_weight", "split_rows", "working_scale"]


def split_rows(chunk_X: torch.Tensor, rows: int):
    """Yield (start, block) for consecutive blocks of at most ``rows`` rows."""
    n = chunk_X.shape[0]
    if n <= rows:
        yield 0, chunk_X
        return
    for start in range(0, n, rows):
        yield start, chunk_X[start : start + rows]


def working_scale(amax: float, dtype: torch.dtype) -> float:
    """A power of two to multiply the data by so that squares neither overflow nor underflow.

    1.0 for ordinary data (then nothing is rescaled and no copy is made); for data whose
    largest |x| lies beyond 2^(±emax/4) of the dtype, the exact power of two that brings it
    into [0.5, 1). Scaling by a power of two changes no rounding, so results are those of
    the unscaled arithmetic wherever that arithmetic was representable.
    """
    emax = 1024 if dtype == torch.float64 else 128
    if amax == 0 or not np.isfinite(amax):
        return 1.0
    e = np.frexp(amax)[1]
    if abs(e) < emax // 4:
        return 1.0
    return pow2_scale(amax)


def check_sample_weight(sample_weight, n_samples: int) -> np.ndarray:
    """``sample_weight`` as a float64 array of shape (n_samples,): finite and non-negative."""
    if isinstance(sample_weight, torch.Tensor):
        sample_weight = sample_weight.detach().cpu().numpy()
    w = np.asarray(sample_weight, dtype=np.float64)
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
    return w.copy()


class _Prepare:
    """Validation of one block against the fitted input (a picklable callable for workers);
    ``finite=False`` leaves NaN/inf to a pass that finds them anyway."""

    def __init__(self, est, finite: bool = True):
        self.est, self.finite = est, finite

    def __call__(self, raw) -> torch.Tensor:
        return self.est._check_X(raw, reset=False, finite=self.finite)[0]


class EMEstimatorMixin:
    """Input handling for estimators fitted through :func:`latentspace.em.run_em`."""

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
            source = DaskSource(X, sample_weight, prepare=_Prepare(self),
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

    @staticmethod
    def _summary(source):
        """Two passes: largest |x| (for the working scale), then moments of the scaled data.

        Returns
        -------
        summary : DataSummary
            Counts, shifted sums and squares of ``x * scale`` (see ``DataSummary``).
        scale : float
            The working scale (1.0 for ordinary data).
        shift : (d,) float64 tensor
            The first row in working units, around which the sums were taken.
        """
        first = source.map_reduce(lambda c: summarize_chunk(c.X, c.w, None))
        dtype = source.dtype
        scale = working_scale(first.amax.value, dtype)
        shift = source.take(np.array([0])).to(torch.float64)[0] * scale
        summary = source.map_reduce(lambda c: summarize_chunk(c.X, c.w, shift, scale))
        return summary, scale, shift
