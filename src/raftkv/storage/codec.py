"""Bytes of the WAL: segment headers, framed records and their payloads.

A segment file is a header followed by records, then zeros (the preallocated tail)::

    segment header (28 bytes): magic "RKVWAL" | version u16 | seq u64 | first_index u64 | crc u32
    record:                    length u32 | type u8 | crc u32 | header crc u32 | payload
                               (13-byte header; crc covers type + payload, the header crc covers
                               the 9 bytes before it, so a flipped length is caught as such)
    end of data:               13 zero bytes (a record's length is never 0)

All integers are little-endian. Payloads are msgpack, encoded by msgspec from the core's
``array_like`` structs; no pickle anywhere. A save — a batch of entries and the hard state —
is ONE record, so both the write path and recovery pay the per-record overhead once per save,
not once per entry.
"""

from __future__ import annotations

import enum
import struct
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from raftkv.raft.types import Entry, HardState

SEGMENT_MAGIC = b"RKVWAL"
SEGMENT_VERSION = 1
SEGMENT_HEADER = struct.Struct("<6sHQQI")
RECORD_HEADER = struct.Struct("<IBII")
_RECORD_PREFIX = struct.Struct("<IBI")
MAX_RECORD = 1 << 31
"""Records at least this long are rejected as corrupt lengths (and never written)."""


class RecordType(enum.IntEnum):
    """What a record's payload is."""

    SAVE = 1
    """``Save``: entries replacing the log's suffix from their first index, and/or the hard
    state (term, vote, commit; thesis §3.8)."""
    SNAPSHOT = 3
    """``SnapshotMark``: a snapshot file at (index, term) is durable; ``reset`` drops the log."""
    COMPACT = 4
    """``LogBase``: entries up to and including ``index`` are dropped."""
    STATE = 5
    """``SegmentState``: the first record of every segment, so each one stands on its own."""


class Save(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """What one save makes durable. ``entries`` have consecutive indexes (may be empty)."""

    hard_state: HardState | None = None
    entries: list[Entry] = []


class LogBase(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """The entry just before the first one kept: a compaction point."""

    index: int = 0
    term: int = 0


class SnapshotMark(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """A snapshot that is durable on disk. ``reset`` (a snapshot from the leader) drops the log."""

    index: int = 0
    term: int = 0
    reset: bool = False


class SegmentState(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """Everything but entries, as of the segment's creation: replay may start at any segment."""

    hard_state: HardState = HardState()
    base: LogBase = LogBase()
    snapshot: SnapshotMark = SnapshotMark()


Payload = Save | SnapshotMark | LogBase | SegmentState

_ENCODER = msgspec.msgpack.Encoder()
SAVE_DECODER = msgspec.msgpack.Decoder(Save)
"""Decodes a SAVE payload (the hot path of recovery)."""
_DECODERS: dict[RecordType, msgspec.msgpack.Decoder[Any]] = {
    RecordType.SAVE: SAVE_DECODER,
    RecordType.SNAPSHOT: msgspec.msgpack.Decoder(SnapshotMark),
    RecordType.COMPACT: msgspec.msgpack.Decoder(LogBase),
    RecordType.STATE: msgspec.msgpack.Decoder(SegmentState),
}


def record_type_of(payload: Payload) -> RecordType:
    """The record type that carries ``payload``."""
    match payload:
        case Save():
            return RecordType.SAVE
        case SnapshotMark():
            return RecordType.SNAPSHOT
        case LogBase():
            return RecordType.COMPACT
        case SegmentState():
            return RecordType.STATE
    raise TypeError(f"not a WAL payload: {type(payload).__name__}")


def _framed(rtype: RecordType, payload: object) -> bytearray:
    """``payload`` encoded straight after room for its header, then the header filled in:
    one buffer, no copy of the payload (they are as large as a Ready's entries)."""
    hsize = RECORD_HEADER.size
    buf = bytearray(hsize)
    _ENCODER.encode_into(payload, buf, hsize)
    length = len(buf) - hsize
    if length >= MAX_RECORD:
        raise ValueError(f"record payload of {length} bytes cannot be framed")
    with memoryview(buf) as view:
        crc = zlib.crc32(view[hsize:], _TYPES[rtype][1])
        _RECORD_PREFIX.pack_into(buf, 0, length, rtype, crc)
        struct.pack_into("<I", buf, _RECORD_PREFIX.size, zlib.crc32(view[: _RECORD_PREFIX.size]))
    return buf


def encode_record(payload: Payload) -> bytearray:
    """``payload`` as one framed record."""
    return _framed(record_type_of(payload), payload)


def encode_save(hard_state: HardState | None, entries: Sequence[Entry]) -> bytearray:
    """A save as ONE framed record (the hot path of ``DiskStorage.save``)."""
    return _framed(RecordType.SAVE, Save(hard_state, entries))  # type: ignore[arg-type]


def decode_payload(rtype: RecordType, body: bytes | memoryview) -> Payload:
    """Decode a record's payload.

    Raises:
        msgspec.DecodeError: the payload is not a valid ``rtype`` payload.
    """
    payload: Payload = _DECODERS[rtype].decode(body)
    return payload


def encode_segment_header(seq: int, first_index: int) -> bytes:
    """The 28-byte header of segment ``seq`` whose first entry would be ``first_index``."""
    head = SEGMENT_HEADER.pack(SEGMENT_MAGIC, SEGMENT_VERSION, seq, first_index, 0)[:-4]
    return head + struct.pack("<I", zlib.crc32(head))


def decode_segment_header(buf: bytes | memoryview) -> tuple[int, int]:
    """``(seq, first_index)`` of a segment header.

    Raises:
        ValueError: short, bad magic, unknown version or bad CRC (the message says which).
    """
    if len(buf) < SEGMENT_HEADER.size:
        raise ValueError(f"segment header is short ({len(buf)} bytes)")
    magic, version, seq, first_index, crc = SEGMENT_HEADER.unpack_from(buf, 0)
    if magic != SEGMENT_MAGIC:
        raise ValueError("bad segment magic")
    if zlib.crc32(bytes(buf[: SEGMENT_HEADER.size - 4])) != crc:
        raise ValueError("segment header CRC mismatch")
    if version != SEGMENT_VERSION:
        raise ValueError(f"unknown segment version {version}")
    return seq, first_index


@dataclass(frozen=True, slots=True)
class BadRecord:
    """Why the record at ``offset`` could not be read, and what follows it.

    Attributes:
        offset: where the bad record starts.
        reason: one line for the error message.
        zeros_after: everything after the record's extent (after its header when the header is
            bad, the whole rest when it is short) is zero: the shape of a torn write.
    """

    offset: int
    reason: str
    zeros_after: bool


def data_end(buf: bytes | memoryview) -> int:
    """The offset just after the last non-zero byte of ``buf`` (0 if it is all zeros).

    Scans backwards in 1 MiB chunks with ``bytes.rstrip`` (C speed; comparing memoryviews
    goes element by element and would make a 64 MiB zero tail cost a fifth of a second).
    """
    view = memoryview(buf)
    end = view.nbytes
    while end > 0:
        start = max(0, end - (1 << 20))
        kept = len(view[start:end].tobytes().rstrip(b"\0"))
        if kept:
            return start + kept
        end = start
    return 0


class RecordScanner:
    """Walks the framed records of one segment's buffer.

    Iterating yields ``(offset, type, body)`` for every valid record; afterwards ``end`` is the
    offset where data ends and ``bad`` says why the walk stopped early (``None`` when it met the
    zero end marker or the end of the buffer cleanly).
    """

    def __init__(self, buf: bytes | memoryview, start: int) -> None:
        self._buf = memoryview(buf)
        self.end = start
        self.bad: BadRecord | None = None
        self._data_end: int | None = None

    def _all_zero(self, start: int) -> bool:
        """Whether everything from ``start`` on is zero (computed once per buffer)."""
        if self._data_end is None:
            self._data_end = data_end(self._buf)
        return self._data_end <= start

    def __iter__(self) -> Iterator[tuple[int, RecordType, memoryview]]:
        buf = self._buf
        size = buf.nbytes
        hsize = RECORD_HEADER.size
        unpack = RECORD_HEADER.unpack_from
        crc32 = zlib.crc32
        types = _TYPES
        pos = self.end
        while pos < size:
            if size - pos < hsize:
                if not self._all_zero(pos):
                    self.bad = BadRecord(pos, "short record header", True)
                break
            length, rtype, crc, hcrc = unpack(buf, pos)
            if length == 0 and not (rtype or crc or hcrc):
                if not self._all_zero(pos):
                    self.bad = BadRecord(pos, "data after the end marker", False)
                break
            if crc32(buf[pos : pos + 9]) != hcrc:
                self.bad = BadRecord(pos, "record header CRC mismatch", self._all_zero(pos + hsize))
                break
            known = types.get(rtype)
            if known is None or length >= MAX_RECORD:
                self.bad = BadRecord(pos, f"bad record type {rtype} or length {length}", False)
                break
            body_end = pos + hsize + length
            if body_end > size:
                self.bad = BadRecord(pos, "short record payload", True)
                break
            body = buf[pos + hsize : body_end]
            if crc32(body, known[1]) != crc:
                self.bad = BadRecord(pos, "record CRC mismatch", self._all_zero(body_end))
                break
            self.end = body_end
            yield pos, known[0], body
            pos = body_end


_TYPES: dict[int, tuple[RecordType, int]] = {
    int(t): (t, zlib.crc32(bytes((t,)))) for t in RecordType
}
"""Record type byte -> (type, the CRC of the type byte: where the payload's CRC starts)."""
