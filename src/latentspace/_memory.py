"""Memory estimates before large allocations.

A shape or solver that needs more memory than the machine has gets an up-front
``ValueError`` with the estimate and the alternative, instead of a ``MemoryError`` (or an
hour of swapping) deep inside numpy or torch.
"""

from __future__ import annotations

import os
import resource
import time

import torch

__all__ = ["available_bytes", "check_allocation", "format_bytes"]


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_limit() -> int | None:
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as f:
                text = f.read().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 1 << 60:
            return int(text)
    return None


def _status_kib(field: str) -> int | None:
    """A ``VmSize``-style field of ``/proc/self/status`` in bytes, or None."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _rlimit_room() -> int | None:
    """Bytes the process may still map under its address-space and data-segment limits
    (``RLIMIT_AS`` minus ``VmSize``, ``RLIMIT_DATA`` minus ``VmData``), or None when neither
    is set. Containers and batch schedulers set them; past them every allocation fails
    with a ``MemoryError`` however much memory the machine has free."""
    room = None
    for limit_name, field in (("RLIMIT_AS", "VmSize"), ("RLIMIT_DATA", "VmData")):
        which = getattr(resource, limit_name, None)
        if which is None:
            continue
        try:
            soft, _ = resource.getrlimit(which)
        except (OSError, ValueError):
            continue
        if soft == resource.RLIM_INFINITY or soft < 0:
            continue
        used = _status_kib(field)
        left = max(int(soft) - (used or 0), 0)
        room = left if room is None else min(room, left)
    return room


_CACHE_SECONDS = 1.0  # a reading of the system's files serves the checks of this long
_cached: tuple[float, int | None, int | None] | None = None


def _system_readings() -> tuple[int | None, int | None]:
    """(MemAvailable, cgroup limit), read at most once per ``_CACHE_SECONDS``: a small fit
    repeated in a loop would otherwise spend a third of its time reading them."""
    global _cached
    now = time.monotonic()
    if _cached is None or now - _cached[0] > _CACHE_SECONDS:
        _cached = (now, _meminfo_available(), _cgroup_limit())
    return _cached[1], _cached[2]


def available_bytes(device: torch.device | str = "cpu") -> int:
    """Bytes that a new allocation on ``device`` can take without swapping (best estimate).

    On the CPU: the kernel's ``MemAvailable`` (free memory plus reclaimable cache), capped by
    a cgroup limit when one is set and by what the process's ``RLIMIT_AS`` and
    ``RLIMIT_DATA`` leave (limit minus its current virtual and data size); the physical
    memory size where ``MemAvailable`` is not readable. On a CUDA device: its free memory
    as the driver reports it.
    """
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    avail, cgroup = _system_readings()
    if avail is None:
        try:
            avail = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            avail = 1 << 62  # unknown: refuse only past a limit
    for limit in (cgroup, _rlimit_room()):
        if limit is not None:
            avail = min(avail, limit)
    return avail


def format_bytes(n: float) -> str:
    """``1.5 GiB``-style size."""
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} EiB"  # pragma: no cover


def check_allocation(nbytes: float, what: str, alternative: str, *,
                     device: torch.device | str = "cpu") -> None:
    """Raise ``ValueError`` when ``nbytes`` exceed the memory available on ``device``.

    Parameters
    ----------
    nbytes : float
        The estimate of the allocation (a float, so that huge products cannot overflow).
    what : str
        What needs it, e.g. ``"PCA(svd_solver='gram') on 30000 x 60 data: its 30000 x 30000
        Gram matrix"``.
    alternative : str
        How to fit anyway, e.g. ``"use svd_solver='covariance'"``.
    """
    avail = available_bytes(device)
    if nbytes > avail:
        raise ValueError(
            f"{what} needs about {format_bytes(nbytes)}, but only {format_bytes(avail)} is "
            f"available on {torch.device(device).type}; {alternative}."
        )
