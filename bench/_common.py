"""Timing helpers shared by the benchmark scripts: medians of repeated runs in one process."""

from __future__ import annotations

import platform
import random
import statistics
import time


def median_time(fn, repeats: int = 5, warmup: int = 1) -> tuple[float, object]:
    """Run ``fn`` ``warmup`` + ``repeats`` times; return (median seconds, last result)."""
    out = None
    for _ in range(warmup):
        out = fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def machine() -> str:
    import os

    import numpy as np
    import sklearn
    import torch

    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), numpy {np.__version__}, scikit-learn {sklearn.__version__}"
    )


def interleaved_medians(fns: dict, repeats: int = 5, warmup: int = 1, settle: float = 0.0) -> dict:
    """Median seconds of each callable, timed in alternation so that load drifts hit all alike.

    Each round runs the callables in a fresh random order (seeded), so that none always runs
    right after the same other one: a large allocation or a busy thread pool left behind by one
    call slows the next. With ``settle`` > 0, each timed call is preceded by a pause of that
    many seconds, so that it starts on an idle machine: BLAS libraries keep their worker
    threads spinning for a while after each call, and numpy, scipy and torch each have their
    own pool, so a call made right after another library's heavy work runs with a core less.

    Returns {name: (median seconds, last result)}.
    """
    results = {name: None for name in fns}
    for _ in range(warmup):
        for name, fn in fns.items():
            results[name] = fn()
    times = {name: [] for name in fns}
    names = list(fns)
    order = random.Random(0)
    for _ in range(repeats):
        order.shuffle(names)
        for name in names:
            fn = fns[name]
            if settle:
                time.sleep(settle)
            t0 = time.perf_counter()
            results[name] = fn()
            times[name].append(time.perf_counter() - t0)
    return {name: (statistics.median(times[name]), results[name]) for name in fns}
