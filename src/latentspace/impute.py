"""Imputation of missing entries by a fitted latent-variable model, as a scikit-learn step.

:class:`ModelImputer` wraps any latentspace model that has a ``missing`` hyperparameter and an
``impute`` method (``PCA``; the mixtures where they offer it): it fits a copy of the model with
``missing="marginalize"`` (NaN entries are missing at random and marginalised in the
likelihood) and replaces each missing entry by its conditional expectation under that model,
E[x_m | x_o]. It is imported from this module::

    from latentspace.impute import ModelImputer
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin, clone
from sklearn.utils.validation import check_is_fitted

from ._backend import ArrayLike, ArrayOrTensor

if TYPE_CHECKING:  # Python 3.10 has no typing.Self
    from typing_extensions import Self

__all__ = ["ModelImputer"]


class ModelImputer(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Fill missing entries (NaN) with their conditional mean under a fitted model.

    Parameters
    ----------
    estimator : estimator
        A model with a ``missing`` hyperparameter and an ``impute(X)`` method, e.g.
        ``latentspace.PCA(n_components=10)``. It is not changed: ``fit`` fits a clone with
        ``missing="marginalize"``.

    Attributes
    ----------
    estimator_ : estimator
        The fitted clone.
    n_features_in_ : int
    feature_names_in_ : ndarray of str of shape (``n_features_in_``,)
        Only when ``X`` in ``fit`` was a DataFrame with string column names.

    Notes
    -----
    ``transform(X)`` returns ``estimator_.impute(X)``: X of shape (n_samples, n_features)
    with every missing entry x_m replaced by E[x_m | x_o] (for PCA, μ_m + W_m E[z | x_o], the
    rows m of the loadings W times the posterior mean of the latent z given the observed
    entries) and the observed entries unchanged.
    A row with no observed entry raises ``ValueError`` naming it. The output keeps the input's
    array type and float dtype (``set_output(transform="pandas")`` gives a DataFrame).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.pipeline import make_pipeline
    >>> from latentspace import PCA
    >>> from latentspace.impute import ModelImputer
    >>> rng = np.random.RandomState(0)
    >>> X = rng.randn(50, 2) @ rng.randn(2, 5)
    >>> X[rng.rand(*X.shape) < 0.1] = np.nan
    >>> X[:, 0] = 1.0
    >>> filled = ModelImputer(PCA(n_components=2)).fit_transform(X)
    >>> bool(np.isnan(filled).any())
    False
    """

    def __init__(self, estimator: Any):
        self.estimator = estimator

    def _check_estimator(self):
        est = self.estimator
        if not (hasattr(est, "get_params") and callable(getattr(est, "impute", None))):
            raise TypeError(
                f"ModelImputer needs an estimator with an impute method and a 'missing' "
                f"hyperparameter (e.g. latentspace.PCA(n_components=10)); got "
                f"{type(est).__name__}."
            )
        if "missing" not in est.get_params(deep=False):
            raise TypeError(
                f"{type(est).__name__} has no 'missing' hyperparameter, so it cannot fit data "
                "with missing entries; ModelImputer needs a model with missing='marginalize'."
            )

    def fit(self, X: ArrayLike, y: object = None) -> Self:
        """Fit a clone of ``estimator`` with ``missing="marginalize"`` on ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            NaN marks a missing entry.
        y : ignored
            Present for scikit-learn's API.

        Returns
        -------
        self : ModelImputer
            The fitted imputer.
        """
        self._check_estimator()
        est = clone(self.estimator).set_params(missing="marginalize")
        est.fit(X)
        self.estimator_ = est
        self.n_features_in_ = est.n_features_in_
        if hasattr(est, "feature_names_in_"):
            self.feature_names_in_ = est.feature_names_in_
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        return self

    def transform(self, X: ArrayLike) -> ArrayOrTensor:
        """``X`` with each missing entry replaced by E[x_m | x_o] under ``estimator_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, ``n_features_in_``)
            NaN marks a missing entry.

        Returns
        -------
        X_imputed : ndarray or tensor of shape (n_samples, ``n_features_in_``)
            In ``X``'s type and float dtype.
        """
        check_is_fitted(self)
        return self.estimator_.impute(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
