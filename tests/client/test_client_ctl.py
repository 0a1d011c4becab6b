"""``raftkv put|get|del|txn|lease|member|status`` against a real cluster: etcdctl 3.4's output."""

from __future__ import annotations

import base64
import io
import json
import re

import pytest

from cluster import ThreadCluster
from raftkv.cli import ctl


def ctl_run(cluster: ThreadCluster, capsys: pytest.CaptureFixture[str], *args: str,
            stdin: str | None = None,
            monkeypatch: pytest.MonkeyPatch | None = None) -> tuple[int, str, str]:  # fmt: skip
    if stdin is not None:
        assert monkeypatch is not None
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    eps = ",".join(f"http://{e}" for e in cluster.endpoints)
    code = ctl.main([*args, "--endpoints", eps])
    out, err = capsys.readouterr()
    return code, out, err


def test_put_get_del_simple(cluster: ThreadCluster, capsys: pytest.CaptureFixture[str]) -> None:
    assert ctl_run(cluster, capsys, "put", "c1/a", "hello") == (0, "OK\n", "")
    assert ctl_run(cluster, capsys, "put", "c1/b", "world") == (0, "OK\n", "")
    assert ctl_run(cluster, capsys, "put", "c1/a", "hi", "--prev-kv") == (
        0, "OK\nc1/a\nhello\n", "",
    )  # fmt: skip
    assert ctl_run(cluster, capsys, "get", "c1/a") == (0, "c1/a\nhi\n", "")
    assert ctl_run(cluster, capsys, "get", "c1/", "--prefix") == (0, "c1/a\nhi\nc1/b\nworld\n", "")
    assert ctl_run(cluster, capsys, "get", "c1/", "--prefix", "--print-value-only") == (
        0, "hi\nworld\n", "",
    )  # fmt: skip
    assert ctl_run(cluster, capsys, "get", "c1/", "--prefix", "--keys-only") == (
        0, "c1/a\n\nc1/b\n\n", "",
    )  # fmt: skip
    assert (
        ctl_run(
            cluster, capsys, "get", "c1/", "--prefix", "--sort-by", "VALUE", "--order", "DESCEND"
        )[1]
        == "c1/b\nworld\nc1/a\nhi\n"
    )
    assert ctl_run(cluster, capsys, "get", "c1/a", "c1/b", "--consistency", "s")[1] == "c1/a\nhi\n"
    assert ctl_run(cluster, capsys, "get", "c1/", "--prefix", "--limit", "1")[1] == "c1/a\nhi\n"
    assert ctl_run(cluster, capsys, "get", "c1/none") == (0, "", "")
    assert ctl_run(cluster, capsys, "del", "c1/a", "--prev-kv") == (0, "1\nc1/a\nhi\n", "")
    assert ctl_run(cluster, capsys, "del", "c1/", "--prefix") == (0, "1\n", "")


def test_get_json(cluster: ThreadCluster, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = ctl_run(cluster, capsys, "put", "c2/k", "v", "-w", "json")
    assert code == 0
    put = json.loads(out)
    assert set(put) == {"header"} and put["header"]["revision"] > 0
    code, out, _ = ctl_run(cluster, capsys, "get", "c2/k", "-w", "json")
    doc = json.loads(out)
    assert code == 0 and doc["count"] == 1
    assert set(doc["header"]) == {"cluster_id", "member_id", "revision", "raft_term"}
    kv = doc["kvs"][0]
    assert base64.b64decode(kv["key"]) == b"c2/k" and base64.b64decode(kv["value"]) == b"v"
    assert kv["version"] == 1 and kv["create_revision"] == kv["mod_revision"]
    assert "lease" not in kv and "more" not in doc
    code, out, _ = ctl_run(cluster, capsys, "del", "c2/k", "-w", "json")
    assert json.loads(out)["deleted"] == 1


def test_lease_commands(cluster: ThreadCluster, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = ctl_run(cluster, capsys, "lease", "grant", "60")
    m = re.fullmatch(r"lease ([0-9a-f]{16}) granted with TTL\(60s\)\n", out)
    assert code == 0 and m, out
    lid = m.group(1)
    assert ctl_run(cluster, capsys, "put", "c3/k", "v", "--lease", lid)[0] == 0
    code, out, _ = ctl_run(cluster, capsys, "lease", "timetolive", lid, "--keys")
    assert re.fullmatch(
        rf"lease {lid} granted with TTL\(60s\), remaining\(\d+s\), attached keys\(\[c3/k\]\)\n", out
    ), out
    code, out, _ = ctl_run(cluster, capsys, "lease", "list")
    assert out.startswith("found ") and f"\n{lid}\n" in out
    code, out, _ = ctl_run(cluster, capsys, "lease", "keep-alive", lid, "--once")
    assert out == f"lease {lid} keepalived with TTL(60)\n"
    code, out, _ = ctl_run(cluster, capsys, "lease", "grant", "10", "-w", "json")
    doc = json.loads(out)
    assert doc["TTL"] == 10 and doc["ID"] > 0 and doc["revision"] > 0
    assert ctl_run(cluster, capsys, "lease", "revoke", lid) == (0, f"lease {lid} revoked\n", "")
    assert ctl_run(cluster, capsys, "get", "c3/k") == (0, "", "")
    assert ctl_run(cluster, capsys, "lease", "timetolive", lid) == (
        0, f"lease {lid} already expired\n", "",
    )  # fmt: skip
    assert ctl_run(cluster, capsys, "lease", "revoke", lid) == (
        1, "", "Error: etcdserver: requested lease not found\n",
    )  # fmt: skip


def test_txn_from_stdin(
    cluster: ThreadCluster, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ctl_run(cluster, capsys, "put", "c4/k", "v1")
    script = 'value("c4/k") = "v1"\n\nput c4/k "v 2"\nget c4/k\n\nget c4/k\n'
    code, out, err = ctl_run(cluster, capsys, "txn", stdin=script, monkeypatch=monkeypatch)
    assert (code, err) == (0, "")
    assert out == "SUCCESS\n\nOK\n\nc4/k\nv 2\n"
    code, out, _ = ctl_run(cluster, capsys, "txn", stdin=script, monkeypatch=monkeypatch)
    assert out == "FAILURE\n\nc4/k\nv 2\n"
    script = 'mod("c4/k") > "0"\n\ndel c4/ --prefix\n\n'
    assert ctl_run(cluster, capsys, "txn", stdin=script, monkeypatch=monkeypatch)[1] == (
        "SUCCESS\n\n1\n"
    )
    code, _, err = ctl_run(
        cluster, capsys, "txn", stdin='bogus("x")\n\n\n', monkeypatch=monkeypatch
    )
    assert code == 2 and err.startswith("Error: malformed comparison")


def test_member_list_and_status(cluster: ThreadCluster, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = ctl_run(cluster, capsys, "member", "list")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 3
    assert (
        lines[0] == f"1, started, m1, http://127.0.0.1:22381, http://{cluster.endpoint(1)}, false"
    )
    code, out, _ = ctl_run(cluster, capsys, "status")
    rows = [r.split(", ") for r in out.splitlines()]
    assert code == 0 and len(rows) == 3
    assert [r[4] for r in rows].count("true") == 1  # one leader
    code, out, _ = ctl_run(cluster, capsys, "status", "-w", "table")
    assert "IS LEADER" in out and "RAFT TERM" in out and out.count("\n") >= 5
    code, out, _ = ctl_run(cluster, capsys, "member", "list", "-w", "json")
    assert [m["name"] for m in json.loads(out)["members"]] == ["m1", "m2", "m3"]


def test_errors_and_usage(cluster: ThreadCluster, capsys: pytest.CaptureFixture[str]) -> None:
    assert ctl_run(cluster, capsys, "get", "c5", "--rev", "999999999") == (
        1, "", "Error: etcdserver: mvcc: required revision is a future revision\n",
    )  # fmt: skip
    code, _, err = ctl_run(cluster, capsys, "get")
    assert code == 2 and err.startswith("Error: ")
    code, _, err = ctl_run(cluster, capsys, "get", "k", "--prefix", "--from-key")
    assert code == 2 and "cannot be set at the same time" in err
    assert ctl_run(cluster, capsys, "put", "k", "v", "-w", "table")[0] == 2
    # Nothing listens on port 1: a one-line error, exit 1.
    code = ctl.main(["get", "k", "--endpoints", "127.0.0.1:1", "--command-timeout", "500ms"])
    _, err = capsys.readouterr()
    assert code == 1 and err.startswith("Error: ") and err.count("\n") == 1
