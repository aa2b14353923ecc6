"""The contract every latentspace model keeps.

``LatentModel`` is a scikit-learn ``BaseEstimator`` with what all latent-variable models
share: the ``device`` switch, input validation that hands back the caller's kind of array,
``score`` as the mean of ``score_samples``, and ``save`` (see :mod:`latentspace.io`).
Subclasses register themselves so that :func:`latentspace.load` can rebuild them by name,
without importing anything a file names.
"""

from __future__ import annotations

import functools
import os

import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from ._backend import ArrayLike, resolve_device, restore, to_numpy
from ._math import mean_log_density
from ._validation import check_data

__all__ = ["LatentModel", "registered_models"]

_REGISTRY: dict[str, type] = {}

# Methods that (re)fit: a failure inside leaves the estimator exactly as it was before the call.
_FITTING = ("fit", "partial_fit", "fit_predict", "fit_transform")


def _transactional(method):
    """Wrap a fitting method so that any exception restores the estimator's attributes.

    The snapshot is a shallow copy of ``__dict__``: cheap, and enough because fitting assigns
    new objects rather than writing into the arrays of an earlier fit.
    """
    if getattr(method, "_transactional", False):
        return method

    @functools.wraps(method)
    def fitting(self, *args, **kwargs):
        before = self.__dict__.copy()
        try:
            return method(self, *args, **kwargs)
        except BaseException:  # interrupts too: never half an old fit and half a new one
            self.__dict__.clear()
            self.__dict__.update(before)
            raise

    fitting._transactional = True
    return fitting


def registered_models() -> dict[str, type]:
    """Name -> class of every model that :func:`latentspace.load` may rebuild."""
    return dict(_REGISTRY)


class LatentModel(BaseEstimator):
    """Mixin of the API every latentspace model shares.

    ``fit(X)`` returns the estimator; ``transform`` gives latent codes, ``inverse_transform``
    reconstructions, ``score_samples`` a per-sample log-likelihood (or its bound) and
    ``score`` its mean; generative models ``sample(n_samples)``; every model has a
    ``device`` hyperparameter and :meth:`save`. Subclasses define ``fit`` and whichever of
    ``transform``, ``inverse_transform``, ``score_samples``, ``sample``, ``predict`` make sense
    for the model.

    Fitting is transactional: ``fit``, ``partial_fit``, ``fit_predict`` and ``fit_transform``
    of every subclass are wrapped so that a call that raises (bad data, bad parameters,
    divergence, an interrupt) leaves every attribute as it was, and an earlier fit usable.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name in _FITTING:
            if callable(cls.__dict__.get(name)):
                setattr(cls, name, _transactional(cls.__dict__[name]))
        if not cls.__name__.startswith("_"):
            _REGISTRY[cls.__name__] = cls

    # --- devices and data -------------------------------------------------------------
    def _device(self) -> torch.device:
        return resolve_device(getattr(self, "device", "cpu"))

    def _check_X(
        self, X, *, reset: bool, ensure_min_samples: int = 1, device=None,
        finite: bool | str = True,
    ):
        """Validate ``X`` -> (float tensor on the model's device, caller's InputKind).

        A model whose ``missing`` hyperparameter is ``"marginalize"`` keeps NaN entries as
        missing values (infinity and rows with nothing observed are still refused)."""
        if finite is True and getattr(self, "missing", "raise") == "marginalize":
            finite = "allow-nan"
        return check_data(
            self,
            X,
            reset=reset,
            device=self._device() if device is None else device,
            ensure_min_samples=ensure_min_samples,
            finite=finite,
        )

    def _fitted(self, name: str, like: torch.Tensor) -> torch.Tensor:
        """A fitted numpy attribute as a tensor with ``like``'s device and dtype."""
        return torch.as_tensor(getattr(self, name), device=like.device, dtype=like.dtype)

    @staticmethod
    def _out(t: torch.Tensor, kind):
        return restore(t, kind)

    def _remember_fit_output(self, kind, dtype) -> None:
        """Record the container (numpy or a torch device) and float dtype of the data a fit
        read, so that :meth:`_drawn_out` hands samples back in them."""
        self._fit_output = (kind, dtype)

    def _drawn_out(self, X):
        """Drawn rows ``X`` (ndarray) in the container, device and dtype of the data the model
        was fitted on: numpy in, numpy out; a torch tensor in, a tensor on its device out.
        A fit whose input is not known (a model loaded from a file) gives numpy float64."""
        fit = self.__dict__.get("_fit_output")
        if fit is None:
            return X
        kind, dtype = fit
        t = torch.as_tensor(X)
        return self._out(t.to(dtype) if t.is_floating_point() else t, kind)

    # --- shared API -------------------------------------------------------------------
    def score(self, X: ArrayLike, y: object = None) -> float:
        """Mean of :meth:`score_samples` over ``X`` (average log-likelihood or its bound).

        Parameters
        ----------
        X : array-like or tensor of shape (n_samples, n_features)
            Data to score.
        y : ignored
            Present for scikit-learn's API.

        Returns
        -------
        score : float
            The mean over the rows of ``X``; NaN for zero rows.
        """
        ll = torch.as_tensor(to_numpy(self.score_samples(X)), dtype=torch.float64)
        return mean_log_density(ll) if ll.numel() else float("nan")

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the fitted model to ``path`` atomically (safetensors + JSON manifest).

        Parameters
        ----------
        path : str or path-like
            The file to write; an existing file is replaced only once the new one is
            complete. Read it back with :func:`latentspace.load`.
        """
        from .io import save

        save(self, path)

    # --- persistence hooks (see io.py) ------------------------------------------------
    def _state_tensors(self) -> dict[str, torch.Tensor]:
        """Extra tensors to persist beyond the array attributes (e.g. network weights)."""
        return {}

    def _load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        """Restore what :meth:`_state_tensors` wrote."""

    def _check_fitted(self):
        check_is_fitted(self)
