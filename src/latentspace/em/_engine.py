"""The EM loop, shared by every model fitted by expectation-maximisation (hard or soft).

A model supplies three pure pieces and the engine owns everything else:

- ``_init_params(source, rng) -> params``: starting parameters;
- ``_e_step_stats(chunk, params) -> Stats``: additive statistics of one chunk under
  ``params`` (their ``loglik`` is the objective's sum over the chunk);
- ``_m_step(stats, params) -> params``: the new parameters from the summed statistics.

Optional hooks: ``_lower_bound(stats, params) -> float`` (default ``stats.loglik / stats.n``,
the mean log-likelihood) and ``_em_converged(lower_bounds, old, new, tol) -> bool`` (default:
the lower bound changed by less than ``tol``).

Each iteration makes one pass over the data (the E-step, with the statistics of the current
parameters) and then the M-step. Because the E-step of iteration t evaluates the objective
of the parameters produced by iteration t−1, the trace ``lower_bounds`` holds the objective of
the initial parameters, then of each update; its last entry always belongs to the returned
parameters (one final E-step is run when the loop ends on ``max_iter``). EM never lowers the
objective (Dempster, Laird & Rubin 1977, Thm. 1), so the trace is non-decreasing up to
rounding.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

from .._progress import progress_write
from ..exceptions import ConvergenceWarning

__all__ = ["EMResult", "run_em"]

_RUN_MARGIN = 1e-10  # relative improvement a later initialisation needs to replace the best


@dataclass
class EMResult:
    """Outcome of :func:`run_em` (the best of ``n_init`` runs).

    Attributes
    ----------
    params : object
        Fitted parameters, as the model's ``_m_step`` returns them.
    lower_bounds : list of float
        Objective of the initial parameters and after each M-step (length ``n_iter + 1``).
    n_iter : int
        Number of M-steps taken.
    converged : bool
    stats : Stats
        Statistics of the final E-step, i.e. under ``params``.
    init : int
        Index of the winning initialisation.
    """

    params: Any
    lower_bounds: list
    n_iter: int
    converged: bool
    stats: Any
    init: int = 0

    @property
    def lower_bound(self) -> float:
        return self.lower_bounds[-1]


def _lower_bound(model, stats, params) -> float:
    hook = getattr(model, "_lower_bound", None)
    if hook is not None:
        return float(hook(stats, params))
    return float(stats.loglik / stats.n) if stats.n > 0 else -math.inf


def _converged(model, lower_bounds, old, new, tol) -> bool:
    hook = getattr(model, "_em_converged", None)
    if hook is not None:
        return bool(hook(lower_bounds, old, new, tol))
    return abs(lower_bounds[-1] - lower_bounds[-2]) < tol


def _one_run(model, source, params, *, max_iter, tol, verbose, run):
    e_step = lambda p: source.map_reduce(lambda chunk: model._e_step_stats(chunk, p))  # noqa: E731
    stats = e_step(params)
    lower_bounds = [_lower_bound(model, stats, params)]
    old = None
    converged = False
    n_iter = 0
    while n_iter < max_iter:
        new = model._m_step(stats, params)
        n_iter += 1
        old, params = params, new
        stats = e_step(params)
        lower_bounds.append(_lower_bound(model, stats, params))
        if verbose:
            progress_write(f"init {run} iteration {n_iter}: lower bound {lower_bounds[-1]:.10g}")
        if _converged(model, lower_bounds, old, params, tol):
            converged = True
            break
    return EMResult(params, lower_bounds, n_iter, converged, stats, run)


def run_em(
    model,
    source,
    *,
    n_init: int = 1,
    max_iter: int = 100,
    tol: float = 1e-3,
    rng=None,
    init_params=None,
    verbose: int = 0,
    warn: bool = True,
) -> EMResult:
    """Fit ``model``'s parameters to ``source`` by EM; return the best of ``n_init`` runs.

    Parameters
    ----------
    model : object
        Provides ``_init_params``, ``_e_step_stats``, ``_m_step`` (module docstring); its
        ``name`` attribute, when it has one, names it in the convergence warning.
    source : Source
        Data, reached only through ``source.map_reduce`` (and the model's initialiser).
    n_init : int
        Number of initialisations; the run with the highest final lower bound wins (a later
        run must be better by more than a relative 1e-10). Ignored (one run) when
        ``init_params`` is given.
    max_iter : int
        Maximum number of M-steps per run; 0 evaluates the initial parameters only.
    tol : float
        Convergence threshold handed to the model's ``_em_converged`` (default rule: change
        of the per-sample lower bound below ``tol``).
    rng : numpy.random.RandomState
        The fit's one random generator, passed to ``_init_params``.
    init_params : object or None
        Start from these parameters instead of initialising (``warm_start``).
    verbose : int
        Write the lower bound after each iteration to stderr when > 0
        (:func:`latentspace._progress.progress_write`).
    warn : bool
        Emit a ``ConvergenceWarning`` when the best run did not converge.

    Returns
    -------
    EMResult
    """
    best = None
    runs = 1 if init_params is not None else n_init
    for run in range(runs):
        params = init_params if init_params is not None else model._init_params(source, rng)
        result = _one_run(model, source, params, max_iter=max_iter, tol=tol, verbose=verbose, run=run)
        # a later run must win by more than rounding, so that equal optima (e.g. the same
        # clustering reached twice) are resolved the same way whatever the chunking
        margin = _RUN_MARGIN * abs(best.lower_bound) if best is not None else 0.0
        if best is None or result.lower_bound > best.lower_bound + margin or (
            math.isnan(best.lower_bound) and not math.isnan(result.lower_bound)
        ):
            best = result
    assert best is not None  # runs >= 1: at least one run was made
    if warn and max_iter > 0 and not best.converged:
        lb = best.lower_bounds
        change = abs(lb[-1] - lb[-2]) if len(lb) > 1 else float("nan")
        warnings.warn(
            f"{getattr(model, 'name', type(model).__name__)} did not converge: run "
            f"{best.init + 1} of {runs} stopped "
            f"at max_iter={max_iter} with the lower bound still changing by {change:.3g} per "
            f"iteration (tol={tol}). Increase max_iter, raise tol, or standardise the data / "
            "try another init.",
            ConvergenceWarning,
            stacklevel=3,
        )
    return best
