"""``FaultyFileSystem``: a ``FileSystem`` that fails the way disks and machines fail.

It wraps a real file system (``OSFileSystem`` by default) and sits under the WAL's and the
snapshot store's real I/O path, so tests exercise the shipped code, not a copy of it. It can:

* cut a write at a chosen byte and then "crash": the prefix reaches the file, the write raises
  ``SimulatedCrash``, and every later operation raises too, until ``crash()`` reboots;
* fail writes and allocations with ENOSPC once a byte budget is spent, until ``free_space()``;
* fail the next fsyncs with EIO (the unsynced data of that file is then lost to a power cut, as
  on Linux, where a failed fsync marks the dirty pages clean);
* lose power: ``crash()`` returns every file to its content at its last fsync and every directory
  to its entries at its last directory fsync, and closes every handle and lock.

The model of durability: a file's durable content is its content at its last successful
``sync`` (files that existed before the wrapper first saw them count as durable); a directory's
durable entries are those at its last ``fsync_dir`` (at first sight, likewise). Directories
themselves are assumed durable once created (``mkdir`` fsyncs the parent anyway).
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass, field

from raftkv.storage.fs import Buffer, File, FileSystem, Lock, OSFileSystem


class SimulatedCrash(OSError):
    """The simulated machine went down in the middle of this operation."""

    def __init__(self, what: str) -> None:
        super().__init__(errno.EIO, f"simulated crash: {what}")


@dataclass
class _Inode:
    """What the model knows of one file: its durable bytes and the writes since its last sync."""

    durable: bytearray
    pending: list[tuple[str, int, bytes]] = field(default_factory=list)

    def settle(self) -> None:
        """The pending writes became durable."""
        for op, offset, data in self.pending:
            _apply(self.durable, op, offset, data)
        self.pending.clear()


def _apply(image: bytearray, op: str, offset: int, data: bytes) -> None:
    if op == "write":
        if offset > len(image):
            image.extend(bytes(offset - len(image)))
        image[offset : offset + len(data)] = data
    elif op == "truncate":
        del image[offset:]
        image.extend(bytes(max(0, offset - len(image))))
    elif op == "allocate" and offset > len(image):
        image.extend(bytes(offset - len(image)))


class FaultyFile:
    """A file of a ``FaultyFileSystem``; every call checks the file system's faults first."""

    def __init__(self, fs: FaultyFileSystem, inner: File, inode: _Inode) -> None:
        self._fs = fs
        self._inner = inner
        self._inode = inode
        self.closed = False

    @property
    def path(self) -> str:
        return self._inner.path

    def write_at(self, offset: int, data: Buffer) -> None:
        fs = self._fs
        fs._check(self)
        data = bytes(data)
        cut: OSError | None = None
        if fs._crash_budget is not None and len(data) > fs._crash_budget:
            data, cut = data[: fs._crash_budget], SimulatedCrash(f"write to {self.path} cut")
            fs._dead = True
        elif fs._space_budget is not None and len(data) > fs._space_budget:
            data = data[: fs._space_budget]
            cut = OSError(errno.ENOSPC, f"No space left on device: {self.path}")
        if fs._crash_budget is not None:
            fs._crash_budget -= len(data)
        if fs._space_budget is not None:
            fs._space_budget -= len(data)
        if data:
            self._inner.write_at(offset, data)
            self._inode.pending.append(("write", offset, data))
            fs.bytes_written += len(data)
        if cut is not None:
            raise cut

    def sync(self) -> None:
        fs = self._fs
        fs._check(self)
        if fs._failing_syncs:
            fs._failing_syncs -= 1
            self._inode.pending.clear()  # Linux: a failed fsync drops the dirty pages' state
            raise OSError(errno.EIO, f"Input/output error: fsync {self.path}")
        self._inner.sync()
        self._inode.settle()
        fs.syncs += 1

    def allocate(self, size: int) -> None:
        fs = self._fs
        fs._check(self)
        if fs._space_budget is not None:
            grow = max(0, size - fs._inner.size(self.path))
            if grow > fs._space_budget:
                raise OSError(errno.ENOSPC, f"No space left on device: {self.path}")
            fs._space_budget -= grow
        self._inner.allocate(size)
        self._inode.pending.append(("allocate", size, b""))

    def truncate(self, size: int) -> None:
        self._fs._check(self)
        self._inner.truncate(size)
        self._inode.pending.append(("truncate", size, b""))

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._fs._open.discard(self)
            self._inner.close()


class _FaultyLock:
    def __init__(self, fs: FaultyFileSystem, inner: Lock) -> None:
        self._fs = fs
        self._inner = inner
        self.released = False

    def release(self) -> None:
        if not self.released:
            self.released = True
            self._fs._open.discard(self)
            self._inner.release()


class FaultyFileSystem:
    """A ``FileSystem`` with injectable faults and a power-loss model. Not thread-safe.

    Args:
        inner: the file system that holds the bytes (the real one by default).

    Attributes:
        syncs: successful file syncs so far.
        bytes_written: bytes that reached the inner file system.
    """

    def __init__(self, inner: FileSystem | None = None) -> None:
        self._inner: FileSystem = inner or OSFileSystem()
        self._inodes: dict[str, _Inode] = {}  # current path -> inode
        self._dirs: dict[str, dict[str, _Inode]] = {}  # dir -> durable name -> inode
        self._open: set[FaultyFile | _FaultyLock] = set()
        self._crash_budget: int | None = None
        self._space_budget: int | None = None
        self._failing_syncs = 0
        self._dead = False
        self.syncs = 0
        self.bytes_written = 0

    # -- the knobs --------------------------------------------------------------------------

    def crash_after(self, nbytes: int) -> None:
        """Cut the write that crosses ``nbytes`` more bytes at that byte, then crash."""
        self._crash_budget = nbytes

    def enospc_after(self, nbytes: int) -> None:
        """After ``nbytes`` more bytes, writes and allocations fail with ENOSPC."""
        self._space_budget = nbytes

    def free_space(self) -> None:
        """Writes succeed again."""
        self._space_budget = None

    def fail_syncs(self, count: int = 1) -> None:
        """The next ``count`` file syncs fail with EIO."""
        self._failing_syncs = count

    @property
    def dead(self) -> bool:
        """The simulated machine is down: every operation raises until ``crash()``."""
        return self._dead

    def crash(self, lose_unsynced: bool = True) -> None:
        """The machine goes down and comes back: every handle and lock is dropped.

        Args:
            lose_unsynced: a power cut: files and directories return to their last-synced
                state. With False only the process died: what reached the OS stays.
        """
        for handle in list(self._open):
            if isinstance(handle, FaultyFile):
                handle.close()
            else:
                handle.release()
        self._open.clear()
        if lose_unsynced:
            for dirpath, durable in self._dirs.items():
                self._restore_dir(dirpath, durable)
            self._inodes = {
                os.path.join(d, name): inode
                for d, names in self._dirs.items()
                for name, inode in names.items()
            }
        self._crash_budget = None
        self._space_budget = None
        self._failing_syncs = 0
        self._dead = False

    # -- the FileSystem protocol ----------------------------------------------------------------

    def open(self, path: str, create: bool = False) -> File:
        self._check()
        path = os.path.abspath(path)
        self._track_dir(os.path.dirname(path))
        existed = self._inner.exists(path)
        inode = self._inode_of(path) if existed else _Inode(durable=bytearray())
        inner = self._inner.open(path, create)
        self._inodes[path] = inode
        if create and existed:
            inode.pending.append(("truncate", 0, b""))  # O_TRUNC: the same inode, emptied
        handle = FaultyFile(self, inner, inode)
        self._open.add(handle)
        return handle

    def read(self, path: str) -> bytes:
        self._check()
        return self._inner.read(path)

    def map(self, path: str) -> memoryview:
        self._check()
        return self._inner.map(path)

    def size(self, path: str) -> int:
        self._check()
        return self._inner.size(path)

    def listdir(self, path: str) -> list[str]:
        self._check()
        return self._inner.listdir(path)

    def exists(self, path: str) -> bool:
        self._check()
        return self._inner.exists(path)

    def is_dir(self, path: str) -> bool:
        self._check()
        return self._inner.is_dir(path)

    def mkdir(self, path: str) -> None:
        self._check()
        self._inner.mkdir(path)

    def rename(self, src: str, dst: str) -> None:
        self._check()
        src, dst = os.path.abspath(src), os.path.abspath(dst)
        self._track_dir(os.path.dirname(src))
        self._track_dir(os.path.dirname(dst))
        self._inode_of(src)
        self._inner.rename(src, dst)
        self._inodes[dst] = self._inodes.pop(src)

    def remove(self, path: str) -> None:
        self._check()
        path = os.path.abspath(path)
        self._track_dir(os.path.dirname(path))
        self._inode_of(path)
        self._inner.remove(path)
        self._inodes.pop(path, None)

    def fsync_dir(self, path: str) -> None:
        self._check()
        path = os.path.abspath(path)
        self._track_dir(path)
        self._inner.fsync_dir(path)
        self._dirs[path] = self._current_entries(path)

    def lock(self, path: str) -> Lock:
        self._check()
        handle = _FaultyLock(self, self._inner.lock(path))
        self._open.add(handle)
        return handle

    # -- the model ------------------------------------------------------------------------------

    def _check(self, handle: FaultyFile | None = None) -> None:
        if self._dead:
            raise SimulatedCrash("the machine is down")
        if handle is not None and handle.closed:
            raise OSError(errno.EBADF, f"file closed (by a simulated crash?): {handle.path}")

    def _inode_of(self, path: str) -> _Inode:
        if path not in self._inodes:
            self._inodes[path] = _Inode(durable=bytearray(self._inner.read(path)))
        return self._inodes[path]

    def _track_dir(self, dirpath: str) -> None:
        """First sight of a directory: what is in it now counts as durable."""
        if dirpath not in self._dirs:
            names = [
                n
                for n in self._inner.listdir(dirpath)
                if not self._inner.is_dir(os.path.join(dirpath, n))
            ]
            self._dirs[dirpath] = {n: self._inode_of(os.path.join(dirpath, n)) for n in names}

    def _current_entries(self, dirpath: str) -> dict[str, _Inode]:
        return {
            name: self._inode_of(os.path.join(dirpath, name))
            for name in self._inner.listdir(dirpath)
            if not self._inner.is_dir(os.path.join(dirpath, name))
        }

    def _restore_dir(self, dirpath: str, durable: dict[str, _Inode]) -> None:
        for name in self._inner.listdir(dirpath):
            full = os.path.join(dirpath, name)
            if name not in durable and not self._inner.is_dir(full):
                self._inner.remove(full)
        for name, inode in durable.items():
            inode.pending.clear()
            f = self._inner.open(os.path.join(dirpath, name), create=True)
            try:
                f.write_at(0, bytes(inode.durable))
            finally:
                f.close()
