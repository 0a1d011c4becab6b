"""Damage on disk: corruption is refused with file + offset and changes nothing; a torn tail is
cut off with a warning; the data dir lock refuses a second open. Every message is one line."""

from __future__ import annotations

import logging
import os
import random
import re
from typing import Any

import pytest
from storage_helpers import SEGMENT, assert_same, fingerprint, flip_bit

from raftkv.raft.storage import MemoryStorage
from raftkv.raft.types import ConfState, Entry, HardState
from raftkv.storage import CorruptionError, DataDirLocked, DiskStorage, OSFileSystem
from raftkv.storage.replay import replay
from raftkv.storage.tools import main as wal_tool

CONF = ConfState(voters=(1, 2, 3))


def build(path: str, saves: int, snapshots: int = 0) -> MemoryStorage:
    """Write ``saves`` saves into ``path`` (and the same into a MemoryStorage), then close."""
    mem = MemoryStorage(CONF)
    with DiskStorage(path, conf_state=CONF, segment_size=SEGMENT) as disk:
        for k in range(saves):
            first = mem.last_index() + 1
            batch = [Entry(1 + k // 10, i, b"%d" % i * 20) for i in range(first, first + 3)]
            for s in (disk, mem):
                s.save(HardState(1 + k // 10, 1, first - 1), batch)
            if snapshots and k % (saves // snapshots) == saves // snapshots - 1:
                for s in (disk, mem):
                    s.create_snapshot(first, CONF, b"snap at %d" % first)
    return mem


def segments(path: str) -> list[str]:
    waldir = os.path.join(path, "wal")
    return [os.path.join(waldir, n) for n in sorted(os.listdir(waldir)) if n.endswith(".wal")]


def data_end(path: str) -> int:
    return replay(OSFileSystem(), os.path.join(path, "wal")).tail


def verify(path: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = wal_tool(["verify", path])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("seed", range(8))
def test_a_bit_flip_in_a_sealed_segment_is_refused_and_changes_nothing(
    tmp_path: Any, seed: int, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(tmp_path / "data")
    build(path, 60)
    segs = segments(path)
    assert len(segs) >= 3
    rng = random.Random(seed)
    victim = rng.choice(segs[:-1])
    pos = rng.randrange(os.path.getsize(victim)) if seed % 2 else rng.randrange(600)
    flip_bit(victim, pos, rng.randrange(8))
    before = fingerprint(path)

    with pytest.raises(CorruptionError) as info:
        DiskStorage(path, conf_state=CONF, segment_size=SEGMENT)
    message = str(info.value)
    assert "\n" not in message
    assert victim in message and info.value.path == victim
    assert re.search(rf"at byte {info.value.offset}\b", message) and info.value.offset <= pos
    assert fingerprint(path) == before  # nothing on disk changed

    code, _, err = verify(path, capsys)
    assert code == 1 and victim in err and f"at byte {info.value.offset}" in err
    assert len(err.strip().splitlines()) == 1
    assert fingerprint(path) == before

    with pytest.raises(CorruptionError):  # a refused open repaired nothing: refused again
        DiskStorage(path, conf_state=CONF, segment_size=SEGMENT)


def test_damage_in_the_middle_of_the_last_segment_is_corruption(tmp_path: Any) -> None:
    path = str(tmp_path)
    build(path, 3)  # one segment, three save records after the STATE record
    last = segments(path)[-1]
    flip_bit(last, 120)  # inside the first save: valid records follow it
    before = fingerprint(path)
    with pytest.raises(CorruptionError, match="at byte"):
        DiskStorage(path, conf_state=CONF, segment_size=SEGMENT)
    assert fingerprint(path) == before


def _tear(path: str, how: str, start: int, end: int) -> None:
    """Damage the last write, [start, end) of the last segment, the way a crash would."""
    last = segments(path)[-1]
    with open(last, "r+b") as f:
        if how == "short header":
            f.seek(start + 6)
            f.write(bytes(end - start - 6))
        elif how == "short payload":
            f.seek(end - 7)
            f.write(bytes(7))
        elif how == "cut at the end of the file":
            f.truncate(end - 11)
        elif how == "bad crc":
            f.seek(end - 1)
            byte = f.read(1)[0]
            f.seek(end - 1)
            f.write(bytes([byte ^ 0x40]))


@pytest.mark.parametrize(
    "how", ["short header", "short payload", "cut at the end of the file", "bad crc"]
)
def test_a_torn_tail_is_cut_off_with_a_warning(
    tmp_path: Any, how: str, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(tmp_path)
    mem = build(path, 10)
    start = data_end(path)
    with DiskStorage(path, conf_state=CONF, segment_size=SEGMENT) as disk:
        disk.save(None, [Entry(9, disk.last_index() + 1, b"never acknowledged" * 5)])
    end = data_end(path)
    _tear(path, how, start, end)
    before = fingerprint(path)

    code, out, _ = verify(path, capsys)
    assert code == 0 and out.startswith("warning: torn write") and len(out.splitlines()) == 1
    assert fingerprint(path) == before  # verify is read-only

    with caplog.at_level(logging.WARNING, logger="raftkv.storage"):
        disk = DiskStorage(path, conf_state=CONF, segment_size=SEGMENT)
    torn = [r.getMessage() for r in caplog.records if "torn" in r.getMessage()]
    assert len(torn) == 1 and "\n" not in torn[0] and f"at byte {start}" in torn[0]
    assert_same(disk, mem)  # everything acknowledged, nothing of the torn write
    disk.save(None, [Entry(9, mem.last_index() + 1, b"after the repair")])
    disk.close()
    assert verify(path, capsys)[:2] == (0, "ok\n")


def test_a_second_open_is_refused_until_the_first_closes(tmp_path: Any) -> None:
    path = str(tmp_path)
    first = DiskStorage(path)
    first.save(HardState(1, 1, 0), [Entry(1, 1)])
    with pytest.raises(DataDirLocked) as info:
        DiskStorage(path)
    assert path in str(info.value) and "\n" not in str(info.value)
    assert "already open" in str(info.value)
    first.close()
    with DiskStorage(path) as again:
        assert again.last_index() == 1


def test_an_invalid_snapshot_is_skipped_when_the_log_still_covers_it(
    tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    path = str(tmp_path)
    build(path, 40, snapshots=3)
    snaps = sorted(os.listdir(os.path.join(path, "snap")))
    assert len(snaps) == 3
    newest = os.path.join(path, "snap", snaps[-1])
    flip_bit(newest, os.path.getsize(newest) - 2)
    with caplog.at_level(logging.WARNING, logger="raftkv.storage"):
        disk = DiskStorage(path, conf_state=CONF, segment_size=SEGMENT)
    assert any("skipping invalid snapshot" in r.getMessage() for r in caplog.records)
    older = int(snaps[-2].split("-")[0], 16)
    assert disk.snapshot().meta.index == older
    assert disk.first_index() == 1  # never compacted: every entry is still in the WAL
    disk.close()


def test_an_invalid_snapshot_the_log_no_longer_covers_is_corruption(tmp_path: Any) -> None:
    path = str(tmp_path)
    build(path, 40, snapshots=2)
    with DiskStorage(path, conf_state=CONF, segment_size=SEGMENT) as disk:
        disk.compact(disk.snapshot().meta.index)
    newest = os.path.join(path, "snap", sorted(os.listdir(os.path.join(path, "snap")))[-1])
    flip_bit(newest, 30)
    before = fingerprint(path)
    with pytest.raises(CorruptionError) as info:
        DiskStorage(path, conf_state=CONF, segment_size=SEGMENT)
    assert newest in str(info.value) and "\n" not in str(info.value)
    assert fingerprint(path) == before
