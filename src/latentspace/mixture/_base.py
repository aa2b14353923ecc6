"""What every finite mixture fitted by EM shares.

A mixture p(x) = Σ_k π_k p(x | θ_k) is the latent-variable model with a categorical z. EM
alternates (Bishop 2006, §9.2.2 and §9.4):

- E-step: responsibilities r_nk = π_k p(x_n|θ_k) / Σ_j π_j p(x_n|θ_j), computed in log space
  (``log_resp = wlp − logsumexp(wlp)``), and the additive statistics Σ_n r_nk T(x_n);
- M-step: maximum-likelihood (or MAP) parameters from those statistics.

Subclasses provide ``_log_weighted(X, params) -> (n, K)`` (log π_k + log p(x|θ_k) in the
working units), ``_resp_stats(X, resp, w, params)`` (their statistics for given
responsibilities) and ``_params_from_stats(stats, params)`` (the M-step). With ``hard=True``
the E-step keeps only the most probable component (classification EM, Celeux & Govaert
1992); the objective it climbs is the classification log-likelihood Σ_n max_k log π_k p(x_n|θ_k).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.base import DensityMixin
from sklearn.utils import check_random_state

from .._backend import to_numpy
from .._math import abs_max, working_scale
from .._validation import check_choice, check_float, check_int
from ..base import LatentModel
from ..data import ChunkedSource, DaskSource, InMemorySource
from ..data._input import SourceInput, split_rows
from ..em import Stats, run_em, summarize_source
from ..exceptions import ConvergenceWarning

__all__ = ["MixtureStats", "MixtureBase"]

_BLOCK_ELEMS = 1 << 20  # rows × components × features handled at once


@dataclass(frozen=True)
class MixtureStats(Stats):
    """Statistics shared by the mixtures: Σ_n w_n r_nk (float64, (K,))."""

    nk: torch.Tensor = None


def _uniform_rows(seed: int, offset: int, n: int, K: int, block: int = 1024) -> np.ndarray:
    """Uniform(0, 1) draws for rows [offset, offset + n), the same whatever the chunking.

    Row r's draws come from a generator seeded by (seed, r // block), so any chunk can make
    its own rows without the draws of the rows before it.
    """
    first, last = offset // block, (offset + n - 1) // block
    parts = [np.random.default_rng([seed, b]).uniform(size=(block, K)) for b in range(first, last + 1)]
    allrows = np.concatenate(parts)
    start = offset - first * block
    return allrows[start : start + n]


class MixtureBase(SourceInput, DensityMixin, LatentModel):
    """Shared EM fitting and queries of the mixtures (not registered: see subclasses)."""

    _init_choices = ("kmeans", "k-means++", "random", "random_from_data")
    _scaled = True  # fit in working units (an exact power-of-two rescaling of the data)

    # --- subclass hooks ---------------------------------------------------------------
    def _check_model_params(self, n_features: int) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _log_weighted(self, X: torch.Tensor, params) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def _resp_stats(self, X, resp, w, params) -> MixtureStats:  # pragma: no cover
        raise NotImplementedError

    def _params_from_stats(self, stats, params, *, init: bool = False):  # pragma: no cover
        raise NotImplementedError

    def _apply_user_init(self, params):
        return params

    def _params_from_attributes(self, scale: float):  # pragma: no cover
        raise NotImplementedError

    def _store(self, params, scale: float) -> None:  # pragma: no cover
        raise NotImplementedError

    def _n_parameters(self) -> int:  # pragma: no cover
        raise NotImplementedError

    def _prepare_X(self, X: torch.Tensor) -> torch.Tensor:
        """Per-model input check on a validated block (e.g. values in [0, 1])."""
        return X

    def _to_work(self, X: torch.Tensor, scale: float) -> torch.Tensor:
        X = X.to(torch.float64)
        return X * scale if scale != 1.0 else X

    def _query_scale(self, amax: float) -> float:
        return working_scale(amax, torch.float64)

    def _log_scale_correction(self, scale: float, d: int) -> float:
        """log p(x) − log p'(x·scale): the Jacobian of the working units (D log scale)."""
        return d * math.log(scale)

    # --- parameters -------------------------------------------------------------------
    def _check_common_params(self):
        check_int("n_components", self.n_components, low=1)
        check_float("tol", self.tol, low=0)
        check_int("max_iter", self.max_iter, low=0)
        check_int("n_init", self.n_init, low=1)
        check_int("verbose", self.verbose, low=0)
        check_choice("init_params", self.init_params, self._init_choices)
        if not isinstance(self.warm_start, (bool, np.bool_)):
            raise ValueError(f"warm_start must be True or False, got {self.warm_start!r}.")
        if not isinstance(self.hard, (bool, np.bool_)):
            raise ValueError(f"hard must be True or False, got {self.hard!r}.")

    def _block_rows(self, d: int) -> int:
        """Rows per block: (rows × K) log-probabilities and a float64 copy of the rows stay
        within a few MiB; models with (rows × K × D) intermediates override this."""
        return max(256, min(_BLOCK_ELEMS // max(1, self.n_components), (4 * _BLOCK_ELEMS) // max(1, d)))

    # --- EM hooks ---------------------------------------------------------------------
    def _stats_block(self, Xw: torch.Tensor, wb, params) -> MixtureStats:
        wlp = self._log_weighted(Xw, params)  # (n, K)
        if self.hard:
            best, labels = wlp.max(1)
            resp = torch.zeros_like(wlp).scatter_(1, labels[:, None], 1.0)
            per_row = best
        else:
            # log-sum-exp and the responsibilities from one exp pass:
            # r = exp(wlp − m) / Σ exp(wlp − m),  log p(x) = m + log Σ exp(wlp − m)
            # (differences below −700 are clipped there: exp would give subnormal numbers,
            # which are slow on x86 and no larger than 1e-304 anyway)
            m = wlp.amax(1, keepdim=True)
            resp = wlp.sub_(m).clamp_min_(-700.0).exp_()
            total = resp.sum(1, keepdim=True)
            resp /= total
            per_row = (m + torch.log(total)).squeeze(1)
        loglik = float(per_row.sum() if wb is None else wb @ per_row)
        return self._resp_stats(Xw, resp, wb, params).with_loglik(loglik)

    def _e_step_stats(self, chunk, params):
        total = None
        for start, Xb in split_rows(chunk.X, self._rows):
            wb = None if chunk.w is None else chunk.w[start : start + Xb.shape[0]]
            Xb = self._prepare_X(Xb)
            part = self._stats_block(self._to_work(Xb, self._scale), wb, params)
            total = part if total is None else total + part
        return total

    def _m_step(self, stats, params):
        return self._params_from_stats(stats, params)

    def _init_resp_fn(self, source, rng):
        """A function chunk -> initial responsibilities (n, K), chunking-independent."""
        K = self.n_components
        n = source.n_samples
        how = self.init_params
        if how == "kmeans":
            from ..cluster import KMeans

            km = KMeans(K, n_init=1, random_state=rng, device=self.device)
            # K-means runs in the working units (an exact power-of-two rescaling), where its
            # inertia is representable even for data near the float64 limits
            if isinstance(source, InMemorySource):
                data = self._to_work(self._prepare_X(source.X), self._scale)
            elif isinstance(source, DaskSource):
                data = source.map_blocks(lambda X: self._to_work(self._prepare_X(X), self._scale))
            else:
                data = ChunkedSource(
                    lambda: (self._to_work(self._prepare_X(c.X), self._scale) for c in source.chunks())
                )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # duplicates: the mixture warns on its own
                km.fit(data)

            def resp(chunk):
                labels, _ = km._labels_d2(self._to_work(self._prepare_X(chunk.X), self._scale))
                return torch.zeros(len(chunk), K, dtype=torch.float64, device=chunk.X.device).scatter_(
                    1, labels[:, None], 1.0
                )

            return resp
        if how in ("k-means++", "random_from_data"):
            if how == "k-means++":
                from ..cluster import kmeans_plusplus

                _, idx = kmeans_plusplus(source, K, rng, scale=self._scale)
            else:
                idx = rng.choice(n, size=K, replace=False)
            where = {int(i): k for k, i in enumerate(idx)}

            def resp(chunk):
                r = torch.zeros(len(chunk), K, dtype=torch.float64, device=chunk.X.device)
                for i, k in where.items():
                    if chunk.offset <= i < chunk.offset + len(chunk):
                        r[i - chunk.offset, k] = 1.0
                return r

            return resp
        seed = int(rng.randint(np.iinfo(np.int32).max))

        def resp(chunk):
            u = _uniform_rows(seed, chunk.offset, len(chunk), K)
            u /= u.sum(1, keepdims=True)
            return torch.as_tensor(u, device=chunk.X.device)

        return resp

    def _init_params(self, source, rng):
        params = None
        if not self._init_given():
            resp_fn = self._init_resp_fn(source, rng)

            def f(chunk):
                R = resp_fn(chunk)
                total = None
                for start, Xb in split_rows(chunk.X, self._rows):
                    wb = None if chunk.w is None else chunk.w[start : start + Xb.shape[0]]
                    Rb = R[start : start + Xb.shape[0]]
                    Xw = self._to_work(self._prepare_X(Xb), self._scale)
                    part = self._resp_stats(Xw, Rb, wb, self._base_params).with_loglik(0.0)
                    total = part if total is None else total + part
                return total

            params = self._params_from_stats(source.map_reduce(f), self._base_params, init=True)
        return self._apply_user_init(params)

    def _init_given(self) -> bool:
        return False

    # --- fit --------------------------------------------------------------------------
    def fit(self, X, y=None):
        """Estimate the mixture's parameters by EM.

        Parameters
        ----------
        X : array-like, tensor, memmap or ChunkedSource of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        self
        """
        self._check_common_params()
        warm = bool(self.warm_start) and hasattr(self, "converged_")
        d_prev = getattr(self, "n_features_in_", None)
        source, _ = self._make_source(X, block_rows=1 << 14)
        d = source.n_features
        if warm and d != d_prev:
            raise ValueError(
                f"X has {d} features, but {type(self).__name__} is expecting {d_prev} features "
                "as input (warm_start=True reuses the previous fit)."
            )
        self._check_model_params(d)
        n = source.n_samples
        K = self.n_components
        if n < K:
            raise ValueError(
                f"Expected n_samples >= n_components but got n_components = {K}, "
                f"n_samples = {n}."
            )
        self._rows = self._block_rows(d)
        summary, self._scale, shift0 = summarize_source(source, scaled=self._scaled)
        self._base_params = self._base_params_for(summary, shift0, d, source.dtype)
        rng = check_random_state(self.random_state)
        init = self._params_from_attributes(self._scale) if warm else None
        try:
            result = run_em(
                self, source, n_init=self.n_init, max_iter=self.max_iter, tol=self.tol, rng=rng,
                init_params=init, verbose=self.verbose,
            )
        finally:
            del self._base_params  # fit-time state only
        self._store(result.params, self._scale)
        self._warn_unused_components()
        corr = self._log_scale_correction(self._scale, d)
        self.lower_bounds_ = np.asarray(result.lower_bounds, dtype=np.float64) + corr
        self.lower_bound_ = float(self.lower_bounds_[-1])
        self.n_iter_ = int(result.n_iter)
        self.converged_ = bool(result.converged)
        return self

    def _warn_unused_components(self):
        unused = int(np.sum(self.weights_ < 1e-12))
        if self.n_components > 1 and unused:
            warnings.warn(
                f"{unused} of {self.n_components} components received no data (duplicate "
                "points, or more components than distinct points); consider fewer components.",
                ConvergenceWarning,
                stacklevel=3,
            )

    def _base_params_for(self, summary, shift0, d, dtype):
        """Parameters that do not depend on the fit (e.g. a global shift); may be None."""
        return None

    # --- queries ----------------------------------------------------------------------
    def _weighted_log_prob(self, X):
        """Validated query -> (log π_k + log p(x|θ_k) in data units (n, K) float64, kind, dtype)."""
        self._check_fitted()
        Xt, kind = self._check_X(X, reset=False)
        Xt = self._prepare_X(Xt)
        amax = abs_max(Xt)
        scale = self._query_scale(amax)
        params = self._params_from_attributes(scale)
        corr = self._log_scale_correction(scale, Xt.shape[1])
        out = [
            self._log_weighted(self._to_work(Xb, scale), params) + corr
            for _, Xb in split_rows(Xt, self._block_rows(Xt.shape[1]))
        ]
        wlp = torch.cat(out) if out else torch.zeros(0, self.n_components, dtype=torch.float64)
        return wlp, kind, Xt.dtype

    def score_samples(self, X):
        """Log-likelihood log p(x) of each row: (n_samples,), X's float dtype."""
        wlp, kind, dtype = self._weighted_log_prob(X)
        return self._out(torch.logsumexp(wlp, dim=1).to(dtype), kind)

    def predict_proba(self, X):
        """Responsibilities p(z = k | x): (n_samples, n_components), rows sum to 1."""
        wlp, kind, dtype = self._weighted_log_prob(X)
        resp = torch.exp(wlp - torch.logsumexp(wlp, dim=1, keepdim=True))
        return self._out(resp.to(dtype), kind)

    def predict(self, X):
        """Most probable component of each row (hard clustering): (n_samples,) int64."""
        wlp, kind, _ = self._weighted_log_prob(X)
        return self._out(wlp.argmax(1), kind)

    def fit_predict(self, X, y=None):
        """``fit(X)`` then ``predict(X)`` (labels under the final parameters)."""
        return self.fit(X).predict(X)

    def score(self, X, y=None):
        """Mean log-likelihood of ``X`` (float)."""
        return float(np.mean(to_numpy(self.score_samples(X)), dtype=np.float64))

    def bic(self, X):
        """Bayesian information criterion −2 log L + p log n (lower is better)."""
        n = len(X) if not isinstance(X, torch.Tensor) else X.shape[0]
        return -2 * self.score(X) * n + self._n_parameters() * math.log(n)

    def aic(self, X):
        """Akaike information criterion −2 log L + 2p (lower is better)."""
        n = len(X) if not isinstance(X, torch.Tensor) else X.shape[0]
        return -2 * self.score(X) * n + 2 * self._n_parameters()

    def _sample_labels(self, n_samples, random_state):
        check_int("n_samples", n_samples, low=1)
        self._check_fitted()
        rng = check_random_state(self.random_state if random_state is None else random_state)
        # components drawn per sample, so the rows come out shuffled, not grouped
        labels = rng.choice(self.n_components, size=n_samples, p=self.weights_ / self.weights_.sum())
        return labels, rng
