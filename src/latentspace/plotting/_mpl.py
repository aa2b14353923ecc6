"""Lazy matplotlib import shared by all displays."""

from __future__ import annotations


def pyplot():
    """Import matplotlib.pyplot lazily, on the Agg backend unless one was chosen."""
    import os

    import matplotlib

    if "MPLBACKEND" not in os.environ and matplotlib.get_backend().lower() not in ("agg",):
        try:
            matplotlib.use("Agg")
        except Exception:  # an interactive backend is already running; keep it
            pass
    import matplotlib.pyplot as plt

    return plt


def new_axes(ax=None, figsize=(6, 4)):
    """Return (figure, ax): ``ax``'s figure, or a new figure with one axes."""
    if ax is not None:
        return ax.figure, ax
    plt = pyplot()
    fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    return fig, ax
