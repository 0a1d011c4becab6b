"""FaultyFileSystem, the shipped fault layer: its power-loss model and its faults."""

from __future__ import annotations

import errno
import os
from typing import Any

import pytest

from raftkv.storage import FaultyFileSystem, SimulatedCrash


def read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def test_a_power_cut_keeps_what_was_synced_and_drops_the_rest(tmp_path: Any) -> None:
    fs = FaultyFileSystem()
    path = str(tmp_path / "f")
    f = fs.open(path, create=True)
    f.write_at(0, b"durable")
    f.sync()
    fs.fsync_dir(str(tmp_path))
    f.write_at(7, b" and lost")
    f.write_at(0, b"D")
    assert read(path) == b"Durable and lost"
    fs.crash()
    assert read(path) == b"durable"


def test_a_process_crash_keeps_what_reached_the_os(tmp_path: Any) -> None:
    fs = FaultyFileSystem()
    path = str(tmp_path / "f")
    f = fs.open(path, create=True)
    f.write_at(0, b"in the page cache")
    fs.crash(lose_unsynced=False)
    assert read(path) == b"in the page cache"
    with pytest.raises(OSError):  # the dead process's handle is gone
        f.write_at(0, b"x")
    fs.crash()  # and the power cut that follows: never synced, never in the dir
    assert not os.path.exists(path)


def test_directory_entries_need_a_directory_fsync(tmp_path: Any) -> None:
    d = str(tmp_path)
    fs = FaultyFileSystem()
    old = fs.open(os.path.join(d, "old"), create=True)
    old.write_at(0, b"old")
    old.sync()
    fs.fsync_dir(d)
    tmp = fs.open(os.path.join(d, "new.tmp"), create=True)
    tmp.write_at(0, b"new")
    tmp.sync()
    fs.rename(os.path.join(d, "new.tmp"), os.path.join(d, "new"))
    fs.remove(os.path.join(d, "old"))
    fs.crash()  # neither the rename nor the removal reached the directory
    assert sorted(os.listdir(d)) == ["old"]
    assert read(os.path.join(d, "old")) == b"old"

    tmp = fs.open(os.path.join(d, "new.tmp"), create=True)
    tmp.write_at(0, b"new")
    tmp.sync()
    fs.rename(os.path.join(d, "new.tmp"), os.path.join(d, "new"))
    fs.remove(os.path.join(d, "old"))
    fs.fsync_dir(d)
    fs.crash()
    assert sorted(os.listdir(d)) == ["new"] and read(os.path.join(d, "new")) == b"new"


def test_allocate_and_truncate_follow_the_model(tmp_path: Any) -> None:
    fs = FaultyFileSystem()
    path = str(tmp_path / "f")
    f = fs.open(path, create=True)
    f.allocate(100)
    f.write_at(10, b"abc")
    f.sync()
    fs.fsync_dir(str(tmp_path))
    f.truncate(11)
    fs.crash()
    assert read(path) == bytes(10) + b"abc" + bytes(87)


def test_a_cut_write_leaves_its_prefix_then_everything_fails(tmp_path: Any) -> None:
    fs = FaultyFileSystem()
    path = str(tmp_path / "f")
    f = fs.open(path, create=True)
    fs.crash_after(5)
    f.write_at(0, b"abc")
    with pytest.raises(SimulatedCrash):
        f.write_at(3, b"defgh")
    assert read(path) == b"abcde" and fs.dead
    with pytest.raises(SimulatedCrash):
        fs.listdir(str(tmp_path))
    fs.crash(lose_unsynced=False)
    assert not fs.dead and read(path) == b"abcde"


def test_enospc_until_space_is_freed(tmp_path: Any) -> None:
    fs = FaultyFileSystem()
    f = fs.open(str(tmp_path / "f"), create=True)
    fs.enospc_after(4)
    with pytest.raises(OSError) as info:
        f.write_at(0, b"123456")
    assert info.value.errno == errno.ENOSPC
    assert read(str(tmp_path / "f")) == b"1234"
    with pytest.raises(OSError):
        f.allocate(1 << 20)
    fs.free_space()
    f.write_at(4, b"56")
    f.allocate(1 << 20)
    assert os.path.getsize(str(tmp_path / "f")) == 1 << 20


def test_a_failed_fsync_loses_the_unsynced_data_to_a_power_cut(tmp_path: Any) -> None:
    fs = FaultyFileSystem()
    path = str(tmp_path / "f")
    f = fs.open(path, create=True)
    f.write_at(0, b"one")
    f.sync()
    fs.fsync_dir(str(tmp_path))
    f.write_at(3, b"two")
    fs.fail_syncs(1)
    with pytest.raises(OSError) as info:
        f.sync()
    assert info.value.errno == errno.EIO
    f.sync()  # "succeeds", as on Linux, but the pages it lost are not coming back
    fs.crash()
    assert read(path) == b"one"


def test_locks_are_released_by_a_crash(tmp_path: Any) -> None:
    fs = FaultyFileSystem()
    fs.lock(str(tmp_path))
    with pytest.raises(BlockingIOError):
        fs.lock(str(tmp_path))
    fs.crash()
    fs.lock(str(tmp_path)).release()
