"""Durable storage for raftkv: ``DiskStorage`` (WAL, hard state, snapshots, crash recovery).

``DiskStorage`` implements ``raftkv.raft.storage.HostStorage`` on a data dir and answers every
read exactly as ``MemoryStorage`` does; ``AsyncDiskStorage`` is its asyncio face with group
commit. ``FaultyFileSystem`` is the shipped fault-injection layer under the real I/O path.
"""

from raftkv.storage.aio import AsyncDiskStorage
from raftkv.storage.disk import DiskStorage
from raftkv.storage.errors import CorruptionError, DataDirLocked, DiskStorageError, StorageFatal
from raftkv.storage.faultfs import FaultyFileSystem, SimulatedCrash
from raftkv.storage.fs import File, FileSystem, OSFileSystem
from raftkv.storage.wal import DEFAULT_SEGMENT_SIZE

__all__ = [
    "DEFAULT_SEGMENT_SIZE",
    "AsyncDiskStorage",
    "CorruptionError",
    "DataDirLocked",
    "DiskStorage",
    "DiskStorageError",
    "FaultyFileSystem",
    "File",
    "FileSystem",
    "OSFileSystem",
    "SimulatedCrash",
    "StorageFatal",
]
