"""The EM engine: additive sufficient statistics and the shared loop.

See :mod:`latentspace.em._engine` for the model hooks and :mod:`latentspace.em._stats` for the
statistics; the data sources the engine reads are in :mod:`latentspace.data`. Models in
:mod:`latentspace.cluster` and :mod:`latentspace.mixture` are built on it.
"""

from ._engine import EMResult, run_em
from ._stats import (
    DataSummary,
    FarthestPoints,
    FramedSource,
    Stats,
    framed,
    summarize_source,
    working_frame,
)

__all__ = [
    "DataSummary",
    "EMResult",
    "FarthestPoints",
    "FramedSource",
    "Stats",
    "run_em",
    "framed",
    "summarize_source",
    "working_frame",
]
