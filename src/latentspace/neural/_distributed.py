"""Data-parallel training over ``torch.distributed`` (processes started with ``torchrun``).

When a process group of more than one process is initialised, the trainer runs data-parallel:
every process starts from rank 0's weights and random stream, takes its share of each global
batch (``batch_size`` rows per process), and after every backward pass the gradients are
averaged over all processes, weighted by their rows, so that each optimizer step is the step
a single process would take on the whole global batch. The NaN guard's decision, the epoch's
metrics and early stopping are agreed by all processes; only rank 0 shows progress and writes
checkpoints. Gradients are averaged explicitly (one all-reduce of one flat buffer per update)
rather than through ``DistributedDataParallel``, whose hooks need every forward pass to go
through its wrapper: the models' step functions call their encoder, decoder or discriminator
separately.

Data given as an array or tensor is split by the trainer; data given as an iterable of batches
(a DataLoader) must already be each process's own share, and every process must yield the
same number of batches per epoch (a ``DistributedSampler`` with ``drop_last=True`` does).
"""

from __future__ import annotations

import os

import torch

__all__ = ["init_distributed", "world"]


def world() -> tuple[int, int] | None:
    """(rank, world size) when training data-parallel, else None."""
    if not torch.distributed.is_available() or not torch.distributed.is_initialized():
        return None
    size = torch.distributed.get_world_size()
    return (torch.distributed.get_rank(), size) if size > 1 else None


def init_distributed(backend: str | None = None) -> tuple[int, int]:
    """Join the process group that ``torchrun`` describes in the environment.

    Parameters
    ----------
    backend : str or None
        ``"nccl"`` for GPUs, ``"gloo"`` for CPUs; None picks nccl when CUDA is available.

    Returns
    -------
    (rank, world_size)

    Examples
    --------
    ``torchrun --nproc-per-node 2 train.py`` with, in ``train.py``::

        from latentspace.neural import VAE, init_distributed
        rank, size = init_distributed()
        vae = VAE(20, device="cuda").fit(X)   # each process reads X; each trains on its share
    """
    if not torch.distributed.is_available():
        raise RuntimeError("this torch build has no torch.distributed support.")
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        raise RuntimeError(
            "RANK and WORLD_SIZE are not set: start the script with torchrun "
            "(e.g. `torchrun --nproc-per-node 2 train.py`) or call "
            "torch.distributed.init_process_group yourself."
        )
    if not torch.distributed.is_initialized():
        if backend is None:
            backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        torch.distributed.init_process_group(backend)
    return torch.distributed.get_rank(), torch.distributed.get_world_size()


def _comm_device(like: torch.device) -> torch.device:
    """Where collectives run: the GPU for nccl, the CPU otherwise."""
    if torch.distributed.get_backend() == "nccl":
        return like if like.type == "cuda" else torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def broadcast_module(module: torch.nn.Module) -> None:
    """Every process takes rank 0's parameters and buffers."""
    for t in module.state_dict().values():
        dev = _comm_device(t.device)
        buf = t.detach().to(dev)
        torch.distributed.broadcast(buf, 0)
        t.copy_(buf.to(t.device))


def broadcast_generator(generator: torch.Generator) -> None:
    """Every process takes rank 0's random stream (the same shuffles and splits)."""
    state = generator.get_state()
    dev = _comm_device(generator.device)
    size = torch.tensor([state.numel()], device=dev)
    torch.distributed.broadcast(size, 0)
    buf = torch.zeros(int(size.item()), dtype=torch.uint8, device=dev)
    buf[: state.numel()] = state.to(dev)
    torch.distributed.broadcast(buf, 0)
    generator.set_state(buf.cpu())


def average_gradients(params: list, rows: int) -> None:
    """Replace each gradient by the row-weighted mean of all processes' gradients, in place."""
    like = params[0].device
    dev = _comm_device(like)
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1).to(torch.float64) for g in grads]).to(dev) * rows
    flat = torch.cat([flat, torch.tensor([float(rows)], dtype=torch.float64, device=dev)])
    torch.distributed.all_reduce(flat)
    flat = (flat[:-1] / flat[-1]).to(like)
    start = 0
    for p, g in zip(params, grads):
        n = g.numel()
        p.grad = flat[start : start + n].view_as(g).to(g.dtype)
        start += n


def any_rank(flag: torch.Tensor) -> torch.Tensor:
    """True on every process when ``flag`` is true on one."""
    buf = flag.to(torch.int32).reshape(1).to(_comm_device(flag.device))
    torch.distributed.all_reduce(buf, op=torch.distributed.ReduceOp.MAX)
    return buf.to(flag.device).reshape(()).bool()


def sum_metrics(sums: dict) -> None:
    """Make :func:`_accumulate`'s running sums global, in place (same keys on every rank)."""
    for names in sorted(sums):
        vec, n = sums[names]
        dev = _comm_device(vec.device)
        buf = torch.cat([vec.to(dev), torch.tensor([float(n)], dtype=vec.dtype, device=dev)])
        torch.distributed.all_reduce(buf)
        sums[names] = [buf[:-1].to(vec.device), int(round(float(buf[-1])))]


def barrier() -> None:
    torch.distributed.barrier()
