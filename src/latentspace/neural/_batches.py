"""Batches of an epoch and the epoch's metric averages.

A tensor is shuffled with the fit's generator and cut into batches (sharded across processes
when training data-parallel); any other iterable of batches, such as a ``DataLoader``, is used
as it comes. Metrics are summed on the device and averaged once per epoch.
"""

from __future__ import annotations

import torch

__all__ = ["accumulate", "batches", "evaluate", "means"]


def _array_batches(X: torch.Tensor, batch_size: int, shuffle: bool, generator):
    n = X.shape[0]
    if shuffle:
        order = torch.randperm(n, generator=generator, device=generator.device)
        if order.device != X.device:
            order = order.to(X.device)
        for i in range(0, n, batch_size):
            yield X[order[i : i + batch_size]]
    else:
        for i in range(0, n, batch_size):
            yield X[i : i + batch_size]


def _shard_batches(X: torch.Tensor, batch_size: int, shuffle: bool, generator, rank, size):
    """This process's share of each global batch of ``batch_size × size`` rows.

    Every process draws the same permutation (their generators were synchronised), cuts it
    into the same global batches and keeps its contiguous part of each, so that the union of
    the parts is exactly the batch a single process would see. A last global batch with fewer
    rows than processes is dropped (at most size − 1 rows an epoch).
    """
    n = X.shape[0]
    glob = batch_size * size
    order = None
    if shuffle:
        order = torch.randperm(n, generator=generator, device=generator.device).to(X.device)
    for i in range(0, n, glob):
        stop = min(n, i + glob)
        if stop - i < size:
            break
        part = torch.arange(i, stop, device=X.device).tensor_split(size)[rank]
        yield X[order[part]] if order is not None else X[part]


def batches(data, batch_size, shuffle, generator, prepare, world=None):
    if isinstance(data, torch.Tensor):
        if world is not None:
            yield from _shard_batches(data, batch_size, shuffle, generator, *world)
        else:
            yield from _array_batches(data, batch_size, shuffle, generator)
        return
    for batch in data:  # a DataLoader or any iterable of batches
        yield prepare(batch) if prepare is not None else batch


def accumulate(sums: dict, metrics: dict, n: int) -> None:
    """Add ``n`` × each metric to running sums, kept on the device (no host sync).

    Metrics that arrive together are stacked and added as one vector: a few tensor operations
    per batch whatever their number. ``sums`` maps a tuple of names -> [vector sum, count].
    """
    names = tuple(metrics)
    values = [v.detach() if isinstance(v, torch.Tensor) else torch.tensor(float(v))
              for v in metrics.values()]
    devices = {v.device for v in values}
    if len(devices) > 1:
        values = [v.cpu() for v in values]
    vec = torch.stack([v.reshape(()) for v in values]).double() * n
    entry = sums.get(names)
    if entry is None:
        sums[names] = [vec, n]
    else:
        entry[0] += vec
        entry[1] += n


def means(sums: dict) -> dict:
    """Per-name weighted means from :func:`accumulate`'s sums (one host transfer each)."""
    totals: dict[str, float] = {}
    counts: dict[str, int] = {}
    for names, (vec, n) in sums.items():
        for name, v in zip(names, vec.tolist()):
            totals[name] = totals.get(name, 0.0) + v
            counts[name] = counts.get(name, 0) + n
    return {k: totals[k] / counts[k] for k in totals}


@torch.no_grad()
def evaluate(module, val_data, val_fn, batch_size, prepare) -> dict:
    sums: dict = {}
    for batch in batches(val_data, batch_size, False, None, prepare):
        accumulate(sums, val_fn(batch), batch.shape[0])
    return {f"val_{k}": v for k, v in means(sums).items()}
