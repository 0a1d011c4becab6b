"""Helpers for tests that drive real ``etcdctl`` against real raftkv and etcd 3.4 clusters."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from raftkv.localcluster import ClusterError, LocalCluster, free_ports
from waiting import DEADLINE as DEADLINE  # re-exported for the tests of this folder
from waiting import wait_until as wait_until

ELECTION_MS = 500
MAX_REQUEST_BYTES = 64 * 1024  # small, so "request is too large" fits in one argv string
ETCD_BIN = "/usr/bin/etcd"


def need(binary: str) -> str:
    """The path of ``binary``; a skip (a failure under CI=true) when it is not installed."""
    path = shutil.which(binary) or (
        binary if os.path.isabs(binary) and os.access(binary, os.X_OK) else None
    )
    if path is None:
        msg = f"{binary} is not installed (scripts/ensure_deps.sh installs etcd-client/etcd-server)"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return path


def etcdctl(
    endpoints: str, *args: str, input: str | None = None, timeout: float = 20.0
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, ETCDCTL_API="3")
    return subprocess.run(
        [need("etcdctl"), f"--endpoints={endpoints}", "--dial-timeout=5s",
         "--command-timeout=10s", *args],
        input=input, capture_output=True, text=True, timeout=timeout, env=env,
    )  # fmt: skip


def error_lines(stderr: str) -> list[str]:
    """stderr without the client's JSON log lines (retry warnings with timestamps)."""
    return [ln for ln in stderr.splitlines() if ln.strip() and not ln.startswith("{")]


def start_raftkv(base: Path, n: int = 3, extra: Sequence[str] = ()) -> LocalCluster:
    last: Exception | None = None
    for attempt in range(3):
        ports = free_ports(2 * n)
        c = LocalCluster(
            base / f"raftkv{attempt}", n=n,
            ports=[(ports[2 * i], ports[2 * i + 1]) for i in range(n)],
            election_timeout_ms=ELECTION_MS,
            extra_args=["--max-request-bytes", str(MAX_REQUEST_BYTES), *extra],
        )  # fmt: skip
        try:
            c.start()
            c.wait_ready(DEADLINE)
            return c
        except ClusterError as e:
            last = e
            c.kill_all()
    raise AssertionError(f"raftkv cluster did not start: {last}")


def raftkv_endpoints(c: LocalCluster) -> str:
    return ",".join(m.endpoint for m in c.members)


@dataclass
class EtcdCluster:
    """n members of the real etcd 3.4 as child processes (killed by PID in ``kill_all``)."""

    base: Path
    n: int = 3
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    client_ports: list[int] = field(default_factory=list)

    @property
    def endpoints(self) -> str:
        return ",".join(f"127.0.0.1:{p}" for p in self.client_ports)

    def start(self) -> None:
        ports = free_ports(2 * self.n)
        self.client_ports = ports[0::2]
        peers = ports[1::2]
        cluster = ",".join(f"infra{i + 1}=http://127.0.0.1:{peers[i]}" for i in range(self.n))
        self.base.mkdir(parents=True, exist_ok=True)
        for i in range(self.n):
            c, p = f"http://127.0.0.1:{self.client_ports[i]}", f"http://127.0.0.1:{peers[i]}"
            with open(self.base / f"infra{i + 1}.log", "ab") as log:
                self.procs.append(
                    subprocess.Popen(
                        [need(ETCD_BIN), "--name", f"infra{i + 1}",
                         "--data-dir", str(self.base / f"infra{i + 1}.etcd"),
                         "--listen-client-urls", c, "--advertise-client-urls", c,
                         "--listen-peer-urls", p, "--initial-advertise-peer-urls", p,
                         "--initial-cluster", cluster, "--initial-cluster-token", "etcd-diff",
                         "--initial-cluster-state", "new",
                         "--election-timeout", str(ELECTION_MS), "--heartbeat-interval", "50",
                         "--max-request-bytes", str(MAX_REQUEST_BYTES),
                         "--logger", "zap", "--log-level", "error"],
                        stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                    )
                )  # fmt: skip

        def healthy() -> bool:
            r = etcdctl(self.endpoints, "endpoint", "health", timeout=10)
            return r.returncode == 0

        wait_until(healthy, what="etcd cluster health")

    def kill_all(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.pid, signal.SIGKILL)
        for p in self.procs:
            with contextlib.suppress(Exception):
                p.wait(5)


class WatchProc:
    """``etcdctl watch ...`` as a subprocess; ``lines`` reads its stdout with a deadline."""

    def __init__(self, endpoints: str, *args: str) -> None:
        env = dict(os.environ, ETCDCTL_API="3")
        self.proc = subprocess.Popen(
            [need("etcdctl"), f"--endpoints={endpoints}", "watch", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
        )  # fmt: skip
        assert self.proc.stdout is not None
        os.set_blocking(self.proc.stdout.fileno(), False)
        self.buf = b""
        self.stderr = ""  # what it printed on stderr (read by ``stop``)

    def _read(self, until: float) -> bool:
        import select

        assert self.proc.stdout is not None
        left = until - time.monotonic()
        if left <= 0:
            return False
        r, _, _ = select.select([self.proc.stdout], [], [], min(left, 0.1))
        if r:
            chunk = self.proc.stdout.read()
            if chunk:
                self.buf += chunk
            elif chunk == b"":
                return False  # EOF
        return True

    def lines(self, n: int, timeout: float = 10.0) -> list[str]:
        """The first ``n`` lines (waits up to ``timeout`` s for them)."""
        until = time.monotonic() + timeout
        while self.buf.count(b"\n") < n and self._read(until):
            pass
        out = self.buf.decode().splitlines()
        assert len(out) >= n, f"watch printed {out!r}, wanted {n} lines"
        return out[:n]

    def idle_lines(self, idle: float = 1.5, timeout: float = 10.0) -> list[str]:
        """Every line printed until the watch stays silent for ``idle`` s."""
        until = time.monotonic() + timeout
        last, seen = time.monotonic(), len(self.buf)
        while time.monotonic() < until and time.monotonic() - last < idle:
            if not self._read(until):
                break
            if len(self.buf) != seen:
                last, seen = time.monotonic(), len(self.buf)
        return self.buf.decode().splitlines()

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(5)
        assert self.proc.stderr is not None
        self.stderr = self.proc.stderr.read().decode()
        for f in (self.proc.stdout, self.proc.stderr):
            if f is not None:
                f.close()
