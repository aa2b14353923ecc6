"""Memory estimates before large allocations.

A shape or solver that needs more memory than the machine has gets an up-front
``ValueError`` with the estimate and the alternative, instead of a ``MemoryError`` (or an
hour of swapping) deep inside numpy or torch.
"""

from __future__ import annotations

import os

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


def available_bytes(device: torch.device | str = "cpu") -> int:
    """Bytes that a new allocation on ``device`` can take without swapping (best estimate).

    On the CPU: the kernel's ``MemAvailable`` (free memory plus reclaimable cache), capped by
    a cgroup limit when one is set; the physical memory size where neither is readable. On a
    CUDA device: its free memory as the driver reports it.
    """
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    avail = _meminfo_available()
    if avail is None:
        try:
            avail = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            return 1 << 62  # unknown: never refuse
    limit = _cgroup_limit()
    return min(avail, limit) if limit is not None else avail


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
