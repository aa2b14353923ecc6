"""What every finite mixture fitted by EM shares, and how to add one.

A mixture p(x) = Σ_k π_k p(x | θ_k) is the latent-variable model with a categorical z. EM
alternates (Bishop 2006, §9.2.2 and §9.4):

- E-step: responsibilities r_nk = π_k p(x_n|θ_k) / Σ_j π_j p(x_n|θ_j), computed in log space
  (``log_resp = wlp − logsumexp(wlp)``), and the additive statistics Σ_n r_nk T(x_n);
- M-step: maximum-likelihood (or MAP) parameters from those statistics.

With ``hard=True`` the E-step keeps only the most probable component (classification EM,
Celeux & Govaert 1992); the objective it climbs is Σ_n max_k log π_k p(x_n|θ_k).

How to add a mixture
--------------------
Write two classes. A :class:`Family`, frozen for one fit, holds the family's math as pure
functions of explicit parameters ``P`` (any object; a frozen dataclass of tensors reads best):

- ``log_weighted(X, P) -> (n, K)``: log π_k + log p(x | θ_k) of a block of rows;
- ``resp_stats(X, resp, w, P) -> MixtureStats``: the additive statistics of the block for
  given responsibilities ``resp`` (n, K) and weights ``w`` (n,) or None;
- ``m_step(stats, P) -> P``: the new parameters (``P`` is also the base parameters of
  :meth:`Family.base_params` for the first M-step, from the initial responsibilities);

and, where needed, ``block_context`` (work on a block that both halves of the E-step
share, passed to them as ``ctx=``), ``base_params`` (parameters known before EM, e.g. a centring shift),
``with_user_init`` / ``init_given`` (user initial parameters) and ``lower_bound`` (a penalised
objective). Then subclass :class:`MixtureBase` with the hyperparameters in ``__init__`` and the
four abstract methods: ``_family(n_features, scale, fit=True)`` (check the hyperparameters — the shared
``check_weights_init`` and friends return the checked arrays — and build the family in working
units), ``_attributes(P, scale)`` (fitted attributes from parameters), ``_parameters(scale)``
(parameters from the fitted attributes) and ``_n_parameters()``. Set ``_scaled = False`` when
the data must keep their own units (values in [0, 1]), and override ``_prepare_X`` to check or
transform the input. The base class owns fitting (initialisation, the engine, the final
E-step), the queries (``score_samples``, ``predict_proba``, ``predict``, ``bic``, ``aic``),
chunked and Dask input, sample weights, ``partial_fit`` (stepwise online EM on the family's
own statistics, :mod:`latentspace.mixture._stream`) and the working scale; ``tests/mixture/test_new_family.py`` adds a
Poisson mixture in under 80 lines.

The working scale: data whose magnitude is beyond 2^(±emax/4) are multiplied by an exact
power of two (:func:`latentspace._math.working_scale`) so that their squares stay
representable. It is applied at two boundaries only: the engine reads a scaled view of the
source, and ``_attributes`` / ``_parameters`` convert between working and data units. No
family function knows about it. A query is evaluated at the working scale of the larger of
the query and the model (:meth:`MixtureBase._magnitude`), never of the query alone, so tiny
queries against an ordinary model stay in its units and huge ones keep it representable.
"""

from __future__ import annotations

import math
import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from sklearn.base import DensityMixin

from .._backend import ArrayLike, ArrayOrTensor, to_numpy
from .._math import (
    abs_max,
    mean_log_density,
    pow2_scale,
    representable_log_density,
    total_log_density,
    working_scale,
)
from .._validation import (
    check_choice,
    check_finite_result,
    check_float,
    check_int,
    check_missing,
    check_n_samples_to_draw,
    check_random_state,
    check_seed,
)
from ..base import LatentModel
from ..cluster import KMeans, kmeans_plusplus, weighted_rows
from ..data import Chunk, ChunkedSource, DaskSource, InMemorySource, SourceInput, split_rows
from ..em import run_em, summarize_source
from ..exceptions import ConvergenceWarning
from ._family import Family, MixtureStats, check_means_init, check_weights_init, e_step_block
from ._stream import (check_learning_params, query_weights, running_state, stepwise_update,
                      weight_summary, weight_unit, weighted_mean, weighted_total)
from ._missing import check_observed_columns, fill_values

if TYPE_CHECKING:  # Python 3.10 has no typing.Self
    from typing_extensions import Self

__all__ = ["Family", "MixtureBase", "MixtureStats", "check_means_init", "check_weights_init"]


_LIMIT_BITS = 20  # how far (in powers of two of the model's magnitude) a lost row is placed

# ----------------------------------------------------------------------------- the source
class _WorkingView:
    """A source seen in working units: each chunk cut into blocks of ``rows`` rows, each block
    checked by ``prepare``, made float64 and multiplied by ``scale``.

    ``map_reduce`` runs inside the underlying source's own ``map_reduce`` (within the tasks
    of a Dask source), so blocks are formed where the data are. With ``fill`` (D,) (working
    units), NaN entries are read as those values (the initialisers need complete rows).
    """

    def __init__(self, source, prepare, scale: float, rows: int, wscale: float = 1.0,
                 weighted: bool = True, fill=None):
        self.source, self.prepare, self.scale, self.rows = source, prepare, scale, rows
        self.wscale = wscale  # an exact power of two the sample weights are multiplied by
        self.weighted = weighted  # whether the first pass found sample weights
        self.n_samples, self.n_features = source.n_samples, source.n_features
        self.dtype, self.device = torch.float64, source.device
        self.fill = fill

    def filled(self, fill) -> "_WorkingView":
        """The same view with NaN entries read as ``fill`` (D,) in working units."""
        return _WorkingView(self.source, self.prepare, self.scale, self.rows, self.wscale,
                            self.weighted, fill)

    def work(self, X: torch.Tensor) -> torch.Tensor:
        X = self.prepare(X)
        if X.dtype == torch.float32 and X.device.type == "cpu" and X.layout == torch.strided:
            # numpy's conversion runs on the calling thread: torch's would wake its thread
            # pool between two compiled passes whose own threads still spin (float32 fits
            # took twice the float64 time that way)
            X = torch.from_numpy(X.numpy().astype(np.float64))
        else:
            X = X.to(torch.float64)
        X = X * self.scale if self.scale != 1.0 else X
        if self.fill is not None:
            X = torch.where(torch.isnan(X), self.fill.to(X.device), X)
        return X

    def weights(self, w):
        """A chunk's weights times ``wscale``; a chunk's own weights that the first pass did
        not check (chunks after an unweighted first one) are refused when negative or not
        finite (one cheap reduction)."""
        if w is None:
            return None
        if not self.weighted:
            raise ValueError("a chunk has sample weights but the first chunk has none; give "
                             "(X_chunk, sample_weight_chunk) pairs for every chunk or none.")
        if not bool(torch.isfinite(w).all()) or bool((w < 0).any()):
            raise ValueError("sample_weight must be finite and non-negative; a chunk's "
                             "weights are not.")
        return w if self.wscale == 1.0 else w * self.wscale

    def _blocks(self, chunk: Chunk):
        w = self.weights(chunk.w)
        for start, Xb in split_rows(chunk.X, self.rows):
            wb = None if w is None else w[start : start + Xb.shape[0]]
            yield Chunk(self.work(Xb), wb, chunk.offset + start)

    def map_reduce(self, f):
        def per_chunk(chunk):
            total = None
            for block in self._blocks(chunk):
                part = f(block)
                total = part if total is None else total + part
            return total

        return self.source.map_reduce(per_chunk)

    def map_chunks(self, f) -> list:
        return self.source.map_chunks(lambda chunk: f(Chunk(self.work(chunk.X),
                                                            self.weights(chunk.w), chunk.offset)))

    def take(self, index) -> torch.Tensor:
        return self.work(self.source.take(index))

    def take_weights(self, index):
        return self.weights(self.source.take_weights(index))

    def kmeans_input(self):
        """The whole data in working units, as input for :class:`~latentspace.cluster.KMeans`
        (a tensor, a Dask array or a chunked source: the source's own kind)."""
        src = self.source
        if isinstance(src, InMemorySource):
            return self.work(src.X)
        if isinstance(src, DaskSource):
            return src.map_blocks(self.work)
        return ChunkedSource(lambda: ((self.work(c.X), self.weights(c.w)) if c.w is not None
                                      else self.work(c.X) for c in src.chunks()))

    def kmeans_weights(self):
        """The sample weights for :meth:`kmeans_input`: None, or a tensor of (n,) for data in
        memory or in Dask (weights are small); chunked input carries its own (see
        :meth:`kmeans_input`)."""
        src = self.source
        if isinstance(src, ChunkedSource):
            return None
        return self.take_weights(np.arange(src.n_samples))


# ----------------------------------------------------------------------------- the engine model
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


def _rows_from_data(view, K: int, rng) -> np.ndarray:
    """``init_params="random_from_data"``: K distinct rows, uniformly without weights, else
    drawn with probability ∝ w without replacement (never a row of weight 0)."""
    w = view.take_weights(np.arange(view.n_samples))
    if w is None:
        return rng.choice(view.n_samples, size=K, replace=False)
    return weighted_rows(w, K, rng, "init_params='random_from_data'", "n_components",
                         "give more rows positive weight, lower n_components or use "
                         "init_params='kmeans'")


@dataclass(frozen=True)
class _MixtureEM:
    """The engine model of one fit: the family, how to initialise and the base parameters.

    Its hooks read only these fields and their arguments (see :mod:`latentspace.em._engine`);
    the engine reads the data through a :class:`_WorkingView`.
    """

    name: str
    family: Family
    hard: bool
    init: str  # one of MixtureBase._init_choices
    base: object  # Family.base_params, or None
    kmeans_device: str
    fill: object = None  # (D,) working-unit values of missing entries for the initialisers

    def _e_step_stats(self, chunk: Chunk, P) -> MixtureStats:
        return e_step_block(self.family, self.hard, chunk.X, chunk.w, P)

    def _m_step(self, stats, P):
        return self.family.m_step(stats, P)

    def _lower_bound(self, stats, P) -> float:
        return self.family.lower_bound(stats, P)

    def _init_params(self, view: _WorkingView, rng):
        if self.family.init_given():
            return self.family.with_user_init(None, self.base)
        if self.fill is not None:  # missing entries: the initialisers see column means
            view = view.filled(self.fill)
        resp_fn = self._init_resp_fn(view, rng)

        def f(chunk):
            return self.family.resp_stats(chunk.X, resp_fn(chunk), chunk.w, self.base).with_loglik(0.0)

        params = self.family.m_step(view.map_reduce(f), self.base)
        return self.family.with_user_init(params, self.base)

    def _init_resp_fn(self, view: _WorkingView, rng):
        """A function (block in working units) -> initial responsibilities (n, K), the same
        whatever the chunking."""
        K = self.family.n_components
        if self.init == "kmeans":
            km = KMeans(K, n_init=1, random_state=rng, device=self.kmeans_device)
            # K-means runs in the working units (an exact power-of-two rescaling), where its
            # inertia is representable even for data near the float64 limits
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # duplicates: the mixture warns on its own
                w = view.kmeans_weights()
                km.fit(view.kmeans_input(), sample_weight=None if w is None else to_numpy(w))

            def resp(chunk):
                labels = km.predict(chunk.X)
                return torch.zeros(len(chunk), K, dtype=torch.float64, device=chunk.X.device).scatter_(
                    1, labels[:, None], 1.0
                )

            return resp
        if self.init in ("k-means++", "random_from_data"):
            if self.init == "k-means++":
                _, idx = kmeans_plusplus(view, K, rng)
            else:
                idx = _rows_from_data(view, K, rng)
            where = {int(i): k for k, i in enumerate(idx)}

            def resp(chunk):
                r = torch.zeros(len(chunk), K, dtype=torch.float64, device=chunk.X.device)
                for i, k in where.items():
                    if chunk.offset <= i < chunk.offset + len(chunk):
                        r[i - chunk.offset, k] = 1.0
                return r

            return resp
        seed = int(rng.randint(np.iinfo(np.int32).max))

        def resp(chunk):  # type: ignore[no-redef]  # the random start's responsibilities
            u = _uniform_rows(seed, chunk.offset, len(chunk), K)
            u /= u.sum(1, keepdims=True)
            return torch.as_tensor(u, device=chunk.X.device)

        return resp


# ----------------------------------------------------------------------------- the estimator
class MixtureBase(SourceInput, DensityMixin, LatentModel, ABC):
    """Shared EM fitting and queries of the mixtures (see the module docstring)."""

    _init_choices = ("kmeans", "k-means++", "random", "random_from_data")
    _scaled = True  # fit in working units (exact power-of-two rescaling of extreme data)
    # the fit does not change when every sample weight is multiplied by one constant (no
    # prior counted in samples): fits then scale the weights by a power of two (_stream.py)
    _weight_scale_free = False

    # --- what a family supplies -----------------------------------------------------------
    @abstractmethod
    def _family(self, n_features: int, scale: float, *, fit: bool = True) -> Family:
        """Check the model's hyperparameters and build its :class:`Family` in working units
        (``scale`` × data units); ``fit=False`` (queries) may skip what only fitting needs,
        such as the user's initial parameters. Raises ``ValueError`` for a bad
        hyperparameter."""

    @abstractmethod
    def _attributes(self, P, scale: float) -> dict:
        """Fitted attributes (name -> ndarray, data units) from parameters in working units."""

    @abstractmethod
    def _parameters(self, scale: float):
        """Parameters in working units at ``scale`` from the fitted attributes."""

    @abstractmethod
    def _n_parameters(self) -> int:
        """Number of free parameters (for :meth:`bic` and :meth:`aic`)."""

    def _check_cost(self, n_samples: int, n_features: int) -> None:
        """Refuse, before any pass over the data, a fit whose cost the data cannot justify
        (``ValueError`` naming the estimate and the alternative); none by default."""

    def _prepare_X(self, X: torch.Tensor) -> torch.Tensor:
        """Per-model input check on a validated block (e.g. values in [0, 1])."""
        return X

    def _check_summary(self, summary, scale: float) -> None:
        """Refuse data the hyperparameters cannot fit, from the first pass's moments
        (``summary`` of ``x * scale``, see :func:`latentspace.em.summarize_source`); none by
        default."""

    # --- parameters -------------------------------------------------------------------
    def _check_common_params(self):
        check_int("n_components", self.n_components, low=1)
        check_float("tol", self.tol, low=0)
        check_int("max_iter", self.max_iter, low=0)
        check_int("n_init", self.n_init, low=1)
        check_int("verbose", self.verbose, low=0)
        if hasattr(self, "missing"):
            check_missing(self.missing)
        check_seed("random_state", self.random_state)
        check_choice("init_params", self.init_params, self._init_choices)
        if not isinstance(self.warm_start, (bool, np.bool_)):
            raise ValueError(f"warm_start must be True or False, got {self.warm_start!r}.")
        if not isinstance(self.hard, (bool, np.bool_)):
            raise ValueError(f"hard must be True or False, got {self.hard!r}.")

    def _set_attributes(self, P, scale: float) -> None:
        """All attributes checked finite before any is set: a failed fit leaves an earlier
        one intact."""
        attrs = {k: to_numpy(v) for k, v in self._attributes(P, scale).items()}
        for name, value in attrs.items():
            check_finite_result(
                name, value,
                "the data's scale is beyond float64 for this model; rescale X (e.g. "
                "StandardScaler).",
            )
        for name, value in attrs.items():
            setattr(self, name, value)

    # --- fit --------------------------------------------------------------------------
    def fit(self, X: ArrayLike | ChunkedSource, y: object = None,
            sample_weight: ArrayLike | None = None) -> Self:
        """Estimate the mixture's parameters by EM (exact batch EM, also on chunked input).

        Parameters
        ----------
        X : array-like, tensor, memmap, ChunkedSource or Dask array of shape (n_samples, n_features)
        y : ignored
        sample_weight : array-like of shape (n_samples,), Dask array or None
            Non-negative weights w_n, at least one positive: every statistic is the weighted
            sum Σ_n w_n r_nk T(x_n), so an integer weight equals repeating the row and a
            weight of 0 equals removing it. Chunked input gives its weights as pairs
            ``(X_chunk, sample_weight_chunk)`` instead; a Dask ``X`` takes a Dask array.

        Returns
        -------
        self

        Notes
        -----
        ``fit`` starts afresh (also the running statistics of :meth:`partial_fit`, which it
        leaves at those of its final E-step). Use it, chunked, for data that can be read
        several times; use :meth:`partial_fit` for one pass over a stream.
        """
        self._check_common_params()
        check_learning_params(self)
        warm = bool(self.warm_start) and hasattr(self, "converged_")
        d_prev = getattr(self, "n_features_in_", None)
        source, kind = self._make_source(X, sample_weight, block_rows=1 << 14)
        self._remember_fit_output(kind, source.dtype)
        d = source.n_features
        if warm and d != d_prev:
            raise ValueError(
                f"X has {d} features, but {type(self).__name__} is expecting {d_prev} features "
                "as input (warm_start=True reuses the previous fit)."
            )
        return self._fit_source(source, warm)

    def _fit_source(self, source, warm: bool):
        """EM on a validated source (``fit``, and the first :meth:`partial_fit` call)."""
        d = source.n_features
        family = self._family(d, 1.0)  # hyperparameters checked before any pass over the data
        n, K = source.n_samples, self.n_components
        n, wmax = weight_summary(source)  # rows of weight 0 are no data
        if n < K:
            raise ValueError(
                f"Expected n_samples >= n_components but got n_components = {K}, "
                f"n_samples = {n}" + (" (rows of positive sample_weight)." if n < source.n_samples
                                      else ".")
            )
        self._check_cost(n, d)
        summary, scale, shift = summarize_source(source, scaled=self._scaled)
        if not math.isfinite(summary.n):
            raise ValueError("sample_weight sums beyond the float64 range; divide the weights "
                             "by a constant.")
        check_observed_columns(summary)
        self._check_summary(summary, scale)
        if scale != 1.0:  # extreme data: the family again, in their working units
            family = self._family(d, scale)
        view = _WorkingView(source, self._prepare_X, scale, family.block_rows(d),
                            weight_unit(self, wmax), weighted=wmax is not None)
        model = _MixtureEM(
            name=type(self).__name__, family=family, hard=bool(self.hard),
            init=self.init_params, base=family.base_params(summary, shift),
            kmeans_device=self.device,
            fill=None if family.init_given() else fill_values(summary, view, shift),
        )
        result = run_em(
            model, view, n_init=self.n_init, max_iter=self.max_iter, tol=self.tol,
            rng=check_random_state(self.random_state), verbose=self.verbose,
            init_params=self._parameters(scale) if warm else None,
        )
        self._set_attributes(result.params, scale)
        self._warn_unused_components()
        # log p(x) − log p'(x·scale): the Jacobian of the units, per observed entry
        d_obs = d if not summary.n_missing else float(summary.observed.sum()) / summary.n
        corr = d_obs * math.log(scale)
        self.lower_bounds_ = np.asarray(result.lower_bounds, dtype=np.float64) + corr
        self.lower_bound_ = float(self.lower_bounds_[-1])
        self.n_iter_ = int(result.n_iter)
        self.converged_ = bool(result.converged)
        # the statistics of the final E-step start partial_fit's running statistics
        for key, value in running_state(result.stats, result.params, scale, 1,
                                        n_seen=summary.n).items():
            setattr(self, key, value)
        return self

    def partial_fit(self, X: ArrayLike, y: object = None,
                    sample_weight: ArrayLike | None = None) -> Self:
        """Update the mixture with one chunk of a stream (stepwise online EM).

        Stepwise EM (Cappé & Moulines 2009; Liang & Klein 2009; module
        :mod:`latentspace.mixture._stream`, eqs. 1-2): the chunk's statistics under the
        current parameters, per unit weight, ŝ_t, are blended into running statistics
        s̄ ← (1 − η_t) s̄ + η_t ŝ_t with η_t = (learning_offset + t)^(−learning_decay), and
        the M-step runs on N_t · s̄ (N_t the total weight seen), so priors and
        regularisation weigh as in a batch fit of the same total.

        The first call on an unfitted model fits its chunk by the model's own
        initialisation and batch EM (``n_init``, ``max_iter``, ``tol``), which needs at least
        ``n_components`` rows of positive weight; its final E-step starts s̄. After
        :meth:`fit`, ``partial_fit`` continues from the fitted model: s̄ from fit's final
        E-step, N its total weight, and the next call is t = 2. The working scale is fixed by
        that first chunk (or fit): a later chunk beyond it raises ``ValueError``.

        Use :meth:`fit` (chunked input is exact batch EM) when the data can be read several
        times, e.g. from disk; use ``partial_fit`` for one pass over a stream, or for data
        whose distribution drifts (a ``learning_decay`` below 1 forgets the past faster).

        Parameters
        ----------
        X : array-like or tensor of shape (n_chunk, n_features)
        y : ignored
        sample_weight : array-like of shape (n_chunk,) or None
            Non-negative weights of the chunk's rows, at least one positive.

        Returns
        -------
        self

        Notes
        -----
        Each call appends one entry to ``lower_bounds_``: the chunk's per-sample bound under
        the parameters it was E-stepped with (before the update), with a prior weighed for
        N_t; the first call on an unfitted model appends the bound of its batch fit. The
        running statistics are fitted attributes (``running_*_``, ``n_samples_seen_``,
        ``n_steps_``) saved with the model, so a loaded model continues identically.
        ``n_iter_`` counts the batch EM iterations that started the stream plus one per later
        call; ``converged_`` is that batch fit's.
        """
        self._check_common_params()
        check_learning_params(self)
        if hasattr(self, "weights_"):
            return stepwise_update(self, X, sample_weight)
        Xt, kind = self._check_X(X, reset=True)
        self._remember_fit_output(kind, Xt.dtype)
        w = None if sample_weight is None else query_weights(sample_weight, Xt.shape[0], Xt.device)
        self._fit_source(InMemorySource(Xt, w, chunk_rows=1 << 14), warm=False)
        self.lower_bounds_ = self.lower_bounds_[-1:].copy()  # one entry per call
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

    # --- queries ----------------------------------------------------------------------
    def _magnitude(self) -> float:
        """The fitted model's largest magnitude in data units (the means' largest |μ|), which
        a query's working scale must keep representable along with the query's own."""
        means = getattr(self, "means_", None)
        return float(np.max(np.abs(means))) if means is not None and means.size else 0.0

    def _wlp(self, Xt: torch.Tensor) -> torch.Tensor:
        """log π_k + log p(x|θ_k) of validated rows (n, K), float64, data units.

        The working scale is that of the larger of the query and the model (not of the query
        alone): a tiny query against an ordinary model stays in the model's units, and a huge
        one is scaled down with the model, whose parameters then stay representable.
        """
        d = Xt.shape[1]
        scale = self._query_scale(Xt)
        family = self._family(d, scale, fit=False)
        params = self._parameters(scale)
        corr = d * math.log(scale)
        missing = getattr(self, "missing", "raise") == "marginalize"

        def jacobian(Xb):  # per observed entry: fewer for rows with missing values
            if scale == 1.0 or not missing or not bool(torch.isnan(Xb).any()):
                return corr
            return (~torch.isnan(Xb)).sum(1, keepdim=True).to(torch.float64) * math.log(scale)

        out = [
            family.log_weighted(Xb.to(torch.float64) * scale if scale != 1.0
                                else Xb.to(torch.float64), params) + jacobian(Xb)
            for _, Xb in split_rows(Xt, family.block_rows(d))
        ]
        return torch.cat(out) if out else torch.zeros(0, self.n_components, dtype=torch.float64)

    def _query_scale(self, Xt: torch.Tensor) -> float:
        """The working scale of a query (see :meth:`_wlp`); NaN entries (missing values)
        are left out of its magnitude."""
        if not self._scaled:
            return 1.0
        amax = abs_max(Xt)
        if amax != amax:
            amax = abs_max(torch.nan_to_num(Xt, nan=0.0))
        return working_scale(max(amax, self._magnitude()), torch.float64)

    def _weighted_log_prob(self, X, *, limit: bool = False):
        """Validated query -> (log π_k + log p(x|θ_k) in data units (n, K) float64, kind, dtype).

        A row so far from every component that all its log-densities fall below −1e308 (they
        are −inf: the true values, of order −abs(x)²/σ², have no float64) gets, with ``limit``,
        the log-densities of the same row brought down by a power of two to 2^20 times the
        model's magnitude instead: the component ranking of a far point is that of its
        direction, so its responsibilities are the limit of those along the ray (one-hot
        except for ties), never the NaN of −inf − (−inf). At 2^20 the leading quadratic
        terms dominate the rest by 2^20 while their float64 rounding (2^40·ε) stays far
        below the linear terms that separate components of a shared covariance.
        """
        Xt, kind = self._query_rows(X)
        wlp = self._wlp(Xt)
        if limit and wlp.numel():
            lost = ~torch.isfinite(wlp.amax(1))
            if bool(lost.any()):
                rows = Xt[lost].to(torch.float64)
                peak = torch.nan_to_num(rows, nan=0.0).abs().amax(1, keepdim=True)
                target = max(self._magnitude(), 1.0) * 2.0 ** _LIMIT_BITS
                t = torch.tensor([pow2_scale(float(p)) * pow2_scale(1.0 / target) * 2.0
                                  for p in peak.flatten()], dtype=torch.float64)
                wlp[lost] = self._wlp(rows * t[:, None])
        return wlp, kind, Xt.dtype

    def _query_rows(self, X):
        """Validated, prepared query rows and the input's kind."""
        self._check_fitted()
        Xt, kind = self._check_X(X, reset=False)
        return self._prepare_X(Xt), kind

    def _far_wlp(self, rows: torch.Tensor):
        """log π_k + log p(x|θ_k) (m, K) of rows whose log-density overflowed on the ordinary
        route, by a route that overflows only where the result does, and log₂ of their
        distances from each component in standard deviations (m, K); a family whose
        log-densities are always representable need not supply it."""
        raise NotImplementedError

    def _log_density(self, X) -> tuple[torch.Tensor, object, torch.dtype]:
        """(log p(x) (n,) float64 and finite, kind, dtype) of a query: a row whose
        log-density is below the range of its dtype raises ``ValueError`` naming it
        (:func:`latentspace._math.representable_log_density`)."""
        Xt, kind = self._query_rows(X)
        ll = torch.logsumexp(self._wlp(Xt), dim=1)

        def far(rows):
            wlp, log2_dist = self._far_wlp(Xt[rows].to(torch.float64))
            return torch.logsumexp(wlp, dim=1), log2_dist.amin(1)  # the nearest component

        return representable_log_density(ll, far, type(self).__name__, Xt.dtype), kind, Xt.dtype

    def score_samples(self, X: ArrayLike) -> ArrayOrTensor:
        """Log-likelihood log p(x) of each row.

        A row so far from every component that log p(x) is below the range of X's dtype (some
        1e154 standard deviations away in float64) raises ``ValueError`` naming it.

        Parameters
        ----------
        X : array-like or tensor of shape (n_samples, n_features)

        Returns
        -------
        log_prob : ndarray or tensor of shape (n_samples,)
            In X's kind (a tensor for a tensor, else an ndarray) and float dtype.
        """
        ll, kind, dtype = self._log_density(X)
        return self._out(ll.to(dtype), kind)

    def predict_proba(self, X: ArrayLike) -> ArrayOrTensor:
        """Responsibilities p(z = k | x) of each row.

        Parameters
        ----------
        X : array-like or tensor of shape (n_samples, n_features)

        Returns
        -------
        resp : ndarray or tensor of shape (n_samples, n_components)
            Rows sum to 1; X's kind and float dtype.
        """
        wlp, kind, dtype = self._weighted_log_prob(X, limit=True)
        resp = torch.exp(wlp - torch.logsumexp(wlp, dim=1, keepdim=True))
        return self._out(resp.to(dtype), kind)

    def predict(self, X: ArrayLike) -> ArrayOrTensor:
        """Most probable component of each row (hard clustering).

        Parameters
        ----------
        X : array-like or tensor of shape (n_samples, n_features)

        Returns
        -------
        labels : ndarray or tensor of shape (n_samples,), int64
        """
        wlp, kind, _ = self._weighted_log_prob(X, limit=True)
        return self._out(wlp.argmax(1), kind)

    def impute(self, X: ArrayLike) -> ArrayOrTensor:
        """X with each missing (NaN) entry replaced by its conditional expectation.

        E[x_m | x_o] = Σ_k p(k | x_o) E[x_m | x_o, k] (eq. 1 of
        :mod:`latentspace.mixture._missing` for a Gaussian component, μ_km for a Bernoulli
        one), with the responsibilities p(k | x_o) of :meth:`predict_proba`. Needs
        ``missing="marginalize"``: with ``missing="raise"`` NaN in X raise the usual
        ``ValueError``.

        Parameters
        ----------
        X : array-like or tensor of shape (n_samples, n_features)

        Returns
        -------
        X_imputed : ndarray or tensor of shape (n_samples, n_features)
            X's kind (a tensor for a tensor, else an ndarray) and float dtype; observed
            entries exactly as given.
        """
        self._check_fitted()
        Xt, kind = self._check_X(X, reset=False)
        out = Xt.clone()
        nan = torch.isnan(Xt)
        rows = torch.nonzero(nan.any(1)).flatten()
        if rows.numel():
            sub = Xt[rows]
            wlp, _, _ = self._weighted_log_prob(sub, limit=True)
            resp = torch.exp(wlp - torch.logsumexp(wlp, dim=1, keepdim=True))  # (m, K)
            Xp = self._prepare_X(sub).to(torch.float64)
            # eq. (1) is linear in x_o: evaluated at the model's own scale, where its
            # covariances are representable whatever the query's magnitude
            scale = self._query_scale(Xp[:0])
            family = self._family(Xt.shape[1], scale, fit=False)
            params = self._parameters(scale)
            parts = []
            for start, Xb in split_rows(Xp, family.block_rows(Xt.shape[1])):
                Xb = Xb * scale if scale != 1.0 else Xb
                cond = family.conditional_means(Xb, params)  # (b, K, D)
                R = resp[start : start + Xb.shape[0]].to(cond.device)
                parts.append(torch.einsum("bk,bkd->bd", R, cond) / scale)
            filled = torch.cat(parts)
            if not bool(torch.isfinite(filled[nan[rows]]).all()):
                raise ValueError(
                    f"{type(self).__name__}.impute: the conditional expectations of X's missing "
                    "entries are beyond float64 (X is far beyond the model's scale); rescale X "
                    "or fit the model in X's units."
                )
            sub_nan = nan[rows]
            block = out[rows]
            block[sub_nan] = filled[sub_nan].to(out.dtype)
            out[rows] = block
        return self._out(out, kind)

    def fit_predict(self, X: ArrayLike, y: object = None,
                    sample_weight: ArrayLike | None = None) -> ArrayOrTensor:
        """``fit(X, sample_weight=sample_weight)`` then ``predict(X)`` (labels under the final
        parameters).

        Parameters
        ----------
        X : array-like or tensor of shape (n_samples, n_features)
        y : ignored
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights with at least one positive; None weighs every row 1.

        Returns
        -------
        labels : ndarray or tensor of shape (n_samples,), int64
        """
        return self.fit(X, sample_weight=sample_weight).predict(X)

    def score(self, X: ArrayLike, y: object = None,
              sample_weight: ArrayLike | None = None) -> float:
        """Mean log-likelihood of ``X``: Σ w log p(x) / Σ w with ``sample_weight``, else the
        plain mean.

        Parameters
        ----------
        X : array-like or tensor of shape (n_samples, n_features)
        y : ignored
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights with at least one positive; None weighs every row 1.

        Returns
        -------
        score : float
        """
        ll, _, _ = self._log_density(X)
        if sample_weight is None:
            return mean_log_density(ll)
        return weighted_mean(ll, query_weights(sample_weight, ll.shape[0], ll.device))

    def _total_log_likelihood(self, X, what: str, sample_weight=None) -> tuple[float, float]:
        """(log L = Σ w log p(x) in float64, n = Σ w) of validated ``X`` (w = 1 without
        weights); ``ValueError`` when a row's log-density or the total is beyond float64."""
        ll, _, _ = self._log_density(X)
        if sample_weight is None:
            return total_log_density(ll, what, type(self).__name__), ll.shape[0]
        w = query_weights(sample_weight, ll.shape[0], ll.device)
        return weighted_total(ll, w, what, type(self).__name__)

    def bic(self, X: ArrayLike, sample_weight: ArrayLike | None = None) -> float:
        """Bayesian information criterion −2 log L + p log n (lower is better).

        With ``sample_weight`` (array-like of shape (n_samples,)), log L = Σ w log p(x) and
        n = Σ w: integer weights give the criterion of the data with rows repeated, and
        weights that are not counts should be scaled so that Σ w is the effective sample
        size.

        Parameters
        ----------
        X : array-like or tensor of shape (n_samples, n_features)
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights with at least one positive; None weighs every row 1.

        Returns
        -------
        bic : float
        """
        log_l, n = self._total_log_likelihood(X, "BIC", sample_weight)
        return -2 * log_l + self._n_parameters() * math.log(n)

    def aic(self, X: ArrayLike, sample_weight: ArrayLike | None = None) -> float:
        """Akaike information criterion −2 log L + 2p (lower is better); with
        ``sample_weight``, log L = Σ w log p(x).

        Parameters
        ----------
        X : array-like or tensor of shape (n_samples, n_features)
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights with at least one positive; None weighs every row 1.

        Returns
        -------
        aic : float
        """
        log_l, _ = self._total_log_likelihood(X, "AIC", sample_weight)
        return -2 * log_l + 2 * self._n_parameters()

    def _sample_labels(self, n_samples, random_state, row_bytes: float):
        """Validated ``n_samples`` (``row_bytes``: memory of one drawn row), the component of
        each draw and the RandomState that drew them."""
        self._check_fitted()
        n_samples = check_n_samples_to_draw(n_samples, row_bytes, type(self).__name__)
        rng = check_random_state(self.random_state if random_state is None else random_state)
        # components drawn per sample, so the rows come out shuffled, not grouped
        labels = rng.choice(self.n_components, size=n_samples, p=self.weights_ / self.weights_.sum())
        return n_samples, labels, rng
