"""A real child process writing to a real data dir is SIGKILLed at random moments; reopening
finds every entry it acknowledged (printed only after ``save`` returned)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
from typing import Any

import pytest

from raftkv.storage import DataDirLocked, DiskStorage
from raftkv.storage.tools import main as wal_tool

CHILD = """
import sys
from raftkv.raft.types import Entry, HardState
from raftkv.storage import DiskStorage

path, term = sys.argv[1], int(sys.argv[2])
disk = DiskStorage(path, segment_size=16384)
i = disk.last_index()
print("ready", i, flush=True)
while True:
    i += 1
    disk.save(HardState(term, 1, i - 1), [Entry(term, i, b"%d:%d;" % (term, i) * 12)])
    print(i, flush=True)
"""


def spawn(path: str, term: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, path, str(term)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    watchdog = threading.Timer(60, proc.kill)  # a bound, not a wait: fires only if stuck
    watchdog.daemon = True
    watchdog.start()
    proc.watchdog = watchdog  # type: ignore[attr-defined]
    return proc


def read_line(proc: subprocess.Popen[bytes]) -> str:
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    if not line:
        err = proc.stderr.read().decode() if proc.stderr else ""
        pytest.fail(f"child exited early: {err}")
    return line


def finish(proc: subprocess.Popen[bytes]) -> bytes:
    """The rest of a killed child's stdout, read through the same buffered reader as
    ``read_line`` (``communicate`` reads the pipe itself and would skip lines that reader has
    already buffered), then reaped."""
    assert proc.stdout is not None and proc.stderr is not None
    rest = proc.stdout.read()
    proc.stderr.read()
    proc.wait()
    proc.watchdog.cancel()  # type: ignore[attr-defined]
    return rest


def test_sigkill_at_random_moments_loses_nothing_acknowledged(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(tmp_path / "data")
    rng = random.Random(7)
    acked: dict[int, int] = {}  # index -> term of the round that acknowledged it
    for term in range(1, 6):
        proc = spawn(path, term)
        start = int(read_line(proc).split()[1])
        target = rng.randrange(5, 400)
        for _ in range(target):  # wait for a condition: the child acknowledged `target` saves
            acked[int(read_line(proc))] = term
        proc.send_signal(signal.SIGKILL)
        rest = finish(proc)
        for line in rest.decode().split():  # acknowledged before the kill landed
            acked[int(line)] = term
        assert proc.returncode == -signal.SIGKILL
        assert min(i for i, t in acked.items() if t == term) == start + 1
        top = max(acked)  # the last acknowledged index

        assert wal_tool(["verify", path]) == 0
        capsys.readouterr()
        with DiskStorage(path) as disk:
            last = disk.last_index()
            assert last >= max(acked)
            got = disk.entries(1, last + 1)
            assert [e.index for e in got] == list(range(1, last + 1))
            for e in got:
                assert e.data == b"%d:%d;" % (e.term, e.index) * 12
                if e.index in acked:
                    assert e.term == acked[e.index]
                else:  # written but killed before it was acknowledged: allowed to survive
                    assert e.index > max(acked)
                    acked[e.index] = e.term  # durable now: the next round appends after it
            hard_state = disk.initial_state()[0]
            assert hard_state.term == term and hard_state.commit >= top - 1


def test_a_data_dir_held_by_another_process_is_refused(tmp_path: Any) -> None:
    path = str(tmp_path / "data")
    proc = spawn(path, 1)
    try:
        read_line(proc)
        with pytest.raises(DataDirLocked) as info:
            DiskStorage(path)
        assert "\n" not in str(info.value)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        proc.watchdog.cancel()  # type: ignore[attr-defined]
    with DiskStorage(path) as disk:  # the kernel dropped the dead child's lock
        assert disk.last_index() >= 0
    assert os.path.isdir(os.path.join(path, "wal"))
