"""Helpers for tests of real ``raftkv serve`` processes on 127.0.0.1."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from raftkv.localcluster import ClusterError, LocalCluster, free_ports, http_json
from waiting import DEADLINE as DEADLINE  # re-exported for the tests of this folder
from waiting import wait_until as wait_until

ELECTION_MS = 500
SMALL_WAL = ["--wal-segment-size", str(1 << 20)]


def port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def put(url: str, key: str, value: str) -> dict[str, Any]:
    code, body = http_json(url + "/v3/kv/put", {"key": b64(key), "value": b64(value)}, 10.0)
    assert code == 200, body
    return body  # type: ignore[no-any-return]


def get(url: str, key: str, serializable: bool = False) -> str | None:
    code, body = http_json(
        url + "/v3/kv/range", {"key": b64(key), "serializable": serializable}, 10.0
    )
    assert code == 200, body
    kvs = body.get("kvs", [])
    return base64.b64decode(kvs[0]["value"]).decode() if kvs else None


def try_put(url: str, key: str, value: str) -> bool:
    try:
        code, _ = http_json(url + "/v3/kv/put", {"key": b64(key), "value": b64(value)}, 3.0)
    except OSError:
        return False
    return code == 200


def start_cluster(base: Path, n: int = 3, **kw: Any) -> LocalCluster:
    """A started cluster with a leader; retried on new ports when a port was taken."""
    last: Exception | None = None
    for attempt in range(3):
        ports = free_ports(2 * n)
        pairs = [(ports[2 * i], ports[2 * i + 1]) for i in range(n)]
        c = LocalCluster(
            base / f"try{attempt}", n=n, ports=pairs, election_timeout_ms=ELECTION_MS,
            extra_args=SMALL_WAL, **kw,
        )  # fmt: skip
        try:
            c.start()
            c.wait_ready(DEADLINE)
            return c
        except ClusterError as e:
            last = e
            c.kill_all()
    raise AssertionError(f"cluster did not start: {last}")


def serve(*args: str, timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
    """Run ``raftkv serve`` to its end (for flag and startup errors)."""
    return subprocess.run(
        [sys.executable, "-m", "raftkv", "serve", *args],
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def stderr_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def dir_hashes(path: Path) -> dict[str, str]:
    import hashlib

    out = {}
    for root, _, files in os.walk(path):
        for f in files:
            p = Path(root) / f
            out[str(p.relative_to(path))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def read_sse_event(
    url: str, want: Callable[[dict[str, Any]], bool], timeout: float
) -> dict[str, Any]:
    """Read the SSE stream at ``url`` until an event satisfies ``want``."""
    import urllib.request

    deadline = time.monotonic() + timeout
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        while time.monotonic() < deadline:
            line = resp.readline()
            if not line:
                break
            if line.startswith(b"data: "):
                e = json.loads(line[6:])
                if want(e):
                    return e  # type: ignore[no-any-return]
    raise AssertionError("no matching event")


def children_of(pid: int) -> list[int]:
    """The children of every thread of process ``pid`` (each task lists its own)."""
    kids: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{task}/children") as f:
                kids += [int(x) for x in f.read().split()]
    return kids


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
