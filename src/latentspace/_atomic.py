"""Atomic file writes: a crash at any moment leaves the previous file intact.

The bytes go to an unnamed temporary file in the target folder (``O_TMPFILE``, or a hidden
named one where that is unsupported), are fsynced, then linked into place with ``os.replace``.
Model files (:mod:`latentspace.io`), checkpoints, reports, datasets and the command line's
outputs are all written this way.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write_bytes"]


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a crash never leaves a half-written file there.

    The bytes go to an unnamed ``O_TMPFILE`` inode in the target folder (nothing to clean up
    if the process is killed), are fsynced, get a hidden name only at the end and are renamed
    over ``path``. Where unnamed files are unsupported, a hidden named temporary file is used
    and removed on any error.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(f"cannot save to {path}: folder {folder} does not exist")
    if not _write_unnamed(folder, path, data):
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
        try:
            try:
                _write_all(fd, data)
            finally:
                os.close(fd)
            os.replace(tmp_name, path)
        except BaseException:
            _unlink_quietly(tmp_name)
            raise
    _fsync_folder(folder)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    os.fsync(fd)


def _unlink_quietly(name) -> None:
    try:
        os.unlink(name)
    except FileNotFoundError:
        pass


def _fsync_folder(folder: Path) -> None:
    try:  # persist the rename itself
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def _linkat_follow(src: str, dst: str) -> bool:
    """``linkat(AT_FDCWD, src, AT_FDCWD, dst, AT_SYMLINK_FOLLOW)``: names an O_TMPFILE inode."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.linkat(-100, src.encode(), -100, dst.encode(), 0x400) == 0
    except (OSError, AttributeError):
        return False


def _write_unnamed(folder: Path, path: Path, data: bytes) -> bool:
    """Atomic write through an unnamed temporary inode; False where unsupported."""
    if not hasattr(os, "O_TMPFILE") or not Path("/proc/self/fd").is_dir():
        return False
    try:
        fd = os.open(folder, os.O_TMPFILE | os.O_WRONLY, 0o644)
    except OSError:
        return False
    try:
        _write_all(fd, data)  # a full disk raises here; nothing has a name yet
        tmp_name = str(folder / f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
        if not _linkat_follow(f"/proc/self/fd/{fd}", tmp_name):
            return False
    finally:
        os.close(fd)
    try:
        os.replace(tmp_name, path)
    except BaseException:
        _unlink_quietly(tmp_name)
        raise
    return True
