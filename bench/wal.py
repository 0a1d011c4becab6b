"""WAL benchmark: what the disk allows, what the codec allows, what DiskStorage achieves.

    .venv/bin/python bench/wal.py [--quick] [--dir DIR]

Prints, in one run: raw fsyncs/s of a 4 KiB write, sequential disk bandwidth, the codec's
encode+CRC rate, WAL appends with one fsync per entry and with group commit at batches of
1, 16, 128 and 1024 entries of 256 bytes, each against the bound
min(fsync rate x batch, disk bandwidth, codec rate) and the fraction of it achieved; and the
recovery rate of a WAL of 1,000,000 entries. Targets: batches >= 128 reach >= 80% of the bound;
recovery >= 500,000 entries/s.

Group commit is measured four ways, b entries per fsync in each:

* ``group commit``: sync ``DiskStorage.save`` of b entries, one call after another (encoding,
  write and fsync in series: no overlap at all);
* ``async Ready``: one awaited ``AsyncDiskStorage.save`` of b entries at a time, as the node's
  Ready loop does today;
* ``pipelined``: two writers each keep a save of b entries queued, so the next save is encoded
  while the current one is in its fsync and the I/O thread goes from one fsync straight to the
  next (the group commit a storage gets from concurrent writers);
* ``async merge``: b tasks each saving one entry at a time, merged while an fsync is in flight.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import time
from collections.abc import Callable

from raftkv.raft.types import Entry, HardState
from raftkv.storage import AsyncDiskStorage, DiskStorage
from raftkv.storage.codec import encode_save
from raftkv.storage.wal import WalWriter

ENTRY = 256
BATCHES = (1, 16, 128, 1024)


def timed(fn: Callable[[], int], seconds: float) -> tuple[int, float]:
    """Call ``fn`` (returning units done) until ``seconds`` passed; (units, elapsed)."""
    done = 0
    start = time.perf_counter()
    while True:
        done += fn()
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return done, elapsed


class RawFile:
    """A 64 MiB zero-filled, fsynced file: raw pwrite + fdatasync rates with no file system
    allocation in the way (the disk's best case, which the WAL's zero-ahead approaches)."""

    SIZE = 64 << 20

    def __init__(self, d: str) -> None:
        self.fd = os.open(os.path.join(d, "raw"), os.O_RDWR | os.O_CREAT, 0o644)
        zeros = bytes(1 << 20)
        for off in range(0, self.SIZE, len(zeros)):
            os.pwrite(self.fd, zeros, off)
        os.fsync(self.fd)
        self.pos = 0

    def rate(self, size: int, seconds: float) -> float:
        """Sequential ``size``-byte pwrite + fdatasync per second."""
        buf = os.urandom(size)

        def one() -> int:
            if self.pos + size > self.SIZE:
                self.pos = 0
            os.pwrite(self.fd, buf, self.pos)
            os.fdatasync(self.fd)
            self.pos += size
            return 1

        n, t = timed(one, seconds)
        return n / t

    def close(self) -> None:
        os.close(self.fd)


def disk_bandwidth(d: str, total: int) -> float:
    """Bytes/s of 1 MiB sequential writes to a new file, fdatasync every 8 MiB (run thrice,
    the best counts: other load only ever slows it)."""
    fd = os.open(os.path.join(d, "bw"), os.O_RDWR | os.O_CREAT, 0o644)
    chunk = os.urandom(1 << 20)
    start = time.perf_counter()
    for off in range(0, total, 1 << 20):
        os.pwrite(fd, chunk, off)
        if (off >> 20) % 8 == 7:
            os.fdatasync(fd)
    os.fdatasync(fd)
    elapsed = time.perf_counter() - start
    os.close(fd)
    os.remove(os.path.join(d, "bw"))
    return total / elapsed


def save_size(batch: int) -> int:
    """Bytes one save of ``batch`` entries and a hard state puts in the WAL."""
    ents = batch_of(1, batch)
    return len(encode_save(HardState(1, 1, 0), ents))


def batch_of(start: int, n: int) -> list[Entry]:
    data = os.urandom(ENTRY)
    return [Entry(1, i, data) for i in range(start, start + n)]


def codec_rate(batch: int, seconds: float) -> float:
    """Entries/s through the save path's encoding: one framed, CRC'd SAVE record per call."""
    ents = batch_of(1, batch)
    hs = HardState(1, 1, 0)

    def one() -> int:
        encode_save(hs, ents)
        return batch

    n, t = timed(one, seconds)
    return n / t


def wal_sync_rate(d: str, batch: int, seconds: float) -> tuple[float, float]:
    """(entries/s, fsyncs/s) of DiskStorage.save with ``batch`` entries per call.

    Only the time inside ``save`` counts: building the Entry objects is the caller's work.
    """
    path = os.path.join(d, f"sync-{batch}")
    disk = DiskStorage(path)
    data = os.urandom(ENTRY)
    i, spent = 1, 0.0
    syncs = disk.fsyncs
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        ents = [Entry(1, j, data) for j in range(i, i + batch)]
        t = time.perf_counter()
        disk.save(HardState(1, 1, i - 1), ents)
        spent += time.perf_counter() - t
        i += batch
    syncs = disk.fsyncs - syncs
    disk.close()
    shutil.rmtree(path)
    return (i - 1) / spent, syncs / spent


def wal_async_rate(d: str, b: int, seconds: float, mode: str) -> tuple[float, float]:
    """(entries/s, fsyncs/s) of AsyncDiskStorage.

    ``mode``: "merge", ``b`` tasks each saving one entry at a time (saves that queue while an
    fsync is in flight share the next one); "ready", one awaited save of ``b`` entries at a
    time, as the node's Ready loop does (one Ready outstanding); "pipelined", two tasks each
    saving ``b`` entries at a time.
    """
    merge = mode == "merge"
    path = os.path.join(d, f"async-{b}-{mode}")

    async def run() -> tuple[float, float]:
        storage = await AsyncDiskStorage.open(path)
        data = os.urandom(ENTRY)
        nxt = [1]
        deadline = time.perf_counter() + seconds
        size = 1 if merge else b

        async def writer() -> None:
            while time.perf_counter() < deadline:
                i = nxt[0]
                nxt[0] += size
                ents = [Entry(1, j, data) for j in range(i, i + size)]
                await storage.save(HardState(1, 1, i - 1), ents)

        syncs = storage.disk.fsyncs
        start = time.perf_counter()
        tasks = {"merge": b, "ready": 1, "pipelined": 2}[mode]
        await asyncio.gather(*(writer() for _ in range(tasks)))
        elapsed = time.perf_counter() - start
        syncs = storage.disk.fsyncs - syncs
        await storage.close()
        return (nxt[0] - 1) / elapsed, syncs / elapsed

    out = asyncio.run(run())
    shutil.rmtree(path)
    return out


def build_wal(path: str, entries: int, records_per_entry: bool) -> None:
    """A WAL of ``entries`` entries: one save (one record) per 1024 entries, or the worst
    case, one save per entry; that one is built with the fsync switched off, or building it
    would take longer than the rest of the benchmark."""
    data = os.urandom(ENTRY)
    real_sync = WalWriter._sync
    if records_per_entry:
        WalWriter._sync = lambda self, f: None  # type: ignore[method-assign]
    try:
        with DiskStorage(path) as disk:
            step = 1 if records_per_entry else 1024
            for i in range(1, entries + 1, step):
                n = min(step, entries + 1 - i)
                disk.save(HardState(1, 1, i - 1), [Entry(1, j, data) for j in range(i, i + n)])
    finally:
        WalWriter._sync = real_sync  # type: ignore[method-assign]
        os.sync()


def recovery_rate(path: str, entries: int) -> tuple[float, float]:
    """(entries/s by the wall clock, entries/s of this process's CPU time) of one open."""
    start, cpu = time.perf_counter(), time.process_time()
    disk = DiskStorage(path)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    assert disk.last_index() == entries
    disk.close()
    return entries / elapsed, entries / cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs (seconds, not minutes)")
    parser.add_argument("--dir", default=None, help="where to put the temp dir (default: TMPDIR)")
    args = parser.parse_args()
    secs = 0.4 if args.quick else 2.0
    recovery_entries = 200_000 if args.quick else 1_000_000
    d = tempfile.mkdtemp(prefix="raftkv-walbench-", dir=args.dir)
    try:
        bw = max(disk_bandwidth(d, (64 if args.quick else 256) << 20) for _ in range(3))
        raw = RawFile(d)
        fsync = raw.rate(4096, secs)
        print(f"disk ({d}):")
        print(f"  raw fsync, 4 KiB pwrite + fdatasync  : {fsync:12,.0f} fsyncs/s")
        print(f"  sequential bandwidth (1 MiB writes) : {bw / 1e6:12,.1f} MB/s")
        print("codec (a save record: b entries of 256 bytes + a hard state, framed and CRC'd):")
        codec = {b: codec_rate(b, secs / 2) for b in BATCHES}
        for b, r in codec.items():
            print(f"  batch {b:5d}: {r:12,.0f} entries/s  {r * ENTRY / 1e6:8.1f} MB/s")
        print()
        print("bound = min(raw fsync/s x b, disk bw / 256 B, codec); raw fsync measured next to")
        print(
            "each row (the disk drifts). 'disk@size': raw pwrite+fdatasync of one save's bytes x b."
        )
        head = (
            f"{'mode':<22}{'entries/s':>11}{'MB/s':>7}{'fsyncs/s':>9}{'raw fs/s':>9}"
            f"{'fsync x b':>11}{'disk bw':>11}{'codec':>11}{'bound':>11}{'achieved':>9}"
            f"{'disk@size':>11}{'of it':>7}"
        )
        print(head)
        print("-" * len(head))
        rows = [("fsync per entry", 1, "sync")]
        rows += [(f"group commit b={b}", b, "sync") for b in BATCHES]
        rows += [(f"async Ready b={b}", b, "ready") for b in BATCHES[2:]]
        rows += [(f"pipelined b={b}", b, "pipelined") for b in BATCHES[1:]]
        rows += [(f"async merge {b} x 1", b, "merge") for b in BATCHES[1:3]]
        for label, b, mode in rows:
            before = raw.rate(4096, secs / 2)
            if mode == "sync":
                rate, fs_rate = wal_sync_rate(d, b, secs)
            else:
                rate, fs_rate = wal_async_rate(d, b, secs, mode)
            fsync_now = (before + raw.rate(4096, secs / 2)) / 2
            at_size = raw.rate(save_size(b), secs / 2) * b
            bounds = (fsync_now * b, bw / ENTRY, codec[b])
            bound = min(bounds)
            print(
                f"{label:<22}{rate:11,.0f}{rate * ENTRY / 1e6:7.1f}{fs_rate:9,.0f}"
                f"{fsync_now:9,.0f}{bounds[0]:11,.0f}{bounds[1]:11,.0f}{bounds[2]:11,.0f}"
                f"{bound:11,.0f}{rate / bound:9.0%}{at_size:11,.0f}{rate / at_size:7.0%}"
            )
        raw.close()
        print()
        for per_entry in (False, True):
            path = os.path.join(d, f"recovery-{per_entry}")
            build_wal(path, recovery_entries, per_entry)
            rate, cpu_rate = recovery_rate(path, recovery_entries)
            shape = "one save per entry" if per_entry else "1024 entries per save"
            print(
                f"recovery of {recovery_entries:,} entries ({shape}): "
                f"{recovery_entries / rate:.2f} s, {rate:,.0f} entries/s "
                f"({cpu_rate:,.0f} entries/s of CPU time)"
            )
            shutil.rmtree(path)
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
