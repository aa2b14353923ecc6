"""The tour and its self-contained HTML report."""

from ._chapter import Chapter, Figure, TourContext

__all__ = ["Chapter", "Figure", "TourContext"]
