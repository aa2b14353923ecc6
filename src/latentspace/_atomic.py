"""Atomic file writes: a crash at any moment leaves the previous file intact, and no
temporary file behind.

The bytes go to an unnamed temporary inode in the target folder (``O_TMPFILE``), are
fsynced, get a hidden name ``.<target>.<pid>.<random>.tmp`` only for the microseconds before
``os.replace`` moves it over the target. Where unnamed files are unsupported, the same hidden
name is a plain temporary file, removed on any error. A process killed inside that window
cannot clean up, so every write first removes the temporary files of its target left by
processes that no longer exist. Model files (:mod:`latentspace.io`), checkpoints, reports,
datasets and the command line's outputs are all written this way.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write_bytes"]


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a crash never leaves a half-written file there.

    Parameters
    ----------
    path : str or Path
        The target; its folder must exist.
    data : bytes
        The whole new content.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(f"cannot save to {path}: folder {folder} does not exist")
    _remove_stale(folder, path.name)
    if not _write_unnamed(folder, path, data):
        fd, tmp_name = tempfile.mkstemp(prefix=_prefix(path.name), suffix=".tmp", dir=folder)
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


def _prefix(name: str) -> str:
    """Hidden temporary names of ``name`` written by this process: ``.<name>.<pid>.``."""
    return f".{name}.{os.getpid()}."


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _remove_stale(folder: Path, name: str) -> None:
    """Remove ``.<name>.<pid>.*.tmp`` left in ``folder`` by processes that have died."""
    head = f".{name}."
    try:
        entries = [e.name for e in os.scandir(folder) if e.name.startswith(head)]
    except OSError:
        return
    for entry in entries:
        pid, _, rest = entry[len(head):].partition(".")
        if pid.isdigit() and rest.endswith(".tmp") and not _alive(int(pid)):
            _unlink_quietly(folder / entry)


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


def _link_descriptor(fd: int, name: str) -> bool:
    """Give the inode behind ``fd`` the name ``name``: ``linkat`` with AT_SYMLINK_FOLLOW on
    ``/proc/self/fd/<fd>`` (os.link takes that route only with a directory descriptor)."""
    try:
        proc = os.open("/proc/self/fd", os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return False
    try:
        os.link(str(fd), name, src_dir_fd=proc, follow_symlinks=True)
    except OSError:
        return False
    finally:
        os.close(proc)
    return True


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
        tmp_name = str(folder / f"{_prefix(path.name)}{os.urandom(4).hex()}.tmp")
        if not _link_descriptor(fd, tmp_name):
            return False
    finally:
        os.close(fd)
    try:
        os.replace(tmp_name, path)
    except BaseException:
        _unlink_quietly(tmp_name)
        raise
    return True
