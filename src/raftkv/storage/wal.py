"""The WAL's files and its writer: segment naming, creation, rollover, append + fsync, removal.

A WAL directory holds segments named ``<seq:016x>-<first_index:016x>.wal``. Segment ``seq + 1``
is created when a write would not fit in segment ``seq`` (a write never straddles two
segments). A new segment is built under a ``.tmp`` name — preallocated, header and ``STATE``
record written and fsynced — then renamed into place and the directory fsynced, so a segment
that has its final name always has a valid header. Only the last segment is ever written to;
the others are sealed.

Durability: ``write`` returns only after ``fdatasync`` of the segment (thesis §3.8: state is
persisted before a node acknowledges it). One ``write`` is one write and one fsync, which is what
makes a Ready, or a group of merged saves, cost one fsync.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass

from raftkv.storage.codec import SegmentState, encode_record, encode_segment_header
from raftkv.storage.errors import StorageFatal
from raftkv.storage.fs import Buffer, File, FileSystem

log = logging.getLogger(__name__)

DEFAULT_SEGMENT_SIZE = 64 << 20
ZERO_AHEAD = 1 << 20
_ZEROS = memoryview(bytes(ZERO_AHEAD))
ZERO_AHEAD_MAX_WRITE = 64 << 10
_SEGMENT_NAME = re.compile(r"^([0-9a-f]{16})-([0-9a-f]{16})\.wal$")


@dataclass(frozen=True, slots=True)
class SegmentName:
    """A segment file, as its name describes it."""

    seq: int
    first_index: int
    path: str


def segment_filename(seq: int, first_index: int) -> str:
    return f"{seq:016x}-{first_index:016x}.wal"


def list_segments(fs: FileSystem, waldir: str) -> tuple[list[SegmentName], list[str]]:
    """The segments of ``waldir`` in sequence order, and its leftover ``.tmp`` files."""
    segments: list[SegmentName] = []
    temps: list[str] = []
    for name in fs.listdir(waldir):
        m = _SEGMENT_NAME.match(name)
        if m:
            path = os.path.join(waldir, name)
            segments.append(SegmentName(int(m[1], 16), int(m[2], 16), path))
        elif name.endswith(".tmp"):
            temps.append(os.path.join(waldir, name))
    segments.sort(key=lambda s: s.seq)
    return segments, temps


def fatal(what: str, err: BaseException) -> StorageFatal:
    """The one-line fatal error for a failed I/O operation."""
    detail = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
    return StorageFatal(f"{what} failed: {detail}; the storage refuses further writes, reopen it")


class WalWriter:
    """Appends to the last segment; rolls over to a new one when a write would not fit.

    Args:
        fs: the file system.
        waldir: the WAL directory.
        segments: the existing segments, oldest first (the last one is appended to).
        tail: the offset in the last segment where its data ends.
        segment_size: the preallocated size of a segment.

    Not thread-safe: one caller at a time.
    """

    def __init__(
        self,
        fs: FileSystem,
        waldir: str,
        segments: list[SegmentName],
        tail: int,
        segment_size: int = DEFAULT_SEGMENT_SIZE,
    ) -> None:
        if not segments:
            raise ValueError("a WalWriter needs at least one segment")
        self._fs = fs
        self._dir = waldir
        self._segment_size = segment_size
        self.segments = list(segments)
        self._tail = tail
        self._zeroed = tail  # bytes before this are written (data or zeros), not just allocated
        self._file: File | None = fs.open(segments[-1].path)
        self._fresh = -1  # the tail of a segment that holds no record but its STATE
        self.syncs = 0
        self._dirty = False

    @classmethod
    def create(
        cls,
        fs: FileSystem,
        waldir: str,
        state: SegmentState,
        next_index: int,
        segment_size: int = DEFAULT_SEGMENT_SIZE,
    ) -> WalWriter:
        """A writer on a new, empty WAL in ``waldir`` (whose first segment is created now)."""
        seg, f, tail = _create_segment(fs, waldir, 0, next_index, state, segment_size)
        f.close()
        writer = cls(fs, waldir, [seg], tail, segment_size)
        writer._fresh = tail
        return writer

    def write(self, data: Buffer, state: SegmentState, next_index: int, sync: bool = True) -> None:
        """Append ``data`` (framed records) and fsync; roll over first if it would not fit.

        Args:
            data: one or more framed records.
            state: the state before ``data``, for the STATE record of a new segment.
            next_index: the log's last index + 1 before ``data``, for a new segment's name.
            sync: False for a record nothing waits on (a commit index alone): it becomes
                durable with the next synced write, or is cut off as a torn tail after a crash.

        Raises:
            StorageFatal: the write, fsync or segment creation failed.
        """
        if self._file is None:
            raise StorageFatal("the WAL is closed")
        if self._tail + len(data) > self._segment_size and self._tail != self._fresh:
            self._roll(state, next_index)  # a write larger than a segment gets one of its own
        end = self._tail + len(data)
        try:
            self._file.write_at(self._tail, data)
            if end > self._zeroed:
                self._zero_ahead(self._file, end, len(data))
        except OSError as e:
            raise fatal(f"write to {self._file.path}", e) from e
        self._tail = end
        self._dirty = True
        if sync:
            self.sync()

    def sync(self) -> None:
        """fsync the unsynced writes (``write(..., sync=False)``), if there are any.

        Raises:
            StorageFatal: the fsync failed.
        """
        if self._file is None:
            raise StorageFatal("the WAL is closed")
        if self._dirty:
            self._sync(self._file)
            self.syncs += 1
            self._dirty = False

    def cheap(self, size: int) -> bool:
        """Whether an unsynced ``write`` of ``size`` bytes is one small buffered write: no
        rollover, no zeroing ahead, so a caller may run it on an event loop."""
        return self._file is not None and self._tail + size <= min(self._zeroed, self._segment_size)

    def _zero_ahead(self, f: File, end: int, size: int) -> None:
        """Write zeros over the next ``ZERO_AHEAD`` bytes past ``end`` (fsynced with the data).

        A write into fallocated-but-unwritten space makes fdatasync commit an extent change
        to the journal every time; writing a chunk of zeros ahead pays that once per chunk,
        so the fsyncs of small writes cost about half (see bench/wal.py). Large writes skip
        it: their fsync cost is dominated by their own bytes.
        """
        pad = min(ZERO_AHEAD, self._segment_size - end) if size < ZERO_AHEAD_MAX_WRITE else 0
        if pad > 0:
            f.write_at(end, _ZEROS[:pad])
        self._zeroed = end + max(pad, 0)

    def _sync(self, f: File) -> None:
        """THE fsync of the WAL's records: nothing is acknowledged before it returns."""
        try:
            f.sync()
        except OSError as e:
            raise fatal(f"fsync of {f.path}", e) from e

    def _roll(self, state: SegmentState, next_index: int) -> None:
        last = self.segments[-1]
        try:
            seg, f, tail = _create_segment(
                self._fs, self._dir, last.seq + 1, next_index, state, self._segment_size
            )
        except OSError as e:
            raise fatal(f"creating WAL segment {last.seq + 1} in {self._dir}", e) from e
        assert self._file is not None
        if self._dirty:  # a sealed segment is whole: a torn record there would be corruption
            self._sync(self._file)
            self._dirty = False
        self._file.close()
        self._file = f
        self._tail = self._fresh = self._zeroed = tail
        self.segments.append(seg)
        log.debug("WAL segment %s started at index %d", os.path.basename(seg.path), next_index)

    def drop_through(self, index: int) -> int:
        """Remove the sealed segments whose entries are all at or below ``index``.

        A sealed segment's entries are all below the next segment's first index (a segment is
        created with first_index = last index + 1). Returns how many were removed.

        Raises:
            StorageFatal: a removal or the directory fsync failed.
        """
        n = 0
        while n + 1 < len(self.segments) and self.segments[n + 1].first_index - 1 <= index:
            n += 1
        return self._drop(n)

    def drop_sealed(self) -> int:
        """Remove every sealed segment (after a snapshot reset made them all obsolete)."""
        return self._drop(len(self.segments) - 1)

    def _drop(self, n: int) -> int:
        if n <= 0:
            return 0
        try:
            for seg in self.segments[:n]:
                self._fs.remove(seg.path)
            self._fs.fsync_dir(self._dir)
        except OSError as e:
            raise fatal(f"removing WAL segments in {self._dir}", e) from e
        del self.segments[:n]
        return n

    def close(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            finally:
                self._file = None


def _create_segment(
    fs: FileSystem, waldir: str, seq: int, first_index: int, state: SegmentState, size: int
) -> tuple[SegmentName, File, int]:
    """Build a segment under a temp name, fsync it, rename it into place, fsync the directory.

    Returns the segment, its open file and the offset where its data ends.
    """
    path = os.path.join(waldir, segment_filename(seq, first_index))
    tmp = path + ".tmp"
    head = encode_segment_header(seq, first_index) + encode_record(state)
    f = fs.open(tmp, create=True)
    try:
        f.allocate(max(size, len(head)))
        f.write_at(0, head)
        f.sync()
        fs.rename(tmp, path)
        fs.fsync_dir(waldir)
    except BaseException:
        f.close()
        raise
    return SegmentName(seq, first_index, path), f, len(head)
