"""Progress output: one mechanism for every model and command.

``tqdm.auto`` draws where the user looks -- a bar on stderr in a terminal, a widget in a
Jupyter notebook, plain carriage-return lines in a captured or redirected stream -- so
progress is shown whenever ``verbose > 0`` asks for it, not only on a terminal, and nothing
is ever written to stdout (which belongs to the caller's results, e.g. the command line's).
Lines (EM's lower bounds) go through ``tqdm.write``, so they never break a bar being drawn.
"""

from __future__ import annotations

import sys

__all__ = ["progress_bar", "progress_write"]


def progress_bar(total, desc: str, *, unit: str = "it"):
    """A ``tqdm.auto`` bar on stderr over ``total`` items (None: unknown), which disappears
    when closed."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, leave=False,
                dynamic_ncols=True)


def progress_write(line: str) -> None:
    """One line of progress on stderr, above any bar being drawn."""
    from tqdm.auto import tqdm

    tqdm.write(line, file=sys.stderr)
