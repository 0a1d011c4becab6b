"""``wal inspect`` / ``wal verify`` through ``raftkv.storage.tools.main``: read-only, exit codes."""

from __future__ import annotations

import os
from typing import Any

import pytest
from storage_helpers import SEGMENT, fingerprint, flip_bit

from raftkv.raft.types import ConfState, Entry, HardState
from raftkv.storage import DiskStorage
from raftkv.storage.tools import main


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def data_dir(tmp_path: Any) -> str:
    path = str(tmp_path / "data")
    with DiskStorage(path, segment_size=SEGMENT) as disk:
        for i in range(1, 121):
            disk.save(HardState(2, 3, i - 1), [Entry(2, i, b"v" * 60)])
        disk.create_snapshot(100, ConfState(voters=(1, 2, 3)), b"state machine")
        disk.compact(90)
    return path


def test_inspect_shows_segments_ranges_hard_state_and_snapshots(
    data_dir: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = fingerprint(data_dir)
    code, out, err = run(["inspect", data_dir], capsys)
    assert code == 0 and err == ""
    assert "segments: " in out and ".wal  seq=" in out and "index=" in out and "term=2..2" in out
    assert "hard state: term=2 vote=3 commit=119" in out
    assert "log: first_index=91 last_index=120 entries=30" in out
    assert "snapshot mark: index=100 term=2" in out
    assert "index=100 term=2  valid voters=[1, 2, 3] data=13 bytes" in out
    assert fingerprint(data_dir) == before


def test_verify_says_ok(data_dir: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["verify", data_dir], capsys) == (0, "ok\n", "")
    assert run(["verify", os.path.join(data_dir, "wal")], capsys) == (0, "ok\n", "")


def test_the_tools_read_a_dir_that_is_open(
    data_dir: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with DiskStorage(data_dir, segment_size=SEGMENT):
        assert run(["verify", data_dir], capsys)[0] == 0


def test_verify_reports_corruption_with_file_and_offset(
    data_dir: str, capsys: pytest.CaptureFixture[str]
) -> None:
    waldir = os.path.join(data_dir, "wal")
    sealed = os.path.join(waldir, sorted(os.listdir(waldir))[0])
    flip_bit(sealed, 200, 3)
    for command in ("verify", "inspect"):
        code, out, err = run([command, data_dir], capsys)
        assert code == 1 and out == ""
        assert err.startswith(f"error: corrupt data in {sealed} at byte ") and err.count("\n") == 1


@pytest.mark.parametrize(
    "argv",
    [[], ["verify"], ["check", "x"], ["verify", "/nonexistent/raftkv-dir"], ["inspect", "a", "b"]],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(argv, capsys)
    assert code == 2 and out == "" and err.startswith("error: ") and err.count("\n") == 1


def test_a_dir_without_a_wal_is_a_usage_error(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(["verify", str(tmp_path)], capsys)
    assert code == 2 and "holds no WAL" in err


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--help"], capsys) == (0, "usage: wal {inspect,verify} DIR\n", "")


def test_a_serve_data_dir_is_read_through_its_member_dir(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """`raftkv serve --data-dir D` keeps its WAL in D/member (etcd's layout)."""
    member = tmp_path / "infra1.etcd" / "member"
    with DiskStorage(str(member), segment_size=SEGMENT) as disk:
        disk.save(HardState(1, 1, 1), [Entry(1, 1, b"x")])
    code, out, _ = run(["inspect", str(tmp_path / "infra1.etcd")], capsys)
    assert code == 0 and "hard state: term=1 vote=1 commit=1" in out
    assert run(["verify", str(tmp_path / "infra1.etcd")], capsys) == (0, "ok\n", "")


def test_segment_ranges_count_entries_a_later_save_overwrote(tmp_path: Any) -> None:
    from raftkv.storage.fs import OSFileSystem
    from raftkv.storage.replay import replay

    path = str(tmp_path / "d")
    with DiskStorage(path, segment_size=1 << 20) as disk:
        disk.save(HardState(5, 1, 0), [Entry(5, i, b"x") for i in range(1, 6)])
        disk.save(HardState(6, 1, 0), [Entry(2, 3, b"y")])  # a conflict: 3..5 replaced
        disk.save(HardState(6, 1, 0), [Entry(2, 4, b"z")])
        assert [e.term for e in disk.entries(1, 5)] == [5, 5, 2, 2]
    seg = replay(OSFileSystem(), os.path.join(path, "wal")).segments[-1]
    # term 5 survives only in the overwritten entries; term 2 only after the conflict
    assert seg.index_range == (1, 5) and seg.term_range == (2, 5) and seg.entries == 7


def test_segment_ranges_count_entries_before_and_after_a_snapshot_reset(tmp_path: Any) -> None:
    from raftkv.raft.types import Snapshot, SnapshotMeta
    from raftkv.storage.fs import OSFileSystem
    from raftkv.storage.replay import replay

    path = str(tmp_path / "d")
    with DiskStorage(path, segment_size=1 << 20, conf_state=ConfState(voters=(1,))) as disk:
        disk.save(HardState(3, 1, 0), [Entry(1, i, b"x") for i in range(1, 11)])
        disk.save(HardState(3, 1, 0), [Entry(3, 11, b"y")])
        # a leader's snapshot below our last index resets the log; appends go on after it
        disk.apply_snapshot(Snapshot(SnapshotMeta(5, 2, ConfState(voters=(1,))), b"snap"))
        disk.save(HardState(4, 1, 5), [Entry(2, 6, b"z"), Entry(2, 7, b"z")])
    seg = replay(OSFileSystem(), os.path.join(path, "wal")).segments[-1]
    assert seg.index_range == (1, 11) and seg.term_range == (1, 3) and seg.entries == 13
