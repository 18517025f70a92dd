"""Reading the files a site names: regular files only, size-capped, never blocking.

First stage of the pipeline (site -> plan -> apply -> verify -> commit | rollback -> report).
The loader reads the site file, ``${file:PATH}`` references, certificates, keys and CA bundles
through ``read_capped``, so that ``/dev/zero``, a FIFO nobody writes to, a symlink loop, a
folder or a 5 GB file is a one-line input problem instead of a hang, a ``MemoryError`` or
a traceback. The size is checked from ``fstat`` before anything is read.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from fortiauto.errors import InputError

__all__ = ["REFERENCED_FILE_CAP", "SITE_FILE_CAP", "read_capped", "size_text"]

SITE_FILE_CAP = 4 * 1024 * 1024
# Certificates with their chain, keys, tokens and CA bundles (the Debian bundle is ~220 KB).
REFERENCED_FILE_CAP = 1024 * 1024

_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0)
_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def size_text(size: int) -> str:
    """``4 MB``, ``1 MB``, ``12 KB``: how limits and sizes appear in messages."""
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.3g} MB"
    return f"{max(1, size // 1024)} KB"


def _open_reason(exc: OSError) -> str:
    if exc.errno == errno.ENOENT:
        return "not found"
    if exc.errno == errno.ENOTDIR:
        return "not found (a part of its path is not a folder)"
    if exc.errno == errno.ELOOP:
        return "is a symbolic link loop"
    if exc.errno == errno.EACCES:
        return "cannot be read (permission denied)"
    return f"cannot be read ({os.strerror(exc.errno) if exc.errno else type(exc).__name__})"


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def read_capped(path: Path, *, cap: int) -> bytes:
    """The bytes of ``path`` if it is a regular file of at most ``cap`` bytes.

    Opens without blocking (a FIFO with no writer does not hang) and reads at most ``cap + 1``
    bytes, so a file that grows while it is read is refused too.

    Raises:
        InputError: a phrase to follow the file's name, e.g. ``"not found"``, ``"is a FIFO
            (named pipe), not a regular file"`` or ``"is 5.5 MB; the limit is 4 MB"``.
    """
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        raise InputError(_open_reason(exc)) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = _kind(info.st_mode)
            raise InputError(f"is {kind}, not a regular file" if kind != "not a regular file" else kind)
        if info.st_size > cap:
            raise InputError(f"is {size_text(info.st_size)}; the limit is {size_text(cap)}")
        chunks: list[bytes] = []
        left = cap + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1024 * 1024))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    except OSError as exc:
        raise InputError(_open_reason(exc)) from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > cap:
        raise InputError(f"grew past the limit of {size_text(cap)} while it was read")
    return data
