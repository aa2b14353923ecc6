"""The documented mixture contract is enough to add a family: a Poisson mixture, written with
only what ``latentspace.mixture._base`` documents, in under 80 lines, and checked against
scipy's log-pmf, the EM invariant and a chunked fit."""

import inspect
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from scipy.stats import poisson

from latentspace.data import ChunkedSource
from latentspace.mixture._base import Family, MixtureBase, MixtureStats, check_weights_init


# ----------------------------------------------------------------------------- the new family
@dataclass(frozen=True)
class _PoissonParams:
    weights: torch.Tensor  # (K,)
    rates: torch.Tensor  # (K, D)


@dataclass(frozen=True)
class _PoissonStats(MixtureStats):
    sums: torch.Tensor = None  # (K, D) Σ w r x


class _PoissonFamily(Family):
    def __init__(self, n_components, weights_init=None):
        self.n_components, self.weights_init = n_components, weights_init

    def log_weighted(self, X, P):  # log π_k + Σ_d (x log λ_kd − λ_kd − log x_d!)
        return (X @ torch.log(P.rates).T - P.rates.sum(1)
                - torch.lgamma(X + 1).sum(1, keepdim=True) + torch.log(P.weights))

    def resp_stats(self, X, resp, w, P):
        Rw = resp if w is None else resp * w[:, None]
        n = float(Rw.sum()) if w is None else float(w.sum())
        return _PoissonStats(n=n, loglik=0.0, nk=Rw.sum(0), sums=Rw.T @ X)

    def m_step(self, S, P):  # λ_k = S_k / N_k, π_k = N_k / N
        nk = S.nk + 1e-12
        return _PoissonParams(nk / nk.sum(), (S.sums / nk[:, None]).clamp_min(1e-12))

    def with_user_init(self, P, base):
        if self.weights_init is None:
            return P
        return _PoissonParams(torch.as_tensor(self.weights_init), P.rates)


class _PoissonMixture(MixtureBase):
    _scaled = False  # counts keep their units

    def __init__(self, n_components=1, *, tol=1e-8, max_iter=500, n_init=1,
                 init_params="kmeans", weights_init=None, hard=False, random_state=None,
                 warm_start=False, verbose=0, device="cpu"):
        self.n_components, self.tol, self.max_iter, self.n_init = n_components, tol, max_iter, n_init
        self.init_params, self.weights_init, self.hard = init_params, weights_init, hard
        self.random_state, self.warm_start, self.verbose, self.device = (
            random_state, warm_start, verbose, device)

    def _prepare_X(self, X):
        if bool((X < 0).any()) or bool((X != torch.round(X)).any()):
            raise ValueError("a Poisson mixture needs non-negative integer counts.")
        return X

    def _family(self, n_features, scale, *, fit=True):
        w = None
        if fit and self.weights_init is not None:
            w = check_weights_init(self.weights_init, self.n_components)
        return _PoissonFamily(self.n_components, w)

    def _attributes(self, P, scale):
        return {"weights_": P.weights, "means_": P.rates}

    def _parameters(self, scale):
        return _PoissonParams(torch.as_tensor(self.weights_, dtype=torch.float64),
                              torch.as_tensor(self.means_, dtype=torch.float64))

    def _n_parameters(self):
        K, D = self.means_.shape
        return K * D + K - 1


# ----------------------------------------------------------------------------- its checks
@pytest.fixture(scope="module")
def counts():
    rng = np.random.default_rng(0)
    rates = np.array([[1.0, 8.0, 3.0], [12.0, 2.0, 0.5], [5.0, 5.0, 15.0]])
    z = rng.choice(3, size=3000, p=[0.5, 0.3, 0.2])
    return rng.poisson(rates[z]).astype(np.float64), rates


def test_the_new_family_takes_under_80_lines():
    parts = (_PoissonParams, _PoissonStats, _PoissonFamily, _PoissonMixture)
    assert sum(len(inspect.getsource(p).splitlines()) for p in parts) < 80


def test_it_fits_scores_like_scipy_and_never_lowers_the_likelihood(counts):
    X, rates = counts
    pm = _PoissonMixture(3, random_state=0).fit(X)
    assert pm.converged_
    # EM never lowers the log-likelihood (Dempster et al. 1977): only rounding may
    assert np.all(np.diff(pm.lower_bounds_) >= -1e-12 * np.abs(pm.lower_bounds_[:-1]))
    found = pm.means_[np.argsort(pm.means_[:, 0])]
    np.testing.assert_allclose(found, rates[np.argsort(rates[:, 0])], rtol=0.15, atol=0.3)
    # the mixture's log-pmf through scipy, the oracle
    comp = np.stack([poisson.logpmf(X, m).sum(1) for m in pm.means_], 1) + np.log(pm.weights_)
    np.testing.assert_allclose(pm.score_samples(X), logsumexp(comp, axis=1), rtol=1e-10)
    assert pm.lower_bound_ == pytest.approx(pm.score(X), rel=1e-9)
    np.testing.assert_array_equal(pm.predict(X), comp.argmax(1))
    assert pm.bic(X) > -2 * pm.score(X) * len(X)


def test_chunked_input_and_user_init_come_with_the_base_class(counts):
    X, _ = counts
    a = _PoissonMixture(3, init_params="random_from_data", random_state=1).fit(X)
    b = _PoissonMixture(3, init_params="random_from_data", random_state=1).fit(
        ChunkedSource([X[:700], X[700:2100], X[2100:]]))
    np.testing.assert_allclose(b.means_, a.means_, rtol=1e-10)
    with pytest.raises(ValueError, match="weights_init"):
        _PoissonMixture(3, weights_init=[0.5, 0.5]).fit(X)
    with pytest.raises(ValueError, match="non-negative integer counts"):
        _PoissonMixture(2).fit(X + 0.5)
