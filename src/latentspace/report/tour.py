"""Run the lecture end to end on one dataset and write ``index.html`` + ``summary.json``.

The chapters run in :data:`latentspace.report.chapters.ORDER`, sharing one
:class:`~latentspace.report.TourContext`; each returns a :class:`~latentspace.report.Chapter`
whose figures are encoded to PNG (and closed) as soon as the chapter ends. A progress display
shows the chapter, its current step, the time spent and an estimate of the time left.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import sys
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np

from ._chapter import Chapter, TourContext
from ._html import (
    RenderedChapter,
    dumps_json,
    encode_png,
    json_safe,
    render_html,
    table_dict,
    write_text_atomic,
)

__all__ = ["run_tour", "select_chapters", "TourProgress", "FitWarnings", "estimate_remaining"]

QUICK_MAX_SAMPLES = 2000  # a quick run keeps a seeded random subset of at most this many rows



def select_chapters(chapters: str | Sequence[str] | None = None
                    ) -> list[tuple[str, Callable[[TourContext], Chapter]]]:
    """The (key, run) pairs to run, in the lecture's order.

    Parameters
    ----------
    chapters : None, str or sequence of str
        None for all available chapters; a comma-separated string or a list of keys otherwise.

    Returns
    -------
    selected : list of (str, callable)
        Each chapter's key and its ``run(ctx) -> Chapter``.

    Raises
    ------
    ValueError
        A key that is not an available chapter (the message lists the available ones).
    """
    from .chapters import available_chapters

    available = available_chapters()
    if chapters is None:
        return available
    if isinstance(chapters, str):
        chapters = [c for c in chapters.split(",")]
    wanted = [str(c).strip() for c in chapters if str(c).strip()]
    keys = [k for k, _ in available]
    unknown = [c for c in wanted if c not in keys]
    if unknown or not wanted:
        raise ValueError(
            f"unknown chapter(s) {unknown or wanted!r}; available chapters: {', '.join(keys)}."
        )
    return [(k, run) for k, run in available if k in wanted]


# ----------------------------------------------------------------------------- progress
def estimate_remaining(expected: Sequence[float], done_seconds: Sequence[float],
                       current: int | None = None, current_elapsed: float = 0.0) -> float:
    """Seconds left in the run.

    Parameters
    ----------
    expected : list of float
        Prior expected seconds of every chapter of the run, in order.
    done_seconds : list of float
        Measured seconds of the chapters finished so far (the first ``len(done_seconds)``).
    current : int or None
        Index of the chapter running now (None between chapters).
    current_elapsed : float
        Seconds spent in the current chapter so far.

    Returns
    -------
    seconds : float
        ``rate · Σ expected of the chapters not finished − current_elapsed`` (at least 0, and
        the current chapter never counts as less than done), where ``rate`` = measured / prior
        seconds of the finished chapters (1 before any chapter finished): the priors give the
        proportions, the finished chapters the speed of this machine on this dataset.
    """
    n_done = len(done_seconds)
    prior_done = float(sum(expected[:n_done]))
    rate = float(sum(done_seconds)) / prior_done if n_done and prior_done > 0 else 1.0
    left = 0.0
    for i in range(n_done, len(expected)):
        share = rate * expected[i]
        if i == current:
            share = max(share - current_elapsed, 0.0)
        left += share
    return left


def _clock(seconds: float) -> str:
    s = int(round(max(seconds, 0.0)))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class TourProgress:
    """The whole run's progress: chapter i/n, its step, elapsed time and time left.

    On a terminal one status line is redrawn in place (every ``interval`` seconds and at
    every step); elsewhere (a log file, a pipe) one line is written per step. ``enabled=False``
    writes nothing. :meth:`line` gives the current text, for tests.

    Parameters
    ----------
    keys : list of str
        The chapters of the run, in order.
    quick : bool
        Which of each chapter's ``EXPECTED_SECONDS`` (full, quick) gives the priors.
    enabled : bool
        False writes nothing.
    stream : file-like, default sys.stderr
        Where the display goes.
    interval : float
        Redraw period on a terminal, in seconds.
    clock : callable
        Monotonic time in seconds (injectable for tests).
    """

    def __init__(self, keys: Sequence[str], *, quick: bool = False, enabled: bool = True,
                 stream: IO[str] | None = None, interval: float = 1.0,
                 clock: Callable[[], float] = time.perf_counter):
        self.keys = list(keys)
        from .chapters import expected_seconds

        self.expected = [expected_seconds(k, quick) for k in self.keys]
        self.done: list[float] = []
        self.current: int | None = None
        self.step_text = "loading data"
        self._clock = clock
        self._t0 = clock()
        self._t_chapter = self._t0
        self.stream = sys.stderr if stream is None else stream
        self.enabled = bool(enabled)
        isatty = getattr(self.stream, "isatty", None)
        self.live = self.enabled and bool(isatty and isatty())
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None
        self._width = 0
        if self.live:
            self._thread = threading.Thread(target=self._tick, args=(interval,), daemon=True)
            self._thread.start()

    # state changes
    def start_chapter(self, key: str) -> None:
        """The next chapter of the run starts.

        Parameters
        ----------
        key : str
            Its key (the run's chapters are counted in order; the key is for the caller).
        """
        self.current = len(self.done)
        self._t_chapter = self._clock()
        self.step_text = "starting"
        self._emit()

    def step(self, text: str) -> None:
        """What the chapter does now (``TourContext.progress``).

        Parameters
        ----------
        text : str
            The step, in a few words.
        """
        self.step_text = str(text)
        self._emit()

    def end_chapter(self) -> float:
        """The current chapter has finished.

        Returns
        -------
        seconds : float
            How long it ran.
        """
        seconds = self._clock() - self._t_chapter
        self.done.append(seconds)
        self.current = None
        return seconds

    def close(self, ok: bool = True) -> None:
        """Stop the display and write its last line.

        Parameters
        ----------
        ok : bool, default=True
            Whether the run completed (the last line says how many chapters ran) or stopped.
        """
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        if not self.enabled:
            return
        total = self._clock() - self._t0
        end = (f"tour: {len(self.done)} chapter(s) in {_clock(total)}" if ok
               else f"tour stopped after {_clock(total)}")
        with self._lock:
            if self.live:
                self.stream.write("\r" + end.ljust(self._width) + "\n")
            else:
                self.stream.write(end + "\n")
            self.stream.flush()

    # text
    def elapsed(self) -> float:
        """Seconds since the run started.

        Returns
        -------
        seconds : float
            On the display's clock.
        """
        return self._clock() - self._t0

    def remaining(self) -> float:
        """Estimated seconds left (see :func:`estimate_remaining`).

        Returns
        -------
        seconds : float
            At least 0.
        """
        cur_elapsed = self._clock() - self._t_chapter if self.current is not None else 0.0
        return estimate_remaining(self.expected, self.done, self.current, cur_elapsed)

    def line(self) -> str:
        """The display's current text.

        Returns
        -------
        text : str
            Chapter i/n, its step, the time elapsed and the time left.
        """
        n = len(self.keys)
        i = self.current if self.current is not None else len(self.done)
        where = (f"{i + 1}/{n} {self.keys[i]}" if i < n else f"{n}/{n} done")
        return (f"tour {where} · {self.step_text} · {_clock(self.elapsed())} elapsed · "
                f"about {_clock(self.remaining())} left")

    def _emit(self) -> None:
        if not self.enabled:
            return
        text = self.line()
        with self._lock:
            if self.live:
                self._width = max(self._width, len(text))
                self.stream.write("\r" + text.ljust(self._width))
            else:
                self.stream.write(text + "\n")
            self.stream.flush()

    def _tick(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self._emit()


# ----------------------------------------------------------------------------- failed fits
# warnings that say a fit failed or stopped short; messages of a collapse say so in their first
# words (GAN mode collapse, VAE posterior collapse)
_COLLAPSE_PREFIXES = ("mode collapse", "posterior collapse")


class FitWarnings:
    """Collect the warnings that report a failed fit while a chapter runs.

    A context manager around one chapter: every
    :class:`~latentspace.exceptions.ConvergenceWarning` (a fit stopped before converging, a
    discriminator that won outright) and every collapse warning (messages starting with
    "mode collapse" or "posterior collapse") raised inside it is recorded — repeats of one
    message counted once — and still shown on stderr; other warnings pass through untouched.
    The tour puts :attr:`records` in the chapter's warning box and in ``summary.json``, so
    that the page never shows a failed fit as if it had worked.

    Attributes
    ----------
    records : list of dict
        ``{"category": str, "message": str, "count": int}`` in the order first raised.
    """

    def __init__(self):
        self.records: list[dict] = []
        self._ctx = None

    @staticmethod
    def is_fit_failure(message: Warning) -> bool:
        """Whether a warning reports a failed fit.

        Parameters
        ----------
        message : Warning
            The warning object (``warnings.WarningMessage.message``).

        Returns
        -------
        failed : bool
            For a ``ConvergenceWarning`` and for collapse warnings.
        """
        from ..exceptions import ConvergenceWarning

        text = str(message).lstrip().lower()
        return isinstance(message, ConvergenceWarning) or text.startswith(_COLLAPSE_PREFIXES)

    def __enter__(self):
        self._ctx = warnings.catch_warnings(record=True)
        self._caught = self._ctx.__enter__()
        # the chapter's own filters still apply inside; "always" here only for fit failures, so
        # that a warning already shown once in this process is still recorded for this chapter
        warnings.simplefilter("always", UserWarning)
        return self

    def __exit__(self, *exc):
        self._ctx.__exit__(*exc)
        seen: dict[str, dict] = {}
        for w in self._caught:
            if self.is_fit_failure(w.message):
                text = str(w.message)
                if text in seen:
                    seen[text]["count"] += 1
                else:
                    seen[text] = {"category": w.category.__name__, "message": text, "count": 1}
                    self.records.append(seen[text])
                    warnings.showwarning(w.message, w.category, w.filename, w.lineno)
            else:  # not ours to report: hand it back to the filters outside
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        return False


# ----------------------------------------------------------------------------- the run
def _machine() -> str:
    import torch

    return (f"{platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads)")


def run_tour(dataset: str = "digits", out: str | os.PathLike[str] = "tour_out",
             quick: bool = False, device: str = "cpu",
             chapters: str | Sequence[str] | None = None, random_state: int = 0,
             data_home: str | os.PathLike[str] | None = None, progress: bool = True,
             threads: int | None = 1, results: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run the tour and write the report.

    Parameters
    ----------
    dataset : str, default="digits"
        A name from :func:`latentspace.data.list_datasets`; digits needs no download.
    out : str or Path, default="tour_out"
        Folder for ``index.html`` and ``summary.json`` (created if missing).
    quick : bool, default=False
        Smoke run: chapters use fewer epochs and smaller sizes, and datasets larger than
        ``QUICK_MAX_SAMPLES`` rows are subsampled (seeded by ``random_state``).
    device : {"cpu", "cuda", "auto"}, default="cpu"
        Where the models compute.
    chapters : None, str or list of str
        Chapter keys to run (see :func:`latentspace.report.chapters.available_chapters`).
    random_state : int, default=0
        Seed given to every chapter.
    data_home : str or Path, optional
        Data folder for datasets other than digits.
    progress : bool, default=True
        Show the progress display on stderr (a status line on a terminal, one line per step
        otherwise).
    threads : int or None, default=1
        CPU threads for torch during the run (restored afterwards); None keeps the current
        setting. The tour's models are small, and where the cores are shared torch's worker
        threads mostly wait on each other: measured on 2 shared cores, the full digits tour
        took 62 s with one thread and 575 s with two.
    results : dict, optional
        Filled with what the chapters shared (fitted estimators by name, e.g. ``"pca"``,
        ``"vae"``), for checking the report against the models.

    Returns
    -------
    summary : dict
        What ``summary.json`` holds: dataset facts, every chapter's numbers, the reproduction
        rows this run measured, timings, the machine and the path of ``index.html``.

    Raises
    ------
    ValueError
        An unknown chapter key or dataset name, or an unusable ``device``.
    Exception
        Whatever a chapter raises propagates; no report is written then.
    """
    from .._backend import resolve_device
    from ..data import load_dataset
    from .reproduction import build_table, from_summary

    t_start = time.perf_counter()
    resolve_device(device)  # fail before any work when e.g. CUDA is missing
    selected = select_chapters(chapters)
    out = Path(out)
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads must be a positive integer or None, got {threads!r}.")

    import torch

    threads_before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    bar = TourProgress([k for k, _ in selected], quick=quick, enabled=progress)
    ok = False
    try:
        bar.step(f"loading {dataset}")
        ds = load_dataset(dataset, data_home=data_home, return_images=False)
        out.mkdir(parents=True, exist_ok=True)
        X = np.asarray(ds.data, dtype=np.float64)  # the chapter contract: float64 in [0, 1]
        y = None if ds.target is None else np.asarray(ds.target)
        n_total, note = len(X), None
        if quick and n_total > QUICK_MAX_SAMPLES:
            keep = np.sort(np.random.RandomState(random_state).choice(
                n_total, QUICK_MAX_SAMPLES, replace=False))
            X, y = X[keep], (None if y is None else y[keep])
            note = f"Quick run: a random subset of {len(X)} of the {n_total} samples."
        load_seconds = time.perf_counter() - t_start

        rendered: list[RenderedChapter] = []
        ctx = TourContext(
            name=str(ds.name), X=X, y=y, image_shape=(int(ds.image_shape[0]), int(ds.image_shape[1])),
            target_names=ds.target_names, quick=bool(quick), device=device,
            random_state=random_state, progress=bar.step,
        )
        for key, run in selected:
            bar.start_chapter(key)
            with FitWarnings() as failed:
                chapter = run(ctx)
            chapter.warnings = list(chapter.warnings) + failed.records
            bar.step("encoding figures")
            figures = [(encode_png(f.figure), f.caption, f.alt) for f in chapter.figures]
            widgets = list(chapter.widgets)
            chapter.seconds = bar.end_chapter()
            rendered.append(RenderedChapter(
                key=chapter.key, title=chapter.title, intro=chapter.intro,
                formula=chapter.formula, figures=figures, numbers=json_safe(chapter.numbers),
                seconds=chapter.seconds, warnings=json_safe(chapter.warnings),
                measures=json_safe(chapter.measures),
                widgets=widgets, tables=[table_dict(t) for t in chapter.tables],
            ))
        bar.step("writing the report")
        ok = True
        machine = _machine()
        if results is not None:
            results.update(ctx.results)
    finally:
        bar.close(ok)
        torch.set_num_threads(threads_before)

    from .. import __version__

    index = out / "index.html"
    command = f"latentspace tour --dataset {ds.name}"
    if ds.name != "digits":
        command += " --data-home DIR"
    if chapters is not None:
        command += f" --chapters {','.join(k for k, _ in selected)}"
    command += (" --quick" if quick else "") + f" --seed {random_state}"
    if device != "cpu":
        command += f" --device {device}"
    summary = {
        "dataset": str(ds.name),
        "n_samples": int(X.shape[0]),
        "n_samples_total": int(n_total),
        "n_features": int(X.shape[1]),
        "image_shape": list(ctx.image_shape),
        "quick": bool(quick),
        "device": str(device),
        "random_state": json_safe(random_state),
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "library_version": __version__,
        "machine": machine,
        "command": command,
        "chapters": {
            c.key: {
                "title": c.title,
                "numbers": c.numbers,
                "seconds": c.seconds,
                "figures": [{"caption": cap, "alt": alt} for _, cap, alt in c.figures],
                "warnings": c.warnings,
                "measures": c.measures,
                "widgets": [{"kind": w.kind, "title": w.title, "bytes": w.embedded_bytes(),
                             "shared_bytes": w.blob_bytes()} for w in c.widgets],
                **({"tables": c.tables} if c.tables else {}),
            }
            for c in rendered
        },
        # every chapter with a failed or unconverged fit, and what was said
        "failed_fits": {c.key: [w["message"] for w in c.warnings] for c in rendered
                        if c.warnings},
    }
    if "scoreboard" in ctx.results:  # every model scored on one held-out set
        summary["scoreboard"] = ctx.results["scoreboard"]["summary"]
    # the published figures this run measured, read back from the chapters' numbers above
    summary["reproduction"] = build_table(from_summary(summary))
    total = time.perf_counter() - t_start
    summary["timings"] = {
        "load_seconds": load_seconds,
        "chapters": {c.key: c.seconds for c in rendered},
        "total_seconds": total,
    }
    summary["index_html"] = os.fspath(index)
    summary = json_safe(summary)
    meta = dict(summary, total_seconds=total, note=note,
                date=summary["date"].replace("T", " "))
    write_text_atomic(index, render_html(meta, rendered, reproduction=summary["reproduction"]))
    write_text_atomic(out / "summary.json", dumps_json(summary))
    return summary
