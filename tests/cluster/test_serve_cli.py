"""``raftkv serve`` as a process: flags, ports, data dirs, signals."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from cluster_helpers import (
    DEADLINE,
    SMALL_WAL,
    dir_hashes,
    free_ports,
    get,
    put,
    serve,
    stderr_lines,
    wait_until,
)

from raftkv.cli.serve import cluster_id, member_id
from raftkv.localcluster import http_json


def _flags(data_dir: Path, client: int, peer: int, *extra: str) -> list[str]:
    return [
        "--name", "solo",
        "--data-dir", str(data_dir),
        "--listen-client-urls", f"http://127.0.0.1:{client}",
        "--listen-peer-urls", f"http://127.0.0.1:{peer}",
        "--election-timeout", "500",
        *SMALL_WAL,
        *extra,
    ]  # fmt: skip


def _run_member(
    data_dir: Path, *extra: str, ports: tuple[int, int] | None = None,
    env: dict[str, str] | None = None,
) -> tuple[subprocess.Popen[str], str]:
    client, peer = ports or free_ports(2)
    proc = subprocess.Popen(
        [sys.executable, "-m", "raftkv", "serve", *_flags(data_dir, client, peer, *extra)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
    url = f"http://127.0.0.1:{client}"

    def up() -> bool:
        assert proc.poll() is None, proc.communicate()
        try:
            return http_json(url + "/health")[0] == 200
        except OSError:
            return False

    wait_until(up, DEADLINE, "the member to answer")
    return proc, url


def test_ids_are_stable_hashes() -> None:
    assert member_id("a", "http://127.0.0.1:2380") == member_id("a", "http://127.0.0.1:2380")
    assert member_id("a", "http://127.0.0.1:2380") != member_id("b", "http://127.0.0.1:2380")
    assert cluster_id("t", ["u2", "u1"]) == cluster_id("t", ["u1", "u2"])
    assert cluster_id("t", ["u1"]) != cluster_id("t2", ["u1"])
    assert 0 < member_id("a", "u") < 1 << 63


def test_wrong_flags_exit_2_with_one_line(tmp_path: Path) -> None:
    for args in (
        ["--no-such-flag"],
        ["--heartbeat-interval", "abc"],
        ["--listen-client-urls", "ftp://x:1"],
        ["--listen-client-urls", "http://127.0.0.1"],
        ["--initial-cluster", "other=http://127.0.0.1:1"],
        ["--initial-cluster-state", "maybe"],
        ["--election-timeout", "10", "--heartbeat-interval", "50"],
        ["--experimental-watch-progress-notify-interval", "10"],  # a Go duration needs a unit
        ["--experimental-watch-progress-notify-interval", "0s"],
        ["--experimental-watch-progress-notify-interval", "5x"],
    ):
        r = serve("--data-dir", str(tmp_path / "d"), *args)
        assert r.returncode == 2, (args, r.stderr)
        assert len(stderr_lines(r.stderr)) == 1, (args, r.stderr)
        assert r.stderr.startswith("raftkv serve: error: ")
    assert not (tmp_path / "d").exists()


def test_a_taken_port_exits_2_with_one_line(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        taken = s.getsockname()[1]
        (free,) = free_ports(1)
        for client, peer in ((taken, free), (free, taken)):
            r = serve(*_flags(tmp_path / "d", client, peer))
            assert r.returncode == 2, r.stderr
            lines = stderr_lines(r.stderr)
            assert len(lines) == 1 and str(taken) in lines[0], r.stderr
    assert not (tmp_path / "d").exists()


def test_sigterm_exits_0_and_another_clusters_data_dir_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "solo.etcd"
    client_port, peer_port = free_ports(2)
    ports = (client_port, peer_port)
    # asyncio's own event loop (uvloop is the default where it is installed)
    proc, url = _run_member(data, ports=ports, env={"RAFTKV_EVENT_LOOP": "asyncio"})
    try:
        assert http_json(url + "/raftkv/v1/status")[1]["event_loop"] == "asyncio"
        put(url, "a", "1")
        assert get(url, "a") == "1"
        # no --enable-fault-injection: the debug API is not there
        code, body = http_json(url + "/raftkv/v1/debug/heal", {})
        assert code == 404 and "error" in body
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=DEADLINE)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    before = dir_hashes(data)
    r = serve(*_flags(data, *ports, "--initial-cluster-token", "another-cluster"))
    assert r.returncode == 2, r.stderr
    lines = stderr_lines(r.stderr)
    assert len(lines) == 1 and "belongs to cluster" in lines[0], r.stderr
    assert dir_hashes(data) == before
    # the same member (same name and peer URL, so the same ids) resumes from it
    proc, url = _run_member(data, ports=ports)
    try:
        assert get(url, "a") == "1"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=DEADLINE)
    assert proc.returncode == 0


def test_a_corrupt_wal_exits_non_zero_with_one_line(tmp_path: Path) -> None:
    data = tmp_path / "solo.etcd"
    client_port, peer_port = free_ports(2)
    ports = (client_port, peer_port)
    proc, url = _run_member(data, ports=ports)
    try:
        for i in range(20):
            put(url, f"k{i}", "v" * 100)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=DEADLINE)
    segments = sorted((data / "member" / "wal").iterdir())
    assert segments
    seg = segments[0]
    raw = bytearray(seg.read_bytes())
    # flip a byte inside an early record (not the torn tail the WAL may repair)
    pos = raw.find(b"v" * 100)
    assert pos > 0
    raw[pos + 10] ^= 0xFF
    seg.write_bytes(bytes(raw))
    before = dir_hashes(data)
    r = serve(*_flags(data, *ports))
    assert r.returncode in (1, 2), r.stderr
    lines = stderr_lines(r.stderr)
    assert lines and lines[-1].startswith("raftkv serve: error: "), r.stderr
    assert "corrupt" in lines[-1], r.stderr
    assert len([ln for ln in lines if " ERROR " in ln or "error:" in ln]) == 1, r.stderr
    assert dir_hashes(data) == before


def test_accepted_client_connections_do_not_wait_for_delayed_acks() -> None:
    """Regression: sockets from socket.create_server have proto 0, so asyncio never set
    TCP_NODELAY on accepted connections and every gRPC call waited ~40 ms for a delayed ACK."""
    import asyncio
    import socket as so

    from raftkv.cli.serve import _bind

    async def main() -> int:
        sock = _bind(("127.0.0.1", 0), "clients")
        accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        class P(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                s = transport.get_extra_info("socket")
                accepted.set_result(s.getsockopt(so.IPPROTO_TCP, so.TCP_NODELAY))

        server = await asyncio.get_running_loop().create_server(P, sock=sock)
        _, w = await asyncio.open_connection(*sock.getsockname()[:2])
        try:
            return await asyncio.wait_for(accepted, 10)
        finally:
            w.close()
            server.close()

    assert asyncio.run(main()) != 0
