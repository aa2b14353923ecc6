"""The tour and its self-contained HTML report."""

from ._chapter import Chapter, Figure, TourContext
from ._html import dumps_json, json_safe, write_text_atomic

__all__ = ["Chapter", "Figure", "TourContext", "dumps_json", "json_safe", "write_text_atomic"]
