"""Choosing K: elbow of the reconstruction error, BIC/AIC, held-out log-likelihood."""

from ._choose_k import ChooseKResult, choose_k, reconstruction_error

__all__ = ["ChooseKResult", "choose_k", "reconstruction_error"]
