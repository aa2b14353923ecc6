"""Stepwise online EM for the mixtures (``partial_fit``), and sample weights in their queries.

Stepwise EM (Cappé & Moulines 2009, "On-line expectation-maximization algorithm for latent
data models"; Liang & Klein 2009, "Online EM for unsupervised models", stepwise EM) keeps
running sufficient statistics per unit weight s̄ and, for each new chunk t ≥ 2,

    ŝ_t = S(chunk; θ_{t−1}) / w_t,      s̄_t = (1 − η_t) s̄_{t−1} + η_t ŝ_t,               (1)
    η_t = (τ₀ + t)^(−κ),                 θ_t = M-step(N_t · s̄_t),                         (2)

with S the family's additive statistics (``resp_stats``) of the chunk under the current
parameters, w_t the chunk's total weight and N_t the total weight seen so far. κ
(``learning_decay``) in (0.5, 1] makes Σ η_t = ∞ and Σ η_t² < ∞ (Robbins & Monro 1951);
τ₀ (``learning_offset``) ≥ 0 damps the first steps. The M-step runs on N_t · s̄_t so that
priors and regularisation weigh as in a batch fit of the same total weight. κ = 1, τ₀ = 0
makes s̄ the plain mean of the chunks' statistics (each under the parameters of its time).

The state the next call needs is kept as fitted attributes (numpy arrays, saved with the
model): ``running_<field>_`` for each tensor field of the family's statistics, per unit
weight and in working units, ``running_shift_`` (the centring shift the statistics were
taken around, for families whose parameters carry one), ``running_scale_`` (the working
scale), ``n_samples_seen_`` (N_t) and ``n_steps_`` (t).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import torch

from .._backend import to_numpy
from .._math import abs_max, pow2_scale, working_scale
from .._validation import check_float
from ..data import ChunkedSource, InMemorySource, check_sample_weight, split_rows
from ._family import e_step_block

__all__ = ["DEFAULT_LEARNING_DECAY", "DEFAULT_LEARNING_OFFSET", "check_learning_params",
           "step_size", "stepwise_update", "weight_summary", "weight_unit", "weighted_mean",
           "weighted_total"]

# chosen by ``bench/stream.py --grid`` (docs/decisions.md): on binarised MNIST the chunks seen
# early were E-stepped under poor parameters and κ in 0.6-0.7 forgets them fastest (gap to the
# batch fit 0.30 % against 0.78 % for κ = 1); on the Gaussian stream every κ ≤ 0.9 with a small
# offset is within 0.03 %. A large offset keeps the first chunk's statistics too long.
DEFAULT_LEARNING_DECAY = 0.7
DEFAULT_LEARNING_OFFSET = 1.0

_PREFIX = "running_"


def check_learning_params(est) -> tuple[float, float]:
    """``(learning_decay, learning_offset)`` of ``est`` checked (κ in (0.5, 1], τ₀ ≥ 0);
    models without them (a user's family) get the defaults."""
    kappa = check_float("learning_decay", getattr(est, "learning_decay", DEFAULT_LEARNING_DECAY),
                        low=0.5, high=1.0, low_open=True)
    tau = check_float("learning_offset",
                      getattr(est, "learning_offset", DEFAULT_LEARNING_OFFSET), low=0.0)
    return kappa, tau


def step_size(t: int, decay: float, offset: float) -> float:
    """η_t = (τ₀ + t)^(−κ), eq. (2)."""
    return float((offset + t) ** (-decay))


# ----------------------------------------------------------------------------- weights
def weighted_mean(ll: torch.Tensor, w: torch.Tensor) -> float:
    """Σ w ll / Σ w (finite float64 ``ll`` (n,), ``w`` (n,) >= 0 with a positive entry),
    without overflow: the weights are divided by their largest (the ratio is unchanged) and
    ``ll`` by a power of two when the plain sum overflows."""
    w = w.to(torch.float64) / float(w.max())
    total = float(w @ ll)
    if math.isfinite(total):
        return total / float(w.sum())
    t = pow2_scale(float(ll.abs().max()))
    return float(w @ (ll * t)) / float(w.sum()) / t


def weighted_total(ll: torch.Tensor, w: torch.Tensor, what: str, owner: str) -> tuple[float, float]:
    """(Σ w ll, Σ w) as floats, or ``ValueError`` when either (or twice the first, as the
    criteria's −2 log L needs) is beyond float64."""
    w = w.to(torch.float64)
    n = float(w.sum())
    if not math.isfinite(n):
        raise ValueError(
            f"sample_weight sums beyond the float64 range; the {what} needs Σ w. Divide the "
            "weights by a constant."
        )
    total = float(w @ ll)
    if not math.isfinite(2.0 * total):
        raise ValueError(
            f"the weighted log-likelihood of X under the fitted {owner} is beyond the float64 "
            f"range, so its {what} is not representable; divide sample_weight by a constant "
            "or check X's units."
        )
    return total, n


def query_weights(sample_weight, n: int, device) -> torch.Tensor:
    """Checked query weights (n,) float64 on ``device``."""
    return torch.as_tensor(check_sample_weight(sample_weight, n), device=device)


def _chunk_weights(source):
    """All weights of a source (n,) float64 numpy, or None when it carries none; a chunk
    without weights counts as weights 1."""
    if isinstance(source, InMemorySource):
        return None if source.w is None else to_numpy(source.w)
    if isinstance(source, ChunkedSource):
        if source.first_chunk().w is None:  # weights come with every chunk or with none
            return None
        def weights(c):
            if c.w is None:
                raise ValueError(
                    f"the chunk at row {c.offset} has no sample weights but the first chunk "
                    "has; give (X_chunk, sample_weight_chunk) pairs for every chunk or none."
                )
            return to_numpy(c.w).astype(np.float64)

        return np.concatenate(source.map_chunks(weights))
    w = source.take_weights(np.arange(source.n_samples))
    return None if w is None else to_numpy(w).astype(np.float64)


def weight_summary(source) -> tuple[int, float | None]:
    """(number of rows of positive weight, largest weight or None without weights); the
    weights of a chunked or Dask source are checked here (non-negative, finite, one positive)
    with the message of :func:`latentspace.data.check_sample_weight`."""
    w = _chunk_weights(source)
    if w is None:
        return int(source.n_samples), None
    if not isinstance(source, InMemorySource):
        w = check_sample_weight(w, source.n_samples)
    return int(np.count_nonzero(w > 0)), float(w.max())


def weight_unit(est, wmax) -> float:
    """The exact power of two the weights are multiplied by in a fit: 1 without weights or
    for a family whose fit depends on the weights' scale (a prior in pseudo-counts); for a
    scale-free one (``_weight_scale_free``), the one that brings the largest weight into
    [0.5, 1) when it lies outside [2^-30, 2^30], so that weights of 1e-300 or 1e300 keep the
    statistics representable and the M-step's 10ε guard on N_k negligible, without changing
    any rounding. Ordinary weights are left as they are: integer weights stay the counts of
    the repeated rows they stand for, guard included."""
    if wmax is None or not getattr(est, "_weight_scale_free", False) or \
            2.0 ** -30 <= wmax <= 2.0 ** 30:
        return 1.0
    return pow2_scale(wmax)


def _mstep_total(est, N: float) -> float:
    """The total weight the M-step multiplies s̄ by: N_t, or for a scale-free family a power
    of two times it when N_t is outside [1, 2^60] (see :func:`weight_unit`)."""
    if getattr(est, "_weight_scale_free", False) and not 1.0 <= N <= 2.0 ** 60:
        return N * pow2_scale(N)
    return N


# ----------------------------------------------------------------------------- running state
def _fields(stats) -> list[str]:
    """The tensor fields of a statistics value (beyond ``n`` and ``loglik``)."""
    return [f.name for f in dataclasses.fields(stats)
            if isinstance(getattr(stats, f.name), torch.Tensor)]


def _shift(P):
    return getattr(P, "shift", None) if dataclasses.is_dataclass(P) else None


def running_state(stats, P, scale: float, n_steps: int, n_seen: float | None = None) -> dict:
    """The fitted attributes of the running statistics: s̄ = stats / stats.n per field (numpy,
    working units), the shift of ``P`` where it has one, the scale, N (``n_seen``, default
    ``stats.n``) and t."""
    state: dict[str, Any] = {
        f"{_PREFIX}{f}_": to_numpy(getattr(stats, f) / stats.n).copy() for f in _fields(stats)
    }
    shift = _shift(P)
    if shift is not None:
        state[f"{_PREFIX}shift_"] = to_numpy(shift).copy()
    state[f"{_PREFIX}scale_"] = float(scale)
    state["n_samples_seen_"] = float(stats.n if n_seen is None else n_seen)
    state["n_steps_"] = int(n_steps)
    return state


def _scaled_stats(stats, factor: float, n: float):
    """``stats`` with every tensor field and ``loglik`` times ``factor`` and total weight n."""
    return dataclasses.replace(
        stats, n=float(n), loglik=float(stats.loglik) * factor,
        **{f: getattr(stats, f) * factor for f in _fields(stats)},
    )


def _has_state(est, template) -> bool:
    return all(hasattr(est, f"{_PREFIX}{f}_") for f in _fields(template)) and all(
        hasattr(est, a) for a in (f"{_PREFIX}scale_", "n_samples_seen_", "n_steps_"))


# ----------------------------------------------------------------------------- one step
def stepwise_update(est, X, sample_weight):
    """One ``partial_fit`` call of a fitted mixture ``est``: eqs. (1)-(2) on the chunk ``X``.

    A model without running statistics (built by ``from_kmeans``, or saved before they
    existed) restarts them from this chunk: s̄ = ŝ_t, N = w_t, t = 1.
    """
    name = type(est).__name__
    kappa, tau = check_learning_params(est)
    Xt, _ = est._check_X(X, reset=False)  # the standard feature-count error
    Xt = est._prepare_X(Xt)
    w = None if sample_weight is None else query_weights(sample_weight, Xt.shape[0], Xt.device)
    scale = float(getattr(est, f"{_PREFIX}scale_", 1.0)) if est._scaled else 1.0
    if est._scaled:
        amax = abs_max(Xt) * scale
        if working_scale(amax, torch.float64) != 1.0:
            raise ValueError(
                f"X's magnitude (max |x| = {abs_max(Xt):.3g}) is beyond what {name}'s working "
                f"scale (fixed by the data it was first fitted on) can represent; rescale X "
                "to the units of the earlier data, or fit again."
            )
    d = Xt.shape[1]
    family = est._family(d, scale, fit=False)
    P = est._parameters(scale)
    shift = getattr(est, f"{_PREFIX}shift_", None)
    if shift is not None and _shift(P) is not None:
        P = dataclasses.replace(P, shift=torch.as_tensor(shift, dtype=torch.float64,
                                                          device=_shift(P).device))
    # ŝ_t: the chunk's statistics under the current parameters, in working units
    stats = None
    for start, Xb in split_rows(Xt, family.block_rows(d)):
        Xw = Xb.to(torch.float64) * scale if scale != 1.0 else Xb.to(torch.float64)
        wb = None if w is None else w[start:start + Xb.shape[0]]
        part = e_step_block(family, bool(est.hard), Xw, wb, P)
        stats = part if stats is None else stats + part
    if not stats.n > 0:
        raise ValueError("sample_weight must have at least one positive weight; all weights "
                         "are zero.")
    restart = not _has_state(est, stats)
    if not restart:
        for f in _fields(stats):
            old = getattr(est, f"{_PREFIX}{f}_")
            if tuple(old.shape) != tuple(getattr(stats, f).shape):
                raise ValueError(
                    f"{name}'s running statistics {_PREFIX}{f}_ have shape {old.shape}, but "
                    f"its hyperparameters now give {tuple(getattr(stats, f).shape)} (they "
                    "changed since it was fitted); call fit to start again."
                )
    t = 1 if restart else int(est.n_steps_) + 1
    N = float(stats.n) + (0.0 if restart else float(est.n_samples_seen_))
    if not math.isfinite(N):
        raise ValueError("the total sample weight seen is beyond float64; divide the weights "
                         "by a constant.")
    eta = 1.0 if restart else step_size(t, kappa, tau)
    hat = _scaled_stats(stats, 1.0 / stats.n, 1.0)  # ŝ_t, per unit weight
    if restart:
        bar = hat
    else:  # eq. (1)
        bar = dataclasses.replace(hat, **{
            f: (1.0 - eta) * torch.as_tensor(getattr(est, f"{_PREFIX}{f}_"),
                                             dtype=torch.float64, device=getattr(hat, f).device)
            + eta * getattr(hat, f) for f in _fields(hat)})
    # the chunk's bound under θ_{t−1}, with priors weighed as for N_t: eq. (2)'s objective
    Nm = _mstep_total(est, N)
    bound = family.lower_bound(_scaled_stats(hat, Nm, Nm), P) + d * math.log(scale)
    new = family.m_step(_scaled_stats(bar, Nm, Nm), P)
    est._set_attributes(new, scale)  # checked finite before anything is set
    # s̄ stays around the shift it was taken about (that of P, which the M-step keeps)
    state = running_state(bar, P, scale, t, n_seen=N)
    for key, value in state.items():
        setattr(est, key, value)
    trace = np.asarray(getattr(est, "lower_bounds_", np.zeros(0)), dtype=np.float64)
    est.lower_bounds_ = np.append(trace, bound)
    est.lower_bound_ = float(bound)
    est.n_iter_ = int(getattr(est, "n_iter_", 0)) + 1
    if not hasattr(est, "converged_"):
        est.converged_ = False
    return est
