"""Tensors in, caller's type out.

Every estimator computes in torch. ``to_tensor`` turns numpy, pandas and torch inputs into a
tensor on the estimator's device without copying where it can; ``InputKind`` remembers what the
caller passed so that ``restore`` can hand results back as the same kind of object (numpy in,
numpy out; a CUDA tensor in, a CUDA tensor out).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Union

import numpy as np
import numpy.typing as npt
import torch

if TYPE_CHECKING:
    import scipy.sparse

__all__ = ["InputKind", "resolve_device", "to_tensor", "restore", "to_numpy",
           "ArrayLike", "ArrayOrTensor", "SparseMatrix", "RandomStateLike"]

# What the public methods accept and return, for type hints: any array-like (numpy, pandas,
# nested lists) or a torch tensor in; a numpy array or a torch tensor (the caller's kind) out.
ArrayLike = Union[npt.ArrayLike, torch.Tensor]
ArrayOrTensor = Union[npt.NDArray[Any], torch.Tensor]
# scipy.sparse input (matrices and arrays), for the estimators that take it
SparseMatrix = Union["scipy.sparse.spmatrix", "scipy.sparse.sparray"]
# a seed: None, an int or a numpy RandomState, as scikit-learn takes them
RandomStateLike = Union[None, int, np.random.RandomState]

_DEVICES = ("cpu", "cuda", "auto")


def resolve_device(device, *, allow_mps: bool = False) -> torch.device:
    """Map the ``device`` hyperparameter to a ``torch.device``.

    ``"auto"`` picks CUDA when available, else the CPU. Asking for CUDA on a machine without
    one is a ``ValueError`` that says how to fix it, rather than a crash deep in torch.
    ``"mps"`` (Apple's GPUs) is passed on to torch for the models that ask for it
    (``allow_mps``: the neural ones; the classical models compute in float64, which MPS
    lacks) where torch has a usable MPS backend, and refused with a message elsewhere.
    """
    if isinstance(device, torch.device):
        device = str(device)
    if device == "mps":
        if not allow_mps:
            raise ValueError(
                "device='mps' is supported by the neural models only (the others compute in "
                "float64, which Apple's MPS backend lacks); use device='cpu'."
            )
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError(
                "device='mps' was requested but this torch has no usable MPS backend "
                "(torch.backends.mps.is_available() is False: not a Mac with Apple silicon, "
                "or torch built without it); use device='cpu' or device='auto'."
            )
        return torch.device("mps")
    if not isinstance(device, str) or not (
        device in _DEVICES or device.startswith("cuda:")
    ):
        raise ValueError(
            f"device={device!r} is not supported; use 'cpu', 'cuda', 'cuda:N' or 'auto'."
        )
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} was requested but no CUDA device is available "
            "(torch.cuda.is_available() is False); use device='cpu' or device='auto'."
        )
    return torch.device(device)


@dataclass(frozen=True)
class InputKind:
    """What the caller passed: ``'numpy'`` or ``'torch'`` (with its device)."""

    kind: str
    device: torch.device | None = None


def input_kind(X) -> InputKind:
    if isinstance(X, torch.Tensor):
        return InputKind("torch", X.device)
    return InputKind("numpy")


def to_tensor(X, device: torch.device, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Numpy/torch array -> tensor on ``device`` (zero-copy when dtype and device allow)."""
    if isinstance(X, torch.Tensor):
        t = X.detach()
    else:
        arr = np.asarray(X)
        with warnings.catch_warnings():
            # Read-only inputs (memmaps) are never written to; torch warns regardless.
            warnings.simplefilter("ignore", UserWarning)
            t = torch.from_numpy(arr) if arr.dtype != object else torch.as_tensor(arr)
    return t.to(device=device, dtype=dtype if dtype is not None else t.dtype)


def to_numpy(t) -> np.ndarray:
    """Tensor (any device) -> numpy array; numpy passes through."""
    if isinstance(t, torch.Tensor):
        return t.detach().cpu().numpy()
    return np.asarray(t)


def restore(t: torch.Tensor, kind: InputKind):
    """Hand a result back as the caller's kind of object."""
    if kind.kind == "torch":
        return t.to(kind.device)
    return to_numpy(t)
