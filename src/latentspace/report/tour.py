"""Run the lecture end to end on one dataset and write ``index.html`` + ``summary.json``.

The chapters run in :data:`latentspace.report.chapters.ORDER`, sharing one
:class:`~latentspace.report.TourContext`; each returns a :class:`~latentspace.report.Chapter`
whose figures are encoded to PNG (and closed) as soon as the chapter ends.
"""

from __future__ import annotations

import datetime as _dt
import os
import time
from pathlib import Path

import numpy as np

from ._chapter import TourContext
from ._html import (
    RenderedChapter,
    dumps_json,
    encode_png,
    json_safe,
    render_html,
    write_text_atomic,
)

__all__ = ["run_tour", "select_chapters"]

QUICK_MAX_SAMPLES = 2000  # a quick run keeps a seeded random subset of at most this many rows


def select_chapters(chapters=None) -> list[tuple[str, object]]:
    """The (key, run) pairs to run, in the lecture's order.

    Parameters
    ----------
    chapters : None, str or sequence of str
        None for all available chapters; a comma-separated string or a list of keys otherwise.

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


def _progress_bar(total: int, enabled: bool):
    from tqdm.auto import tqdm

    # disable=None: tqdm turns itself off when stderr is not a terminal
    # tqdm writes desc as "desc: " and the postfix as ", postfix"
    return tqdm(total=total, desc="tour", unit="chapter", disable=None if enabled else True,
                bar_format="{desc}{percentage:3.0f}%|{bar:20}| {n_fmt}/{total_fmt} chapters "
                "[{elapsed}<{remaining}{postfix}]")


def run_tour(dataset="digits", out="tour_out", quick=False, device="cpu", chapters=None,
             random_state=0, data_home=None, progress=True) -> dict:
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
    device : {"cpu", "cuda", "auto"}
    chapters : None, str or list of str
        Chapter keys to run (see :func:`latentspace.report.chapters.available_chapters`).
    random_state : int, default=0
        Seed given to every chapter.
    data_home : str or Path, optional
        Data folder for datasets other than digits.
    progress : bool, default=True
        Show a progress bar (only on a terminal).

    Returns
    -------
    summary : dict
        What ``summary.json`` holds: dataset facts, every chapter's numbers, timings and the
        path of ``index.html``.

    Raises
    ------
    ValueError
        An unknown chapter key or dataset name, or an unusable ``device``.
    Exception
        Whatever a chapter raises propagates; no report is written then.
    """
    from .._backend import resolve_device
    from ..data import load_dataset

    t_start = time.perf_counter()
    resolve_device(device)  # fail before any work when e.g. CUDA is missing
    selected = select_chapters(chapters)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    ds = load_dataset(dataset, data_home=data_home, return_images=False)
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
    bar = _progress_bar(len(selected), progress)
    ctx = TourContext(
        name=str(ds.name), X=X, y=y, image_shape=tuple(int(s) for s in ds.image_shape),
        target_names=ds.target_names, quick=bool(quick), device=device,
        random_state=random_state,
    )
    try:
        for key, run in selected:
            bar.set_description(f"tour {key}")
            ctx.progress = bar.set_postfix_str
            t0 = time.perf_counter()
            chapter = run(ctx)
            ctx.progress("encoding figures")
            figures = [(encode_png(f.figure), f.caption, f.alt) for f in chapter.figures]
            chapter.seconds = time.perf_counter() - t0
            rendered.append(RenderedChapter(
                key=chapter.key, title=chapter.title, intro=chapter.intro,
                formula=chapter.formula, figures=figures, numbers=json_safe(chapter.numbers),
                seconds=chapter.seconds,
            ))
            bar.update(1)
        bar.set_postfix_str("done")
    finally:
        bar.close()

    total = time.perf_counter() - t_start
    from .. import __version__

    index = out / "index.html"
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
        "chapters": {
            c.key: {
                "title": c.title,
                "numbers": c.numbers,
                "seconds": c.seconds,
                "figures": [{"caption": cap, "alt": alt} for _, cap, alt in c.figures],
            }
            for c in rendered
        },
        "timings": {
            "load_seconds": load_seconds,
            "chapters": {c.key: c.seconds for c in rendered},
            "total_seconds": total,
        },
        "index_html": os.fspath(index),
    }
    meta = dict(summary, total_seconds=total, note=note,
                date=summary["date"].replace("T", " "))
    write_text_atomic(index, render_html(meta, rendered))
    write_text_atomic(out / "summary.json", dumps_json(summary))
    return json_safe(summary)
