"""Display objects in scikit-learn's style.

Each ``*Display`` is built by a classmethod (``from_estimator`` / ``from_data``) that only
prepares numbers (no matplotlib import, testable without drawing); ``plot(ax=None)`` draws
and sets ``figure_`` and ``ax_`` (or ``axes_``). matplotlib is imported lazily with the Agg
backend when nothing else is set.
"""

from ._images import ImageGridDisplay
from ._pca import (
    ExplainedVarianceDisplay,
    ProjectionDisplay,
    ReconstructionDisplay,
    truncated_reconstruction,
)

__all__ = [
    "ExplainedVarianceDisplay",
    "ImageGridDisplay",
    "ProjectionDisplay",
    "ReconstructionDisplay",
    "truncated_reconstruction",
]

from ._neural import (  # noqa: E402
    LatentGridDisplay,
    LossCurveDisplay,
    MeanActivationDisplay,
    SampleGridDisplay,
)

__all__ += ["LatentGridDisplay", "LossCurveDisplay", "MeanActivationDisplay", "SampleGridDisplay"]

from ._clustering import (  # noqa: E402
    AnnealingDisplay,
    ChooseKDisplay,
    EllipsesDisplay,
    EMTraceDisplay,
    covariance_ellipses,
)

__all__ += ["AnnealingDisplay", "ChooseKDisplay", "EMTraceDisplay", "EllipsesDisplay",
            "covariance_ellipses"]

from ._mpl import pyplot, settle_legends  # noqa: E402

__all__ += ["pyplot", "settle_legends"]
