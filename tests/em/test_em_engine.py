"""The EM engine and its data sources, tested on a toy model with a closed-form answer."""

import warnings
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from sklearn.utils import check_random_state

from latentspace.data import ChunkedSource, InMemorySource
from latentspace.em import FarthestPoints, Stats, run_em
from latentspace.exceptions import ConvergenceWarning


@dataclass(frozen=True)
class MeanStats(Stats):
    total: torch.Tensor = None


class HalfStepMean:
    """Toy 'EM' for the mean of unit-variance Gaussian data.

    The M-step moves only ``rate`` of the way to the sample mean, so the objective (the
    Gaussian log-likelihood) rises geometrically towards its maximum at the sample mean.
    """

    def __init__(self, rate=0.5, start=10.0):
        self.rate, self.start = rate, start

    def _init_params(self, source, rng):
        return torch.tensor(self.start + rng.uniform(), dtype=torch.float64)

    def _e_step_stats(self, chunk, mu):
        x = chunk.X[:, 0].to(torch.float64)
        return MeanStats(
            n=float(len(x)), loglik=float(-0.5 * ((x - mu) ** 2).sum()), total=x.sum()
        )

    def _m_step(self, stats, mu):
        return mu + self.rate * (stats.total / stats.n - mu)


def _data(n=50, seed=0):
    return torch.as_tensor(np.random.RandomState(seed).randn(n, 1) + 3.0)


# ----------------------------------------------------------------------------- stats
def test_stats_add_is_fieldwise_and_leaves_operands_unchanged():
    a = MeanStats(n=2.0, loglik=-1.0, total=torch.tensor([1.0, 2.0]))
    b = MeanStats(n=3.0, loglik=-2.0, total=torch.tensor([10.0, 20.0]))
    c = a + b
    assert c.n == 5.0 and c.loglik == -3.0
    assert torch.equal(c.total, torch.tensor([11.0, 22.0]))
    assert torch.equal(a.total, torch.tensor([1.0, 2.0]))  # a value, not a buffer
    with pytest.raises(Exception):
        a.n = 7.0  # frozen


def test_stats_sum_is_associative_over_chunkings():
    X = _data(101)
    model = HalfStepMean()
    mu = torch.tensor(1.5, dtype=torch.float64)
    whole = InMemorySource(X).map_reduce(lambda c: model._e_step_stats(c, mu))
    for rows in (1, 7, 50, 100):
        part = InMemorySource(X, chunk_rows=rows).map_reduce(lambda c: model._e_step_stats(c, mu))
        assert part.n == whole.n
        assert part.loglik == pytest.approx(whole.loglik, rel=1e-13)
        assert float(part.total) == pytest.approx(float(whole.total), rel=1e-13)


def test_farthest_points_merge_does_not_depend_on_chunking():
    rng = np.random.RandomState(1)
    d = torch.as_tensor(np.round(rng.rand(40), 1))  # many ties: order by index decides
    rows = torch.as_tensor(rng.randn(40, 2))
    idx = torch.arange(40)
    lab = torch.zeros(40, dtype=torch.int64)
    w = torch.ones(40, dtype=torch.float64)

    def fp(sl):
        return FarthestPoints.select(d[sl], idx[sl], rows[sl], w[sl], lab[sl], 5)

    whole = fp(slice(0, 40))
    pieces = fp(slice(0, 3)) + fp(slice(3, 17)) + fp(slice(17, 40))
    assert torch.equal(whole.index, pieces.index)
    order = np.lexsort((np.arange(40), -d.numpy()))[:5]
    assert whole.index.tolist() == order.tolist()


# ----------------------------------------------------------------------------- sources
def _uneven(X, sizes):
    return np.split(X, np.cumsum(sizes)[:-1])


def test_chunked_source_offsets_take_and_reduce(tmp_path):
    X = np.arange(30, dtype=np.float64).reshape(15, 2)
    src = ChunkedSource(_uneven(X, [1, 5, 0, 9]))
    offsets = src.map_chunks(lambda c: (c.offset, len(c)))
    assert offsets == [(0, 1), (1, 5), (6, 9)]  # the empty chunk is skipped
    assert src.n_samples == 15 and src.n_features == 2
    idx = np.array([14, 0, 7, 7, 3])
    assert torch.equal(src.take(idx), torch.as_tensor(X[idx]))
    assert src.take(np.array([], dtype=int)).shape == (0, 2)
    total = src.map_reduce(lambda c: c.X.sum(0))
    assert torch.equal(total, torch.as_tensor(X.sum(0)))
    with pytest.raises(IndexError):
        src.take([15])


def test_chunked_source_from_memmap_reads_slices(tmp_path):
    path = tmp_path / "X.npy"
    X = np.random.RandomState(0).randn(23, 3)
    np.save(path, X)
    mm = np.load(path, mmap_mode="r")
    src = ChunkedSource.from_array(mm, chunk_rows=5)
    assert [len(c) for c in src.chunks()] == [5, 5, 5, 5, 3]
    assert torch.equal(torch.cat([c.X for c in src.chunks()]), torch.as_tensor(X))


def test_chunked_source_factory_and_weights():
    X = np.random.RandomState(0).randn(10, 2)
    w = np.arange(10.0)
    src = ChunkedSource(lambda: iter([(X[:4], w[:4]), (X[4:], w[4:])]))
    ws = torch.cat([c.w for c in src.chunks()])
    assert torch.equal(ws, torch.as_tensor(w))
    assert torch.equal(src.take_weights([9, 0]), torch.tensor([9.0, 0.0], dtype=torch.float64))


def test_chunked_source_refuses_one_shot_iterators_and_inconsistent_chunks():
    X = np.ones((4, 2))
    with pytest.raises(TypeError, match="one-shot iterator"):
        ChunkedSource(iter([X]))
    with pytest.raises(TypeError, match="one-shot iterator"):
        ChunkedSource(x for x in [X])
    with pytest.raises(ValueError, match="same columns"):
        list(ChunkedSource([X, np.ones((3, 3))]).chunks())
    with pytest.raises(ValueError, match="sample weights"):
        list(ChunkedSource([(X, np.ones(3))]).chunks())
    calls = []

    def growing():
        calls.append(1)
        return iter([X] * len(calls))

    src = ChunkedSource(growing)
    list(src.chunks())
    with pytest.raises(ValueError, match="same data every time"):
        list(src.chunks())
    with pytest.raises(ValueError, match="no rows"):
        ChunkedSource([]).map_reduce(lambda c: c.X.sum())


# ----------------------------------------------------------------------------- engine
def test_engine_trace_is_monotone_and_reaches_the_closed_form():
    X = _data()
    res = run_em(HalfStepMean(), InMemorySource(X), max_iter=200, tol=1e-12,
                 rng=check_random_state(0))
    assert res.converged
    assert float(res.params) == pytest.approx(float(X.mean()), abs=1e-5)
    lb = np.asarray(res.lower_bounds)
    assert len(lb) == res.n_iter + 1
    assert np.all(np.diff(lb) >= 0)
    # the last entry belongs to the returned parameters
    x = X[:, 0]
    assert lb[-1] == pytest.approx(float(-0.5 * ((x - res.params) ** 2).mean()), rel=1e-12)


def test_engine_max_iter_zero_only_evaluates_the_init():
    res = run_em(HalfStepMean(), InMemorySource(_data()), max_iter=0, rng=check_random_state(0))
    assert res.n_iter == 0 and len(res.lower_bounds) == 1 and not res.converged


def test_engine_warns_with_advice_when_not_converged():
    with pytest.warns(ConvergenceWarning, match="Increase max_iter"):
        res = run_em(HalfStepMean(), InMemorySource(_data()), max_iter=3, tol=1e-12,
                     rng=check_random_state(0))
    assert res.n_iter == 3 and not res.converged
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run_em(HalfStepMean(), InMemorySource(_data()), max_iter=3, tol=1e-12,
               rng=check_random_state(0), warn=False)


def test_engine_keeps_the_best_of_n_init_and_honours_init_params():
    X = _data()
    # starts differ (uniform offsets); with 2 iterations the closest start wins
    model = HalfStepMean(rate=0.1)
    rng = check_random_state(3)
    res = run_em(model, InMemorySource(X), n_init=5, max_iter=2, tol=0, rng=rng, warn=False)
    singles = []
    rng2 = check_random_state(3)
    for _ in range(5):
        singles.append(run_em(model, InMemorySource(X), n_init=1, max_iter=2, tol=0, rng=rng2,
                              warn=False).lower_bound)
    assert res.lower_bound == max(singles)
    assert res.init == int(np.argmax(singles))
    warm = run_em(model, InMemorySource(X), n_init=5, max_iter=0,
                  init_params=torch.tensor(3.0, dtype=torch.float64), rng=rng)
    assert float(warm.params) == 3.0 and warm.init == 0


def test_engine_chunked_equals_in_memory():
    X = _data(97)
    a = run_em(HalfStepMean(), InMemorySource(X), max_iter=20, tol=0,
               rng=check_random_state(0), warn=False)
    b = run_em(HalfStepMean(), ChunkedSource(list(torch.split(X, [3, 40, 1, 53]))), max_iter=20,
               tol=0, rng=check_random_state(0), warn=False)
    assert float(a.params) == pytest.approx(float(b.params), rel=1e-12)
    np.testing.assert_allclose(a.lower_bounds, b.lower_bounds, rtol=1e-12)
