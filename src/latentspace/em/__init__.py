"""The EM engine: additive sufficient statistics, data sources and the shared loop.

See :mod:`latentspace.em._engine` for the model hooks and :mod:`latentspace.em._source` for
the sources. Models in :mod:`latentspace.cluster` and :mod:`latentspace.mixture` are built on it.
"""

from ._dask import DaskSource
from ._engine import EMResult, run_em
from ._source import Chunk, ChunkedSource, InMemorySource, Source
from ._stats import DataSummary, FarthestPoints, Stats

__all__ = [
    "Chunk",
    "ChunkedSource",
    "DaskSource",
    "DataSummary",
    "EMResult",
    "FarthestPoints",
    "InMemorySource",
    "Source",
    "Stats",
    "run_em",
]
