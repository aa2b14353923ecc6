"""What several chapters share: the rows they fit on, training-curve figures, and small
readings of fitted models (a linear decoder's columns, label-matched accuracy)."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from ...plotting import LossCurveDisplay
from .._chapter import Figure, TourContext

__all__ = ["CLUSTERING_ROWS", "NEURAL_ROWS", "chapter_rows", "decoder_columns",
           "label_matched_accuracy", "loss_figure", "n_classes", "training_rows"]

NEURAL_ROWS = (3000, 1000)  # the neural chapters train on at most this many rows (full, quick)
CLUSTERING_ROWS = (10000, 2000)  # the clustering chapters fit at most this many rows


def training_rows(ctx: TourContext) -> tuple[np.ndarray, np.ndarray | None]:
    """A seeded subset of the tour's rows small enough for CPU training -> (X, y)."""
    n_max = NEURAL_ROWS[1 if ctx.quick else 0]
    if len(ctx.X) <= n_max:
        return ctx.X, ctx.y
    keep = np.sort(np.random.RandomState(ctx.random_state).choice(len(ctx.X), n_max, replace=False))
    return ctx.X[keep], (None if ctx.y is None else ctx.y[keep])


def loss_figure(est, what: str) -> Figure:
    """The training curves of a neural estimator, one value per epoch of its training record."""
    disp = LossCurveDisplay.from_estimator(est)
    titles = [title for title, _ in disp.panels]
    shared = [title for title, keys in disp.panels if len(keys) > 1]
    rate = disp.curves.get("learning_rate", np.zeros(1))
    n_lowered = int(np.sum(np.diff(rate[np.isfinite(rate)]) < 0))
    return Figure(
        disp.plot().figure_,
        caption=(
            f"Training of the {what}, one value per epoch over its {len(est.history_)} epochs: "
            + "; ".join(titles) + "."
            + (f" Quantities equal (or opposite) at every epoch share one panel: "
               f"{'; '.join(shared)}." if shared else "")
            + (" The loss is the reconstruction error alone: this model has no penalty term."
               if any({"loss", "reconstruction"} <= set(keys) for _, keys in disp.panels)
               else "")
            + (f" The learning rate was lowered {n_lowered} time(s), each when the loss had "
               "stopped improving." if n_lowered else "")
        ),
        alt=f"Line plots of {', '.join(titles)} against the epoch for the {what}.",
    )


def decoder_columns(ae) -> np.ndarray:
    """Columns of a linear decoder through the public API: g(e_k) − g(0) -> (n_features, L)."""
    L = ae.latent_dim
    return (ae.inverse_transform(np.eye(L)) - ae.inverse_transform(np.zeros((1, L)))).T


def chapter_rows(ctx: TourContext, n_max: int = CLUSTERING_ROWS[0],
                 n_quick: int = CLUSTERING_ROWS[1]):
    """A seeded subset of the tour's rows for the clustering chapters -> (X, y)."""
    n_max = n_quick if ctx.quick else n_max
    if len(ctx.X) <= n_max:
        return ctx.X, ctx.y
    rng = np.random.RandomState(ctx.random_state)
    keep = np.sort(rng.choice(len(ctx.X), n_max, replace=False))
    return ctx.X[keep], (None if ctx.y is None else ctx.y[keep])


def n_classes(y, default: int = 10) -> int:
    return default if y is None else int(len(np.unique(y)))


def label_matched_accuracy(labels, y) -> float:
    """Accuracy after the best one-to-one matching of clusters to classes (Hungarian)."""
    labels = np.asarray(labels)
    y = np.unique(y, return_inverse=True)[1]
    k = int(max(labels.max(), y.max())) + 1
    C = np.zeros((k, k))
    np.add.at(C, (labels, y), 1)
    r, c = linear_sum_assignment(-C)
    return float(C[r, c].sum() / len(y))
