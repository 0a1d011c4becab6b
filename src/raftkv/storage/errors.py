"""Errors raised by ``raftkv.storage``.

::

    raftkv.raft.errors.StorageError
    └── DiskStorageError        base of every error of this package
        ├── StorageFatal        a write or fsync failed (EIO, ENOSPC, ...): the storage refuses
        │                       further writes; nothing of the failed call counts as saved.
        │                       Reopen the data dir (after freeing space) to go on.
        ├── CorruptionError     a record, segment or snapshot failed its checks somewhere other
        │                       than a torn tail; names the file and byte offset. Nothing on
        │                       disk was changed.
        └── DataDirLocked       another DiskStorage (this process or another) holds the data dir

Every message is one line, fit for a log line or a CLI's error output.
"""

from __future__ import annotations

from raftkv.raft.errors import StorageError


def one_line(text: str) -> str:
    """``text`` with its line breaks folded into spaces."""
    return " ".join(text.split())


class DiskStorageError(StorageError):
    """Base class of the errors of ``raftkv.storage``; the message is always one line."""

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message))


class StorageFatal(DiskStorageError):
    """A write, fsync or allocation failed. The storage object is dead for writes."""


class CorruptionError(DiskStorageError):
    """Data on disk failed validation.

    Attributes:
        path: the file that failed validation.
        offset: the byte offset of the bad record or header in that file (0 for a whole file).
    """

    def __init__(self, path: str, offset: int, what: str) -> None:
        self.path = path
        self.offset = offset
        super().__init__(f"corrupt data in {path} at byte {offset}: {what}")


class DataDirLocked(DiskStorageError):
    """The data dir is already open (in this or another process)."""
