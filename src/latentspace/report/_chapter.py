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

__all__ = ["Figure", "Chapter", "TourContext"]


@dataclass
class Figure:
    """A matplotlib figure with its caption and alt text."""

    figure: Any  # matplotlib.figure.Figure
    caption: str
    alt: str


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
