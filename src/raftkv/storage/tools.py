"""``wal inspect DIR`` and ``wal verify DIR``: read-only looks at a data dir.

Neither takes the data dir's lock nor changes a byte: both run the same validation as opening a
``DiskStorage`` (``raftkv.storage.replay`` and the snapshot store's ``load``), which never
writes. ``DIR`` is a data dir (holding ``wal/`` and ``snap/``) or a WAL directory itself.

Exit codes (ARCHITECTURE.md): 0 ok (a torn tail is only a warning: opening the dir cuts it off),
1 corruption, 2 usage error (bad arguments, missing dir).
"""

from __future__ import annotations

import os
import sys
from typing import TextIO

from raftkv.storage.disk import SNAP_DIR, WAL_DIR
from raftkv.storage.errors import CorruptionError
from raftkv.storage.fs import OSFileSystem
from raftkv.storage.replay import Replayed, replay
from raftkv.storage.snap import SnapshotStore

USAGE = "usage: wal {inspect,verify} DIR"


def main(argv: list[str]) -> int:
    """Run ``wal inspect DIR`` or ``wal verify DIR``; returns the exit code."""
    out, err = sys.stdout, sys.stderr
    if argv[:1] in (["-h"], ["--help"]):
        print(USAGE, file=out)
        return 0
    if len(argv) != 2 or argv[0] not in ("inspect", "verify"):
        print(f"error: expected 'inspect DIR' or 'verify DIR'; {USAGE}", file=err)
        return 2
    command, path = argv
    fs = OSFileSystem()
    if not os.path.isdir(path):
        print(f"error: {path} is not a directory; {USAGE}", file=err)
        return 2
    if not os.path.isdir(os.path.join(path, WAL_DIR)) and os.path.isdir(
        os.path.join(path, "member", WAL_DIR)
    ):
        path = os.path.join(path, "member")  # a `raftkv serve` data dir, laid out as etcd's
    waldir, snapdir = _dirs(path)
    if not os.path.isdir(waldir):
        print(f"error: {path} holds no WAL (no {WAL_DIR}/ and no segments)", file=err)
        return 2
    try:
        rec = replay(fs, waldir)
        store = SnapshotStore(fs, snapdir)
        store.load(rec.mark, rec.base.index)
    except CorruptionError as e:
        print(f"error: {e}", file=err)
        return 1
    if command == "inspect":
        _inspect(rec, store, out)
    else:
        for f in store.files()[0]:
            try:
                store.read(f)
            except CorruptionError as e:
                print(f"warning: unused snapshot file is invalid: {e}", file=out)
    if rec.torn is not None:
        print(f"warning: {rec.torn.describe()}; opening the data dir cuts it off", file=out)
    elif command == "verify":
        print("ok", file=out)
    return 0


def _dirs(path: str) -> tuple[str, str]:
    if os.path.isdir(os.path.join(path, WAL_DIR)):
        return os.path.join(path, WAL_DIR), os.path.join(path, SNAP_DIR)
    if any(name.endswith(".wal") for name in os.listdir(path)):
        return path, os.path.join(os.path.dirname(os.path.abspath(path)), SNAP_DIR)
    return os.path.join(path, WAL_DIR), os.path.join(path, SNAP_DIR)


def _inspect(rec: Replayed, store: SnapshotStore, out: TextIO) -> None:
    print(f"segments: {len(rec.segments)}", file=out)
    for seg in rec.segments:
        name = os.path.basename(seg.name.path)
        idx = f"{seg.index_range[0]}..{seg.index_range[1]}" if seg.index_range else "-"
        terms = f"{seg.term_range[0]}..{seg.term_range[1]}" if seg.term_range else "-"
        print(
            f"  {name}  seq={seg.name.seq} first_index={seg.name.first_index} "
            f"records={seg.records} entries={seg.entries} index={idx} term={terms} "
            f"data={seg.end}/{seg.size} bytes",
            file=out,
        )
    hs = rec.hard_state
    print(f"hard state: term={hs.term} vote={hs.vote} commit={hs.commit}", file=out)
    first, last = rec.base.index + 1, rec.base.index + len(rec.entries)
    print(f"log: first_index={first} last_index={last} entries={len(rec.entries)}", file=out)
    print(f"compacted through: index={rec.base.index} term={rec.base.term}", file=out)
    kind = " (from the leader)" if rec.mark.reset else ""
    print(f"snapshot mark: index={rec.mark.index} term={rec.mark.term}{kind}", file=out)
    files, temps = store.files()
    print(f"snapshots: {len(files)}", file=out)
    for f in files:
        try:
            snap = store.read(f)
            state = f"valid voters={list(snap.meta.conf_state.voters)} data={len(snap.data)} bytes"
        except CorruptionError as e:
            state = f"INVALID ({e})"
        print(f"  {os.path.basename(f.path)}  index={f.index} term={f.term}  {state}", file=out)
    for tmp in temps:
        print(f"  {os.path.basename(tmp)}  leftover temp file", file=out)
