"""Training checkpoints: the whole state of a run in one atomic file, and resuming from it.

A checkpoint holds the module, every optimizer, the random generator's state, the epoch and
step counters, ``history`` and the early-stopping state, so that on the CPU a resumed run
reproduces the uninterrupted one bit for bit.

Format (version 2): the safetensors layout of the model files (:mod:`latentspace.io`) -- an
8-byte header length, a JSON header sealed with SHA-256, the raw tensors -- whose manifest has
``format == "latentspace-checkpoint"``. Every tensor of the state (weights, optimizer
moments, the generator's state, the best epoch's snapshot) is a named entry of the tensor
table; everything else (counters, ``history``, optimizer hyperparameters, the plateau state,
the model configuration in ``meta``) is JSON in the manifest, tensors replaced by
``{"__tensor__": name}``. Reading parses JSON and copies bytes: nothing is ever unpickled, and
a pickle or ``torch.save`` file in a checkpoint's place is refused by its first bytes
(:class:`~latentspace.exceptions.UnsafeFormatError`), unread. Version-1 checkpoints (a
``torch.save`` archive) are refused the same way: start the fit again.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import warnings
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch

from ..exceptions import ModelFormatError, TrainingDivergedError, UnsafeFormatError

__all__ = ["CHECKPOINT_FORMAT", "CHECKPOINT_VERSION", "describe_checkpoint", "load_checkpoint",
           "restore_generator", "resume_from", "save_checkpoint", "write_checkpoint"]

CHECKPOINT_FORMAT = "latentspace-checkpoint"
CHECKPOINT_VERSION = 2
_STATE_KEYS = {"meta", "epoch", "step", "module", "optimizers", "generator", "history",
               "n_skipped", "stopped_early", "early_stopping"}


def _all_finite(tensors: Iterable[torch.Tensor]) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in tensors if t.is_floating_point())


def _optimizer_tensors(opt):
    for state in opt.state.values():
        for v in state.values():
            if isinstance(v, torch.Tensor):
                yield v


# ----------------------------------------------------------------------------- encoding
def _encode(value, tensors: dict, where: str):
    """A nested state (dicts, lists, tuples, numbers, strings, tensors) -> JSON value, its
    tensors moved to ``tensors`` under names in order of appearance."""
    if isinstance(value, torch.Tensor):
        name = f"state.{len(tensors)}"
        tensors[name] = value.detach().cpu().contiguous()
        return {"__tensor__": name}
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, np.bool_):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if math.isfinite(v) else {"__float__": repr(v)}
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, tensors, where) for v in value]}
    if isinstance(value, list):
        return [_encode(v, tensors, where) for v in value]
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value):
            out = {k: _encode(v, tensors, f"{where}[{k!r}]") for k, v in value.items()}
            return {"__dict__": out} if any(k.startswith("__") for k in value) else out
        if all(isinstance(k, (int, np.integer)) and not isinstance(k, bool) for k in value):
            return {"__intdict__": [[int(k), _encode(v, tensors, f"{where}[{k}]")]
                                    for k, v in value.items()]}
    raise TypeError(
        f"the training state {where} holds a {type(value).__name__}, which a checkpoint "
        "cannot store (tensors, numbers, strings, lists, tuples and dicts only); use an "
        "optimizer whose state_dict() holds only these, or checkpoint_path=None."
    )


def _decode(value, tensors: dict, used: set, path):
    """Inverse of :func:`_encode`; anything it never writes is a ``ModelFormatError``."""
    if isinstance(value, list):
        return [_decode(v, tensors, used, path) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((tag, inner),) = value.items()
        if tag == "__tensor__" and isinstance(inner, str) and inner in tensors:
            if inner in used:
                raise ModelFormatError(f"{path}: tensor {inner!r} is referenced twice; the "
                                       "checkpoint is corrupted.")
            used.add(inner)
            return tensors[inner]
        if tag == "__tuple__" and isinstance(inner, list):
            return tuple(_decode(v, tensors, used, path) for v in inner)
        if tag == "__float__" and inner in ("nan", "inf", "-inf"):
            return float(inner)
        if tag == "__dict__" and isinstance(inner, dict):
            return {k: _decode(v, tensors, used, path) for k, v in inner.items()}
        if tag == "__intdict__" and isinstance(inner, list) and all(
            isinstance(p, list) and len(p) == 2 and type(p[0]) is int for p in inner
        ):
            return {p[0]: _decode(p[1], tensors, used, path) for p in inner}
    if any(k.startswith("__") for k in value):
        raise ModelFormatError(f"{path}: unknown encoded value {json.dumps(value)[:80]} in the "
                               "checkpoint's manifest; the file is corrupted.")
    return {k: _decode(v, tensors, used, path) for k, v in value.items()}


def write_checkpoint(path, state: dict) -> None:
    """Write a training ``state`` (the dict :func:`load_checkpoint` returns) atomically.

    Raises
    ------
    OSError
        The file cannot be written (full disk, permissions); an earlier file stays intact.
    TypeError
        The state holds an object a checkpoint cannot store.
    """
    from .. import __version__
    from .._atomic import atomic_write_bytes
    from ..io import _assemble

    tensors: dict[str, torch.Tensor] = {}
    body = _encode({k: state[k] for k in _STATE_KEYS}, tensors, "state")
    manifest = {"format": CHECKPOINT_FORMAT, "format_version": CHECKPOINT_VERSION,
                "library_version": __version__, "state": body}
    data = _assemble(tensors, manifest, sort_keys=False)
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, data)
    except OSError as exc:  # full disk, permissions, a name the file system refuses
        raise OSError(
            exc.errno, f"cannot write the training checkpoint {str(path)!r}: "
            f"{exc.strerror or exc}; free space there or choose another checkpoint_path"
        ) from exc


def _detail(exc, path) -> str:
    text = str(exc)
    if text.startswith(f"{path}: "):
        return text[len(f"{path}: "):]
    if text.startswith(f"{path} "):  # "<path> is a Python pickle." -> "it is a ..."
        return "it " + text[len(f"{path} "):]
    return text


def _read(path):
    """-> (manifest, tensor table, payload offset) of a checkpoint file, header checked."""
    from ..io import read_header

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        _, manifest, table, offset = read_header(path, sealed=True)
    except UnsafeFormatError as exc:
        raise UnsafeFormatError(
            f"{path} is not a readable latentspace checkpoint: {_detail(exc, path)} "
            "(checkpoints written before checkpoint version 2 were torch.save archives, "
            "which are refused unread too: delete the file and start the fit again.)"
        ) from None
    except ModelFormatError as exc:
        raise ModelFormatError(
            f"{path} is not a readable latentspace checkpoint: {_detail(exc, path)}; delete it "
            "or start without resume."
        ) from None
    if manifest.get("format") != CHECKPOINT_FORMAT:
        raise ModelFormatError(
            f"{path} is not a latentspace training checkpoint"
            + (" but a saved model: load it with latentspace.load(path) and continue training "
               "with warm_start=True." if manifest.get("format", "latentspace") == "latentspace"
               and "class" in manifest else ".")
        )
    version = manifest.get("format_version")
    if type(version) is not int or version < 2:
        raise ModelFormatError(f"{path}: checkpoint version {version!r} is not readable.")
    if version > CHECKPOINT_VERSION:
        raise ModelFormatError(
            f"{path} has checkpoint version {version}, this latentspace reads up to "
            f"{CHECKPOINT_VERSION}."
        )
    digests = manifest.get("sha256")
    if set(manifest) != {"format", "format_version", "library_version", "state", "sha256"} \
            or not isinstance(digests, dict) or set(digests) != set(table) \
            or not isinstance(manifest["state"], dict):
        raise ModelFormatError(f"{path}: the checkpoint's manifest has unexpected fields or "
                               "checksums; the file is corrupted.")
    return manifest, table, offset


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint written by :func:`train` (nothing is unpickled).

    Parameters
    ----------
    path : str or path-like
        The checkpoint file.

    Returns
    -------
    state : dict
        ``meta``, ``epoch``, ``step``, ``module`` (a state dict), ``optimizers`` (name ->
        state dict), ``generator`` (its state), ``history``, ``n_skipped``,
        ``stopped_early`` and ``early_stopping`` (the plateau state and best snapshot).

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    UnsafeFormatError
        A pickle, ``torch.save`` archive (including version-1 checkpoints) or joblib file;
        never unpickled.
    ModelFormatError
        The file is not a readable latentspace checkpoint (corrupted, truncated, forged).
    """
    from ..io import _read_tensors

    manifest, table, offset = _read(path)
    tensors = _read_tensors(Path(path), table, manifest["sha256"], offset)
    used: set = set()
    state = _decode(manifest["state"], tensors, used, path)
    if set(state) != _STATE_KEYS or used != set(tensors):
        raise ModelFormatError(f"{path}: the checkpoint's state has unexpected or missing "
                               "entries; the file is corrupted.")
    return {"format": CHECKPOINT_FORMAT, "version": manifest["format_version"], **state}


def describe_checkpoint(path) -> dict:
    """What ``latentspace info`` shows of a checkpoint, from its header alone.

    Returns
    -------
    dict
        ``kind`` ("checkpoint"), ``file``, ``bytes``, ``format_version``,
        ``library_version``, ``class`` and ``params`` (when an estimator wrote it), ``epoch``,
        ``step``, ``stopped_early``, ``last_epoch`` (its ``history`` entry), ``tensors`` and
        ``resume`` (how to continue).
    """
    manifest, table, _ = _read(path)
    state = manifest["state"]
    meta = state.get("meta")
    cls, params = None, {}
    try:
        info = json.loads(meta) if isinstance(meta, str) else None
        if isinstance(info, dict):
            cls, params = info.get("class"), info.get("params", {})
    except ValueError:
        pass
    history = state.get("history")
    last = history[-1] if isinstance(history, list) and history else {}
    return {
        "kind": "checkpoint",
        "file": str(path),
        "bytes": Path(path).stat().st_size,
        "format_version": manifest["format_version"],
        "library_version": manifest.get("library_version"),
        "class": cls,
        "params": params if isinstance(params, dict) else {},
        "epoch": state.get("epoch"),
        "step": state.get("step"),
        "stopped_early": state.get("stopped_early"),
        "last_epoch": {k: v for k, v in last.items() if not isinstance(v, dict)}
        if isinstance(last, dict) else {},
        "tensors": len(table),
        "resume": f"{cls or 'the estimator'}(...same hyperparameters...).fit(X, resume="
                  f"{str(path)!r})",
    }


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
    write_checkpoint(path, {
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
