"""Training checkpoints: the whole state of a run in one atomic file, and resuming from it.

A checkpoint holds the module, every optimizer, the random generator's state, the epoch and
step counters, ``history`` and the early-stopping state, so that on the CPU a resumed run
reproduces the uninterrupted one bit for bit. It is a ``torch.save`` archive read back with
``weights_only=True``: no arbitrary object is ever unpickled.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from pathlib import Path
from typing import Iterable

import torch

from ..exceptions import ModelFormatError, TrainingDivergedError

__all__ = ["CHECKPOINT_FORMAT", "CHECKPOINT_VERSION", "load_checkpoint", "restore_generator",
           "resume_from", "save_checkpoint"]

CHECKPOINT_FORMAT = "latentspace-checkpoint"
CHECKPOINT_VERSION = 1


def _all_finite(tensors: Iterable[torch.Tensor]) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in tensors if t.is_floating_point())


def _optimizer_tensors(opt):
    for state in opt.state.values():
        for v in state.values():
            if isinstance(v, torch.Tensor):
                yield v


def _write(path, state: dict) -> None:
    from .._atomic import atomic_write_bytes

    buf = io.BytesIO()
    torch.save(state, buf)
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, buf.getvalue())
    except OSError as exc:  # full disk, permissions, a name the file system refuses
        raise OSError(
            exc.errno, f"cannot write the training checkpoint {str(path)!r}: "
            f"{exc.strerror or exc}; free space there or choose another checkpoint_path"
        ) from exc


def load_checkpoint(path) -> dict:
    """Read a checkpoint written by :func:`train` without unpickling arbitrary objects.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ModelFormatError
        The file is not a readable latentspace checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupted zip, refused pickle opcodes, truncated file
        raise ModelFormatError(
            f"{path} is not a readable latentspace checkpoint ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}); delete it or start without resume."
        ) from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ModelFormatError(f"{path} is not a latentspace training checkpoint.")
    if int(state.get("version", 0)) > CHECKPOINT_VERSION:
        raise ModelFormatError(
            f"{path} has checkpoint version {state.get('version')}, this latentspace reads up to "
            f"{CHECKPOINT_VERSION}."
        )
    return state


def resume_from(path, meta: str, module, optimizers: dict, generator, result,
                stopper) -> tuple[int, int]:
    """Load the checkpoint at ``path`` into the run's objects -> (epoch, step) to go on from.

    ``module``, the optimizers, the generator's stream, ``result`` (history, skipped steps,
    whether and why it stopped) and ``stopper`` (plateau state, best snapshot) continue
    exactly where the checkpoint left them.

    Raises
    ------
    ValueError
        The checkpoint was written by another model configuration (``meta`` differs).
    """
    state = load_checkpoint(path)
    if state.get("meta") != meta:
        raise ValueError(
            f"checkpoint {path} was written by a different model configuration; resume "
            "with the same estimator class, hyperparameters and data width."
        )
    module.load_state_dict(state["module"])
    for name, opt in optimizers.items():
        opt.load_state_dict(state["optimizers"][name])
    restore_generator(generator, state["generator"], path)
    result.history = list(state["history"])
    result.n_skipped = int(state["n_skipped"])
    result.stopped_early = bool(state["stopped_early"])
    result.stop_reason = stopper.restore(state["early_stopping"])
    return int(state["epoch"]), int(state["step"])


def restore_generator(generator: torch.Generator, saved: torch.Tensor, path) -> None:
    """Continue the saved random stream, or, for a checkpoint written on another kind of
    device (a CPU generator's state cannot drive a CUDA one, nor the reverse), reseed from it."""
    try:
        generator.set_state(saved)
    except RuntimeError:
        digest = hashlib.sha256(saved.cpu().numpy().tobytes()).digest()
        generator.manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))
        warnings.warn(
            f"checkpoint {path} was written on another kind of device than "
            f"{generator.device.type}; training resumes with weights and optimizer state "
            "intact, but with a random stream seeded from the saved one, so its batches and "
            "noise differ from those of an uninterrupted run on the original device.",
            RuntimeWarning,
            stacklevel=3,
        )


def save_checkpoint(path, module, optimizers, generator, *, epoch, step, result, stopper,
                    meta) -> None:
    """Write the whole training state atomically (see :func:`resume_from`).

    Raises
    ------
    TrainingDivergedError
        A parameter or an optimizer state is non-finite; nothing is written then.
    """
    tensors = list(module.state_dict().values())
    for opt in optimizers.values():
        tensors.extend(_optimizer_tensors(opt))
    if not _all_finite(tensors):
        raise TrainingDivergedError(
            f"parameters or optimizer state became non-finite by the end of epoch {epoch} "
            f"(step {step}); no checkpoint was written. Lower learning_rate or set grad_clip."
        )
    _write(path, {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "meta": meta,
        "epoch": epoch,
        "step": step,
        "module": module.state_dict(),
        "optimizers": {name: opt.state_dict() for name, opt in optimizers.items()},
        "generator": generator.get_state(),
        "history": result.history,
        "n_skipped": result.n_skipped,
        "stopped_early": result.stopped_early,
        "early_stopping": stopper.state(result.stop_reason),
    })
