"""``LocalCluster``: n members of ``raftkv serve`` as child processes of this one.

Ports (``default_ports``), as etcd's local Procfile: member 0 uses ``base_port`` for clients and
``base_port + 1`` for peers; member i ≥ 1 uses ``base_port + 10000 * (i + 1)`` and that plus 1.
For base 2379: 2379/2380, 22379/22380, 32379/32380. Tests pass explicit ``ports`` instead.

Each member's data dir is ``<base_dir>/<name>.etcd`` and its log ``<base_dir>/<name>.log``
(stderr and stdout). Children die with their parent: ``PR_SET_PDEATHSIG`` (SIGTERM) on Linux,
plus an ``atexit`` hook that kills what is still running. Only PIDs started here are signalled.
Linux sends that signal when the *thread* that started a child ends, so every child is started
from one thread that lives as long as this process; a member started from a short-lived thread
(``asyncio.to_thread``, say) would otherwise stop when that thread does.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

_PR_SET_PDEATHSIG = 1
_live: weakref.WeakSet[LocalCluster] = weakref.WeakSet()


class ClusterError(Exception):
    """A member did not start, answer or reach the wanted state in time."""


def free_ports(k: int, host: str = "127.0.0.1") -> list[int]:
    """``k`` distinct TCP ports that were free a moment ago (bound to port 0 together, then
    released): for tests and benchmarks that must never use fixed ports."""
    socks: list[socket.socket] = []
    try:
        for _ in range(k):
            s = socket.socket()
            s.bind((host, 0))
            socks.append(s)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def default_ports(n: int, base_port: int = 2379) -> list[tuple[int, int]]:
    """(client, peer) ports of members 0..n-1 (see the module docstring)."""
    out = []
    for i in range(n):
        client = base_port if i == 0 else base_port + 10000 * (i + 1)
        out.append((client, client + 1))
    if any(p > 65535 for pair in out for p in pair):
        raise ValueError(f"base port {base_port} gives ports above 65535 for {n} members")
    return out


_SPAWNER: ThreadPoolExecutor | None = None
_SPAWNER_LOCK = threading.Lock()


def _spawner() -> ThreadPoolExecutor:
    """The one thread that starts children; it ends only when this process exits."""
    global _SPAWNER
    with _SPAWNER_LOCK:
        if _SPAWNER is None:
            _SPAWNER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="raftkv-spawner")
        return _SPAWNER


def _set_pdeathsig(parent: int) -> None:  # runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before prctl: no signal will come
        os._exit(1)


def http_json(url: str, body: object | None = None, timeout: float = 2.0) -> tuple[int, Any]:
    """GET (or POST ``body`` as JSON) ``url``; returns (status, decoded JSON or text).

    Raises:
        OSError: the connection failed (URLError is one).
    """
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="GET" if body is None else "POST")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode("utf-8", "replace")


@dataclass
class MemberProcess:
    index: int
    name: str
    client_port: int
    peer_port: int
    data_dir: str
    log_path: str
    proc: subprocess.Popen[bytes] | None = None
    member_id: int = 0
    exits: list[int] = field(default_factory=list)

    @property
    def client_url(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.client_port}"

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class LocalCluster:
    """Args:
    base_dir: where data dirs and logs go (created).
    n: number of members.
    base_port: see ``default_ports``; ignored when ``ports`` is given.
    election_timeout_ms: ``--election-timeout`` of every member (default: serve's).
    extra_args: more ``raftkv serve`` flags for every member.
    ports: explicit (client, peer) port pairs, one per member.
    fault_injection: start members with ``--enable-fault-injection`` (default on).
    token: ``--initial-cluster-token``.
    """

    def __init__(
        self,
        base_dir: str | os.PathLike[str],
        n: int = 3,
        base_port: int = 2379,
        election_timeout_ms: int | None = None,
        extra_args: Sequence[str] = (),
        *,
        ports: Sequence[tuple[int, int]] | None = None,
        fault_injection: bool = True,
        token: str = "raftkv-local",
        python: str = sys.executable,
    ) -> None:
        if n < 1:
            raise ValueError("n must be at least 1")
        self.base_dir = os.path.abspath(os.fspath(base_dir))
        pairs = list(ports) if ports is not None else default_ports(n, base_port)
        if len(pairs) != n:
            raise ValueError(f"{n} members need {n} port pairs, got {len(pairs)}")
        self.election_timeout_ms = election_timeout_ms
        self.extra_args = list(extra_args)
        self.fault_injection = fault_injection
        self.token = token
        self.python = python
        self.members = [
            MemberProcess(
                index=i,
                name=f"infra{i + 1}",
                client_port=c,
                peer_port=p,
                data_dir=os.path.join(self.base_dir, f"infra{i + 1}.etcd"),
                log_path=os.path.join(self.base_dir, f"infra{i + 1}.log"),
            )
            for i, (c, p) in enumerate(pairs)
        ]
        _live.add(self)

    # -- processes ------------------------------------------------------------------------------

    def command(self, i: int) -> list[str]:
        m = self.members[i]
        cluster = ",".join(f"{x.name}={x.peer_url}" for x in self.members)
        existing = os.path.exists(os.path.join(m.data_dir, "raftkv-meta.json"))
        args = [
            self.python, "-m", "raftkv", "serve",
            "--name", m.name,
            "--data-dir", m.data_dir,
            "--listen-client-urls", m.client_url,
            "--advertise-client-urls", m.client_url,
            "--listen-peer-urls", m.peer_url,
            "--initial-advertise-peer-urls", m.peer_url,
            "--initial-cluster", cluster,
            "--initial-cluster-token", self.token,
            "--initial-cluster-state", "existing" if existing else "new",
        ]  # fmt: skip
        if self.election_timeout_ms is not None:
            args += ["--election-timeout", str(self.election_timeout_ms)]
        if self.fault_injection:
            args.append("--enable-fault-injection")
        return args + self.extra_args

    def start(self) -> None:
        """Start every member that is not running."""
        os.makedirs(self.base_dir, exist_ok=True)
        for i in range(len(self.members)):
            if not self.members[i].running():
                self.start_member(i)

    def start_member(self, i: int) -> None:
        m = self.members[i]
        if m.running():
            raise ClusterError(f"{m.name} is already running (pid {m.proc.pid})")  # type: ignore[union-attr]
        os.makedirs(self.base_dir, exist_ok=True)
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        with open(m.log_path, "ab") as log:
            m.proc = _spawner().submit(
                subprocess.Popen,
                self.command(i),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=env,
                start_new_session=False,
                preexec_fn=functools.partial(_set_pdeathsig, os.getpid()),
            ).result()

    def stop(self, i: int, timeout: float = 10.0) -> int | None:
        """SIGTERM member i and wait for it (SIGKILL after ``timeout``); its exit code."""
        m = self.members[i]
        if m.proc is None:
            return None
        if m.proc.poll() is None:
            m.proc.send_signal(signal.SIGTERM)
            try:
                m.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                m.proc.kill()
                m.proc.wait()
        code = m.proc.returncode
        m.exits.append(code)
        m.proc = None
        return code

    def kill(self, i: int) -> None:
        """SIGKILL member i (by its PID) and reap it."""
        m = self.members[i]
        if m.proc is None:
            return
        if m.proc.poll() is None:
            os.kill(m.proc.pid, signal.SIGKILL)
        m.proc.wait()
        m.exits.append(m.proc.returncode)
        m.proc = None

    def restart(self, i: int, timeout: float = 10.0) -> None:
        self.stop(i, timeout)
        self.start_member(i)

    def pids(self) -> list[int]:
        return [m.proc.pid for m in self.members if m.proc is not None]

    def close(self) -> None:
        """Stop every member: SIGTERM, then SIGKILL what is left after a grace period."""
        procs = [m.proc for m in self.members if m.proc is not None]
        for p in procs:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 5.0
        for p in procs:
            try:
                p.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    p.kill()
                p.wait()
        for m in self.members:
            if m.proc is not None:
                m.exits.append(m.proc.returncode)
                m.proc = None

    def kill_all(self) -> None:
        for i in range(len(self.members)):
            self.kill(i)

    def __enter__(self) -> LocalCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- views ----------------------------------------------------------------------------------

    def endpoints(self) -> list[str]:
        """``host:port`` of every member's client port."""
        return [m.endpoint for m in self.members]

    def status(self, i: int, timeout: float = 2.0) -> dict[str, Any] | None:
        """Member i's ``/raftkv/v1/status``, or None when it does not answer."""
        m = self.members[i]
        try:
            code, body = http_json(m.client_url + "/raftkv/v1/status", timeout=timeout)
        except (OSError, ValueError):
            return None
        if code != 200 or not isinstance(body, dict):
            return None
        m.member_id = int(body.get("member_id", 0))
        return body

    def statuses(self) -> list[dict[str, Any] | None]:
        return [self.status(i) if m.running() else None for i, m in enumerate(self.members)]

    def index_of(self, member_id: int) -> int | None:
        for m in self.members:
            if m.member_id == member_id:
                return m.index
        return None

    def leader(self) -> int | None:
        """The index of the member that is leader in the highest term seen, or None."""
        best: tuple[int, int] | None = None
        for i, st in enumerate(self.statuses()):
            if st is not None and st.get("role") == "leader":
                term = int(st.get("term", 0))
                if best is None or term > best[0]:
                    best = (term, i)
        return None if best is None else best[1]

    def member_ids(self) -> list[int]:
        """Raft ids of the members (read from their status, or computed by their peers)."""
        for i, m in enumerate(self.members):
            if not m.member_id and m.running():
                self.status(i)
        if not all(m.member_id for m in self.members):
            for st in self.statuses():
                if st is None:
                    continue
                for info in st.get("members", []):
                    idx = next((m.index for m in self.members if m.name == info["name"]), None)
                    if idx is not None:
                        self.members[idx].member_id = int(info["id"])
        return [m.member_id for m in self.members]

    def wait_for(
        self, pred: Callable[[], bool], timeout: float = 20.0, what: str = "a condition"
    ) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if pred():
                return
            for m in self.members:
                if m.proc is not None and m.proc.poll() is not None:
                    raise ClusterError(
                        f"{m.name} exited with {m.proc.returncode} (log: {m.log_path})"
                    )
            if time.monotonic() >= deadline:
                raise ClusterError(f"timed out after {timeout} s waiting for {what}")
            time.sleep(0.05)

    def wait_ready(self, timeout: float = 20.0, members: Sequence[int] | None = None) -> int:
        """Wait until every running member (or ``members``) names one and the same leader, itself
        one of them and in the leader role; returns the leader's index."""
        which = (
            list(members) if members is not None else [m.index for m in self.members if m.running()]
        )
        found: list[int] = []

        def ready() -> bool:
            sts = [self.status(i) for i in which]
            if any(st is None for st in sts):
                return False
            leads = {int(st["lead"]) for st in sts if st is not None}
            if len(leads) != 1 or 0 in leads:
                return False
            self.member_ids()
            idx = self.index_of(leads.pop())
            if idx is None or idx not in which:
                return False  # e.g. the followers still name a leader that was just killed
            if sts[which.index(idx)]["role"] != "leader":  # type: ignore[index]
                return False
            found[:] = [idx]
            return True

        self.wait_for(ready, timeout, "a leader known by every member")
        return found[0]

    # -- faults ---------------------------------------------------------------------------------

    def partition(self, i: int, drop: Sequence[int]) -> None:
        """Member i discards all traffic to and from members ``drop`` (indexes)."""
        ids = self.member_ids()
        code, body = http_json(
            self.members[i].client_url + "/raftkv/v1/debug/partition",
            {"drop": [ids[j] for j in drop]},
        )
        if code != 200:
            raise ClusterError(f"partition on {self.members[i].name} failed: {code} {body}")

    def isolate(self, group: Sequence[int]) -> None:
        """Cut ``group`` off from the other members, both ways."""
        others = [m.index for m in self.members if m.index not in group]
        for i in group:
            if self.members[i].running():
                self.partition(i, others)
        for i in others:
            if self.members[i].running():
                self.partition(i, group)

    def transfer_leader(self, to: int) -> None:
        """Hand leadership to member ``to`` (an index), through the current leader.

        Raises:
            ClusterError: there is no leader, or the transfer failed.
        """
        lead = self.leader()
        if lead is None:
            raise ClusterError("no leader to transfer from")
        if lead == to:
            return
        ids = self.member_ids()
        code, body = http_json(
            self.members[lead].client_url + "/raftkv/v1/move-leader", {"to": ids[to]}, timeout=10
        )
        if code != 200:
            raise ClusterError(f"transfer to {self.members[to].name} failed: {code} {body}")

    def heal(self) -> None:
        """End every partition on every running member."""
        for m in self.members:
            if m.running():
                code, body = http_json(m.client_url + "/raftkv/v1/debug/heal", {})
                if code != 200:
                    raise ClusterError(f"heal on {m.name} failed: {code} {body}")


@atexit.register
def _kill_children() -> None:
    for c in list(_live):
        for m in c.members:
            if m.proc is not None and m.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    m.proc.kill()
