"""The tour's chapters, in the lecture's order.

Each chapter is a module ``latentspace.report.chapters.<key>`` exposing ``KEY``, ``TITLE`` and
``run(ctx: TourContext) -> Chapter``. A key whose module does not exist (yet) is skipped; an
import error inside an existing module is a bug and propagates.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Callable

__all__ = ["ORDER", "available_chapters"]

ORDER = ["pca", "linear_ae", "kmeans", "mixtures", "bernoulli", "hard_em",
         "autoencoders", "vae", "gan", "scoreboard"]


def available_chapters() -> list[tuple[str, Callable]]:
    """[(key, run)] for every chapter module that exists, in :data:`ORDER`."""
    out = []
    for key in ORDER:
        name = f"{__name__}.{key}"
        if importlib.util.find_spec(name) is None:
            continue
        module = importlib.import_module(name)
        out.append((key, module.run))
    return out
