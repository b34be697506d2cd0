"""Reading the files an operator names (config, certificate, key, CA, MOTD) safely.

The rules, and why:

- Regular files only. A FIFO given as a certificate path blocked ``open()`` until a
  writer appeared, and with it the whole event loop (review L5); a character device
  (``/dev/zero``) would never end. So the file is opened with ``O_NONBLOCK`` (opening a
  FIFO for reading then returns at once, see fifo(7)) and ``fstat``-ed before one byte is
  read: what is checked is what is read, with no window to swap the path in between.
- Bounded. Nothing an operator legitimately names is near ``MAX_FILE_BYTES``; a larger
  file is a wrong path, refused before it fills memory.
- One readable line per problem (:class:`FileRefused`), naming the kind of file found.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import NamedTuple

__all__ = ["MAX_FILE_BYTES", "FileRefused", "RegularFile", "read_regular_file"]

# Config files, certificate chains, keys and MOTDs are kilobytes; 1 MiB is generous.
MAX_FILE_BYTES = 1024 * 1024

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class FileRefused(Exception):
    """The file cannot be used; the message completes "<what> <path> ..."."""


class RegularFile(NamedTuple):
    data: bytes
    info: os.stat_result  # of the very file read (mode and owner for permission checks)


def read_regular_file(path: Path, max_bytes: int = MAX_FILE_BYTES) -> RegularFile:
    """The bytes of ``path`` if it is a regular file of at most ``max_bytes``."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise FileRefused("does not exist") from None
    except OSError as exc:
        _check_kind(path)  # a socket cannot even be opened (ENXIO): name what it is
        raise FileRefused(f"cannot be read: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        _check_regular(info, max_bytes)
        return RegularFile(_read_all(fd, max_bytes), info)
    finally:
        os.close(fd)


def _check_kind(path: Path) -> None:
    try:
        info = os.stat(path)
    except OSError:
        return
    _check_regular(info, MAX_FILE_BYTES)


def _check_regular(info: os.stat_result, max_bytes: int) -> None:
    for test, kind in _KINDS:
        if test(info.st_mode):
            raise FileRefused(f"is {kind}, not a regular file")
    if not stat.S_ISREG(info.st_mode):
        raise FileRefused("is not a regular file")
    if info.st_size > max_bytes:
        raise FileRefused(f"is {info.st_size} bytes, more than the {max_bytes} allowed")


def _read_all(fd: int, max_bytes: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    try:
        while chunk := os.read(fd, 65536):
            size += len(chunk)
            if size > max_bytes:  # the file grew since fstat
                raise FileRefused(f"is more than the {max_bytes} bytes allowed")
            chunks.append(chunk)
    except OSError as exc:
        raise FileRefused(f"cannot be read: {exc.strerror or exc}") from None
    return b"".join(chunks)
