"""The real ``etcdctl`` (ETCDCTL_API=3, Debian's etcd-client 3.4) against a real 3-member raftkv
cluster: every command goes over etcd's gRPC API on the members' client ports."""

from __future__ import annotations

import json
import re
import time

import pytest
from etcd_helpers import WatchProc, error_lines, etcdctl, raftkv_endpoints, wait_until

from raftkv.localcluster import LocalCluster

pytestmark = pytest.mark.usefixtures("etcdctl_bin")


def ok(eps: str, *args: str, input: str | None = None) -> str:
    r = etcdctl(eps, *args, input=input)
    assert r.returncode == 0, (args, r.stdout, r.stderr)
    return r.stdout


def fails(eps: str, *args: str, input: str | None = None) -> tuple[int, list[str]]:
    r = etcdctl(eps, *args, input=input)
    assert r.returncode != 0, (args, r.stdout)
    return r.returncode, error_lines(r.stderr)


def test_put_and_get(rkv: LocalCluster) -> None:
    eps = raftkv_endpoints(rkv)
    one = rkv.members[1].endpoint  # a follower or the leader: every member takes writes
    for k, v in [("g/a", "1"), ("g/b", "22"), ("g/c", "333"), ("g/d", "4"), ("h", "x")]:
        assert ok(one, "put", k, v) == "OK\n"
    assert ok(eps, "get", "g/a") == "g/a\n1\n"
    assert ok(eps, "get", "g/", "--prefix") == "g/a\n1\ng/b\n22\ng/c\n333\ng/d\n4\n"
    assert ok(eps, "get", "g/b", "g/d") == "g/b\n22\ng/c\n333\n"
    assert ok(eps, "get", "g/c", "--from-key", "--keys-only") == "g/c\n\ng/d\n\nh\n\n"
    assert ok(eps, "get", "g/", "--prefix", "--limit=2") == "g/a\n1\ng/b\n22\n"
    assert ok(eps, "get", "g/", "--prefix", "--print-value-only") == "1\n22\n333\n4\n"
    assert ok(eps, "get", "g/", "--prefix", "--sort-by=VALUE", "--order=DESCEND",
              "--print-value-only") == "4\n333\n22\n1\n"  # fmt: skip
    assert ok(eps, "get", "g/", "--prefix", "--sort-by=MODIFY", "--order=DESCEND",
              "--keys-only") == "g/d\n\ng/c\n\ng/b\n\ng/a\n\n"  # fmt: skip
    assert ok(eps, "get", "g/", "--prefix", "-w", "fields").count("\"Key\" : ") == 4
    out = json.loads(ok(eps, "get", "g/a", "-w", "json"))
    kv = out["kvs"][0]
    assert kv["key"] == "Zy9h" and kv["value"] == "MQ==" and kv["version"] == 1
    assert set(out["header"]) == {"cluster_id", "member_id", "revision", "raft_term"}
    assert out["count"] == 1
    rev = kv["mod_revision"]
    ok(eps, "put", "g/a", "again")
    assert ok(eps, "get", "g/a", f"--rev={rev}", "--print-value-only") == "1\n"
    assert ok(eps, "get", "g/a", "--print-value-only") == "again\n"
    fields = ok(eps, "get", "g/a", "-w", "fields")
    for want in ('"Key" : "g/a"', '"Value" : "again"', '"Version" : 2', '"More" : false',
                 '"Count" : 1', '"ClusterID" : ', '"MemberID" : ', '"RaftTerm" : '):  # fmt: skip
        assert want in fields, fields
    _code, err = fails(eps, "get", "g/a", "--rev=100000")
    assert err == ["Error: etcdserver: mvcc: required revision is a future revision"]


def test_delete(rkv: LocalCluster) -> None:
    eps = raftkv_endpoints(rkv)
    for k in ("d/1", "d/2", "d/3", "e"):
        ok(eps, "put", k, "v" + k)
    assert ok(eps, "del", "d/1", "--prev-kv") == "1\nd/1\nvd/1\n"
    assert ok(eps, "del", "d/", "--prefix") == "2\n"
    assert ok(eps, "del", "nothing") == "0\n"
    assert ok(eps, "get", "d/", "--prefix") == ""
    assert ok(eps, "get", "e", "--print-value-only") == "ve\n"


def test_txn_interactive(rkv: LocalCluster) -> None:
    eps = raftkv_endpoints(rkv)
    ok(eps, "put", "t/a", "1")
    ok(eps, "put", "t/b", "2")
    script = 'value("t/a") = "1"\nmod("t/b") > "0"\n\nput t/x yes\nget t/a\n\nput t/x no\n\n'
    out = ok(eps, "txn", "-i", input=script)
    assert out.endswith("SUCCESS\n\nOK\n\nt/a\n1\n"), out
    script = 'value("t/a") = "2"\n\nput t/x yes\n\nput t/x no\ndel t/b\n\n'
    out = ok(eps, "txn", "-i", input=script)
    assert out.endswith("FAILURE\n\nOK\n\n1\n"), out
    assert ok(eps, "get", "t/x", "--print-value-only") == "no\n"
    assert ok(eps, "get", "t/b") == ""
    # etcd's limit of --max-txn-ops (128) and the member keeps serving
    many = "\n" + "".join(f"put t/m{i} v\n" for i in range(129)) + "\n\n"
    _code, err = fails(eps, "txn", "-i", input=many)
    assert err == ["Error: etcdserver: too many operations in txn request"]
    dup = "\nput t/d 1\nput t/d 2\n\n\n"
    _code, err = fails(eps, "txn", "-i", input=dup)
    assert err == ["Error: etcdserver: duplicate key given in txn request"]
    assert ok(eps, "get", "t/a", "--print-value-only") == "1\n"


def test_watch(rkv: LocalCluster) -> None:
    eps = raftkv_endpoints(rkv)
    r0 = json.loads(ok(eps, "put", "w/a", "1", "-w", "json"))["header"]["revision"]
    ok(eps, "put", "w/a", "2")
    # from a past revision, with the previous values
    w = WatchProc(eps, "--rev", str(r0), "--prefix", "--prev-kv", "w/")
    try:
        # the second event prints its previous key-value first
        assert w.lines(8) == ["PUT", "w/a", "1", "PUT", "w/a", "1", "w/a", "2"]
    finally:
        w.stop()
    # live events on several watches, one per process, on different members
    w1 = WatchProc(rkv.members[0].endpoint, "--prefix", "w/")
    w2 = WatchProc(rkv.members[2].endpoint, "w/b")
    try:
        time.sleep(0.5)  # let both watches be created
        ok(rkv.members[1].endpoint, "put", "w/b", "x")
        ok(eps, "del", "w/a")
        assert w1.lines(6) == ["PUT", "w/b", "x", "DELETE", "w/a", ""]
        assert w2.lines(3) == ["PUT", "w/b", "x"]
    finally:
        w1.stop()
        w2.stop()


def test_leases(rkv: LocalCluster) -> None:
    eps = raftkv_endpoints(rkv)
    out = ok(eps, "lease", "grant", "60")
    m = re.fullmatch(r"lease ([0-9a-f]{16}) granted with TTL\(60s\)\n", out)
    assert m, out
    lid = m.group(1)
    assert ok(eps, "put", "--lease", lid, "l/k", "v") == "OK\n"
    out = ok(eps, "lease", "timetolive", lid, "--keys")
    assert re.fullmatch(
        rf"lease {lid} granted with TTL\(60s\), remaining\((59|60)s\), attached keys\(\[l/k\]\)\n",
        out,
    ), out
    assert ok(eps, "lease", "keep-alive", "--once", lid) == f"lease {lid} keepalived with TTL(60)\n"
    assert lid in ok(eps, "lease", "list").splitlines()[1:]
    assert ok(eps, "lease", "revoke", lid) == f"lease {lid} revoked\n"
    assert ok(eps, "get", "l/k") == ""
    assert ok(eps, "lease", "timetolive", lid) == f"lease {lid} already expired\n"
    _code, err = fails(eps, "lease", "revoke", lid)
    assert err == ["Error: failed to revoke lease (etcdserver: requested lease not found)"]
    _code, err = fails(eps, "lease", "keep-alive", "--once", lid)
    assert err == ["Error: etcdserver: requested lease not found"]
    # a short lease expires on its own and takes its key with it
    lid2 = ok(eps, "lease", "grant", "2").split()[1]
    ok(eps, "put", "--lease", lid2, "l/short", "v")
    assert ok(eps, "get", "l/short", "--print-value-only") == "v\n"
    wait_until(lambda: ok(eps, "get", "l/short") == "", timeout=10, what="lease expiry")


def test_compaction(rkv: LocalCluster) -> None:
    eps = raftkv_endpoints(rkv)
    r1 = json.loads(ok(eps, "put", "c/k", "1", "-w", "json"))["header"]["revision"]
    r2 = json.loads(ok(eps, "put", "c/k", "2", "-w", "json"))["header"]["revision"]
    assert ok(eps, "compact", str(r2)) == f"compacted revision {r2}\n"
    _code, err = fails(eps, "get", "c/k", f"--rev={r1}")
    assert err == ["Error: etcdserver: mvcc: required revision has been compacted"]
    assert ok(eps, "get", "c/k", f"--rev={r2}", "--print-value-only") == "2\n"
    w = WatchProc(eps, "--rev", str(r1), "c/k")
    try:
        w.proc.wait(10)
    finally:
        w.stop()
    assert error_lines(w.stderr) == [
        "watch was canceled (etcdserver: mvcc: required revision has been compacted)",
        "Error: watch is canceled by the server",
    ]


def test_defrag_and_hashkv(rkv: LocalCluster) -> None:
    eps = raftkv_endpoints(rkv)
    assert sorted(ok(eps, "defrag", "--cluster").splitlines()) == sorted(
        f"Finished defragmenting etcd member[{m.client_url}]" for m in rkv.members
    )

    def hashkv(*args: str) -> list[dict]:  # type: ignore[type-arg]
        rows = json.loads(ok(eps, "endpoint", "hashkv", "--cluster", "-w", "json", *args))
        assert len(rows) == 3
        return [r["HashKV"] for r in rows]

    def agreed_at(rev: int) -> int | None:
        """The one hash every member gives once all have applied ``rev``, else None."""
        rows = hashkv()
        if any(r["header"]["revision"] != rev for r in rows):
            return None  # a member has not applied the put yet (or another one came)
        assert len({r["hash"] for r in rows}) == 1, rows  # same log applied: same hash
        assert len({r["compact_revision"] for r in rows}) == 1, rows
        return int(rows[0]["hash"])

    r1 = json.loads(ok(eps, "put", "hk/a", "1", "-w", "json"))["header"]["revision"]
    wait_until(lambda: agreed_at(r1) is not None, what="every member's hash at the put")
    h1 = agreed_at(r1)
    r2 = json.loads(ok(eps, "put", "hk/a", "2", "-w", "json"))["header"]["revision"]
    wait_until(lambda: agreed_at(r2) is not None, what="every member's hash at the second put")
    assert agreed_at(r2) != h1
    assert {r["hash"] for r in hashkv("--rev", str(r1))} == {h1}  # history up to r1: unchanged
    _code, err = fails(eps, "endpoint", "hashkv", "--rev", "100000")
    assert err[-1] == "Error: etcdserver: mvcc: required revision is a future revision"


def _health(eps: str, *args: str) -> list[str]:
    """etcdctl 3.4 prints ``endpoint health`` in the simple format on stderr."""
    r = etcdctl(eps, "endpoint", "health", *args)
    assert r.returncode == 0, r.stderr
    return error_lines(r.stderr)


def test_member_list_and_endpoints(rkv: LocalCluster) -> None:
    eps = raftkv_endpoints(rkv)
    # Each member publishes its client URLs through the log once it sees a leader.
    want = {f"infra{i + 1}": m.client_url for i, m in enumerate(rkv.members)}
    deadline = time.monotonic() + 20
    while True:
        lines = ok(eps, "member", "list").splitlines()
        clients = {ln.split(", ")[2]: ln.split(", ")[4] for ln in lines}
        if clients == want or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert clients == want
    assert len(lines) == 3
    for ln in lines:
        mid, started, _name, peers, _clients, learner = ln.split(", ")
        assert re.fullmatch(r"[0-9a-f]+", mid) and started == "started" and learner == "false"
        assert peers.startswith("http://127.0.0.1:")
    st = ok(eps, "endpoint", "status").splitlines()
    assert len(st) == 3
    leaders = 0
    for ln, m in zip(st, rkv.members, strict=True):
        f = ln.split(", ")
        assert f[0] == m.endpoint and f[2] == "3.4.23" and f[5] == "false"
        leaders += f[4] == "true"
    assert leaders == 1
    js = json.loads(ok(eps, "endpoint", "status", "-w", "json"))
    assert {s["Status"]["version"] for s in js} == {"3.4.23"}
    assert len({s["Status"]["leader"] for s in js}) == 1
    health = sorted(_health(eps))
    assert len(health) == 3
    assert all(
        re.fullmatch(r"127\.0\.0\.1:\d+ is healthy: successfully committed proposal: took = .+", h)
        for h in health
    ), health
    # --cluster: the endpoints come from the member list's client URLs
    st = ok(eps, "endpoint", "status", "--cluster").splitlines()
    assert len(st) == 3 and all(ln.split(", ")[2] == "3.4.23" for ln in st)
    health = _health(eps, "--cluster")
    assert len(health) == 3 and all(" is healthy: " in h for h in health)


def test_bad_requests_keep_the_member_serving(rkv: LocalCluster) -> None:
    eps = raftkv_endpoints(rkv)
    _code, err = fails(eps, "put", "big", "x" * (70 * 1024))
    assert err == ["Error: etcdserver: request is too large"]
    _code, err = fails(eps, "get", "")
    assert err == ["Error: etcdserver: key is not provided"]
    _code, err = fails(eps, "auth", "enable")
    assert err == [
        "Error: rpc error: code = Unimplemented desc = raftkv: authentication is not implemented"
    ]
    assert ok(eps, "put", "still", "here") == "OK\n"


def test_move_leader(rkv: LocalCluster) -> None:
    eps = raftkv_endpoints(rkv)
    lead = rkv.leader()
    assert lead is not None
    target = (lead + 1) % 3
    target_hex = f"{rkv.member_ids()[target]:x}"
    out = ok(eps, "move-leader", target_hex)
    assert "Leadership transferred from " in out and target_hex in out
    deadline = time.monotonic() + 20
    while rkv.leader() != target and time.monotonic() < deadline:
        time.sleep(0.05)
    assert rkv.leader() == target
    code, err = fails(eps, "move-leader", "abcdef")  # not a member
    assert code != 0 and any("etcdserver: bad leader transferee" in ln for ln in err), err
