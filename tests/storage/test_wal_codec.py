"""The record codec: payloads and frames round-trip; damage is reported, never decoded."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from raftkv.raft.types import Entry, EntryType, HardState
from raftkv.storage.codec import (
    RECORD_HEADER,
    SEGMENT_HEADER,
    LogBase,
    RecordScanner,
    RecordType,
    Save,
    SegmentState,
    SnapshotMark,
    decode_payload,
    decode_segment_header,
    encode_record,
    encode_save,
    encode_segment_header,
    record_type_of,
)

u64 = st.integers(0, 2**64 - 1)
small = st.integers(0, 2**40)
entry = st.builds(
    Entry, term=small, index=small, data=st.binary(max_size=300), type=st.sampled_from(EntryType)
)
hard_state = st.builds(HardState, term=small, vote=small, commit=small)
log_base = st.builds(LogBase, index=small, term=small)
mark = st.builds(SnapshotMark, index=small, term=small, reset=st.booleans())
payload = st.one_of(
    st.builds(Save, hard_state=st.none() | hard_state, entries=st.lists(entry, max_size=20)),
    log_base,
    mark,
    st.builds(SegmentState, hard_state=hard_state, base=log_base, snapshot=mark),
)


def scan(buf: bytes, start: int = 0) -> tuple[list[tuple[int, RecordType, bytes]], RecordScanner]:
    scanner = RecordScanner(buf, start)
    return [(off, t, bytes(body)) for off, t, body in scanner], scanner


@settings(max_examples=200)
@given(st.lists(payload, min_size=1, max_size=8), st.integers(0, 64))
def test_records_round_trip(payloads: list[Any], zeros: int) -> None:
    buf = b"".join(encode_record(p) for p in payloads) + bytes(zeros)
    records, scanner = scan(buf)
    assert scanner.bad is None
    assert scanner.end == len(buf) - zeros
    assert [t for _, t, _ in records] == [record_type_of(p) for p in payloads]
    assert [decode_payload(t, body) for _, t, body in records] == payloads


@given(st.none() | hard_state, st.lists(entry, max_size=50))
def test_a_save_is_one_record(hs: HardState | None, batch: list[Entry]) -> None:
    records, _ = scan(bytes(encode_save(hs, tuple(batch))))
    assert len(records) == 1 and records[0][1] is RecordType.SAVE
    assert decode_payload(RecordType.SAVE, records[0][2]) == Save(hs, batch)


@settings(max_examples=200)
@given(st.lists(payload, min_size=2, max_size=5), st.data())
def test_a_flipped_bit_is_never_decoded(payloads: list[Any], data: st.DataObject) -> None:
    """Any single bit flip stops the scan at or before the damaged record."""
    frames = [encode_record(p) for p in payloads]
    buf = bytearray(b"".join(frames) + bytes(32))
    pos = data.draw(st.integers(0, len(buf) - 1))
    buf[pos] ^= 1 << data.draw(st.integers(0, 7))
    records, scanner = scan(bytes(buf))
    assert scanner.bad is not None
    assert scanner.bad.offset <= pos
    good = bytes(buf[: scanner.bad.offset])
    assert [p for _, _, p in scan(good)[0]] == [p for _, _, p in records]
    assert len(records) < len(payloads) or pos >= scanner.end


def test_torn_shapes_are_told_apart_from_damage() -> None:
    a, b = bytes(encode_save(HardState(1, 1, 1), [])), bytes(encode_save(HardState(2, 1, 1), []))
    short_header = a + b[:5] + bytes(40)
    assert scan(short_header)[1].bad.zeros_after  # type: ignore[union-attr]
    short_payload = a + b[:-3]
    assert scan(short_payload)[1].bad.zeros_after  # type: ignore[union-attr]
    bad_crc = bytearray(a + b + bytes(40))
    bad_crc[len(a) + RECORD_HEADER.size] ^= 0xFF
    scanner = scan(bytes(bad_crc))[1]
    assert scanner.bad is not None and scanner.bad.zeros_after
    assert scanner.bad.reason == "record CRC mismatch"
    in_the_middle = bytearray(a + b + a)
    in_the_middle[len(a) + RECORD_HEADER.size] ^= 0xFF
    assert not scan(bytes(in_the_middle))[1].bad.zeros_after  # type: ignore[union-attr]
    after_end = a + bytes(20) + b"\x01"
    bad = scan(after_end)[1].bad
    assert bad is not None and not bad.zeros_after and bad.reason == "data after the end marker"


@given(u64, u64)
def test_segment_header_round_trips(seq: int, first: int) -> None:
    head = encode_segment_header(seq, first)
    assert len(head) == SEGMENT_HEADER.size
    assert decode_segment_header(head) == (seq, first)


@pytest.mark.parametrize("pos", range(SEGMENT_HEADER.size))
def test_segment_header_damage_is_caught(pos: int) -> None:
    head = bytearray(encode_segment_header(3, 77))
    head[pos] ^= 0x10
    with pytest.raises(ValueError):
        decode_segment_header(bytes(head))
