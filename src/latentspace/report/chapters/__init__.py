"""The tour's chapters, in the lecture's order.

Each chapter is a module ``latentspace.report.chapters.<key>`` exposing ``KEY``, ``TITLE``,
``EXPECTED_SECONDS`` (its time on digits, full and quick run: the proportions of the progress
display's first estimate) and ``run(ctx: TourContext) -> Chapter``. :data:`ORDER` is the one
list of chapters (a test checks that every chapter module is in it). A key whose module does
not exist (yet) is skipped; an import error inside an existing module is a bug and propagates.
Helpers several chapters share live in ``_shared``.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Callable

__all__ = ["ORDER", "available_chapters", "expected_seconds"]

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


_UNKNOWN_SECONDS = (10.0, 2.0)


def expected_seconds(key: str, quick: bool = False) -> float:
    """The chapter's own ``EXPECTED_SECONDS`` (full or quick run), or a guess for a chapter
    without one."""
    name = f"{__name__}.{key}"
    module = importlib.import_module(name) if importlib.util.find_spec(name) else None
    full_quick = getattr(module, "EXPECTED_SECONDS", _UNKNOWN_SECONDS)
    return float(full_quick[1 if quick else 0])
