"""etcd's JSON gateway: the same HTTP requests to a fresh raftkv cluster and a fresh etcd 3.4
cluster get the same status and the same JSON, once ids, raft terms/indexes, db sizes and URLs
are masked; plus a watch stream, /version and /health, and bad bodies."""

from __future__ import annotations

import base64
import json
import socket
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from etcd_helpers import EtcdCluster, start_raftkv


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def post(url: str, body: object | bytes, timeout: float = 10.0) -> tuple[int, Any]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    return status, json.loads(raw)


MASKED = {"cluster_id", "member_id", "raft_term", "ID", "leader", "raftIndex", "raftTerm",
          "raftAppliedIndex", "dbSize", "dbSizeInUse", "lease", "hash"}  # fmt: skip


def mask(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: "<N>" if k in MASKED else mask(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [mask(v) for v in obj]
    return obj


REQUESTS: list[tuple[str, object]] = [
    ("/v3/kv/put", {"key": b64("foo"), "value": b64("bar")}),
    ("/v3/kv/put", {"key": b64("foo"), "value": b64("bar2"), "prev_kv": True}),
    ("/v3/kv/put", {"key": b64("fop"), "value": b64("x")}),
    ("/v3/kv/range", {"key": b64("foo")}),
    ("/v3/kv/range", {"key": b64("fo"), "range_end": b64("fp")}),
    ("/v3/kv/range", {"key": b64("fo"), "range_end": b64("fp"), "limit": 1}),
    ("/v3/kv/range", {"key": b64("fo"), "range_end": b64("fp"), "count_only": True}),
    (
        "/v3/kv/range",
        {
            "key": b64("fo"),
            "range_end": b64("fp"),
            "keys_only": True,
            "sort_order": "DESCEND",
            "sort_target": "MOD",
        },
    ),
    ("/v3/kv/range", {"key": b64("nope")}),
    ("/v3/kv/range", {"key": b64("foo"), "revision": "1000"}),
    ("/v3/kv/range", {}),
    ("/v3/kv/deleterange", {"key": b64("nope")}),
    (
        "/v3/kv/txn",
        {
            "compare": [
                {"key": b64("foo"), "target": "VALUE", "result": "EQUAL", "value": b64("bar2")}
            ],
            "success": [
                {"request_put": {"key": b64("x"), "value": b64("1")}},
                {"request_range": {"key": b64("foo")}},
            ],
            "failure": [{"request_delete_range": {"key": b64("x")}}],
        },
    ),
    (
        "/v3/kv/txn",
        {
            "compare": [
                {"key": b64("foo"), "target": "VERSION", "result": "GREATER", "version": "5"}
            ],
            "success": [{"request_put": {"key": b64("x"), "value": b64("2")}}],
            "failure": [{"request_delete_range": {"key": b64("x"), "prev_kv": True}}],
        },
    ),
    ("/v3/kv/txn", {"success": [{"request_put": {"key": b64(f"m{i}")}} for i in range(129)]}),
    ("/v3/lease/grant", {"TTL": 100, "ID": 12345}),
    ("/v3/lease/grant", {"TTL": 100, "ID": 12345}),
    ("/v3/kv/put", {"key": b64("lk"), "value": b64("v"), "lease": "12345"}),
    ("/v3/kv/put", {"key": b64("lk2"), "value": b64("v"), "lease": "999"}),
    ("/v3/lease/timetolive", {"ID": 12345, "keys": True}),
    ("/v3/lease/leases", {}),
    ("/v3/lease/revoke", {"ID": 12345}),
    ("/v3/lease/revoke", {"ID": 12345}),
    ("/v3/lease/timetolive", {"ID": 12345}),
    ("/v3/kv/compaction", {"revision": 4}),
    ("/v3/kv/range", {"key": b64("foo"), "revision": 2}),
    ("/v3/kv/compaction", {"revision": 3}),
    ("/v3/maintenance/status", {}),
    ("/v3/maintenance/alarm", {}),
    ("/v3/maintenance/defragment", {}),
    ("/v3/maintenance/hash", {}),
]


def transcript(client_url: str) -> list[object]:
    out: list[object] = []
    for path, body in REQUESTS:
        status, resp = post(client_url + path, body)
        if isinstance(resp, dict) and "TTL" in resp and path.endswith("timetolive"):
            resp = {**resp, "TTL": "<remaining>"} if resp["TTL"] != "-1" else resp
        out.append([path, status, mask(resp)])
    return out


def test_gateway_answers_as_etcd(tmp_path: Path, etcd_cluster: EtcdCluster) -> None:
    rkv = start_raftkv(tmp_path / "rkv")
    try:
        got = transcript(rkv.members[0].client_url)
        # a watch from the compacted revision: its created response, then the history
        watch = read_watch(rkv.members[0].client_port, 2)
    finally:
        rkv.kill_all()
    want = transcript(f"http://{etcd_cluster.endpoints.split(',')[0]}")
    want_watch = read_watch(etcd_cluster.client_ports[0], 2)
    for g, w in zip(got, want, strict=True):
        assert g == w
    assert mask(watch) == mask(want_watch)


def read_watch(port: int, n: int) -> list[Any]:
    """The first ``n`` results of ``POST /v3/watch`` for prefix ``fo`` from revision 4."""
    body = json.dumps(
        {"create_request": {"key": b64("fo"), "range_end": b64("fp"), "start_revision": 4}}
    ).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(
            b"POST /v3/watch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        f = s.makefile("rb")
        assert f.readline().startswith(b"HTTP/1.1 200")
        chunked = False
        while (line := f.readline()) not in (b"\r\n", b""):
            chunked |= line.lower().startswith(b"transfer-encoding: chunked")
        assert chunked
        results: list[Any] = []
        buf = b""
        while len(results) < n:
            size = int(f.readline().strip(), 16)
            buf += f.read(size)
            f.readline()
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if line.strip():
                    results.append(json.loads(line))
        return results[:n]


def test_version_health_and_bad_bodies(tmp_path: Path) -> None:
    rkv = start_raftkv(tmp_path / "rkv")
    try:
        url = rkv.members[1].client_url
        with urllib.request.urlopen(url + "/version", timeout=5) as r:
            assert json.loads(r.read()) == {"etcdserver": "3.4.23", "etcdcluster": "3.4.0"}
        with urllib.request.urlopen(url + "/health", timeout=5) as r:
            assert json.loads(r.read()) == {"health": "true"}
        status, body = post(url + "/v3/kv/put", b"{not json")
        assert status == 400 and body["code"] == 3 and body["error"] == body["message"]
        status, body = post(url + "/v3/kv/put", {"key": "***"})
        assert status == 400 and body["code"] == 3
        status, body = post(url + "/v3/kv/put", {"key": b64("k"), "nosuchfield": 1})
        assert status == 400 and body["code"] == 3
        status, body = post(url + "/v3/kv/put", {"key": b64("k"), "value": b64("x" * 70000)})
        assert (status, body) == (400, {"error": "etcdserver: request is too large", "code": 3,
                                         "message": "etcdserver: request is too large"})  # fmt: skip
        status, body = post(url + "/v3/cluster/member/list", {})
        assert status == 200 and len(body["members"]) == 3
        assert {m["name"] for m in body["members"]} == {"infra1", "infra2", "infra3"}
        status, body = post(url + "/v3/kv/put", {"key": b64("k"), "value": b64("v")})
        assert status == 200 and int(body["header"]["revision"]) >= 2
    finally:
        rkv.kill_all()
