"""Snapshot files: ``<index:016x>-<term:016x>.snap`` in the snapshot directory.

A file is ``magic "RKVSNAP1" | length u64 | crc u32 | msgpack(Snapshot)``. It is written under a
``.tmp`` name, fsynced, renamed into place and the directory fsynced, so a file with its final
name is whole — unless the disk rotted it, which its CRC catches.

Which file counts (thesis §5: the snapshot replaces the log prefix it covers): the WAL records a
``SnapshotMark`` after each snapshot file is durable. On open the file of the newest mark is
loaded; a file newer than the mark is a leftover of a crash before the mark (never
acknowledged) and is ignored, then removed. If the marked file is invalid it is skipped with a
warning and the newest older valid file is used, but only if the WAL still holds every entry
after it; otherwise recovery fails rather than silently losing entries.
"""

from __future__ import annotations

import logging
import os
import re
import struct
import zlib
from dataclasses import dataclass

import msgspec

from raftkv.raft.types import Snapshot
from raftkv.storage.codec import SnapshotMark
from raftkv.storage.errors import CorruptionError
from raftkv.storage.fs import FileSystem

log = logging.getLogger(__name__)

SNAP_MAGIC = b"RKVSNAP1"
_HEADER = struct.Struct("<8sQI")
_NAME = re.compile(r"^([0-9a-f]{16})-([0-9a-f]{16})\.snap$")
_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(Snapshot)


@dataclass(frozen=True, slots=True)
class SnapFile:
    index: int
    term: int
    path: str


def snap_filename(index: int, term: int) -> str:
    return f"{index:016x}-{term:016x}.snap"


def encode_snapshot(snap: Snapshot) -> bytes:
    body = _ENCODER.encode(snap)
    return _HEADER.pack(SNAP_MAGIC, len(body), zlib.crc32(body)) + body


def decode_snapshot(buf: bytes, path: str) -> Snapshot:
    """Check and decode a snapshot file's bytes.

    Raises:
        CorruptionError: bad magic, length, CRC, payload, or a name that does not match.
    """
    if len(buf) < _HEADER.size:
        raise CorruptionError(path, 0, "short snapshot header")
    magic, length, crc = _HEADER.unpack_from(buf, 0)
    if magic != SNAP_MAGIC:
        raise CorruptionError(path, 0, "bad snapshot magic")
    body = memoryview(buf)[_HEADER.size :]
    if len(body) != length:
        raise CorruptionError(path, _HEADER.size, f"snapshot is {len(body)} bytes, not {length}")
    if zlib.crc32(body) != crc:
        raise CorruptionError(path, _HEADER.size, "snapshot CRC mismatch")
    try:
        snap = _DECODER.decode(body)
    except msgspec.DecodeError as e:
        raise CorruptionError(path, _HEADER.size, f"undecodable snapshot: {e}") from e
    m = _NAME.match(os.path.basename(path))
    if m is None or (int(m[1], 16), int(m[2], 16)) != (snap.meta.index, snap.meta.term):
        raise CorruptionError(path, 0, "snapshot content does not match its file name")
    return snap


class SnapshotStore:
    """The snapshot directory.

    Args:
        fs: the file system.
        snapdir: the directory (must exist).
        keep: how many marked snapshot files to keep.
    """

    def __init__(self, fs: FileSystem, snapdir: str, keep: int = 3) -> None:
        if keep < 1:
            raise ValueError("keep at least one snapshot")
        self._fs = fs
        self._dir = snapdir
        self._keep = keep

    def files(self) -> tuple[list[SnapFile], list[str]]:
        """Snapshot files, newest first, and leftover ``.tmp`` files."""
        files: list[SnapFile] = []
        temps: list[str] = []
        if not self._fs.is_dir(self._dir):
            return files, temps
        for name in self._fs.listdir(self._dir):
            m = _NAME.match(name)
            path = os.path.join(self._dir, name)
            if m:
                files.append(SnapFile(int(m[1], 16), int(m[2], 16), path))
            elif name.endswith(".tmp"):
                temps.append(path)
        files.sort(key=lambda f: (f.index, f.term), reverse=True)
        return files, temps

    def read(self, f: SnapFile) -> Snapshot:
        """Load and check one snapshot file.

        Raises:
            CorruptionError: the file failed its checks.
        """
        return decode_snapshot(self._fs.read(f.path), f.path)

    def write(self, snap: Snapshot) -> None:
        """Durably write ``snap``: temp file, fsync, rename, fsync the directory.

        Raises:
            OSError: the caller turns it into ``StorageFatal``.
        """
        path = os.path.join(self._dir, snap_filename(snap.meta.index, snap.meta.term))
        tmp = path + ".tmp"
        f = self._fs.open(tmp, create=True)
        try:
            f.write_at(0, encode_snapshot(snap))
            f.sync()
        finally:
            f.close()
        self._fs.rename(tmp, path)
        self._fs.fsync_dir(self._dir)

    def load(self, mark: SnapshotMark, base_index: int) -> tuple[Snapshot | None, list[str]]:
        """The snapshot the WAL's newest ``mark`` designates, and the files to remove.

        Args:
            mark: the WAL's newest snapshot mark (index 0: no snapshot yet).
            base_index: the WAL's compaction point; a fallback snapshot must reach it.

        Returns:
            The snapshot (None when ``mark.index`` is 0), and the files that are not needed:
            leftovers newer than the mark, temp files, and all but the newest ``keep``.

        Raises:
            CorruptionError: no usable snapshot covers what the WAL has compacted away.
        """
        files, temps = self.files()
        candidates = [
            f for f in files if f.index < mark.index or (f.index, f.term) == (mark.index, mark.term)
        ]
        unneeded = temps + [f.path for f in files if f not in candidates]
        if mark.index == 0:
            return None, unneeded
        skipped: CorruptionError | None = None
        for n, f in enumerate(candidates):
            try:
                snap = self.read(f)
            except CorruptionError as e:
                log.warning("skipping invalid snapshot: %s", e)
                skipped = skipped or e
                continue
            if skipped is None and f.index != mark.index:
                skipped = CorruptionError(
                    os.path.join(self._dir, snap_filename(mark.index, mark.term)), 0, "missing"
                )
            if skipped is not None and snap.meta.index < base_index:
                raise CorruptionError(
                    skipped.path,
                    skipped.offset,
                    f"snapshot at index {mark.index} is unusable and the newest valid one "
                    f"({snap.meta.index}) does not reach the log's start ({base_index + 1})",
                )
            unneeded += [g.path for g in candidates[max(n + 1, self._keep) :]]
            return snap, unneeded
        raise CorruptionError(
            skipped.path if skipped else self._dir,
            skipped.offset if skipped else 0,
            f"no valid snapshot at or below index {mark.index}, which the WAL records",
        )

    def prune(self, mark: SnapshotMark) -> None:
        """Remove all but the newest ``keep`` snapshots at or below ``mark``, and leftovers.

        Raises:
            OSError: the caller turns it into ``StorageFatal``.
        """
        files, temps = self.files()
        marked = [f for f in files if f.index <= mark.index]
        doomed = (
            temps
            + [f.path for f in files if f.index > mark.index]
            + [f.path for f in marked[self._keep :]]
        )
        self.remove(doomed)

    def remove(self, paths: list[str]) -> None:
        """Remove ``paths`` and fsync the directory (nothing happens for an empty list)."""
        if not paths:
            return
        for path in paths:
            self._fs.remove(path)
        self._fs.fsync_dir(self._dir)
