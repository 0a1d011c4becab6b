"""A 3-member cluster of real processes: election, HTTP endpoints, failures, restarts."""

from __future__ import annotations

import os
import socket
import struct
import threading
import time
from pathlib import Path

import pytest
from cluster_helpers import DEADLINE, get, put, read_sse_event, start_cluster, try_put, wait_until

from raftkv.localcluster import LocalCluster, http_json


def _statuses(c: LocalCluster, which: list[int]) -> list[dict[str, object]]:
    sts = [c.status(i) for i in which]
    assert all(st is not None for st in sts)
    return sts  # type: ignore[return-value]


def _converged(c: LocalCluster, which: list[int]) -> bool:
    sts = [c.status(i) for i in which]
    if any(st is None for st in sts):
        return False
    commits = {st["commit"] for st in sts}  # type: ignore[index]
    applied = {st["applied"] for st in sts}  # type: ignore[index]
    revs = {st["revision"] for st in sts}  # type: ignore[index]
    return len(commits) == 1 and len(applied) == 1 and len(revs) == 1


def test_one_leader_and_the_http_endpoints(cluster: LocalCluster) -> None:
    sts = _statuses(cluster, [0, 1, 2])
    leaders = [st for st in sts if st["role"] == "leader"]
    assert len(leaders) == 1
    assert {st["lead"] for st in sts} == {leaders[0]["member_id"]}
    assert len({st["cluster_id"] for st in sts}) == 1
    assert len({st["member_id"] for st in sts}) == 3
    assert {st["event_loop"] for st in sts} == {"uvloop"}  # a dependency on Linux
    for m in cluster.members:
        assert http_json(m.client_url + "/version") == (
            200,
            {"etcdserver": "3.4.23", "etcdcluster": "3.4.0"},
        )
        assert http_json(m.client_url + "/health") == (200, {"health": "true"})
        code, text = http_json(m.client_url + "/metrics")
        assert code == 200 and isinstance(text, str)
        for gauge in (
            "raftkv_raft_term ",
            "raftkv_raft_commit_index ",
            "raftkv_raft_applied_index ",
            "raftkv_server_is_leader ",
            "raftkv_server_has_leader 1",
            "raftkv_proposals_applied_total ",
            "raftkv_wal_fsync_total ",
            "raftkv_raft_commit_notices_replaced_total ",
            "raftkv_peer_sent_messages_total{peer=",
        ):
            assert gauge in text, gauge
        code, body = http_json(m.client_url + "/nope")
        assert code == 404 and "error" in body
    e = read_sse_event(
        cluster.members[1].client_url + "/raftkv/v1/events",
        lambda e: e["ev"] == "role",
        timeout=DEADLINE,
    )
    assert {"t_ms", "node", "ev", "role", "lead", "term"} <= set(e)
    assert e["node"] == sts[1]["member_id"]


def test_the_event_stream_reports_commits_and_applies(cluster: LocalCluster) -> None:
    url = cluster.members[0].client_url
    writer = threading.Thread(
        target=lambda: [try_put(url, f"ev{i}", "x") or time.sleep(0.1) for i in range(40)],
        daemon=True,
    )
    seen: set[str] = set()
    kinds: set[str] = set()

    def want(e: dict[str, object]) -> bool:
        if not writer.is_alive() and not seen:
            writer.start()
        seen.add(str(e["ev"]))
        if e["ev"] == "send":  # aggregated per peer, with the kinds of message sent
            kinds.update(e["kinds"])  # type: ignore[arg-type]
        return {"commit", "apply", "send"} <= seen and bool(kinds & {"app", "hb", "app_resp"})

    read_sse_event(url + "/raftkv/v1/events", want, timeout=DEADLINE)
    writer.join(DEADLINE)
    assert kinds <= {"app", "app_resp", "hb", "hb_resp", "vote", "vote_resp", "prop", "read",
                     "read_resp", "snap", "timeout_now"}


def test_a_write_on_one_member_is_read_on_all(cluster: LocalCluster) -> None:
    lead = cluster.leader()
    follower = next(i for i in range(3) if i != lead)
    r = put(cluster.members[follower].client_url, "foo", "bar")
    rev = int(r["header"]["revision"])
    assert rev >= 2
    for m in cluster.members:
        assert get(m.client_url, "foo") == "bar"  # linearizable (ReadIndex)
    wait_until(lambda: _converged(cluster, [0, 1, 2]), what="every member applied the put")
    assert {st["revision"] for st in _statuses(cluster, [0, 1, 2])} == {rev}


def test_killed_leader_is_replaced_and_rejoins_from_its_wal(cluster: LocalCluster) -> None:
    old = cluster.leader()
    assert old is not None
    put(cluster.members[old].client_url, "k", "1")
    old_term = int(_statuses(cluster, [old])[0]["term"])  # type: ignore[call-overload]
    cluster.kill(old)
    rest = [i for i in range(3) if i != old]
    new = cluster.wait_ready(DEADLINE, members=rest)
    assert new != old
    assert int(_statuses(cluster, [new])[0]["term"]) > old_term  # type: ignore[call-overload]
    put(cluster.members[new].client_url, "k", "2")
    cluster.start_member(old)
    cluster.wait_ready(DEADLINE)
    wait_until(lambda: _converged(cluster, [0, 1, 2]), what="the restarted member caught up")
    assert get(cluster.members[old].client_url, "k", serializable=True) == "2"


def test_an_isolated_leader_steps_down_and_the_logs_match_after_heal(
    cluster: LocalCluster,
) -> None:
    old = cluster.leader()
    assert old is not None
    rest = [i for i in range(3) if i != old]
    cluster.isolate([old])

    def stepped_down() -> bool:
        st = cluster.status(old)
        return st is not None and st["role"] != "leader"

    wait_until(stepped_down, what="the minority leader to step down (CheckQuorum)")
    code, body = http_json(cluster.members[old].client_url + "/health")
    assert (code, body["health"]) == (503, "false")
    new = cluster.wait_ready(DEADLINE, members=rest)
    assert new in rest
    assert not try_put(cluster.members[old].client_url, "minority", "x")
    put(cluster.members[new].client_url, "majority", "y")
    cluster.heal()
    cluster.wait_ready(DEADLINE)
    wait_until(lambda: _converged(cluster, [0, 1, 2]), what="logs to match after heal")
    assert get(cluster.members[old].client_url, "majority") == "y"
    assert get(cluster.members[old].client_url, "minority") is None


def test_restarting_the_whole_cluster_keeps_revision_and_term(cluster: LocalCluster) -> None:
    for i in range(5):
        put(cluster.members[i % 3].client_url, f"key{i}", str(i))
    wait_until(lambda: _converged(cluster, [0, 1, 2]), what="every member applied the puts")
    before = _statuses(cluster, [0, 1, 2])
    for i in range(3):
        assert cluster.stop(i) == 0  # SIGTERM: a clean exit
    cluster.start()
    cluster.wait_ready(DEADLINE)
    wait_until(lambda: _converged(cluster, [0, 1, 2]), what="the restarted cluster to converge")
    after = _statuses(cluster, [0, 1, 2])
    assert {st["revision"] for st in after} == {before[0]["revision"]}
    assert min(int(st["term"]) for st in after) >= max(  # type: ignore[call-overload]
        int(st["term"])
        for st in before  # type: ignore[call-overload]
    )
    assert get(cluster.members[2].client_url, "key4") == "4"


def _send(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            s.settimeout(5)
            out = b""
            while chunk := s.recv(65536):
                out += chunk
        except OSError:
            return b""
        return out


def test_bad_bytes_on_client_and_peer_ports_do_not_stop_a_member(cluster: LocalCluster) -> None:
    m = cluster.members[0]
    huge = struct.pack(">IB", 0xFFFFFFF0, 0x41)
    for port in (m.client_port, m.peer_port):
        _send(port, os.urandom(4096))
        _send(port, b"\x00")
        _send(port, b"")
    _send(m.client_port, b"RKVC" + huge + os.urandom(100))
    _send(m.peer_port, b"RKVP" + huge + os.urandom(100))
    _send(m.peer_port, b"RKVP" + struct.pack(">IB", 5, 0x04) + b"\xc1" * 5)
    _send(m.client_port, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
    reply = _send(m.client_port, b"GARBAGE / HTTP/9\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 4") or reply == b""
    for body in (b"{", b"[]", b'{"key": 5}', b'{"key": "!!"}'):
        with socket.create_connection(("127.0.0.1", m.client_port), timeout=5) as s:
            s.sendall(
                b"POST /v3/kv/put HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            resp = s.recv(65536)
        assert resp.startswith(b"HTTP/1.1 400"), resp
        assert resp.rstrip().endswith(b"}") and resp.count(b"\n{") == 1
    code, body = http_json(m.client_url + "/raftkv/v1/debug/partition", {"drop": "all"})
    assert code == 400 and "error" in body
    assert cluster.status(0) is not None
    cluster.wait_ready(DEADLINE)
    assert get(m.client_url, "nothing") is None
    assert put(m.client_url, "after", "bad-input")


def test_data_dirs_resume_after_a_fresh_cluster_object(tmp_path: Path) -> None:
    c = start_cluster(tmp_path)
    try:
        put(c.members[0].client_url, "durable", "yes")
        ports = [(m.client_port, m.peer_port) for m in c.members]
        base = c.base_dir
        c.close()
        assert all(m.exits == [0] for m in c.members)
        c2 = LocalCluster(base, ports=ports, election_timeout_ms=500)
        assert "--initial-cluster-state" in (cmd := c2.command(0))
        assert cmd[cmd.index("--initial-cluster-state") + 1] == "existing"
        c2.start()
        try:
            c2.wait_ready(DEADLINE)
            assert get(c2.members[1].client_url, "durable") == "yes"
        finally:
            c2.kill_all()
    finally:
        c.kill_all()


def test_native_client_put_on_one_member_reads_on_all(cluster: LocalCluster) -> None:
    client_mod = pytest.importorskip("raftkv.client")
    with client_mod.Client([cluster.members[1].endpoint]) as c:
        resp = c.put(b"native", b"value")
        assert resp.header.revision >= 2
        assert resp.header.member_id == cluster.member_ids()[1]
    for m in cluster.members:
        with client_mod.Client([m.endpoint]) as c:
            got = c.get(b"native")  # linearizable by default
            assert [kv.value for kv in got.kvs] == [b"value"]
    assert get(cluster.members[2].client_url, "native") == "value"  # and through HTTP


def test_leadership_moves_on_request_and_only_the_leader_can_move_it(
    cluster: LocalCluster,
) -> None:
    lead = cluster.leader()
    assert lead is not None
    target = (lead + 1) % 3
    follower = (lead + 2) % 3
    ids = cluster.member_ids()
    code, body = http_json(
        cluster.members[follower].client_url + "/raftkv/v1/move-leader", {"to": ids[target]}
    )
    assert code != 200 and body["error"] == "etcdserver: not leader"
    cluster.transfer_leader(target)  # thesis §3.10: through the leader, answered once it leads
    wait_until(lambda: cluster.leader() == target, what="the transferee leading")
