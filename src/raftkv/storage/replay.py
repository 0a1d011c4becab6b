"""Read-only recovery: validate every segment of a WAL directory and rebuild the log from it.

``replay`` never writes. It returns what the WAL says — hard state, compaction point, the latest
snapshot mark, the entries after the compaction point — plus where the last segment's data
ends and, if the last segment ends in a torn write, where. The caller decides what to repair.

Rules (thesis §3.8: what was acknowledged must survive a crash):

* A failed record at the tail of the LAST segment, followed only by zeros or the end of the
  file, is a torn write from a crash: it was never acknowledged, so it is cut off.
* Any other failed check is corruption: ``CorruptionError`` with the file and byte offset.
  That covers sealed segments, a bad record followed by data, a missing segment in the
  sequence, and a log with a gap.
* Replay may start at any segment: each begins with a ``STATE`` record (hard state,
  compaction point, snapshot mark as of its creation), so dropping old segments loses nothing.
* A ``SAVE`` record's entries starting at index i replace the log's suffix from i (Raft §5.3: conflicting
  entries are overwritten), so a truncation stays truncated after a restart.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec

from raftkv.raft.types import Entry, HardState
from raftkv.storage.codec import (
    SAVE_DECODER,
    SEGMENT_HEADER,
    LogBase,
    RecordScanner,
    RecordType,
    SegmentState,
    SnapshotMark,
    decode_payload,
    decode_segment_header,
)
from raftkv.storage.errors import CorruptionError
from raftkv.storage.fs import FileSystem
from raftkv.storage.wal import SegmentName, list_segments


@dataclass(slots=True)
class SegmentInfo:
    """What one segment holds, for ``wal inspect`` and for the writer."""

    name: SegmentName
    size: int = 0
    end: int = 0
    records: int = 0
    entries: int = 0
    index_range: tuple[int, int] | None = None
    term_range: tuple[int, int] | None = None


@dataclass(frozen=True, slots=True)
class TornTail:
    """A torn write at the end of the last segment: cut at ``offset``."""

    path: str
    offset: int
    reason: str

    def describe(self) -> str:
        return f"torn write at the tail of {self.path} at byte {self.offset} ({self.reason})"


@dataclass(slots=True)
class Replayed:
    """The WAL's content. ``entries`` are consecutive from ``base.index + 1``."""

    hard_state: HardState = field(default_factory=HardState)
    base: LogBase = field(default_factory=LogBase)
    mark: SnapshotMark = field(default_factory=SnapshotMark)
    entries: list[Entry] = field(default_factory=list)
    segments: list[SegmentInfo] = field(default_factory=list)
    temps: list[str] = field(default_factory=list)
    torn: TornTail | None = None

    @property
    def tail(self) -> int:
        """Where the data of the last segment ends (the writer appends there)."""
        return self.segments[-1].end if self.segments else 0


class _Log:
    """The log being rebuilt: ``ents[0]`` has index ``start`` (the next index when empty)."""

    def __init__(self) -> None:
        self.ents: list[Entry] = []
        self.start = 1
        self.base = LogBase()

    @property
    def next_index(self) -> int:
        return self.start + len(self.ents)

    def append(self, batch: list[Entry], path: str, offset: int) -> None:
        n = batch[0].index - self.start
        ents = self.ents
        if n == len(ents):
            ents.extend(batch)
        elif 0 <= n < len(ents):
            del ents[n:]  # Raft §5.3: a conflicting suffix is replaced
            ents.extend(batch)
        elif n < 0:
            self.ents = batch  # replaces everything this replay holds (older ones were dropped)
            self.start = batch[0].index
        else:
            raise CorruptionError(
                path,
                offset,
                f"entries start at {batch[0].index} but the log ends at {self.next_index - 1}",
            )

    def compact(self, base: LogBase) -> None:
        self.base = base
        if base.index >= self.start:
            del self.ents[: base.index - self.start + 1]
            self.start = base.index + 1

    def reset(self, base: LogBase) -> None:
        self.base = base
        self.ents = []
        self.start = base.index + 1


def replay(fs: FileSystem, waldir: str) -> Replayed:
    """Validate and replay the WAL in ``waldir`` (which must exist). Read-only.

    Raises:
        CorruptionError: anything but a torn tail failed its checks.
    """
    names, temps = list_segments(fs, waldir)
    out = Replayed(temps=temps)
    log = _Log()
    for k, name in enumerate(names):
        if k and name.seq != names[k - 1].seq + 1:
            raise CorruptionError(
                name.path, 0, f"segment {names[k - 1].seq + 1} is missing before it"
            )
        info = _replay_segment(fs, name, k == 0, k == len(names) - 1, log, out)
        out.segments.append(info)
    if log.start > log.base.index + 1:
        where = names[0].path if names else waldir
        raise CorruptionError(
            where, 0, f"log entries {log.base.index + 1}..{log.start - 1} are missing"
        )
    out.base = log.base
    out.entries = log.ents
    return out


def _replay_segment(
    fs: FileSystem, name: SegmentName, first: bool, last: bool, log: _Log, out: Replayed
) -> SegmentInfo:
    path = name.path
    buf = fs.map(path)
    try:
        seq, first_index = decode_segment_header(buf)
    except ValueError as e:
        raise CorruptionError(path, 0, str(e)) from e
    if (seq, first_index) != (name.seq, name.first_index):
        raise CorruptionError(path, 0, "segment header does not match the file name")
    info = SegmentInfo(name, size=len(buf))
    scanner = RecordScanner(buf, SEGMENT_HEADER.size)
    decode = SAVE_DECODER.decode
    save_type = RecordType.SAVE
    # The ranges are folded in run by run: along a run of in-order appends indexes grow and
    # terms never decrease, so the hot path only remembers a run's first and last entries.
    ranges = _Ranges()
    first_batch: Entry | None = None
    last_batch: Entry | None = None
    records = count = 0
    for offset, rtype, body in scanner:
        # The hot loop of recovery: one iteration per save, the per-entry work stays in C.
        if rtype is save_type and records:
            try:
                save = decode(body)
            except msgspec.DecodeError as e:
                raise CorruptionError(path, offset, f"undecodable save: {e}") from e
            batch = save.entries
            if batch:
                b0 = batch[0]
                if b0.index == log.start + len(log.ents):  # the usual case: appends in order
                    log.ents += batch
                    if first_batch is None:
                        first_batch = b0
                else:  # a conflict (Raft §5.3): a new run starts here
                    log.append(batch, path, offset)
                    ranges.fold(first_batch, last_batch)
                    first_batch = b0
                count += len(batch)
                last_batch = batch[-1]
            if save.hard_state is not None:
                out.hard_state = save.hard_state
        else:
            try:
                payload = decode_payload(rtype, body)
            except msgspec.DecodeError as e:
                raise CorruptionError(path, offset, f"undecodable {rtype.name} record: {e}") from e
            if records == 0:
                if not isinstance(payload, SegmentState):
                    raise CorruptionError(path, offset, "a segment must start with a STATE record")
                _enter_segment(payload, first, first_index, log, out, (path, offset))
            else:
                _apply(payload, log, out, (path, offset))
                ranges.fold(first_batch, last_batch)  # a reset or compaction ends the run
                first_batch = last_batch = None
        records += 1
    info.records, info.entries = records, count
    if info.records == 0 and scanner.bad is None:
        raise CorruptionError(path, SEGMENT_HEADER.size, "segment has no STATE record")
    info.end = scanner.end
    ranges.fold(first_batch, last_batch)
    if ranges.hi >= 0:
        info.index_range = (ranges.lo, ranges.hi)
        info.term_range = (ranges.tlo, ranges.thi)
    bad = scanner.bad
    if bad is not None:
        if not (last and bad.zeros_after and info.records > 0):
            raise CorruptionError(path, bad.offset, bad.reason)
        out.torn = TornTail(path, bad.offset, bad.reason)
    return info


class _Ranges:
    """The index and term ranges of one segment's entries, folded in a run at a time."""

    def __init__(self) -> None:
        self.lo = self.tlo = 1 << 64
        self.hi = self.thi = -1

    def fold(self, first: Entry | None, last: Entry | None) -> None:
        if first is None or last is None:
            return
        self.lo, self.hi = min(self.lo, first.index), max(self.hi, last.index)
        self.tlo, self.thi = min(self.tlo, first.term), max(self.thi, last.term)


def _enter_segment(
    state: SegmentState,
    first: bool,
    first_index: int,
    log: _Log,
    out: Replayed,
    where: tuple[str, int],
) -> None:
    if first:
        out.hard_state, out.mark = state.hard_state, state.snapshot
        log.base = state.base
        log.start = first_index
        return
    if (state.hard_state, state.base, state.snapshot) != (out.hard_state, log.base, out.mark):
        raise CorruptionError(*where, "segment STATE does not follow the previous segment")
    if first_index != log.next_index:
        raise CorruptionError(
            *where, f"segment starts at index {first_index}, the log at {log.next_index}"
        )


def _apply(payload: object, log: _Log, out: Replayed, where: tuple[str, int]) -> None:
    match payload:
        case LogBase():
            log.compact(payload)
        case SnapshotMark():
            out.mark = payload
            if payload.reset:
                log.reset(LogBase(payload.index, payload.term))
        case _:
            raise CorruptionError(*where, f"unexpected {type(payload).__name__} record")
