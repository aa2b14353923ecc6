"""When neural training ends: the plateau rule and the best epoch's snapshot.

:class:`Stopping` is the rule (a frozen value an estimator builds from its hyperparameters),
:class:`Plateau` its running state, and :class:`EarlyStopping` what the trainer calls once an
epoch: it feeds the monitored value to the plateau, keeps the best epoch's weights and optimizer
state, rolls a blow-up back to them, and says when and why training ends.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

from torch import nn

__all__ = ["EarlyStopping", "Plateau", "Stopping", "restore_snapshot"]


@dataclass(frozen=True)
class Stopping:
    """When training ends before ``n_epochs``, and how the learning rate follows plateaus.

    An epoch *improves* when its monitored value (the validation loss if there is validation
    data, else the training objective) is below ``best - tol * max(|best|, floor)``, ``best``
    being the lowest value at the current learning rate. ``patience`` epochs in a row without improvement make a
    plateau; on a plateau the learning rate is multiplied by ``factor`` while ``lr_drops``
    reductions remain (then the count starts again), and otherwise training stops if ``stop``
    (scikit-learn's MLP stops at its first plateau; its ``learning_rate="adaptive"`` divides
    the rate by 5 first).

    A training epoch whose loss exceeds the best of the run by more than ``max(|best|, floor)``
    is a blow-up (Adam's occasional instability, which the run does not recover from): the weights
    and optimizer state of the best epoch are restored and the rate reduced as on a plateau;
    with no reduction left, training ends there (``stop_reason == "unstable"``).

    Parameters
    ----------
    tol : float
        Relative improvement that counts.
    patience : int
        Epochs without improvement that make a plateau (``n_iter_no_change``).
    lr_drops : int
        Learning-rate reductions before a plateau ends training.
    factor : float in (0, 1)
        Multiplier of the learning rate at each reduction.
    floor : float
        Smallest scale the relative tolerance applies to, in the objective's units (an
        objective that crosses zero, like a Gaussian log-likelihood, keeps a finite
        threshold).
    stop : bool
        Stop on a plateau once no reductions remain; False runs to ``n_epochs`` (the GAN,
        whose losses are not an objective to converge).
    restore_best : bool
        End with the weights of the best epoch (validation early stopping).
    """

    tol: float = 1e-4
    patience: int = 10
    lr_drops: int = 0
    factor: float = 0.1
    floor: float = 0.0
    stop: bool = True
    restore_best: bool = False


class Plateau:
    """The running state of a :class:`Stopping` rule (saved in checkpoints).

    Improvement is measured against the best value of the current learning-rate stage: after
    a reduction the loss often first recovers from a spike of the faster rate, and that
    recovery is progress at the new rate, not a plateau. ``best_epoch`` is the best over the
    whole run (the weights that ``restore_best`` keeps).
    """

    def __init__(self, rule: Stopping):
        self.rule = rule
        self.best = math.inf  # best of the current stage
        self.best_overall = math.inf
        self.best_epoch: int | None = None
        self.bad = 0  # epochs of this stage since its last improvement
        self.drops = 0
        self.lr_scale = 1.0

    def update(self, value: float, epoch: int, guard: bool = True) -> tuple[bool, str]:
        """Record one epoch's monitored ``value`` -> (best of the run so far, action), the
        action being "" (go on), "rollback" (restore the best epoch, the rate was reduced),
        "unstable" (restore the best epoch and stop) or "stop". ``guard``: watch for blow-ups
        (training losses; a validation loss may rise by overfitting, which is what early
        stopping is for)."""
        rule = self.rule
        if guard and math.isfinite(value) and math.isfinite(self.best_overall) and \
                value > self.best_overall + max(abs(self.best_overall), rule.floor):
            return False, "rollback" if self._reduce() else "unstable"
        if not math.isfinite(value):
            improved = False
        elif not math.isfinite(self.best):
            improved = True
        else:
            improved = value < self.best - rule.tol * max(abs(self.best), rule.floor)
        if improved:
            self.best, self.bad = value, 0
        else:
            self.bad += 1
        overall = math.isfinite(value) and value < self.best_overall
        if overall:
            self.best_overall, self.best_epoch = value, epoch
        if self.bad < rule.patience or self._reduce():
            return overall, ""
        return overall, "stop" if rule.stop else ""

    def _reduce(self) -> bool:
        """Start the next learning-rate stage, if one is left -> whether it was."""
        if self.drops >= self.rule.lr_drops:
            return False
        self.drops += 1
        self.lr_scale *= self.rule.factor
        self.best, self.bad = math.inf, 0
        return True

    @property
    def still_improving(self) -> bool:
        """Whether the current stage improved within its last ``patience`` epochs."""
        return self.bad < self.rule.patience

    def state(self) -> dict:
        return {"best": self.best, "best_overall": self.best_overall, "bad_epochs": self.bad,
                "drops": self.drops, "lr_scale": self.lr_scale,
                "best_epoch": -1 if self.best_epoch is None else self.best_epoch}

    def restore(self, es: dict) -> None:
        self.best, self.bad = float(es["best"]), int(es["bad_epochs"])
        self.best_overall = float(es.get("best_overall", self.best))
        self.drops = int(es.get("drops", 0))
        self.lr_scale = float(es.get("lr_scale", 1.0))
        self.best_epoch = None if es["best_epoch"] < 0 else int(es["best_epoch"])


class EarlyStopping:
    """A :class:`Stopping` rule applied to one run, epoch by epoch.

    Parameters
    ----------
    rule : Stopping
    validated : bool
        Whether the monitored value is a validation loss (``val_loss``) rather than the
        training objective (``loss``). Blow-ups are only watched on the training objective: a
        validation loss may rise by overfitting, which is what early stopping is for.

    Attributes
    ----------
    plateau : Plateau
    best_state : dict or None
        ``{"module": state_dict, "optimizers": {name: state_dict}}`` of the best epoch so far.
    """

    def __init__(self, rule: Stopping, *, validated: bool):
        self.rule = rule
        self.validated = bool(validated)
        self.monitor = "val_loss" if validated else "loss"
        self.plateau = Plateau(rule)
        self.best_state: dict | None = None

    @property
    def lr_scale(self) -> float:
        return self.plateau.lr_scale

    def after_epoch(self, record: dict, module: nn.Module, optimizers: dict) -> str | None:
        """Take one epoch's ``record`` -> the stop reason ("converged", "validation",
        "unstable") or None to go on. A blow-up restores the best epoch's snapshot (and notes
        ``restored_epoch`` in the record)."""
        value = float(record.get(self.monitor, math.nan))
        best_so_far, action = self.plateau.update(value, record["epoch"], guard=not self.validated)
        if best_so_far:
            self.best_state = copy.deepcopy({
                "module": module.state_dict(),
                "optimizers": {name: opt.state_dict() for name, opt in optimizers.items()}})
        if action in ("rollback", "unstable") and self.best_state is not None:
            restore_snapshot(module, optimizers, self.best_state)
            record["restored_epoch"] = self.plateau.best_epoch
        if action == "unstable":
            return "unstable"
        if action == "stop":
            return "validation" if self.validated else "converged"
        return None

    def finish(self, module: nn.Module) -> None:
        """End of training: keep the best epoch's weights when the rule says so."""
        if self.rule.restore_best and self.best_state is not None:
            module.load_state_dict(self.best_state["module"])

    # checkpoints
    def state(self, stop_reason: str) -> dict:
        return {**self.plateau.state(), "stop_reason": stop_reason, "best_state": self.best_state}

    def restore(self, es: dict) -> str:
        """Continue from :meth:`state`'s dict -> the saved stop reason."""
        self.plateau.restore(es)
        best_state = es.get("best_state")
        if best_state is not None and set(best_state) != {"module", "optimizers"}:
            best_state = {"module": best_state, "optimizers": None}  # version-1 checkpoints
        self.best_state = best_state
        return str(es.get("stop_reason", "max_epochs"))


def restore_snapshot(module, optimizers, state: dict) -> None:
    """Load a snapshot of :func:`train` (module and, where saved, optimizer states)."""
    module.load_state_dict(state["module"])
    if state.get("optimizers") is not None:
        for name, opt in optimizers.items():
            opt.load_state_dict(copy.deepcopy(state["optimizers"][name]))
