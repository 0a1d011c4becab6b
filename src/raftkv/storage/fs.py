"""The file-system layer: every byte the WAL and the snapshot store read or write goes through it.

``OSFileSystem`` is the real one. ``raftkv.storage.faultfs.FaultyFileSystem`` wraps any
``FileSystem`` to cut writes, fail fsyncs, run out of space and lose unsynced data, under the
WAL's real I/O path.

Paths are plain ``str``. Writes are positional (``write_at``) so the WAL never depends on a
file offset, and never buffered: what ``write_at`` returned is in the OS, what ``sync``
returned is on disk.
"""

from __future__ import annotations

import errno
import fcntl
import mmap
import os
from typing import Protocol

Buffer = bytes | bytearray | memoryview
"""Bytes to write (``collections.abc.Buffer`` once Python 3.12 is the floor)."""


class File(Protocol):
    """A file open for reading and writing."""

    @property
    def path(self) -> str: ...

    def write_at(self, offset: int, data: Buffer) -> None:
        """Write all of ``data`` at ``offset`` (short writes are retried; errors raise OSError)."""
        ...

    def sync(self) -> None:
        """Make everything written so far durable (fdatasync)."""
        ...

    def allocate(self, size: int) -> None:
        """Reserve disk space so the file is at least ``size`` bytes of zeros past its data."""
        ...

    def truncate(self, size: int) -> None: ...

    def close(self) -> None: ...


class Lock(Protocol):
    """An exclusive lock, held until ``release``."""

    def release(self) -> None: ...


class FileSystem(Protocol):
    """The operations the storage performs on files and directories."""

    def open(self, path: str, create: bool = False) -> File:
        """Open ``path`` for writing; ``create`` makes a new, empty file (replacing any)."""
        ...

    def read(self, path: str) -> bytes:
        """The whole content of ``path``."""
        ...

    def map(self, path: str) -> memoryview:
        """The whole content of ``path``, read-only, without copying it where possible (a
        memory map: recovery reads every segment once, and a copy of 64 MiB costs more than
        scanning it)."""
        ...

    def size(self, path: str) -> int: ...

    def listdir(self, path: str) -> list[str]:
        """Names in directory ``path``, sorted."""
        ...

    def exists(self, path: str) -> bool: ...

    def is_dir(self, path: str) -> bool: ...

    def mkdir(self, path: str) -> None:
        """Create directory ``path`` and fsync its parent."""
        ...

    def rename(self, src: str, dst: str) -> None:
        """Atomically rename (replacing ``dst``); durable once the directory is fsynced."""
        ...

    def remove(self, path: str) -> None: ...

    def fsync_dir(self, path: str) -> None:
        """Make the directory's entries (creations, renames, removals) durable."""
        ...

    def lock(self, path: str) -> Lock:
        """Take an exclusive, non-blocking lock on directory ``path``.

        Raises:
            BlockingIOError: someone else holds it.
        """
        ...


_fdatasync = getattr(os, "fdatasync", os.fsync)  # macOS has no fdatasync


def _fallocate(fd: int, offset: int, length: int) -> None:
    if not hasattr(os, "posix_fallocate"):
        raise OSError(errno.ENOSYS, "posix_fallocate is not available")
    os.posix_fallocate(fd, offset, length)


class OSFile:
    """A raw file descriptor: ``os.pwrite`` and ``os.fdatasync``, no buffering."""

    def __init__(self, path: str, fd: int) -> None:
        self._path = path
        self._fd = fd

    @property
    def path(self) -> str:
        return self._path

    def write_at(self, offset: int, data: Buffer) -> None:
        view = memoryview(data)
        while view.nbytes:
            n = os.pwrite(self._fd, view, offset)
            view = view[n:]
            offset += n

    def sync(self) -> None:
        _fdatasync(self._fd)

    def allocate(self, size: int) -> None:
        have = os.fstat(self._fd).st_size
        if size <= have:
            return
        try:
            _fallocate(self._fd, have, size - have)
        except OSError as e:
            if e.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                raise
            self._write_zeros(have, size)

    def _write_zeros(self, start: int, end: int) -> None:
        chunk = bytes(1 << 20)
        while start < end:
            n = min(len(chunk), end - start)
            self.write_at(start, chunk[:n])
            start += n

    def truncate(self, size: int) -> None:
        os.ftruncate(self._fd, size)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class OSLock:
    """``fcntl.flock`` on an open directory descriptor; closing the descriptor releases it."""

    def __init__(self, path: str) -> None:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # closing the last descriptor drops the flock
            self._fd = -1


class OSFileSystem:
    """The real file system."""

    def open(self, path: str, create: bool = False) -> File:
        flags = os.O_RDWR | os.O_CLOEXEC | (os.O_CREAT | os.O_TRUNC if create else 0)
        return OSFile(path, os.open(path, flags, 0o644))

    def read(self, path: str) -> bytes:
        with open(path, "rb") as f:
            return f.read()

    def map(self, path: str) -> memoryview:
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_size == 0:
                return memoryview(b"")
            return memoryview(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ))

    def size(self, path: str) -> int:
        return os.stat(path).st_size

    def listdir(self, path: str) -> list[str]:
        return sorted(os.listdir(path))

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def is_dir(self, path: str) -> bool:
        return os.path.isdir(path)

    def mkdir(self, path: str) -> None:
        os.mkdir(path, 0o755)
        self.fsync_dir(os.path.dirname(os.path.abspath(path)))

    def rename(self, src: str, dst: str) -> None:
        os.rename(src, dst)

    def remove(self, path: str) -> None:
        os.remove(path)

    def fsync_dir(self, path: str) -> None:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def lock(self, path: str) -> Lock:
        return OSLock(path)
