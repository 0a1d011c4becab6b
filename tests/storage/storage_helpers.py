"""Shared helpers of the storage tests: comparing with MemoryStorage, fingerprinting a dir."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from functools import partial
from typing import Any

from raftkv.raft.errors import StorageError
from raftkv.raft.storage import MemoryStorage, Storage
from raftkv.raft.types import Entry, HardState
from raftkv.storage import FaultyFileSystem
from raftkv.storage.fs import File

SEGMENT = 4096


def outcome(fn: Callable[[], Any]) -> tuple[str, Any]:
    """The result of ``fn`` or the type of the storage error it raised."""
    try:
        return "ok", fn()
    except StorageError as e:
        return "error", type(e).__name__


def assert_same(disk: Storage, mem: MemoryStorage) -> None:
    """``disk`` answers every read exactly as ``mem`` does."""
    assert disk.first_index() == mem.first_index()
    assert disk.last_index() == mem.last_index()
    assert disk.initial_state() == mem.initial_state()
    assert disk.snapshot() == mem.snapshot()
    first, last = mem.first_index(), mem.last_index()
    for i in range(max(0, first - 2), last + 2):
        assert outcome(partial(disk.term, i)) == outcome(partial(mem.term, i)), i
    for lo, hi, mb in [
        (first, last + 1, None),
        (first, last + 1, 300),
        (first - 1, last + 1, None),
        (first, last + 2, None),
        (last, last + 1, 1),
        (max(first, last - 3), last + 1, 0),
    ]:
        got = outcome(partial(disk.entries, lo, hi, mb))
        assert got == outcome(partial(mem.entries, lo, hi, mb)), (lo, hi, mb)


def entries(start: int, n: int, term: int, size: int = 40, tag: int = 0) -> list[Entry]:
    return [
        Entry(term=term, index=i, data=bytes([tag % 256]) * size) for i in range(start, start + n)
    ]


def hs(term: int, commit: int = 0, vote: int = 1) -> HardState:
    return HardState(term=term, vote=vote, commit=commit)


def fingerprint(path: str) -> dict[str, str]:
    """Every file under ``path`` (relative name -> sha256 of its bytes)."""
    out: dict[str, str] = {}
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in files:
            full = os.path.join(root, name)
            with open(full, "rb") as f:
                out[os.path.relpath(full, path)] = hashlib.sha256(f.read()).hexdigest()
        for name in dirs:
            out[os.path.relpath(os.path.join(root, name), path) + "/"] = "dir"
    return out


def flip_bit(path: str, offset: int, bit: int = 0) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)[0]
        f.seek(offset)
        f.write(bytes([byte ^ (1 << bit)]))


class GatedFileSystem(FaultyFileSystem):
    """Every file sync waits until the test opens the gate (so an fsync is 'in flight')."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.in_sync = threading.Event()

    def open(self, path: str, create: bool = False) -> File:
        f = super().open(path, create)
        real_sync = f.sync

        def gated_sync() -> None:
            self.in_sync.set()
            assert self.gate.wait(30), "the test never opened the gate"
            real_sync()

        f.sync = gated_sync  # type: ignore[method-assign]
        return f
