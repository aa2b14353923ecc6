"""What a tour chapter is: its inputs (``TourContext``) and its output (``Chapter``).

A chapter is a function ``run(ctx: TourContext) -> Chapter``. It fits what it needs (or reuses
what an earlier chapter left in ``ctx.results``), builds Display objects from
:mod:`latentspace.plotting`, and returns their figures with captions plus a small table of
numbers. Every number in the table is read from an estimator's own fitted attributes or
methods, never recomputed another way, so the tests can check the report against the models.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

__all__ = ["Figure", "Table", "Chapter", "Holdout", "TourContext"]


@dataclass
class Figure:
    """A matplotlib figure with its caption and alt text."""

    figure: Any  # matplotlib.figure.Figure
    caption: str
    alt: str


@dataclass
class Table:
    """A table of numbers with rows (e.g. models) and named columns (e.g. metrics).

    ``rows`` holds (label, values) pairs with one value per column; a value of None is shown
    as a dash (the column does not apply to that row). ``notes`` is plain text shown under
    the table, one paragraph per blank-line-separated block.
    """

    caption: str
    columns: list[str]
    rows: list[tuple[str, list[Any]]]
    row_header: str = "model"
    notes: str = ""


@dataclass
class Chapter:
    """One chapter of the report, in the lecture's order."""

    key: str  # short id: "pca", "kmeans", ...
    title: str
    intro: str  # one or two sentences (plain text)
    formula: str  # the formula it demonstrates (plain text / unicode)
    figures: list[Figure] = field(default_factory=list)
    numbers: dict[str, Any] = field(default_factory=dict)  # name -> value, shown as a table
    seconds: float = 0.0  # filled in by the tour
    # figures the reproduction table reads, by stable id (report.reproduction.Row.measure),
    # whatever their display names in ``numbers``
    measures: dict[str, float] = field(default_factory=dict)
    # fits that failed or stopped early, as {"category", "message", "count"} dicts: filled in by
    # the tour from the warnings raised while the chapter ran (see report.tour.FitWarnings), and
    # shown as a warning box at the top of the chapter
    warnings: list[dict[str, Any]] = field(default_factory=list)
    widgets: list = field(default_factory=list)  # interactive figures (report._interactive)
    tables: list[Table] = field(default_factory=list)  # shown after the numbers


@dataclass(frozen=True)
class Holdout:
    """One seeded split of the tour's rows, shared by every generative model the tour scores.

    The models of the scoreboard are fitted on ``train`` only; ``val`` chooses the Parzen
    window's width, ``test`` is scored, and ``reference`` — real rows no model has seen — is
    scored as if it were a model's samples (the best any model could do).

    Attributes
    ----------
    train, val, test, reference : ndarray of shape (n_*, n_features)
    y_train, y_val, y_test, y_reference : ndarray of shape (n_*,) or None
    rest_index : ndarray of shape (n_rest,) or None
        Sorted indices into the tour's ``X`` of every row outside ``val``, ``test`` and
        ``reference`` (``train`` is a subset): rows that may be used for fitting, e.g. the
        scoreboard's feature classifier on a large dataset.
    """

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    reference: np.ndarray
    y_train: np.ndarray | None = None
    y_val: np.ndarray | None = None
    y_test: np.ndarray | None = None
    y_reference: np.ndarray | None = None
    rest_index: np.ndarray | None = None


HOLDOUT_SHARE = 0.1  # val, test and reference rows: each this share of the rows ...
HOLDOUT_MAX = (2000, 500)  # ... and at most this many (full run, quick run)
TRAIN_MAX = (3000, 1000)  # the neural chapters train on at most this many rows


@dataclass
class TourContext:
    """What every chapter receives.

    Attributes
    ----------
    name : str
        Dataset name ("digits", "lfw_people", ...).
    X : ndarray of shape (n_samples, n_features), float64 in [0, 1]
        The images, flattened.
    y : ndarray of shape (n_samples,) or None
        Labels, for colouring and for label-matched accuracy.
    image_shape : tuple (height, width)
    target_names : sequence of str or None
    quick : bool
        Smoke-run mode: fewer epochs, smaller sizes.
    device : str
    random_state : int
    progress : callable(str) -> None
        Reports the current step to the progress display.
    results : dict
        Fitted estimators and arrays shared between chapters (e.g. ``results["pca"]``).
    """

    name: str
    X: np.ndarray
    y: np.ndarray | None
    image_shape: tuple[int, int]
    target_names: Any = None
    quick: bool = False
    device: str = "cpu"
    random_state: int = 0
    progress: Callable[[str], None] = lambda step: None
    results: dict[str, Any] = field(default_factory=dict)
    _holdout: Holdout | None = field(default=None, repr=False)

    def holdout(self) -> Holdout:
        """The tour's shared split of ``X`` (computed once, seeded by ``random_state``).

        ``val``, ``test`` and ``reference`` each take ``HOLDOUT_SHARE`` of the rows (at least
        one, at most ``HOLDOUT_MAX``); ``train`` is a seeded subset of the rest of at most
        ``TRAIN_MAX`` rows, small enough for CPU training.

        Returns
        -------
        split : Holdout
            The same object on every call.
        """
        if self._holdout is None:
            col = 1 if self.quick else 0
            n = len(self.X)
            m = int(min(HOLDOUT_MAX[col], max(1, round(HOLDOUT_SHARE * n))))
            order = np.random.RandomState(self.random_state).permutation(n)
            parts = [order[:m], order[m:2 * m], order[2 * m:3 * m],
                     np.sort(order[3 * m:][:TRAIN_MAX[col]])]
            take = (lambda a, i: None if a is None else a[i])
            val, test, ref, train = parts
            self._holdout = Holdout(
                train=self.X[train], val=self.X[val], test=self.X[test], reference=self.X[ref],
                y_train=take(self.y, train), y_val=take(self.y, val), y_test=take(self.y, test),
                y_reference=take(self.y, ref), rest_index=np.sort(order[3 * m:]),
            )
        return self._holdout
