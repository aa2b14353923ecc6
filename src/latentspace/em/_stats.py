"""Additive sufficient statistics: the only values that travel between data and the EM engine.

A model's E-step maps one chunk of rows to a ``Stats`` value; the statistics of the whole
data set are the sum of those of its chunks, in any grouping. Values are immutable (frozen
dataclasses whose ``+`` builds a new value), so partial results from workers can be added in
any tree shape without one worker's buffer being changed under another.

Fields are combined by their own ``+``: floats and tensors add, tuples concatenate (per-row
outputs in row order), ``None`` is the empty value, and a field may be any object with a
monoid ``+`` such as :class:`FarthestPoints` (a merge that keeps the k largest).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from .._math import Frame, abs_max, centring_offset, working_scale

try:  # the compiled summary pass; without numba two array passes do the same work
    import numba
except ImportError:  # pragma: no cover - exercised where numba is absent
    numba = None  # type: ignore[assignment]

__all__ = ["Stats", "FarthestPoints", "DataSummary", "FramedSource", "framed", "working_frame"]


def _combine(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return a + b


@dataclass(frozen=True)
class Stats:
    """Base of every model's statistics.

    Attributes
    ----------
    n : float
        Total weight of the rows summarised (the row count without sample weights).
    loglik : float
        Sum over those rows of the objective's per-row term under the parameters that made
        the statistics (log p(x) for mixtures, minus the squared distance for K-means).
    """

    n: float
    loglik: float

    def with_loglik(self, loglik: float) -> "Stats":
        """A copy with ``loglik`` replaced."""
        return dataclasses.replace(self, loglik=float(loglik))

    def __add__(self, other: "Stats") -> "Stats":
        if type(other) is not type(self):
            return NotImplemented
        return type(self)(
            **{
                f.name: _combine(getattr(self, f.name), getattr(other, f.name))
                for f in dataclasses.fields(self)
            }
        )


@dataclass(frozen=True)
class FarthestPoints:
    """The ``k`` rows that lie farthest from their assigned centre, merged by ``+``.

    Used to relocate empty clusters (the farthest points are the ones their centres explain
    worst). Ties are broken by global row index, so the result does not depend on chunking.

    Attributes
    ----------
    dist : (m,) float64 tensor, descending
    index : (m,) int64 tensor, global row indices
    rows : (m, d) tensor, the rows themselves
    weight : (m,) float64 tensor, their sample weights
    label : (m,) int64 tensor, the cluster each row was assigned to
    """

    dist: torch.Tensor
    index: torch.Tensor
    rows: torch.Tensor
    weight: torch.Tensor
    label: torch.Tensor
    k: int

    @staticmethod
    def select(dist, index, rows, weight, label, k) -> "FarthestPoints":
        """Keep the ``k`` largest ``dist`` (ties: smallest ``index``)."""
        if dist.numel() > k:
            # lexicographic order (dist desc, index asc): sort by index, then stable by -dist
            order = torch.argsort(index, stable=True)
            order = order[torch.argsort(-dist[order], stable=True)][:k]
        else:
            order = torch.argsort(index, stable=True)
            order = order[torch.argsort(-dist[order], stable=True)]
        return FarthestPoints(
            dist[order], index[order], rows[order], weight[order], label[order], k
        )

    def __add__(self, other: "FarthestPoints") -> "FarthestPoints":
        return FarthestPoints.select(
            torch.cat([self.dist, other.dist]),
            torch.cat([self.index, other.index]),
            torch.cat([self.rows, other.rows]),
            torch.cat([self.weight, other.weight]),
            torch.cat([self.label, other.label]),
            self.k,
        )


@dataclass(frozen=True)
class DataSummary(Stats):
    """One pass of plain data statistics, used before EM starts.

    ``shift`` is a fixed row (the first one), subtracted before summing so that the variance
    ``E[(x-s)²] - E[x-s]²`` does not cancel catastrophically for data far from the origin.
    Sums are taken on ``x * scale`` (a power of two chosen from a previous ``amax`` pass, so
    that squares of huge or tiny data stay representable); ``amax`` is the largest abs(x)
    of the unscaled data.

    Attributes
    ----------
    n : float
        Total weight.
    loglik : float
        Unused (0).
    rows : int
        Number of rows (ignores weights).
    amax : float
        max abs(x) over all entries; kept by ``max`` via :class:`_Max`.
    sum : (d,) float64 tensor
        Σ w (x·scale − shift).
    sumsq : (d,) float64 tensor
        Σ w (x·scale − shift)².
    observed : (d,) float64 tensor
        Total weight of the observed (non-NaN) entries of each feature (``n`` in every
        feature for complete data). With NaN entries (missing values), ``sum`` and ``sumsq``
        run over the observed entries only.
    n_missing : int
        Number of NaN entries (0 for complete data).
    """

    rows: int = 0
    amax: "_Max" = None  # type: ignore[assignment]  # always given; the default only orders the fields
    sum: torch.Tensor = None  # type: ignore[assignment]  # always given; the default only orders the fields
    sumsq: torch.Tensor = None  # type: ignore[assignment]  # always given; the default only orders the fields
    observed: torch.Tensor = None  # type: ignore[assignment]  # always given; the default only orders the fields
    n_missing: int = 0

    def counts(self):
        """The weight each feature's moments are taken over: ``n`` (float) for complete
        data, else the observed weight per feature, (d,) float64."""
        return self.n if not self.n_missing or self.observed is None else self.observed

    def variance(self) -> torch.Tensor:
        """Weighted variance of each feature of ``x * scale``: (d,) float64 (over the
        observed entries when some are missing; 0 for a feature with none)."""
        if self.n <= 0 or self.sum is None:
            return torch.zeros(0 if self.sum is None else self.sum.shape[0], dtype=torch.float64)
        c = self.counts()
        if not isinstance(c, float):
            c = c.clamp_min(float(np.finfo(np.float64).tiny))
        m = self.sum / c
        return (self.sumsq / c - m * m).clamp_min(0)


@dataclass(frozen=True)
class _Max:
    """A float combined by ``max``."""

    value: float

    def __add__(self, other: "_Max") -> "_Max":
        return _Max(max(self.value, other.value))


def summarize_chunk(
    X: torch.Tensor, w: torch.Tensor | None, shift: torch.Tensor | None, scale: float = 1.0
) -> DataSummary:
    """:class:`DataSummary` of one chunk ``X`` (n, d) with weights ``w`` (n,) or None.

    With ``shift=None`` only the counts and ``amax`` are computed (the first, cheap pass);
    with a shift, the sums and squares (``amax`` is then left at 0: the first pass has it).
    NaN entries (missing values, for models that accept them) are left out of ``amax`` and
    of the sums, and counted per feature in ``observed``; a chunk without NaN costs what it
    did (the NaN-aware route runs only when a sum comes out NaN).
    """
    if shift is None:
        n = float(X.shape[0]) if w is None else float(w.to(torch.float64).sum())
        amax = abs_max(X)
        if amax != amax:  # NaN entries: the largest |x| of the observed ones
            amax = abs_max(torch.nan_to_num(X, nan=0.0))
        return DataSummary(n=n, loglik=0.0, rows=X.shape[0], amax=_Max(amax))
    Xs = X.to(torch.float64) * scale - shift  # (n, d)
    w64 = None if w is None else w.to(torch.float64)
    if w is None:
        s, ss, n = Xs.sum(0), (Xs * Xs).sum(0), float(X.shape[0])
    else:
        assert w64 is not None
        s, ss, n = w64 @ Xs, w64 @ (Xs * Xs), float(w64.sum())
    n_missing, observed = 0, torch.full_like(s, n)
    if bool(torch.isnan(s).any()):  # missing entries: moments over the observed ones
        seen = ~torch.isnan(Xs)
        n_missing = int(seen.numel() - int(seen.sum()))
        Xs = torch.where(seen, Xs, 0.0)
        seen = seen.to(torch.float64)
        if w is None:
            s, ss, observed = Xs.sum(0), (Xs * Xs).sum(0), seen.sum(0)
        else:
            assert w64 is not None
            s, ss, observed = w64 @ Xs, w64 @ (Xs * Xs), w64 @ seen
    # the second pass leaves amax to the first
    return DataSummary(n=n, loglik=0.0, rows=X.shape[0], amax=_Max(0.0), sum=s, sumsq=ss,
                       observed=observed, n_missing=n_missing)


_SUMMARY_BLOCK = 8192  # rows per block of the compiled pass; its partial sums are added in order

if numba is not None:

    @numba.njit(parallel=True, cache=True, nogil=True)
    def _summary_kernel(X, shift, w, use_w, amax, sums, sumsq):  # pragma: no cover
        """Per block of rows: the largest |x| (NaN if one is NaN), Σ w (x − shift) and
        Σ w (x − shift)², in float64."""
        n, d = X.shape
        for b in numba.prange(amax.shape[0]):
            lo = b * _SUMMARY_BLOCK
            hi = min(n, lo + _SUMMARY_BLOCK)
            m = 0.0
            for j in range(d):
                sums[b, j] = 0.0
                sumsq[b, j] = 0.0
            for i in range(lo, hi):
                wi = w[i] if use_w else 1.0
                for j in range(d):
                    x = X[i, j]
                    a = abs(x)
                    if a > m or a != a:
                        m = a if m == m else m
                    t = x - shift[j]
                    sums[b, j] += wi * t
                    sumsq[b, j] += wi * t * t
            amax[b] = m


def _compiled_summary(source, scaled: bool):
    """:func:`summarize_source` in one compiled pass, for dense rows in memory on the CPU
    whose working scale is 1 and that hold no NaN; None otherwise (the two passes run)."""
    from ..data import InMemorySource

    if numba is None or not isinstance(source, InMemorySource):
        return None
    X = source.X
    if not isinstance(X, torch.Tensor) or X.device.type != "cpu" or X.layout != torch.strided \
            or X.dtype not in (torch.float32, torch.float64) or X.shape[0] == 0:
        return None
    A = np.ascontiguousarray(X.numpy())
    shift = A[0].astype(np.float64)
    w = None if source.w is None else np.ascontiguousarray(source.w.numpy(), dtype=np.float64)
    blocks = (A.shape[0] + _SUMMARY_BLOCK - 1) // _SUMMARY_BLOCK
    amax = np.empty(blocks)
    sums, sumsq = np.empty((blocks, A.shape[1])), np.empty((blocks, A.shape[1]))
    try:
        _summary_kernel(A, shift, np.ones(1) if w is None else w, w is not None, amax, sums,
                        sumsq)
    except numba.core.errors.NumbaError:  # e.g. a numba that cannot target this machine
        return None
    top = float(amax.max())
    if top != top or (scaled and working_scale(top, source.dtype) != 1.0):
        return None  # NaN entries or extreme values: the general route handles them
    s, ss = torch.from_numpy(sums.sum(0)), torch.from_numpy(sumsq.sum(0))
    n = float(A.shape[0]) if w is None else float(w.sum())
    summary = DataSummary(n=n, loglik=0.0, rows=A.shape[0], amax=_Max(top), sum=s, sumsq=ss,
                          observed=torch.full_like(s, n), n_missing=0)
    return summary, 1.0, torch.from_numpy(shift)


def summarize_source(source, *, scaled: bool = True, compiled: bool = False):
    """Two passes over a source: largest abs(x) (for the working scale), then the moments of
    the scaled data (every initialiser needs them).

    Parameters
    ----------
    source : Source
    scaled : bool
        False keeps the data in their own units (scale 1.0), for families whose data are
        bounded (e.g. Bernoulli probabilities in [0, 1]).
    compiled : bool
        Take both in one compiled pass where it applies (dense rows in memory on the CPU, no
        NaN, working scale 1); its sums run in another order than the array route's.

    Returns
    -------
    summary : DataSummary
        Counts, shifted sums and squares of ``x * scale`` (see ``DataSummary``), and the
        largest abs(x) of the unscaled data.
    scale : float
        The working scale (1.0 for ordinary data).
    shift : (d,) float64 tensor
        The first row in working units, around which the sums were taken.
    """
    fast = _compiled_summary(source, scaled) if compiled else None
    if fast is not None:
        return fast
    first = source.map_reduce(lambda c: summarize_chunk(c.X, c.w, None))
    dtype = source.dtype
    scale = working_scale(first.amax.value, dtype) if scaled else 1.0
    shift = source.take(np.array([0])).to(torch.float64)[0] * scale
    if bool(torch.isnan(shift).any()):  # a missing entry: the first observed value instead
        head = source.take(np.arange(min(source.n_samples, 1024))).to(torch.float64) * scale
        seen = ~torch.isnan(head)
        first = seen.to(torch.int8).argmax(0)  # first observed row of each column (0: none)
        shift = torch.where(seen.any(0), head[first, torch.arange(head.shape[1])],
                            torch.zeros_like(shift))
    summary = source.map_reduce(lambda c: summarize_chunk(c.X, c.w, shift, scale))
    # the moments pass leaves amax at 0: the first pass has it
    return dataclasses.replace(summary, amax=first.amax), scale, shift


def working_frame(summary: DataSummary, scale: float, shift: torch.Tensor, dtype) -> Frame:
    """The working frame of a fit from :func:`summarize_source`'s output: its scale, and the
    centring offset (:func:`latentspace._math.centring_offset`) of data far from the origin."""
    if summary.n <= 0 or summary.sum is None:
        return Frame(scale)
    mean = shift + summary.sum / summary.n  # working units
    return Frame(scale, centring_offset(mean, float(summary.variance().sum()), dtype))


class FramedSource:
    """A source read in the working units of a :class:`~latentspace._math.Frame` (rows times
    its scale, minus its offset, in the data's own dtype). Use :func:`framed`."""

    def __init__(self, source, frame: Frame):
        self.source, self.frame = source, frame
        self.n_samples, self.n_features = source.n_samples, source.n_features
        self.dtype, self.device = source.dtype, source.device

    def _framed(self, chunk):
        return type(chunk)(self.frame.to_work(chunk.X), chunk.w, chunk.offset)

    def map_reduce(self, f):
        return self.source.map_reduce(lambda c: f(self._framed(c)))

    def map_chunks(self, f) -> list:
        return self.source.map_chunks(lambda c: f(self._framed(c)))

    def take(self, index) -> torch.Tensor:
        return self.frame.to_work(self.source.take(index))

    def take_weights(self, index) -> torch.Tensor | None:
        return self.source.take_weights(index)


def framed(source, frame: Frame):
    """``source`` in the working units of ``frame`` (the source itself for the identity)."""
    return source if frame.identity else FramedSource(source, frame)
